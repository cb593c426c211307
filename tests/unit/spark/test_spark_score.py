"""pyastore.spark.score on a real local Spark (``local[2]``): batch, streaming, and the checks
the driver makes before any task runs."""

from __future__ import annotations

import math
import random

import pytest

import golden_models
import pyastore
import pyastore.spark
from chain.log import Log
from pyastore import keys
from pyastore.errors import (
    FormatError,
    InputError,
    IntegrityError,
    LogError,
    SignatureError,
    UntrustedSignerError,
    UsageError,
)
from spark_testlib import spark  # noqa: F401 (a fixture)

N_ROWS = 3000


@pytest.fixture
def model(golden_path, golden_pub):
    return pyastore.load(golden_path, trusted_keys=[golden_pub])


def _rows(count: int, seed: int = 7) -> list[tuple]:
    """(id, velocity, extra, amount, age_days): columns not in the model's order, an extra
    column, integer ages, and some missing values."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        amount = None if i % 97 == 5 else rng.uniform(0, 5000)
        velocity = None if i % 89 == 3 else rng.uniform(0, 30)
        rows.append((f"t{i}", velocity, "x", amount, rng.randrange(0, 4000)))
    return rows


SCHEMA = "id string, velocity double, extra string, amount double, age_days int"


def _expected(model, rows):
    nan = math.nan
    matrix = [[nan if r[3] is None else r[3], nan if r[1] is None else r[1], float(r[4])]
              for r in rows]
    return [model.score_one(row) for row in matrix]


def _no_job_ran(spark, group: str) -> bool:
    return list(spark.sparkContext.statusTracker().getJobIdsForGroup(group)) == []


def test_batch_scores_match_the_model_by_column_name(spark, model, golden_path, golden_pub):
    rows = _rows(N_ROWS)
    df = spark.createDataFrame(rows, SCHEMA).repartition(3)
    scored = pyastore.spark.score(df, golden_path, trusted_keys=[golden_pub], keep=["id"],
                                  label=True)
    assert scored.columns == ["id", "P_fraud", "label"]
    assert [f.dataType.typeName() for f in scored.schema.fields] == ["string", "double", "long"]
    got = {r["id"]: (r["P_fraud"], r["label"]) for r in scored.collect()}
    expected = _expected(model, rows)
    assert len(got) == N_ROWS
    for row, outputs in zip(rows, expected):
        assert got[row[0]] == (outputs[0], model.decide(outputs))  # bit-identical
    assert {label for _, label in got.values()} == {0, 1}


def test_outputs_subset_and_a_loaded_model(spark, model):
    df = spark.createDataFrame(_rows(10), SCHEMA)
    scored = pyastore.spark.score(df, model, outputs=["P_fraud"])
    assert scored.columns == ["P_fraud"]
    assert len(scored.collect()) == 10
    with pytest.raises(UsageError, match="no such output"):
        pyastore.spark.score(df, model, outputs=["P_other"])
    with pytest.raises(UsageError, match="named twice"):
        pyastore.spark.score(df.withColumnRenamed("id", "P_fraud"), model, keep=["P_fraud"])


def _same_error(expected_type, load_call, spark_call):
    with pytest.raises(expected_type) as from_load:
        load_call()
    with pytest.raises(expected_type) as from_spark:
        spark_call()
    assert type(from_spark.value) is type(from_load.value)
    assert str(from_spark.value) == str(from_load.value)
    return from_spark.value


def test_driver_refuses_bad_containers_before_any_task(
    spark, golden_path, golden_pub, tmp_path, isolated_trust
):
    df = spark.createDataFrame(_rows(10), SCHEMA)
    group = "pyastore-refusals"
    spark.sparkContext.setJobGroup(group, "containers the driver must refuse")
    try:
        # untrusted signer
        _same_error(UntrustedSignerError, lambda: pyastore.load(golden_path),
                    lambda: pyastore.spark.score(df, golden_path))
        # unsigned
        unsigned = golden_path.with_name("tiny_forest_unsigned.astore")
        _same_error(SignatureError, lambda: pyastore.load(unsigned),
                    lambda: pyastore.spark.score(df, unsigned))
        # damaged: one bit flipped before the signature
        data = bytearray(golden_path.read_bytes())
        data[200] ^= 0x01
        damaged = tmp_path / "damaged.astore"
        damaged.write_bytes(bytes(data))
        error = _same_error(
            (IntegrityError, FormatError),
            lambda: pyastore.load(damaged, trusted_keys=[golden_pub]),
            lambda: pyastore.spark.score(df, damaged, trusted_keys=[golden_pub]),
        )
        assert error.exit_code in (3, 4)
        # a missing input column, named as pyastore score names it
        with pytest.raises(InputError, match=r"input column\(s\) missing: velocity \(the model "
                                             r"needs amount, velocity, age_days\)"):
            pyastore.spark.score(df.drop("velocity"), golden_path, trusted_keys=[golden_pub])
        with pytest.raises(InputError, match="input column 'amount' has type string"):
            pyastore.spark.score(df.withColumn("amount", df["extra"]), golden_path,
                                 trusted_keys=[golden_pub])
        with pytest.raises(InputError, match=r"keep column\(s\) not in the input: nope"):
            pyastore.spark.score(df, golden_path, trusted_keys=[golden_pub], keep=["nope"])
        # not anchored: no proof bundle beside the container
        log_pub = tmp_path / "log.pub"
        log_pub.write_text(keys.public_key_line(_log_key().public_key) + "\n")
        with pytest.raises(LogError, match="no proof bundle") as unanchored:
            pyastore.spark.score(df, golden_path, trusted_keys=[golden_pub],
                                 require_anchored=True, log_key=log_pub)
        assert unanchored.value.exit_code == 7
        with pytest.raises(UsageError, match="needs log_key"):
            pyastore.spark.score(df, golden_path, trusted_keys=[golden_pub],
                                 require_anchored=True)
    finally:
        spark.sparkContext.setJobGroup("", "")
    assert _no_job_ran(spark, group)


def _log_key() -> keys.SigningKey:
    return keys.SigningKey(b"\x11" * 32)


def test_anchored_container_scores_and_revocation_is_seen(
    spark, golden_path, golden_pub, tmp_path, model
):
    container = tmp_path / "fraud.astore"
    container.write_bytes(golden_path.read_bytes())
    log_key = _log_key()
    log_path = tmp_path / "models.log"
    log_pub = tmp_path / "log.pub"
    log_pub.write_text(keys.public_key_line(log_key.public_key) + "\n")
    with Log.init(log_path, log_key, origin="example.com/spark") as log:
        log.append_model(model.store_key, "fraud", "", log_key)
        (tmp_path / "fraud.astore.proof").write_bytes(log.prove(model.store_key).to_bytes())
    df = spark.createDataFrame(_rows(20), SCHEMA)
    scored = pyastore.spark.score(df, container, trusted_keys=[golden_pub],
                                  require_anchored=True, log_key=log_pub, log=str(log_path))
    assert len(scored.collect()) == 20
    with Log.open(log_path) as log:
        log.revoke(model.store_key, "leaked", log_key)
    with pytest.raises(LogError, match="revoked"):
        pyastore.spark.score(df, container, trusted_keys=[golden_pub], require_anchored=True,
                             log_key=log_pub, log=str(log_path))


def test_workers_keep_the_verified_model(spark, model, golden_path, golden_pub):
    def cached_keys(batches):
        """Runs in a Python worker: the store keys that worker holds verified models for
        (a nested function: pickled by value, as workers cannot import this test module)."""
        import os

        import pyarrow as pa

        import pyastore.spark as worker_side

        for _ in batches:
            pass
        yield pa.RecordBatch.from_pydict({"pid": [os.getpid()],
                                          "keys": [",".join(sorted(worker_side._WORKER_MODELS))]})

    df = spark.createDataFrame(_rows(200), SCHEMA).repartition(4)
    for _ in range(2):
        assert len(pyastore.spark.score(df, golden_path, trusted_keys=[golden_pub]).collect()) \
            == 200
    probes = df.mapInArrow(cached_keys, "pid long, keys string").collect()
    assert any(probe["keys"] == model.store_key for probe in probes), probes


def test_a_row_the_model_refuses_fails_the_job_naming_it(spark, tmp_path, golden_pub):
    from pyastore import format as fmt
    from pyastore.ir import Algorithm, Dense, Mlp, ModelSpec, Output, ScoreRules, Variable

    spec = ModelSpec(
        name="strict", algorithm=Algorithm("mlp", "test", "1"),
        inputs=(Variable("a", missing="error"), Variable("b", missing="error")),
        outputs=(Output("P_fraud", "probability"),),
        rules=ScoreRules("binary", (0, 1), 0.5),
        mlp=Mlp((Dense(((1.0, -1.0),), (0.0,), "sigmoid"),)))
    path = tmp_path / "strict.astore"
    fmt.write_file(path, fmt.write(spec, golden_models.golden_key(), created=golden_models.CREATED))
    df = spark.createDataFrame([(1.0, 2.0), (3.0, None)], "a double, b double").coalesce(1)
    scored = pyastore.spark.score(df, path, trusted_keys=[golden_pub])
    with pytest.raises(Exception, match=r"row 2, column 'b'.*missing") as failed:
        scored.collect()
    assert "InputError" in str(failed.value)


def test_structured_streaming_from_files(spark, model, golden_path, golden_pub, tmp_path):
    source = tmp_path / "incoming"
    source.mkdir()
    rows = _rows(500, seed=11)
    for part in range(2):
        chunk = rows[part * 250:(part + 1) * 250]
        spark.createDataFrame(chunk, SCHEMA).coalesce(1).write.parquet(str(source / f"p{part}"))
    stream = (spark.readStream.schema(SCHEMA).option("recursiveFileLookup", "true")
              .parquet(str(source)))
    assert stream.isStreaming
    scored = pyastore.spark.score(stream, golden_path, trusted_keys=[golden_pub], keep=["id"],
                                  label=True)
    assert scored.isStreaming
    query = (scored.writeStream.format("memory").queryName("scored_stream")
             .option("checkpointLocation", str(tmp_path / "checkpoint"))
             .trigger(availableNow=True).start())
    query.awaitTermination(120)
    assert query.exception() is None
    got = {r["id"]: (r["P_fraud"], r["label"])
           for r in spark.sql("SELECT * FROM scored_stream").collect()}
    expected = _expected(model, rows)
    assert len(got) == len(rows)
    for row, outputs in zip(rows, expected):
        assert got[row[0]] == (outputs[0], model.decide(outputs))


def test_importing_pyastore_spark_does_not_import_pyspark():
    import subprocess
    import sys

    code = ("import sys, pyastore, pyastore.spark, chain.log\n"
            "print(sorted(n for n in ('pyspark', 'py4j', 'psycopg', 'pyarrow', 'numpy')"
            " if n in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_spark_submit_entry_point(spark, model, golden_path, golden_pub, tmp_path, capsys,
                                  isolated_trust):
    """``spark-submit pyastore/spark.py MODEL INPUT OUTPUT ...`` runs main(); here in the
    test's own session (getOrCreate), with the exit codes of pyastore score."""
    rows = _rows(300, seed=3)
    source = tmp_path / "tx.parquet"
    spark.createDataFrame(rows, SCHEMA).write.parquet(str(source))
    target = tmp_path / "scores.parquet"
    argv = [str(golden_path), str(source), str(target), "--keep", "id", "--label"]
    assert pyastore.spark.main(argv) == 4  # untrusted: refused before any job
    assert "not a trusted key" in capsys.readouterr().err
    assert not target.exists()
    assert pyastore.spark.main(argv + ["--trust", str(golden_pub)]) == 0
    got = {r["id"]: (r["P_fraud"], r["label"]) for r in spark.read.parquet(str(target)).collect()}
    expected = _expected(model, rows)
    assert got == {row[0]: (outputs[0], model.decide(outputs))
                   for row, outputs in zip(rows, expected)}


