"""The transaction gate under load: durable decisions per second and read-to-answer latency.

    python bench/bench_gate.py                 # --max-batch 1, 64, 512 at --max-delay-ms 5
    python bench/bench_gate.py --batches 64 --transactions 100000
    python bench/bench_gate.py --batches 64,512 --signers process --offered 10000,20000

The model is the bundled one: ``pyastore-train fraud --augment none`` on the bundled data
set (XGBoost, 100 trees, 12 inputs), signed with a fixed bench key, cached in
``bench/.cache/gate/``. Transactions are the bundled rows as NDJSON objects with an ``id``.

For each ``--max-batch`` the gate runs as its own process on a fresh ledger (SQLite,
``synchronous=FULL``: every answer follows a durable commit), fed through a pipe by this
process:

* **throughput**: every transaction written as fast as the pipe takes it; decisions/s =
  transactions / (last answer - first write);
* **latency**: transactions written at a fixed offered rate (20,000/s, or 80% of the measured
  throughput when that is lower; ``--offered`` for others), about ten seconds of them, each
  timed from its write to the arrival of its answer (answers come in input order); p50 and
  p99 over all of them.

Each runs with the gate's ``--signer process`` (records signed in a helper process beside the
scoring) and ``--signer inline`` (one batch at a time in one process): ``--signers``. The
gate's CPU per decision is its ``wait4`` usage, so it includes the signing helper's.

``--max-batch 1`` is the baseline: one durable commit (one fsync of the WAL) per transaction.
Results: a Markdown table on stdout and ``bench/.cache/gate/results.json``.

``--stream-events N`` measures ``pyastore score --stream`` instead: 100,000 and N events
(default run: 10 million) fed by a small launcher process, so that the scorer's peak RSS is
its own (events/s, CPU per event, peak RSS: constant memory shows as the same peak), then
p50/p99 per event at half the measured rate (at most 20,000/s) offered
(``bench/.cache/gate/stream_results.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache" / "gate"
PYTHON = sys.executable
TARGET_RATE = 20000


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def prepare() -> tuple[Path, Path, Path, list[bytes]]:
    """The bundled model, its public key, a log key and the transaction lines."""
    from pyastore import keys

    CACHE.mkdir(parents=True, exist_ok=True)
    key = keys.SigningKey(hashlib.sha256(b"pyastore gate bench key").digest())
    secret, public = CACHE / "bench.key", CACHE / "bench.pub"
    if not secret.exists():
        secret.write_text(keys.SECRET_PREFIX + key.seed.hex() + "\n")
        secret.chmod(0o600)
        public.write_text(keys.public_key_line(key.public_key) + "\n")
    model = CACHE / "fraud.astore"
    if not model.exists():
        subprocess.run([PYTHON, "-m", "trainer.cli", "fraud", "--augment", "none", "--out",
                        str(model), "--sign-key", str(secret), "--quiet"], check=True,
                       env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL)
    from trainer.data import bundled_fraud_csv

    text = bundled_fraud_csv().decode()
    header, *rows = text.splitlines()
    names = header.split(",")
    events = []
    for row in rows:
        cells = row.split(",")
        event = {name: (float(cell) if cell else None)
                 for name, cell in zip(names, cells) if name != "fraud"}
        events.append(event)
    lines = []
    for number in range(200_000):
        event = dict(events[number % len(events)])
        lines.append((json.dumps({"id": f"tx-{number}", **event}) + "\n").encode())
    return model, public, secret, lines


def _fresh_ledger(log_key: Path, name: str) -> Path:
    ledger = CACHE / f"{name}.log"
    for suffix in ("", "-wal", "-shm"):
        Path(str(ledger) + suffix).unlink(missing_ok=True)
    subprocess.run([PYTHON, "-m", "pyastore", "chain", "init", str(ledger), "--key",
                    str(log_key)], check=True, env=_env(), stdout=subprocess.DEVNULL)
    return ledger


def gate_argv(model: Path, public: Path, ledger: Path, max_batch: int,
              max_delay_ms: float, signer: str = "process") -> list[str]:
    return [PYTHON, "-m", "pyastore", "gate", str(model), "--ledger", str(ledger), "--trust",
            str(public), "--max-batch", str(max_batch), "--max-delay-ms", str(max_delay_ms),
            "--signer", signer]


def stream_argv(model: Path, public: Path, max_batch: int, max_delay_ms: float) -> list[str]:
    return [PYTHON, "-m", "pyastore", "score", str(model), "-", "--stream", "--input-format",
            "ndjson", "--keep", "id", "--trust", str(public), "--max-batch", str(max_batch),
            "--max-delay-ms", str(max_delay_ms)]


def drive(argv: list[str], lines: list[bytes] | None, rate: float | None,
          count: int | None = None) -> dict[str, float]:
    """Feed ``lines`` (or ``count`` lines cycling through them, timing none but counting
    all) to a process (as fast as possible, or at ``rate`` per second) and time every
    answer line; returns throughput, latency percentiles in ms, the process's CPU time per
    line and its peak RSS."""
    if count is not None:
        assert lines is not None and rate is None
        return _drive_endless(argv, lines, count)
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=_env(), bufsize=0)
    assert process.stdin is not None and process.stdout is not None
    assert lines is not None
    count = len(lines)
    sent = [0] * count
    received = [0] * count
    # Wait for the gate to be ready (model loaded, ledger open): one warm-up transaction.
    warm = b'{"id": "warm-up", "amount": 1, "hour": 1, "merchant_risk": 0, "distance_km": 0, ' \
        b'"txn_per_hour": 0, "account_age_days": 1, "foreign": 0, "card_present": 1, ' \
        b'"v1": 0, "v2": 0, "v3": 0, "v4": 0}\n'
    # Answers are read through a buffer: readline on the raw pipe would make one read(1)
    # system call per byte, tens of µs of this process's CPU per answer taken from the gate.
    # (A buffered readline still returns each line as soon as it has arrived.)
    stdout = io.BufferedReader(process.stdout, 1 << 16)  # type: ignore[arg-type,type-var]
    process.stdin.write(warm)
    stdout.readline()

    def write() -> None:
        assert process.stdin is not None
        start = time.perf_counter_ns()
        position = 0
        while position < count:
            if rate is None:
                end = min(count, position + 256)
            else:
                due = int((time.perf_counter_ns() - start) * rate / 1e9) + 1
                end = min(count, max(due, position + 1))
                if due <= position:
                    time.sleep(0.0002)
                    continue
            now = time.perf_counter_ns()
            for i in range(position, end):
                sent[i] = now
            process.stdin.write(b"".join(lines[position:end]))
            position = end
        process.stdin.close()

    writer = threading.Thread(target=write)
    writer.start()
    for i in range(count):
        if not stdout.readline():
            break
        received[i] = time.perf_counter_ns()
    writer.join()
    stderr = process.stderr.read().decode() if process.stderr else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0 or not received[-1]:
        raise SystemExit(f"the gate failed ({process.returncode}): {stderr}")
    latencies = sorted((r - s) / 1e6 for r, s in zip(received, sent))
    seconds = (received[-1] - sent[0]) / 1e9
    return {
        "transactions": count,
        "decisions_per_s": count / seconds,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "max_ms": latencies[-1],
        # The gate's own CPU time (start-up included) per decision: its speed on a core of
        # its own, whatever else the machine runs.
        "cpu_us_per_decision": (usage.ru_utime + usage.ru_stime) * 1e6 / (count + 1),
    }


# A small launcher starts the scorer and feeds it, so that the scorer's peak RSS is its own:
# a child forked from this (large) process would count this process's pages until its exec.
_LAUNCHER = """
import os, resource, subprocess, sys, threading, time
count, block = int(sys.argv[1]), open(sys.argv[2], "rb").read()
child = subprocess.Popen(sys.argv[3:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def feed():
    for _ in range(count // 1000):
        child.stdin.write(block)
    child.stdin.close()
started = time.perf_counter()
threading.Thread(target=feed, daemon=True).start()
lines = sum(chunk.count(b"\\n") for chunk in iter(lambda: child.stdout.read(1 << 16), b""))
seconds = time.perf_counter() - started
_, status, usage = os.wait4(child.pid, 0)
print(lines, os.waitstatus_to_exitcode(status), seconds, usage.ru_utime + usage.ru_stime,
      usage.ru_maxrss)
"""


def _drive_endless(argv: list[str], lines: list[bytes], count: int) -> dict[str, float]:
    """``count`` lines (the first 1,000 of ``lines``, repeated) through the process:
    throughput, CPU time and peak RSS."""
    block = CACHE / "block.ndjson"
    block.write_bytes(b"".join(lines[:1000]))
    result = subprocess.run([PYTHON, "-c", _LAUNCHER, str(count), str(block), *argv],
                            capture_output=True, text=True, env=_env())
    answered, code, seconds, cpu, peak = result.stdout.split()
    if int(code) != 0 or int(answered) != count // 1000 * 1000:
        raise SystemExit(f"the scorer failed: {answered} lines answered: {result.stderr}")
    events = int(answered)
    return {"events": events, "events_per_s": events / float(seconds),
            "cpu_us_per_event": float(cpu) * 1e6 / events,
            "peak_rss_mib": int(peak) / 1024, "seconds": float(seconds)}


def _cpu_name() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default="1,64,512", help="--max-batch values (default "
                        "1,64,512)")
    parser.add_argument("--max-delay-ms", type=float, default=5.0)
    parser.add_argument("--offered", default="", metavar="RATE[,RATE...]",
                        help="offered rates (transactions/s) of the latency runs (default: "
                        "80%% of the measured throughput, at most 20,000/s)")
    parser.add_argument("--signers", default="process,inline",
                        help="the gate's --signer values to run (default process,inline)")
    parser.add_argument("--transactions", type=int, default=100_000,
                        help="per run for batches > 1 (default 100000; 5000 for batch 1)")
    parser.add_argument("--stream-events", type=int, default=0, metavar="N",
                        help="instead: N events through 'pyastore score --stream' (events/s, "
                        "peak RSS), then p50/p99 per event at half that rate offered "
                        "(at most 20,000/s)")
    args = parser.parse_args(argv)
    model, public, secret, lines = prepare()
    if args.stream_events:
        return stream_main(model, public, lines, args.stream_events, args.max_delay_ms)
    results = []
    for signer in args.signers.split(","):
        for max_batch in (int(b) for b in args.batches.split(",")):
            count = min(args.transactions, 5000) if max_batch == 1 else args.transactions
            name = f"{signer}-{max_batch}"
            ledger = _fresh_ledger(secret, f"throughput-{name}")
            throughput = drive(gate_argv(model, public, ledger, max_batch, args.max_delay_ms,
                                         signer), lines[:count], None)
            rates = ([float(r) for r in args.offered.split(",")] if args.offered else
                     [min(TARGET_RATE, 0.8 * throughput["decisions_per_s"])])
            for rate in rates:
                ledger = _fresh_ledger(secret, f"latency-{name}")
                latency_count = int(rate * 10)  # about ten seconds of offered load
                paced = drive(gate_argv(model, public, ledger, max_batch, args.max_delay_ms,
                                        signer), [lines[i % len(lines)] for i in
                                                  range(latency_count)], rate)
                results.append({"signer": signer, "max_batch": max_batch,
                                "throughput": throughput, "offered_rate": rate,
                                "latency": paced})
                print(f"--signer {signer} --max-batch {max_batch}: "
                      f"{throughput['decisions_per_s']:.0f} decisions/s; at {rate:.0f}/s "
                      f"offered: p50 {paced['p50_ms']:.2f} ms, p99 {paced['p99_ms']:.2f} ms "
                      f"({paced['decisions_per_s']:.0f}/s achieved)", file=sys.stderr)
    load = os.getloadavg()
    summary = {"cpu": _cpu_name(), "cores": os.cpu_count(), "max_delay_ms": args.max_delay_ms,
               "load_average_end": load, "python": platform.python_version(),
               "results": results}
    (CACHE / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"CPU: {summary['cpu']} ({summary['cores']} cores); --max-delay-ms "
          f"{args.max_delay_ms}; load average at the end {load[0]:.2f}\n")
    print("| --signer | --max-batch | durable decisions/s (saturated) | gate CPU per decision "
          "| offered rate | p50 read→answer | p99 read→answer | achieved |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in results:
        paced = row["latency"]
        print(f"| {row['signer']} | {row['max_batch']} | "
              f"{row['throughput']['decisions_per_s']:,.0f} | "
              f"{row['throughput']['cpu_us_per_decision']:.0f} µs | "
              f"{row['offered_rate']:,.0f}/s | {paced['p50_ms']:.2f} ms | "
              f"{paced['p99_ms']:.2f} ms | {paced['decisions_per_s']:,.0f}/s |")
    return 0


def stream_main(model: Path, public: Path, lines: list[bytes], events: int,
                max_delay_ms: float) -> int:
    argv = stream_argv(model, public, 512, max_delay_ms)
    short = drive(argv, lines, None, count=100_000)
    endless = drive(argv, lines, None, count=events)
    rate = min(TARGET_RATE, 0.5 * endless["events_per_s"])  # headroom on a shared machine
    paced = drive(argv, lines[:int(rate * 10)], rate)
    summary = {"cpu": _cpu_name(), "short": short, "endless": endless, "offered_rate": rate,
               "paced": paced, "load_average_end": os.getloadavg()}
    (CACHE / "stream_results.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"score --stream (--max-batch 512, --max-delay-ms {max_delay_ms}), CPU "
          f"{summary['cpu']}:\n")
    print("| events | events/s | CPU per event | peak RSS |")
    print("| ---: | ---: | ---: | ---: |")
    for run in (short, endless):
        print(f"| {run['events']:,} | {run['events_per_s']:,.0f} | "
              f"{run['cpu_us_per_event']:.1f} µs | {run['peak_rss_mib']:.1f} MiB |")
    print(f"\nat {rate:,.0f}/s offered: p50 {paced['p50_ms']:.2f} ms, p99 "
          f"{paced['p99_ms']:.2f} ms per event ({paced['decisions_per_s']:,.0f}/s achieved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
