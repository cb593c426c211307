"""The log on PostgreSQL against the log on SQLite, on the same machine.

    python bench/bench_pg.py [--appends 400] [--writers 8] [--size 100000]

Starts its own PostgreSQL server (tests/unit/postgres/pg_testlib.py: a temporary cluster, Unix
socket, ``fsync`` and ``synchronous_commit`` on) and, for each backend, measures:

* durable appends/s from one writer (``Log.append_model``, one transaction and one durable
  commit each);
* durable appends/s from ``--writers`` processes appending at once to the same log
  (tests/unit/chain/chain_worker.py, released together; total records over the wall time);
* at ``--size`` records (bulk-imported with ``import_records``: real signed, chained records):
  ``Log.prove`` (look-ups, fresh-enough checkpoint, bundle; median of 50 keys), the device's
  ``verify_bundle`` (median of 50), and a full ``Log.verify`` (every record, signature, node).

Prints a Markdown table with the PostgreSQL / SQLite ratio.
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
    sys.path.insert(0, str(ROOT / "tests" / "unit"))

from bench.bench_chain import LOG_KEY, SUBMITTER, _records, store_key  # noqa: E402
from chain.log import Log  # noqa: E402
from chain.proof import verify_bundle  # noqa: E402
from postgres.pg_testlib import fresh_log_url, start_server, stop_server  # noqa: E402

WORKER = ROOT / "tests" / "unit" / "chain" / "chain_worker.py"


def one_writer(location, count: int) -> float:
    with Log.init(location, LOG_KEY, origin="bench.example/one") as log:
        started = time.perf_counter()
        for number in range(count):
            log.append_model(store_key(number), f"model {number}", "", SUBMITTER)
        return count / (time.perf_counter() - started)


def many_writers(location, writers: int, each: int) -> float:
    Log.init(location, LOG_KEY, origin="bench.example/many").close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [subprocess.Popen([sys.executable, str(WORKER), str(location), f"w{n}",
                                   str(n * 100000), str(each), "wait"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=env, cwd=WORKER.parent) for n in range(writers)]
    for process in processes:
        assert process.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0 and out.strip().endswith(f"done {each} 0"), out
    elapsed = time.perf_counter() - started
    with Log.open(location) as log:
        assert log.size == writers * each
    return writers * each / elapsed


def at_size(location, size: int, samples: int = 50) -> dict[str, float]:
    with Log.init(location, LOG_KEY, origin="bench.example/big") as log:
        started = time.perf_counter()
        log.storage.import_records(_records(size))
        built = time.perf_counter() - started
        log.checkpoint()
        keys = [store_key((i * 7919) % size) for i in range(samples)]
        prove, verify = [], []
        for key in keys:
            started = time.perf_counter()
            data = log.prove(key).to_bytes()
            prove.append(time.perf_counter() - started)
            started = time.perf_counter()
            verify_bundle(data, key, LOG_KEY.public_key)
            verify.append(time.perf_counter() - started)
        started = time.perf_counter()
        assert log.verify().size == size
        full = time.perf_counter() - started
    return {"build_s": built, "prove_ms": statistics.median(prove) * 1e3,
            "verify_bundle_ms": statistics.median(verify) * 1e3, "log_verify_s": full}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=400)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--size", type=int, default=100_000)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    server = start_server()
    rows: dict[str, dict[str, float]] = {}
    try:
        for name, location in (("SQLite", lambda tag: work / f"{tag}.log"),
                               ("PostgreSQL", lambda tag: fresh_log_url(server))):
            result: dict[str, float] = {}
            result["appends_1"] = one_writer(location("one"), args.appends)
            result[f"appends_{args.writers}"] = many_writers(
                location("many"), args.writers, max(1, args.appends // args.writers))
            result.update(at_size(location("big"), args.size))
            rows[name] = result
            print(name, result, flush=True)
    finally:
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)
    labels = [("appends_1", "durable appends/s, 1 writer"),
              (f"appends_{args.writers}", f"durable appends/s, {args.writers} writer processes"),
              ("build_s", f"bulk import of {args.size:,} records, s"),
              ("prove_ms", f"Log.prove at {args.size:,} records, ms (median of 50)"),
              ("verify_bundle_ms", "verify_bundle on the device, ms (median of 50)"),
              ("log_verify_s", f"Log.verify of {args.size:,} records, s")]
    print("\n| measure | SQLite | PostgreSQL | PostgreSQL / SQLite |")
    print("| --- | ---: | ---: | ---: |")
    for key, label in labels:
        a, b = rows["SQLite"][key], rows["PostgreSQL"][key]
        print(f"| {label} | {a:,.2f} | {b:,.2f} | {b / a:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
