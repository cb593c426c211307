"""``pyastore-train vertical``: every participant of a round as its own process, on one machine.

``run_vertical`` makes what the participants need and nothing more: a key pair (Ed25519 to
sign, X25519 to receive) per participant, the parties' shared ID key, the roster, the log
(created when missing) and the store. Then, for each seed (one round each), it starts the
parties (``pyastore-train vertical-party run``) and the host (``vertical-host run``) as
separate processes. They share only the store and the log: each party reads only the ID,
the label and its own columns of the data file, the host reads no data at all and knows the
test customers only as pseudonyms.

After each round the orchestrator, which plays the data scientist holding the whole file (an
experiment needs the truth), evaluates: the parties alone (their own metrics), the host's
predictions against the test labels, and the composed container (``trainer.vertical.
compose``) against the host's distributed predictions, bit for bit. With a report folder it
also trains the centralised baseline on all columns (same split, same shape, same training).

A participant that fails stops the round: the others are stopped (only the processes started
here), and the error names the participant, its exit code and the last line it printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyastore.errors import PyastoreError, UsageError
from trainer.vertical import crypto, nets
from trainer.vertical.data import check_partition, read_header, read_party, split
from trainer.vertical.ids import IdKey
from trainer.vertical.metrics import classification_metrics
from trainer.vertical.roster import Participant, Roster, check_name

HOST_NAME = "host"


class ParticipantFailedError(PyastoreError):
    """A participant's process failed; ``exit_code`` is that process's exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code if exit_code > 0 else 1


@dataclass(frozen=True)
class VerticalConfig:
    data: Path
    target: str
    id_column: str
    parties: tuple[tuple[str, tuple[str, ...]], ...]
    chain: Path
    store: Path
    out: Path
    seeds: int = 1
    seed: int = 0
    test_size: float = 0.3
    train: nets.TrainConfig = field(default_factory=nets.TrainConfig)
    timeout: float = 600.0
    baseline: bool = False

    def check(self) -> None:
        self.train.check()
        if self.seeds < 1:
            raise UsageError(f"--seeds must be >= 1, got {self.seeds}")
        if not 0.0 < self.test_size < 1.0:
            raise UsageError(f"--test-size must lie strictly between 0 and 1, got "
                             f"{self.test_size}")
        if not self.timeout > 0:
            raise UsageError(f"--timeout must be > 0 seconds, got {self.timeout}")
        names = [name for name, _ in self.parties]
        if len(set(names)) != len(names):
            raise UsageError(f"two parties are named alike: {names}")
        if HOST_NAME in names:
            raise UsageError(f"{HOST_NAME!r} is the host's name; name the parties otherwise")
        for name in names:
            check_name(name)
        check_partition(self.data, read_header(self.data), self.id_column, self.target,
                        dict(self.parties))


@dataclass(frozen=True)
class RoundResult:
    round: int
    seed: int
    metrics: dict[str, dict[str, float]]  # model -> metrics on the test customers
    curves: dict[str, dict[str, list[float]]]  # host / centralised training curves
    composed_equal: bool
    composed_rows: int
    test_class_counts: tuple[int, int]
    seconds: float
    bytes_exchanged: int
    blobs: int
    log_records: int
    store_keys: dict[str, str]


def parse_party(text: str) -> tuple[str, tuple[str, ...]]:
    """``NAME=COL,COL,...`` -> (name, columns); column names may hold spaces."""
    name, sep, columns = text.partition("=")
    cols = tuple(c.strip() for c in columns.split(",")) if sep else ()
    if not sep or not name.strip() or not columns.strip() or any(not c for c in cols):
        raise UsageError(f"--party {text!r}: expected NAME=COLUMN,COLUMN,... (quote names "
                         "with spaces)")
    return name.strip(), cols


def _ensure_keys(folder: Path, name: str) -> tuple[Path, Path]:
    from pyastore import keys

    secret = folder / f"{name}.key"
    box = folder / f"{name}.box.key"
    if not secret.exists():
        keys.keygen(folder / name)
    if not box.exists():
        crypto.write_box_key_files(folder / name)
    return secret, box


def prepare(config: VerticalConfig) -> Roster:
    """Keys, ID key, roster, log and store for ``config`` (module docstring)."""
    from chain.log import Log
    from pyastore import keys

    key_dir = config.out / "keys"
    key_dir.mkdir(parents=True, exist_ok=True)
    participants = []
    for name, _ in config.parties:
        secret, box = _ensure_keys(key_dir, name)
        participants.append(Participant(name, "party", keys.SigningKey.load(secret).public_key,
                                        crypto.BoxKey.load(box).public))
    secret, box = _ensure_keys(key_dir, HOST_NAME)
    participants.append(Participant(HOST_NAME, "host", keys.SigningKey.load(secret).public_key,
                                    crypto.BoxKey.load(box).public))
    if not (key_dir / "ids.key").exists():
        IdKey.generate().write(key_dir / "ids.key")
    roster = Roster(tuple(participants))
    (config.out / "roster.json").write_text(roster.to_json())
    if not config.chain.exists():
        log_key = key_dir / "log.key"
        if not log_key.exists():
            keys.keygen(key_dir / "log")
        Log.init(config.chain, log_key).close()
    config.store.mkdir(parents=True, exist_ok=True)
    return roster


