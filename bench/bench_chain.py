"""Benchmarks of the verifiable log (``chain``).

Two ways to run:

* ``pytest bench/bench_chain.py`` -- pytest-benchmark functions on a small log (1,000
  records), for regressions;
* ``python bench/bench_chain.py [--sizes 1000,100000,1000000] [--appends 500]`` -- the full
  numbers as a Markdown table: durable append throughput (one ``Log.append_model`` per
  transaction, ``synchronous=FULL``), then per log size the proof generation time
  (``Log.prove``: look-ups + bundle), the offline verification time (``verify_bundle``:
  checkpoint signature, record signature, inclusion proof), the bundle size and the number
  of proof hashes, and appends at that size.

Logs of 100k and 1M records are built with ``SQLiteStorage.import_records`` (one transaction,
real signed and chained records, no per-record fsync): the proof numbers do not depend on
how the rows got there. Building 1M records takes a few minutes (signing dominates).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain import merkle  # noqa: E402
from chain.log import Log  # noqa: E402
from chain.proof import verify_bundle  # noqa: E402
from chain.records import GENESIS_PREV_HASH, KIND_MODEL, Record  # noqa: E402
from pyastore import keys  # noqa: E402

LOG_KEY = keys.SigningKey(hashlib.sha256(b"bench log key").digest())
SUBMITTER = keys.SigningKey(hashlib.sha256(b"bench submitter").digest())
TIME = "2025-01-01T00:00:00Z"


def store_key(number: int) -> str:
    return hashlib.sha256(b"bench model %d" % number).hexdigest()


def _records(count: int):
    prev_hash = GENESIS_PREV_HASH
    submitter_hex = SUBMITTER.public_key.hex()
    for index in range(count):
        record = Record(
            index=index, kind=KIND_MODEL, subject=store_key(index), name=f"model {index}",
            description="", time=TIME, submitter=submitter_hex, prev_hash=prev_hash,
            reason="", signature="",
        ).signed(SUBMITTER)
        prev_hash = merkle.leaf_hash(record.encode()).hex()
        yield record


def build_log(path: Path, count: int) -> Log:
    """A log of ``count`` signed model records, bulk-imported in one transaction."""
    log = Log.init(path, LOG_KEY, origin="bench.example/log")
    log.storage.import_records(_records(count))
    return log


def _median_seconds(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure_appends(log: Log, count: int, first: int) -> float:
    """Durable appends per second (one transaction and fsync each)."""
    started = time.perf_counter()
    for number in range(first, first + count):
        log.append_model(store_key(number), f"model {number}", "", SUBMITTER)
    return count / (time.perf_counter() - started)


def raw_commit_rate(path: Path, count: int) -> float:
    """Baseline: empty-ish SQLite commits per second with the log's settings (WAL,
    synchronous=FULL). Durable appends cannot beat this; it is the disk's fsync rate."""
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, b BLOB)")
    started = time.perf_counter()
    for number in range(count):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, ?)", (number, b"x" * 300))
        db.execute("COMMIT")
    rate = count / (time.perf_counter() - started)
    db.close()
    return rate


def measure_proofs(log: Log, size: int, samples: int = 50) -> dict[str, float]:
    log.checkpoint()  # sign once: prove() reuses the checkpoint of the current size
    rng_keys = [store_key((i * 7919) % size) for i in range(samples)]
    prove_times, verify_times, bundle_sizes, path_lengths = [], [], [], []
    for key in rng_keys:
        started = time.perf_counter()
        bundle = log.prove(key)
        data = bundle.to_bytes()
        prove_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        verify_bundle(data, key, LOG_KEY.public_key)
        verify_times.append(time.perf_counter() - started)
        bundle_sizes.append(len(data))
        path_lengths.append(len(bundle.record.inclusion_proof))
    return {
        "prove_ms": statistics.median(prove_times) * 1e3,
        "verify_ms": statistics.median(verify_times) * 1e3,
        "bundle_bytes": max(bundle_sizes),
        "hashes": max(path_lengths),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000,1000000",
                        help="comma-separated log sizes (default 1000,100000,1000000)")
    parser.add_argument("--appends", type=int, default=500,
                        help="durable appends timed on a fresh log (default 500)")
    parser.add_argument("--workdir", help="where to build the logs (default: a temp dir)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    with tempfile.TemporaryDirectory(dir=args.workdir) as workdir:
        work = Path(workdir)
        baseline = raw_commit_rate(work / "baseline.sqlite", args.appends)
        fresh = Log.init(work / "fresh.log", LOG_KEY, origin="bench.example/fresh")
        measure_appends(fresh, 20, 10**9)  # warm-up
        fresh_rate = measure_appends(fresh, args.appends, 0)
        fresh.storage._db.execute("PRAGMA synchronous = OFF")  # CPU cost only, for contrast
        cpu_rate = measure_appends(fresh, args.appends, 10**8)
        fresh.close()
        print(f"durable append throughput, fresh log: {fresh_rate:,.0f} records/s "
              f"({args.appends} appends, one fsync'd transaction each; bare SQLite commits "
              f"on this disk: {baseline:,.0f}/s; the same appends without fsync: "
              f"{cpu_rate:,.0f}/s)\n")
        print("| records | build (bulk import) | prove (median) | verify offline (median) "
              "| bundle size | proof hashes | durable appends at this size |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for size in sizes:
            started = time.perf_counter()
            log = build_log(work / f"log-{size}.log", size)
            build_s = time.perf_counter() - started
            numbers = measure_proofs(log, size)
            rate = measure_appends(log, 200, size)
            log.close()
            print(
                f"| {size:,} | {build_s:,.1f} s | {numbers['prove_ms']:.2f} ms "
                f"| {numbers['verify_ms']:.2f} ms | {numbers['bundle_bytes']:,} B "
                f"| {numbers['hashes']} | {rate:,.0f} records/s |",
                flush=True,
            )
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(str(work / f"log-{size}.log") + suffix)
                except FileNotFoundError:
                    pass
    return 0


# -- pytest-benchmark -------------------------------------------------------------------------


def _small_log(tmp_path, size: int = 1000) -> Log:
    return build_log(tmp_path / "bench.log", size)


def test_bench_durable_append(benchmark, tmp_path):
    log = Log.init(tmp_path / "append.log", LOG_KEY, origin="bench.example/append")
    counter = iter(range(10**9))
    benchmark(lambda: log.append_model(store_key(next(counter)), "m", "", SUBMITTER))
    log.close()


def test_bench_prove_1k(benchmark, tmp_path):
    log = _small_log(tmp_path)
    log.checkpoint()
    benchmark(lambda: log.prove(store_key(517)).to_bytes())
    log.close()


def test_bench_verify_bundle_1k(benchmark, tmp_path):
    log = _small_log(tmp_path)
    data = log.prove(store_key(517)).to_bytes()
    log.close()
    benchmark(verify_bundle, data, store_key(517), LOG_KEY.public_key)


def test_bench_log_verify_1k(benchmark, tmp_path):
    log = _small_log(tmp_path)
    benchmark.pedantic(log.verify, rounds=3, iterations=1)
    log.close()


if __name__ == "__main__":
    sys.exit(main())