def test_categorical_inputs_take_their_texts(spark, golden_pub, tmp_path):
    """A model with categorical inputs and set splits (the golden tiny_categorical): string
    columns are mapped by the container's vocabularies, unseen and missing texts included,
    bit-identical to Model.score_one on the same texts; a numeric column for a categorical
    input is refused on the driver; a text the rules refuse fails the task naming it."""
    import dataclasses

    from golden_models import CHANNELS, MERCHANTS, tiny_categorical_spec
    from pyastore import format as fmt

    path = golden_models.HERE / "tiny_categorical.astore"
    model = pyastore.load(path, trusted_keys=[golden_pub])
    rng = random.Random(3)
    rows = [(f"t{i}", rng.choice([*MERCHANTS, "m99", None]), rng.choice([1.0, 99.5, 150.0, None]),
             rng.choice([*CHANNELS, "tv", None])) for i in range(2000)]
    df = spark.createDataFrame(rows, "id string, merchant string, amount double, channel string")
    scored = pyastore.spark.score(df.repartition(2), path, trusted_keys=[golden_pub],
                                  keep=["id"])
    got = {r["id"]: r["risk"] for r in scored.collect()}
    assert len(got) == len(rows)
    for row in rows:
        assert got[row[0]] == model.score_one(list(row[1:]))[0], row
    assert len(set(got.values())) > 4

    numeric = spark.createDataFrame([(1.0, 2.0, 3.0)], "merchant double, amount double, "
                                                       "channel double")
    with pytest.raises(InputError, match="'merchant' is categorical and has type double"):
        pyastore.spark.score(numeric, path, trusted_keys=[golden_pub])

    spec = tiny_categorical_spec()
    strict_inputs = tuple(dataclasses.replace(
        v, categorical=dataclasses.replace(v.categorical, unseen="error"))
        if v.categorical is not None else v for v in spec.inputs)
    strict = tmp_path / "strict.astore"
    fmt.write_file(strict, fmt.write(dataclasses.replace(spec, inputs=strict_inputs),
                                     golden_models.golden_key(), created=golden_models.CREATED))
    bad = spark.createDataFrame([("m01", 1.0, "app"), ("m77", 1.0, "app")],
                                "merchant string, amount double, channel string").coalesce(1)
    with pytest.raises(Exception, match=r"input column 'merchant': category 'm77' is refused"):
        pyastore.spark.score(bad, strict, trusted_keys=[golden_pub]).collect()

    # score_parquet: the refused text is in the second batch of its row group, after the
    # task began its part file, which the failed task removes (nothing half-written stays)
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = pyastore.spark.PARQUET_BATCH_ROWS + 10
    merchants = ["m01"] * n
    merchants[-1] = "m77"
    pq.write_table(pa.table({"merchant": merchants, "amount": [1.0] * n,
                             "channel": ["app"] * n}), tmp_path / "late.parquet")
    with pytest.raises(Exception, match=r"input column 'merchant': category 'm77' is refused"):
        pyastore.spark.score_parquet(spark, strict, tmp_path / "late.parquet",
                                     tmp_path / "late-out", trusted_keys=[golden_pub])
    assert sorted(p.name for p in (tmp_path / "late-out").iterdir()) == []


