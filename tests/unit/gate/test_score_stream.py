"""``pyastore score --stream``: the same scores as batch scoring, one flushed line per event
as it arrives, SIGTERM/EOF answer every line read, memory that does not grow."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

from gate_testlib import (
    GOLDEN_MODEL,
    GOLDEN_PUB,
    PYTHON,
    REPO_ROOT,
    child_env,
    expected_score,
    transaction_line,
    write_transactions,
)

SCORE = [PYTHON, "-m", "pyastore", "score", str(GOLDEN_MODEL)]
TRUST = ["--trust", str(GOLDEN_PUB)]


def _score(*args: str, input_text: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SCORE, *args, *TRUST], input=input_text, capture_output=True,
                          text=True, env=child_env(), timeout=120, cwd=REPO_ROOT)


def test_stream_gives_the_batch_scores(tmp_path):
    source = write_transactions(tmp_path / "tx.ndjson", 2000)
    streamed = _score(str(source), "--stream", "--keep", "id", "--label", "--max-batch", "64")
    batch = _score(str(source), "--keep", "id", "--label")
    assert streamed.returncode == 0 and batch.returncode == 0, streamed.stderr
    assert streamed.stdout == batch.stdout
    rows = [json.loads(line) for line in streamed.stdout.splitlines()]
    assert [r["P_fraud"] for r in rows] == [expected_score(n) for n in range(2000)]


def test_stream_csv_and_bad_rows(tmp_path):
    text = "id,amount,velocity,age_days\na,1,5,-100\nb,x,1,1\nc,1,-100\n"
    result = _score("-", "--stream", "--input-format", "csv", "--keep", "id", "--on-error",
                    "null", input_text=text)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["id,P_fraud", "a,0.9241418199787566", "b,", "c,"]
    assert "bad row 2: row 2, column 'amount': 'x' is not a number" in result.stderr
    assert "line 4: 3 fields, the header has 4" in result.stderr
    failed = _score("-", "--stream", input_text='{"amount": 1}\n')
    assert failed.returncode == 5 and "missing field(s): velocity, age_days" in failed.stderr
    for extra, message in [(["-o", str(tmp_path / "x.csv")], "--stream writes to stdout"),
                           (["--max-batch", "0"], "at least 1")]:
        result = _score("-", "--stream", *extra)
        assert result.returncode == 2 and message in result.stderr
        assert "Traceback" not in result.stderr


def test_each_event_is_answered_as_it_arrives_and_sigterm_stops_cleanly():
    process = subprocess.Popen([*SCORE, "-", "--stream", "--keep", "id", *TRUST],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=child_env())
    for number in range(3):
        process.stdin.write(transaction_line(number))
        process.stdin.flush()
        started = time.monotonic()
        assert json.loads(process.stdout.readline())["id"] == f"tx-{number}"
        assert time.monotonic() - started < 5
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert "stopped by SIGTERM" in process.stderr.read()
    for handle in (process.stdin, process.stdout, process.stderr):
        handle.close()


_LAUNCHER = textwrap.dedent("""
    import resource, subprocess, sys, threading
    count = int(sys.argv[1])
    line = b'{"id": "e", "amount": 12.5, "velocity": 3.0, "age_days": 100.0}\\n'
    child = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    def feed():
        block = line * 1000
        for _ in range(count // 1000):
            child.stdin.write(block)
        child.stdin.close()
    threading.Thread(target=feed, daemon=True).start()
    lines = sum(chunk.count(b"\\n") for chunk in iter(lambda: child.stdout.read(1 << 16), b""))
    child.wait()
    print(lines, child.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
""")


def _peak_rss_kib(events: int) -> int:
    result = subprocess.run([sys.executable, "-c", _LAUNCHER, str(events), *SCORE, "-",
                             "--stream", "--input-format", "ndjson", *TRUST],
                            capture_output=True, text=True, env=child_env(), timeout=300)
    lines, code, peak = (int(v) for v in result.stdout.split())
    assert (lines, code) == (events, 0), result.stderr
    return peak


def test_memory_stays_flat_on_a_long_stream():
    short, long = _peak_rss_kib(20_000), _peak_rss_kib(400_000)
    assert long - short < 4096, (short, long)  # KiB: 20x the events, not 20x the memory
