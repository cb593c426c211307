"""Crash safety (SIGKILL mid-append) and concurrent appenders in separate processes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest

from chain.log import Log
from chain_testlib import (
    key_files,  # noqa: F401 (a fixture)
    log_key,  # noqa: F401 (a fixture)
    new_log,  # noqa: F401 (a fixture)
    seeded_key,
    start_worker,
    store_key,
    submitter,  # noqa: F401 (a fixture)
    wait_ready,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs fork/exec and SIGKILL")

KILLS = 50


def _start_together(path, specs) -> list[subprocess.Popen]:
    """Start workers, wait until each has the log open, then release them at once."""
    workers = [start_worker(path, label, first, count, wait=True) for label, first, count in specs]
    for worker in workers:
        wait_ready(worker)
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    return workers


def _finish(workers) -> list[str]:
    lines = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        lines.append(out.strip().split("\n")[-1])
    return lines


def test_sigkill_never_leaves_a_partial_record(new_log):
    path, log = new_log("crash.log")
    log.close()
    rng = random.Random(1234)
    sizes = []
    next_key = 0
    for kill in range(KILLS):
        worker = start_worker(path, "crasher", next_key, 0)
        wait_ready(worker)
        time.sleep(rng.uniform(0.0, 0.03))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert worker.returncode == -signal.SIGKILL
        with Log.open(path) as reopened:
            size = reopened.size
            assert reopened.storage.row_count() == size  # no gap, no partial row
            if kill % 5 == 4 or kill == KILLS - 1:
                report = reopened.verify()
                assert report.size == size and report.models == size
            elif size:
                last = reopened.record(size - 1)  # decodes: the last commit is whole
                assert last.record_hash() == reopened.storage.get(size - 1).leaf_hash
        sizes.append(size)
        next_key += 100000  # fresh keys per run: a killed append may or may not have landed
    assert sizes == sorted(sizes)
    assert sizes[-1] > 0


def test_four_processes_make_one_linear_history(new_log):
    path, log = new_log("concurrent.log")
    log.close()
    started = time.monotonic()
    workers = _start_together(path, [(f"writer{n}", n * 1000, 250) for n in range(4)])
    assert _finish(workers) == ["done 250 0"] * 4
    elapsed = time.monotonic() - started
    with Log.open(path) as reopened:
        report = reopened.verify()
        assert report.size == 1000 and report.models == 1000
        records = list(reopened.records())
    assert [r.index for r in records] == list(range(1000))
    for n in range(4):
        submitter_hex = seeded_key(f"writer{n}").public_key.hex()
        mine = [r.subject for r in records if r.submitter == submitter_hex]
        assert mine == [store_key(n * 1000 + i) for i in range(250)]  # each writer's order kept
    switches = sum(a.submitter != b.submitter for a, b in zip(records, records[1:]))
    assert switches >= 10, "the writers did not actually overlap"
    print(f"4 x 250 durable appends from 4 processes: {elapsed:.1f} s, {switches} switches")


def test_racing_duplicate_publishes_land_once(new_log):
    path, log = new_log("race.log")
    log.close()
    workers = _start_together(path, [(f"racer{n}", 0, 100) for n in range(2)])
    totals = []
    for line in _finish(workers):
        _, published, duplicates = line.split()
        totals.append((int(published), int(duplicates)))
    assert sum(p for p, _ in totals) == 100
    assert all(p + d == 100 for p, d in totals)
    with Log.open(path) as reopened:
        assert reopened.verify().size == 100


def test_verify_while_another_process_appends(new_log):
    """verify() reads one snapshot: concurrent appends must never look like corruption."""
    path, log = new_log("busy.log", records=50)
    log.close()
    workers = _start_together(path, [("appender", 10_000, 400)])
    verified = []
    with Log.open(path) as reader:
        while workers[0].poll() is None:
            verified.append(reader.verify().size)
    assert _finish(workers) == ["done 400 0"]
    assert verified == sorted(verified) and len(verified) >= 2