def test_spark_submit_reads_categorical_csv_cells_as_written(spark, golden_pub, tmp_path):
    """The entry point reads a CSV's categorical columns as text, so categories that look
    like numbers ("01", "1", "1.50") keep the spelling the vocabulary has; Spark's schema
    inference would have made them 1.0, 1.0 and 1.5."""
    import csv
    import dataclasses

    from golden_models import tiny_categorical_spec
    from pyastore import format as fmt
    from pyastore.encoding import Categorical

    spec = tiny_categorical_spec()
    channels = Categorical(("01", "1", "1.50"), missing="as_missing", unseen="missing")
    inputs = tuple(dataclasses.replace(v, categorical=channels) if v.name == "channel" else v
                   for v in spec.inputs)
    path = tmp_path / "numeric_texts.astore"
    fmt.write_file(path, fmt.write(dataclasses.replace(spec, inputs=inputs),
                                   golden_models.golden_key(), created=golden_models.CREATED))
    model = pyastore.load(path, trusted_keys=[golden_pub])
    rows = [(f"t{i}", f"m{i % 40:02d}", str(50 + i), ("01", "1", "1.50", "7")[i % 4])
            for i in range(80)]
    source = tmp_path / "tx.csv"
    with open(source, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "merchant", "amount", "channel"])
        writer.writerows(rows)
    target = tmp_path / "scores.parquet"
    assert pyastore.spark.main([str(path), str(source), str(target), "--keep", "id",
                                "--trust", str(golden_pub)]) == 0
    got = {r["id"]: r["risk"] for r in spark.read.parquet(str(target)).collect()}
    assert got == {row[0]: model.score_one([row[1], float(row[2]), row[3]])[0] for row in rows}
    assert len({model.score_one(["m00", 1.0, c])[0] for c in ("01", "1")}) == 2  # codes 0, 1


