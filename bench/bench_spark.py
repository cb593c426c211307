"""Scoring on Spark against one process and against the C core alone.

    python bench/bench_spark.py [--rows 10000000] [--repeat 3] [--model MODEL --trust KEY.pub]

Writes one Parquet file of ``--rows`` rows (the model's inputs as float32 plus an int64 id,
seeded), then measures, each ``--repeat`` times (median reported):

* ``pyastore score MODEL in.parquet -o out.parquet --keep id`` in one process (the CLI);
* ``pyastore.spark.score`` on ``spark.read.parquet`` in ``local[2]`` (two task slots, one Python
  worker each), written back as Parquet with the id kept -- the same job as the CLI's;
* the same Spark job into the ``noop`` sink (reading, Arrow transfer and scoring, no write);
* ``pyastore.spark.score_parquet`` on the same file (Spark schedules one task per row group;
  pyarrow reads, the C core scores and pyarrow writes in the Python workers, the rows never
  passing through the JVM), Parquet part files out;
* Spark's own floor for any ``mapInArrow`` scorer: the same columns through a ``mapInArrow``
  function that returns a column of zeros without looking at its input, into ``noop`` -- what
  the JVM's scan, its row-to-Arrow conversion and the Python worker round trip cost alone;
* the C core alone: ``Model.score_into`` on the whole float32 matrix already in memory, one and
  two threads -- the floor that any engine adds its overhead to.

Prints a Markdown table: seconds, rows/s and ns/row, and the Spark job's time per row over the
C core's at two threads (the overhead ratio).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests" / "unit" / "spark"))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import pyastore  # noqa: E402
import pyastore.spark  # noqa: E402
from spark_testlib import find_java_home  # noqa: E402

GOLDEN = ROOT / "tests" / "golden"


def write_input(path: Path, model: pyastore.Model, rows: int) -> None:
    rng = np.random.default_rng(20250101)
    chunk = 1_000_000
    schema = pa.schema([("id", pa.int64())] + [(n, pa.float32()) for n in model.input_names])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            columns = [pa.array(np.arange(start, start + n, dtype=np.int64))]
            columns += [pa.array(rng.uniform(0, 1000, n).astype(np.float32))
                        for _ in model.input_names]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def timed(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default=str(GOLDEN / "tiny_forest.astore"))
    parser.add_argument("--trust", default=str(GOLDEN / "golden_test_key.pub"))
    parser.add_argument("--batch-rows", type=int, default=10_000,
                        help="spark.sql.execution.arrow.maxRecordsPerBatch (Spark's default)")
    parser.add_argument("--no-cli", action="store_true", help="leave out pyastore score")
    args = parser.parse_args(argv)
    model = pyastore.load(args.model, trusted_keys=[args.trust])
    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    results: list[tuple[str, float]] = []
    try:
        data = work / "in.parquet"
        write_input(data, model, args.rows)
        print(f"{args.rows} rows, {data.stat().st_size / 1e6:.0f} MB Parquet", flush=True)

        out_cli = work / "cli.parquet"
        cli = [sys.executable, "-m", "pyastore", "score", args.model, str(data), "-o",
               str(out_cli), "--keep", "id", "--trust", args.trust]
        if not args.no_cli:
            results.append(("pyastore score, one process (Parquet -> Parquet)",
                            timed(lambda: subprocess.run(cli, check=True, capture_output=True),
                                  args.repeat)))

        os.environ["JAVA_HOME"] = find_java_home()
        os.environ["PYSPARK_PYTHON"] = sys.executable
        from pyspark.sql import SparkSession

        spark = (SparkSession.builder.master("local[2]").appName("bench")
                 .config("spark.ui.enabled", "false")
                 .config("spark.ui.showConsoleProgress", "false")
                 .config("spark.local.dir", str(work))
                 .config("spark.driver.memory", "2g")
                 .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(args.batch_rows))
                 .getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        frame = spark.read.parquet(str(data))

        def spark_parquet() -> None:
            scored = pyastore.spark.score(frame, args.model, trusted_keys=[args.trust],
                                          keep=["id"])
            scored.write.mode("overwrite").parquet(str(work / "spark.parquet"))

        def spark_noop() -> None:
            scored = pyastore.spark.score(frame, args.model, trusted_keys=[args.trust],
                                          keep=["id"])
            scored.write.format("noop").mode("overwrite").save()

        def zeros(batches):
            for batch in batches:
                yield pa.RecordBatch.from_arrays([pa.array(np.zeros(batch.num_rows))],
                                                 names=["p"])

        def spark_floor() -> None:
            inputs = frame.select("id", *model.input_names)
            inputs.mapInArrow(zeros, "p double").write.format("noop").mode("overwrite").save()

        def spark_files() -> None:
            pyastore.spark.score_parquet(spark, args.model, data, work / "files.parquet",
                                         trusted_keys=[args.trust], keep=["id"],
                                         overwrite=True)

        spark_noop()  # warm: JVM JIT, Python workers started and the model cached
        spark_floor()
        spark_files()
        results.append(("Spark local[2] (Parquet -> Parquet)", timed(spark_parquet, args.repeat)))
        results.append(("Spark local[2] (Parquet -> noop sink)", timed(spark_noop, args.repeat)))
        results.append(("Spark local[2], a mapInArrow returning zeros (Spark's floor)",
                        timed(spark_floor, args.repeat)))
        results.append(("Spark local[2], score_parquet (Parquet -> Parquet parts)",
                        timed(spark_files, args.repeat)))
        assert pq.read_table(work / "files.parquet").num_rows == args.rows
        written = spark.read.parquet(str(work / "spark.parquet"))
        assert written.count() == args.rows
        spark.stop()

        table = pq.read_table(data, columns=list(model.input_names))
        x = np.empty((table.num_rows, len(model.input_names)), dtype=np.float32)
        for c, name in enumerate(model.input_names):
            x[:, c] = table.column(name).to_numpy()
        out = np.empty((table.num_rows, len(model.output_names)))
        for threads in (1, 2):
            results.append((f"C core alone, Model.score_into, {threads} thread(s)",
                            timed(lambda t=threads: model.score_into(x, out, n_threads=t),
                                  args.repeat)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    core2 = results[-1][1]
    print(f"\n| job ({args.rows:,} rows, median of {args.repeat}) | s | rows/s | ns/row "
          "| × C core (2 threads) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, seconds in results:
        print(f"| {name} | {seconds:.2f} | {args.rows / seconds:,.0f} | "
              f"{seconds / args.rows * 1e9:.1f} | {seconds / core2:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
