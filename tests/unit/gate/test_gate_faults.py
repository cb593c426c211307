"""Faults injected into real gate processes: SIGTERM, SIGKILL and restart, a ledger that
cannot be written, a closed stdout, two gates on one ledger. After each, the ledger verifies
and every answer ever written is the ledger's record."""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import signal
import subprocess
import threading
import time

import pytest

from gate_testlib import (
    answers,
    child_env,
    gate_argv,
    key_files,  # noqa: F401 (a fixture)
    ledger,  # noqa: F401 (a fixture)
    ledger_transactions,
    transaction_line,
    verify_ledger,
    write_transactions,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs signals and rlimits")


def _start(ledger, *extra, source=None, stdin=subprocess.PIPE, preexec_fn=None):
    return subprocess.Popen(gate_argv(ledger, *extra, source=source), stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(),
                            preexec_fn=preexec_fn)


def _check_against_ledger(replies, ledger) -> dict[int, dict]:
    """Every fresh answer is the record at its index; returns the records by index."""
    records = {r["index"]: r for r in ledger_transactions(ledger)}
    for reply in replies:
        record = records[reply["index"]]
        assert record["id"] == reply["id"]
        if not reply.get("duplicate"):
            assert record["decision"] == reply["decision"]
            assert record["score"] == reply["score"]
    return records


def _in_background(function, *args) -> threading.Thread:
    thread = threading.Thread(target=function, args=args, daemon=True)
    thread.start()
    return thread


def _write_quietly(handle, data: bytes) -> None:
    try:
        handle.write(data)
        handle.flush()
    except (BrokenPipeError, ValueError):
        pass  # the gate stopped reading: the rest of the burst was never read


def test_sigterm_answers_everything_read_and_exits_0(ledger):
    process = _start(ledger, "--max-batch", "64", "--max-delay-ms", "5")
    burst = "".join(transaction_line(n) for n in range(3000)).encode()
    partial = b'{"id": "partial", "amount"'  # an incomplete last line
    collected: dict[str, bytes] = {}
    writer = _in_background(_write_quietly, process.stdin, burst + partial)
    reader = _in_background(lambda: collected.update(out=process.stdout.read()))
    errors = _in_background(lambda: collected.update(err=process.stderr.read()))
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)  # stdin is still open
    assert process.wait(timeout=60) == 0, collected
    for thread in (reader, errors):
        thread.join(timeout=30)
    writer.join(timeout=30)
    with contextlib.suppress(BrokenPipeError):
        process.stdin.close()
    out, err = collected["out"], collected["err"].decode()
    assert process.returncode == 0, err
    assert "stopped by SIGTERM" in err
    replies = answers(out.decode())
    assert replies, err
    assert [r["id"] for r in replies] == [f"tx-{n}" for n in range(len(replies))]
    records = _check_against_ledger(replies, ledger)
    assert len(records) == len(replies)  # nothing decided without its answer, and back
    summary = next(line for line in err.splitlines() if line.startswith("pyastore gate: read"))
    read = int(summary.split()[3].rstrip(":"))
    admitted = int(summary.split("admitted ")[1].split(",")[0])
    rejected = int(summary.split("rejected ")[1].split(" ")[0])
    assert read == len(replies) == admitted + rejected
    if len(replies) == 3000:  # the whole burst was read before the signal
        assert "incomplete last line" in err
    verify_ledger(ledger)


def test_sigterm_on_a_quiet_stream(ledger):
    process = _start(ledger)
    process.stdin.write(transaction_line(1).encode())
    process.stdin.flush()
    assert json.loads(process.stdout.readline())["id"] == "tx-1"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0  # stdin still open: the signal alone stops it
    assert "stopped by SIGTERM" in process.stderr.read().decode()
    process.stdin.close()
    process.stdout.close()
    process.stderr.close()


def test_sigkill_at_random_moments_then_restart_loses_nothing_decides_nothing_twice(
        ledger, tmp_path):
    # Enough transactions that the kills fall in the middle of the work however fast the gate
    # scores: killing stops once a quarter is decided, and one run between kills (0.3-1 s)
    # decides far less than the other three quarters.
    total = 60000
    source = write_transactions(tmp_path / "tx.ndjson", total)
    rng = random.Random(20260101)
    every_reply: list[dict] = []
    for run in range(12):
        answered = tmp_path / f"answers-{run}.ndjson"
        with open(answered, "wb") as out:
            process = subprocess.Popen(
                gate_argv(ledger, "--max-batch", "64", "--max-delay-ms", "2", source=source),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL,
                env=child_env())
            time.sleep(rng.uniform(0.3, 1.0))
            process.kill()
            process.wait(timeout=30)
        # A line cut by the kill is not an answer the client received.
        text = answered.read_text()
        every_reply += answers(text if text.endswith("\n") else text.rsplit("\n", 1)[0])
        if sum(not r.get("duplicate") for r in every_reply) >= total // 4:
            break
    killed_fresh = [r for r in every_reply if not r.get("duplicate")]
    assert 0 < len(killed_fresh) < total  # the kills fell in the middle of the work
    final = subprocess.run(gate_argv(ledger, source=source), capture_output=True, text=True,
                           env=child_env(), timeout=120, stdin=subprocess.DEVNULL)
    assert final.returncode == 0, final.stderr
    every_reply += answers(final.stdout)
    records = _check_against_ledger(every_reply, ledger)
    ids = [r["id"] for r in records.values()]
    assert sorted(ids) == sorted(f"tx-{n}" for n in range(total))  # each decided, once
    fresh = [r for r in every_reply if not r.get("duplicate")]
    assert len({r["id"] for r in fresh}) == len(fresh)  # no id answered as new twice
    last = answers(final.stdout)
    assert len(last) == total and all(r["id"] == f"tx-{n}" for n, r in enumerate(last))
    assert verify_ledger(ledger).transactions == total