def test_score_parquet_writes_what_score_gives(spark, model, golden_path, golden_pub, tmp_path):
    """score_parquet: one task per row group, read, scored and written by pyarrow in the
    workers; the rows, kept columns, outputs and labels equal score()'s on the same files,
    row groups of every size (and an empty file) included; the driver's checks come first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _rows(2500, seed=11)
    table = pa.Table.from_pylist(
        [dict(zip(["id", "velocity", "extra", "amount", "age_days"], row)) for row in rows])
    source = tmp_path / "in"
    source.mkdir()
    pq.write_table(table.slice(0, 1700), source / "a.parquet", row_group_size=500)
    pq.write_table(table.slice(1700), source / "b.parquet", row_group_size=300)
    pq.write_table(table.slice(0, 0), source / "c.parquet")
    (source / "_SUCCESS").write_text("")
    target = tmp_path / "out"
    count = pyastore.spark.score_parquet(spark, golden_path, source, target,
                                         trusted_keys=[golden_pub], keep=["id"], label=True)
    assert count == len(rows)
    parts = sorted(p.name for p in target.iterdir())
    assert parts == ["_SUCCESS"] + [f"part-{k:05d}.parquet" for k in range(7)]
    written = pq.read_table(target)
    assert written.column_names == ["id", "P_fraud", "label"]
    got = {r["id"]: (r["P_fraud"], r["label"]) for r in written.to_pylist()}
    expected = _expected(model, rows)
    assert got == {row[0]: (outputs[0], model.decide(outputs))
                   for row, outputs in zip(rows, expected)}
    frame = spark.read.parquet(str(source))
    by_score = pyastore.spark.score(frame, golden_path, trusted_keys=[golden_pub],
                                    keep=["id"], label=True).collect()
    assert {r["id"]: (r["P_fraud"], r["label"]) for r in by_score} == got

    spark.sparkContext.setJobGroup("refused-parquet", "must not run")
    with pytest.raises(UsageError, match="exists"):
        pyastore.spark.score_parquet(spark, golden_path, source, target,
                                     trusted_keys=[golden_pub])
    with pytest.raises(UntrustedSignerError):
        pyastore.spark.score_parquet(spark, golden_path, source, tmp_path / "x")
    pq.write_table(table.drop(["amount"]), tmp_path / "short.parquet")
    with pytest.raises(InputError, match="input column.*missing: amount"):
        pyastore.spark.score_parquet(spark, golden_path, tmp_path / "short.parquet",
                                     tmp_path / "y", trusted_keys=[golden_pub])
    pq.write_table(table.set_column(1, "velocity", pa.array(["fast"] * len(rows))),
                   tmp_path / "texts.parquet")
    with pytest.raises(InputError, match="input column 'velocity' has type string, not a number"):
        pyastore.spark.score_parquet(spark, golden_path, tmp_path / "texts.parquet",
                                     tmp_path / "y", trusted_keys=[golden_pub])
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="junk.parquet: not a readable Parquet file"):
        pyastore.spark.score_parquet(spark, golden_path, tmp_path / "junk.parquet",
                                     tmp_path / "y", trusted_keys=[golden_pub])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="a directory without .parquet files"):
        pyastore.spark.score_parquet(spark, golden_path, tmp_path / "empty", tmp_path / "y",
                                     trusted_keys=[golden_pub])
    with pytest.raises(InputError, match="no such Parquet file or directory"):
        pyastore.spark.score_parquet(spark, golden_path, tmp_path / "nowhere", tmp_path / "y",
                                     trusted_keys=[golden_pub])
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UsageError, match="is a file, not a directory"):
        pyastore.spark.score_parquet(spark, golden_path, source, tmp_path / "a-file",
                                     trusted_keys=[golden_pub], overwrite=True)
    assert _no_job_ran(spark, "refused-parquet")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert pyastore.spark.score_parquet(spark, golden_path, source, target, overwrite=True,
                                        trusted_keys=[golden_pub]) == len(rows)