def _common(config: VerticalConfig, seed: int, round_number: int) -> list[str]:
    return ["--chain", str(config.chain), "--store", str(config.store),
            "--roster", str(config.out / "roster.json"), "--seed", str(seed),
            "--round", str(round_number), "--epochs", str(config.train.epochs),
            "--batch-size", str(config.train.batch_size),
            "--learning-rate", repr(config.train.learning_rate),
            "--timeout", repr(config.timeout)]


def _commands(config: VerticalConfig, seed: int, round_number: int, round_dir: Path,
              predict_file: Path) -> dict[str, list[str]]:
    key_dir = config.out / "keys"
    python = [sys.executable, "-m", "trainer.cli"]
    commands = {}
    for name, columns in config.parties:
        commands[name] = python + [
            "vertical-party", "run", "--name", name, "--data", str(config.data),
            "--id", config.id_column, "--target", config.target,
            "--columns", ",".join(columns), "--sign-key", str(key_dir / f"{name}.key"),
            "--box-key", str(key_dir / f"{name}.box.key"), "--id-key", str(key_dir / "ids.key"),
            "--test-size", repr(config.test_size), "--out", str(round_dir / name),
            *_common(config, seed, round_number)]
    commands[HOST_NAME] = python + [
        "vertical-host", "run", "--name", HOST_NAME,
        "--sign-key", str(key_dir / f"{HOST_NAME}.key"),
        "--box-key", str(key_dir / f"{HOST_NAME}.box.key"), "--out", str(round_dir / HOST_NAME),
        "--predict", str(predict_file), *_common(config, seed, round_number)]
    return commands


def run_processes(commands: Mapping[str, Sequence[str]], log_dir: Path,
                  timeout: float) -> None:
    """Start every command, wait for all; on the first failure stop the rest and raise."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    processes: dict[str, subprocess.Popen] = {}
    for name, command in commands.items():
        with open(log_dir / f"{name}.log", "wb") as stderr:
            processes[name] = subprocess.Popen(list(command), stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    deadline = time.monotonic() + timeout
    failed: tuple[str, int] | None = None
    try:
        while processes and failed is None:
            for name, process in list(processes.items()):
                code = process.poll()
                if code is None:
                    continue
                del processes[name]
                if code != 0:
                    failed = (name, code)
                    break
            if failed is None and processes:
                if time.monotonic() > deadline:
                    failed = (next(iter(processes)), -1)
                    break
                time.sleep(0.05)
    finally:
        for process in processes.values():  # only the processes started above
            process.terminate()
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    if failed is not None:
        name, code = failed
        lines = (log_dir / f"{name}.log").read_text(errors="replace").strip().splitlines()
        last = lines[-1] if lines else "(no output)"
        if code == -1:
            raise ParticipantFailedError(f"{name} did not finish within {timeout:g} s", 8)
        raise ParticipantFailedError(f"{name} failed (exit code {code}): {last}", code)


def _round_deadline(timeout: float) -> float:
    """A backstop for a whole round: each participant already stops when another stays
    silent for ``timeout``; this only catches a participant stuck for another reason. It
    allows for a round's three waits and a minute of process start-up on a busy machine, so
    that the participant's own, more precise error is the one reported."""
    return 3 * timeout + 60.0


def _store_size(store: Path) -> tuple[int, int]:
    sizes = [p.stat().st_size for p in store.iterdir() if len(p.name) == 64]
    return sum(sizes), len(sizes)


def _log_size(chain: Path) -> int:
    from chain.log import Log

    with Log.open(chain, readonly=True) as log:
        return log.size