def test_an_unwritable_ledger_stops_the_gate_and_nothing_undurable_is_answered(ledger):
    limit = os.path.getsize(ledger) + 150_000

    def small_files():  # the ledger's writes fail with EFBIG once it grows past the limit
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = _start(ledger, "--max-batch", "16", "--max-delay-ms", "1",
                     preexec_fn=small_files)
    out, err = process.communicate(
        "".join(transaction_line(n) for n in range(20000)).encode(), timeout=120)
    err = err.decode()
    assert process.returncode == 7, err
    assert "database error" in err and "were not decided or answered" in err, err
    assert "Traceback" not in err
    replies = answers(out.decode())
    assert replies, "some batches fit under the limit"
    records = _check_against_ledger(replies, ledger)
    assert len(records) == len(replies)
    assert verify_ledger(ledger).transactions == len(replies)


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(child) for child in handle.read().split()]


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="finds the helper in /proc")
def test_a_killed_signing_helper_stops_the_gate_and_nothing_undurable_is_answered(ledger):
    process = _start(ledger, "--max-batch", "16", "--max-delay-ms", "1", "--signer", "process")
    process.stdin.write(b"".join(transaction_line(n).encode() for n in range(50)))
    process.stdin.flush()
    got = [json.loads(process.stdout.readline()) for _ in range(50)]
    (helper,) = _children(process.pid)
    os.kill(helper, signal.SIGKILL)
    _write_quietly(process.stdin, "".join(transaction_line(n) for n in range(50, 2000)).encode())
    with contextlib.suppress(BrokenPipeError):
        process.stdin.close()
    out, err = process.stdout.read().decode(), process.stderr.read().decode()
    assert process.wait(timeout=60) == 7, err
    assert "the signing process stopped: it exited with code -9" in err, err
    assert "were not decided or answered" in err and "Traceback" not in err
    replies = got + answers(out)
    records = _check_against_ledger(replies, ledger)
    assert len(records) == len(replies) >= 50  # every answer durable, nothing unanswered
    assert verify_ledger(ledger).transactions == len(replies)


def test_a_closed_stdout_stops_the_gate_cleanly(ledger):
    read_end, write_end = os.pipe()
    process = subprocess.Popen(gate_argv(ledger, "--max-batch", "8"), stdin=subprocess.PIPE,
                               stdout=write_end, stderr=subprocess.PIPE, env=child_env())
    os.close(write_end)
    reader = os.fdopen(read_end, "rb")
    process.stdin.write(b"".join(transaction_line(n).encode() for n in range(4)))
    process.stdin.flush()
    got = [json.loads(reader.readline()) for _ in range(4)]
    reader.close()  # the client goes away
    try:
        for n in range(4, 400):
            process.stdin.write(transaction_line(n).encode())
        process.stdin.close()
    except BrokenPipeError:
        pass  # the gate stopped reading
    err = process.stderr.read().decode()
    assert process.wait(timeout=30) == 0, err
    assert "stdout was closed" in err and "Traceback" not in err
    records = _check_against_ledger(got, ledger)
    assert len(records) < 400  # it stopped instead of deciding unanswerable transactions
    verify_ledger(ledger)


def test_two_gates_on_one_ledger_serialise(ledger, tmp_path):
    first = write_transactions(tmp_path / "a.ndjson", 1500, first=0)
    second = write_transactions(tmp_path / "b.ndjson", 1500, first=1000)  # 500 overlap
    gates = [_start(ledger, "--max-batch", "32", source=path, stdin=subprocess.DEVNULL)
             for path in (first, second)]
    outputs = [gate.communicate(timeout=120) for gate in gates]
    assert [gate.returncode for gate in gates] == [0, 0], [e.decode() for _, e in outputs]
    replies = [r for out, _ in outputs for r in answers(out.decode())]
    assert len(replies) == 3000
    records = _check_against_ledger(replies, ledger)
    assert sorted(r["id"] for r in records.values()) == sorted(f"tx-{n}" for n in range(2500))
    assert sum(bool(r.get("duplicate")) for r in replies) == 500
    assert verify_ledger(ledger).transactions == 2500


def test_sigterm_while_the_gate_starts_exits_0(ledger, tmp_path, monkeypatch, capsys):
    """A SIGTERM before the reading loop (the model and the ledger still opening) reaches the
    command line's handler as Terminated: nothing was read, so nothing is unanswered; the
    gate exits 0. Simulated in-process at the exact moment: the Gate being constructed."""
    from pyastore import gate as gate_module
    from pyastore.cli import main
    from pyastore.commandline import Terminated

    def interrupted(*args, **kwargs):
        raise Terminated(signal.SIGTERM)

    monkeypatch.setattr(gate_module.Gate, "__init__", interrupted)
    source = tmp_path / "in.ndjson"
    source.write_text(transaction_line(1))
    argv = gate_argv(ledger, "--max-batch", "64", source=source)[3:]  # without "python -m"
    assert main(argv) == 0
    assert "stopped by SIGTERM" in capsys.readouterr().err