def run_round(config: VerticalConfig, roster: Roster, round_number: int,
              seed: int) -> RoundResult:
    """One round: start every participant, then evaluate (module docstring)."""
    from pyastore import format as fmt
    from pyastore import keys, load
    from trainer.vertical.compose import composed_spec

    started = time.perf_counter()
    round_dir = config.out / f"round-{round_number}"
    round_dir.mkdir(parents=True, exist_ok=True)
    id_key = IdKey.load(config.out / "keys" / "ids.key")
    # the truth, for evaluation only: the participants never see this process's memory
    columns = [c for _, cols in config.parties for c in cols]
    full = read_party(config.data, config.id_column, config.target, columns)
    pseudonyms = [id_key.pseudonym(i) for i in full.ids]
    test = split(pseudonyms, seed, config.test_size)
    test_rows = np.flatnonzero(test)
    predict_file = round_dir / "predict-ids.txt"
    predict_file.write_text("".join(pseudonyms[r].hex() + "\n" for r in test_rows))
    bytes_before, blobs_before = _store_size(config.store)
    records_before = _log_size(config.chain)
    run_processes(_commands(config, seed, round_number, round_dir, predict_file),
                  round_dir / "logs", _round_deadline(config.timeout))
    bytes_after, blobs_after = _store_size(config.store)
    records_after = _log_size(config.chain)
    y_test = full.labels[test]
    metrics: dict[str, dict[str, float]] = {}
    store_keys: dict[str, str] = {}
    for name, _ in config.parties:
        report = json.loads((round_dir / name / "metrics.json").read_text())
        metrics[name] = report["metrics"]
        store_keys[f"{name}.encoder"] = report["encoder_store_key"]
    predicted = _read_predictions(round_dir / HOST_NAME / "predictions.csv")
    distributed = np.asarray([predicted[pseudonyms[r].hex()] for r in test_rows])
    metrics["host"] = classification_metrics(y_test, distributed)
    host_curve = json.loads((round_dir / HOST_NAME / "curve.json").read_text())
    curves = {"host": host_curve}
    # the composed container, from the signed parts, scored on the raw test rows
    trusted = {p.name: p.sign_key for p in roster.participants}
    encoders = [load(round_dir / name / f"{name}.encoder.astore", trusted_keys=[trusted[name]],
                     use_default_trust=False) for name, _ in config.parties]
    host = load(round_dir / HOST_NAME / "host.astore", trusted_keys=[trusted[HOST_NAME]],
                use_default_trust=False)
    store_keys["host"] = host.store_key
    host_key = keys.SigningKey.load(config.out / "keys" / f"{HOST_NAME}.key")
    composed_bytes = fmt.write(composed_spec(encoders, host, description=(
        "every party's encoder side by side, then the host network")), host_key)
    fmt.write_file(round_dir / "composed.astore", composed_bytes)
    composed = load(composed_bytes, trusted_keys=[host_key.public_key], use_default_trust=False)
    store_keys["composed"] = composed.store_key
    one_call = composed.score(full.x[test_rows])[:, 0]
    composed_equal = bool(np.array_equal(one_call.view(np.uint64), distributed.view(np.uint64)))
    if config.baseline:
        metrics["centralised"], curves["centralised"] = _centralised(config, full, test, seed)
    result = RoundResult(
        round=round_number, seed=seed, metrics=metrics, curves=curves,
        composed_equal=composed_equal, composed_rows=int(len(test_rows)),
        test_class_counts=(int((y_test == 0).sum()), int((y_test == 1).sum())),
        seconds=round(time.perf_counter() - started, 2),
        bytes_exchanged=bytes_after - bytes_before, blobs=blobs_after - blobs_before,
        log_records=records_after - records_before, store_keys=store_keys)
    (round_dir / "result.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result


def _read_predictions(path: Path) -> dict[str, float]:
    lines = path.read_text().splitlines()
    return {line.split(",")[0]: float(line.split(",")[1]) for line in lines[1:] if line}


def _centralised(config: VerticalConfig, full: Any, test: np.ndarray, seed: int
                 ) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The baseline: the same network shape on every raw column, standardised."""
    from trainer.vertical import compose
    from trainer.vertical.party import seed_for

    train = ~test
    mean, std = compose.standardisation(full.x[train])
    net_seed = seed_for(seed, "centralised")
    net = nets.network(full.x.shape[1], net_seed)
    curve = nets.fit(net, compose.standardise(full.x[train], mean, std), full.labels[train],
                     config.train, net_seed)
    scores = nets.probabilities(net, compose.standardise(full.x[test], mean, std))
    return classification_metrics(full.labels[test], scores), asdict(curve)


def run_vertical(config: VerticalConfig, progress=None) -> list[RoundResult]:
    """Prepare, then one round per seed; returns the rounds' results."""
    config.check()
    roster = prepare(config)
    results = []
    for i in range(config.seeds):
        seed = config.seed + i
        result = run_round(config, roster, _next_round(config.out), seed)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def _next_round(out: Path) -> int:
    """Round numbers continue after every round already begun in ``out``, finished or not:
    the log keeps every round's messages, so a round number is never used twice."""
    begun = [int(p.name[len("round-"):]) for p in out.glob("round-*")
             if p.name[len("round-"):].isdigit()]
    return max(begun) + 1 if begun else 0
