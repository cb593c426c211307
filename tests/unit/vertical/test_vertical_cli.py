"""The command line: every participant as its own process sharing only the store and the log,
each side on its own, timeouts instead of hangs, clear errors for bad input -- and not one
plaintext value or raw ID anywhere in the store or the log."""

from __future__ import annotations

import hashlib
import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from chain.log import Log
from chain.records import KIND_BLOB
from pyastore import load
from trainer.vertical.crypto import BoxKey
from trainer.vertical.messages import Message
from trainer.vertical.roster import Roster
from vertical_testlib import PARTIES, make_federation, run_cli, write_data, write_key_files

PARTY_ARGS = [arg for name, cols in PARTIES.items()
              for arg in ("--party", f"{name}={','.join(cols)}")]
QUICK = ["--epochs", "5", "--learning-rate", "0.01", "--timeout", "60"]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = write_data(root / "data.csv")
    started = time.monotonic()
    done = run_cli("vertical", "--data", str(root / "data.csv"), "--target", "label", "--id", "id",
                   *PARTY_ARGS, "--chain", str(root / "exchange.log"), "--store",
                   str(root / "store"), "--out", str(root / "out"), "--report",
                   str(root / "report"), "--seeds", "1", "--seed", "2", *QUICK)
    return root, data, done, time.monotonic() - started


def test_vertical_runs_every_participant_as_its_own_process(cli_run):
    root, data, done, _ = cli_run
    assert done.returncode == 0, done.stderr
    assert "composed container bit-identical on 72 rows" in done.stderr
    result = json.loads((root / "out" / "round-0" / "result.json").read_text())
    assert result["composed_equal"] is True
    assert set(result["metrics"]) == {"personal", "bank", "host", "centralised"}
    assert result["blobs"] == 8 and result["log_records"] == 8  # 2 x (reps, request, answer, close)
    for name in ("personal", "bank", "host"):
        assert (root / "out" / "round-0" / "logs" / f"{name}.log").exists()
    report = json.loads((root / "report" / "metrics.json").read_text())
    assert report["composed_bit_identical_every_round"] is True
    assert (root / "report" / "curves.png").stat().st_size > 10_000
    assert "| host |" in (root / "report" / "report.md").read_text()
    roster = Roster.load(root / "out" / "roster.json")
    with Log.open(root / "exchange.log") as log:
        assert log.verify().size == 8
        records = list(log.records())
    assert all(r.kind == KIND_BLOB and r.signature_valid() for r in records)
    assert {roster.by_sign_key(r.submitter).name for r in records} == {"personal", "bank", "host"}
    # the parties' containers are signed by the parties, the host's and the composed by the host
    personal = load(root / "out" / "round-0" / "personal" / "personal.encoder.astore",
                    trusted_keys=[roster.get("personal").sign_key], use_default_trust=False)
    assert personal.meta["score_rules"]["task"] == "embedding"


# ---- no plaintext leaves a party ------------------------------------------------------------


def _pairs(values: np.ndarray, code: str) -> list[bytes]:
    """Two neighbouring cells (along a row and down a column) packed as float32: how a leaked
    matrix would look, row-major or column-major. A single float32 is only 4 bytes, which the
    random bytes of ciphertexts match by chance (about one in 2^32 per position)."""
    out = []
    for a, b in zip(values[:, :-1].ravel(), values[:, 1:].ravel()):
        out.append(struct.pack(code * 2, a, b))
    for a, b in zip(values[:-1].ravel(), values[1:].ravel()):
        out.append(struct.pack(code * 2, a, b))
    return out


def _needles(data: dict, party: str) -> dict[bytes, str]:
    columns = PARTIES[party]
    matrix = np.stack([data[c] for c in columns], axis=1)
    needles: dict[bytes, str] = {}
    for r, row in enumerate(matrix):
        for c, value in enumerate(row):
            where = f"{party}.{columns[c]} row {r} = {value!r}"
            for code in ("<d", ">d"):
                needles[struct.pack(code, value)] = f"float64 {code} of {where}"
            # the decimal forms a serializer would write; each has a point and 7+ characters
            # (a bare 4-digit number turns up in any hex text)
            for text in (repr(float(value)), f"{value:.6f}", f"{value:.4f}", f"{value:.2f}",
                         f"{value:.1f}", f"{value:.6e}", f"{value:.3e}"):
                if "." in text and len(text) >= 7:
                    needles[text.encode()] = f"text {text!r} of {where}"
    for code in ("<ff", ">ff"):
        for pair in _pairs(matrix.astype(np.float32), code[1]):
            needles[pair] = f"float32 {code} pair of {party} cells"
    return needles


def _id_needles(data: dict) -> dict[bytes, str]:
    needles: dict[bytes, str] = {}
    for customer in data["id"]:
        customer = int(customer)
        text = str(customer)
        for encoded, how in ((text.encode(), "text"), (text.encode("utf-16-le"), "utf-16"),
                             (struct.pack("<q", customer), "int64 <"),
                             (struct.pack(">q", customer), "int64 >"),
                             (struct.pack("<d", float(customer)), "float64 <"),
                             (struct.pack(">d", float(customer)), "float64 >"),
                             (hashlib.sha256(text.encode()).digest(), "unkeyed sha256"),
                             (hashlib.sha256(text.encode()).hexdigest().encode(),
                              "unkeyed sha256 hex")):
            needles[encoded] = f"raw ID {customer} ({how})"
    return needles


def _find(haystack: bytes, needles: dict[bytes, str]) -> list[str]:
    return [what for needle, what in needles.items() if needle in haystack]


def test_scanner_finds_what_it_looks_for(cli_run):
    """The scan below proves something only if it would find a leak: plant some."""
    _, data, _, _ = cli_run
    needles = {**_needles(data, "bank"), **_id_needles(data)}
    row = struct.pack("<ff", np.float32(data["balance"][5]), np.float32(data["tenure"][5]))
    assert _find(b"\x00" * 9 + row + b"\xff", needles)
    assert _find(f"x,{data['balance'][9]!r},y".encode(), needles)
    assert _find(b"id=" + str(int(data["id"][3])).encode(), needles)
    assert _find(struct.pack("<d", data["tenure"][0]), needles)


def test_no_raw_value_or_id_in_the_store_or_the_log(cli_run):
    root, data, done, _ = cli_run
    assert done.returncode == 0, done.stderr
    needles = {**_needles(data, "personal"), **_needles(data, "bank"), **_id_needles(data)}
    files = sorted((root / "store").iterdir()) + sorted(root.glob("exchange.log*"))
    assert len(files) >= 9 and sum(f.stat().st_size for f in files) > 50_000
    for path in files:
        found = _find(path.read_bytes(), needles)
        assert not found, f"{path.name}: {found[:5]}"
    # and in what the recipients decrypt: pseudonyms, representations and labels, no more
    roster = Roster.load(root / "out" / "roster.json")
    opened = 0
    with Log.open(root / "exchange.log") as log:
        for record in log.records():
            announcement = json.loads(record.description)
            owner = next(p.name for p in roster.participants
                         if hashlib.sha256(p.box_key).hexdigest() == announcement["recipient"])
            box = BoxKey.load(root / "out" / "keys" / f"{owner}.box.key")
            ciphertext = (root / "store" / record.subject.split(":")[1]).read_bytes()
            plaintext = box.open(ciphertext, record.name)
            message = Message.decode(plaintext, record.name)
            assert not _find(plaintext, needles), record.name
            if message.kind == "representations":
                assert message.n_rows == 168 and message.width == len(PARTIES[message.sender])
            opened += 1
    assert opened == 8


# ---- each side on its own machine -----------------------------------------------------------


def test_each_side_alone_with_the_party_and_host_commands(tmp_path):
    import subprocess

    from vertical_testlib import PYTHON, child_env

    data = write_data(tmp_path / "data.csv", n_rows=160, seed=11)
    keys = tmp_path / "keys"
    keys.mkdir()
    for name, role in (("personal", "party"), ("bank", "party"), ("host", "host")):
        done = run_cli("vertical-party", "keygen", name, "--dir", str(keys), "--role", role)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["name"] == name
    assert run_cli("vertical-party", "id-key", str(keys / "ids.key")).returncode == 0
    done = run_cli("vertical-host", "roster", "--party", f"personal={keys / 'personal'}",
                   "--party", f"bank={keys / 'bank'}", "--host", f"host={keys / 'host'}",
                   "--out", str(tmp_path / "roster.json"))
    assert done.returncode == 0, done.stderr
    Log.init(tmp_path / "exchange.log", Path(make_log_key(tmp_path))).close()
    done = run_cli("vertical-party", "pseudonyms", "--id-key", str(keys / "ids.key"), "--data",
                   str(tmp_path / "data.csv"), "--id", "id", "--out", str(tmp_path / "ids.txt"))
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "ids.txt").read_text().split()) == 160
    shared = ["--chain", str(tmp_path / "exchange.log"), "--store", str(tmp_path / "store"),
              "--roster", str(tmp_path / "roster.json"), "--epochs", "3", "--timeout", "60"]
    processes = []
    for name in PARTIES:
        command = [PYTHON, "-m", "trainer.cli", "vertical-party", "run", "--name", name,
                   "--data", str(tmp_path / "data.csv"), "--id", "id", "--target", "label",
                   "--columns", ",".join(PARTIES[name]), "--sign-key", str(keys / f"{name}.key"),
                   "--box-key", str(keys / f"{name}.box.key"), "--id-key", str(keys / "ids.key"),
                   "--out", str(tmp_path / name), *shared]
        processes.append(subprocess.Popen(command, env=child_env(), stderr=subprocess.PIPE,
                                          text=True))
    host_keys = ["--sign-key", str(keys / "host.key"), "--box-key", str(keys / "host.box.key")]
    host = run_cli("vertical-host", "run", *host_keys, "--out", str(tmp_path / "host"),
                   "--predict", str(tmp_path / "ids.txt"), "--no-close", *shared)
    assert host.returncode == 0, host.stderr
    predictions = (tmp_path / "host" / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "pseudonym,P_1" and len(predictions) == 161
    # later, a new host process predicts a few customers with the trained container, then
    # closes the round: the parties, still serving, answer and stop
    (tmp_path / "few.txt").write_text("".join(line.split(",")[0] + "\n"
                                              for line in predictions[1:6]))
    later = run_cli("vertical-host", "predict", "--model", str(tmp_path / "host" / "host.astore"),
                    "--predict", str(tmp_path / "few.txt"), *host_keys, "--out",
                    str(tmp_path / "later"), "--close", *shared[:6])
    assert later.returncode == 0, later.stderr
    assert (tmp_path / "later" / "predictions.csv").read_text().splitlines() == predictions[:6]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        assert "served 2 request(s)" in stderr
    done = run_cli("vertical-host", "compose", "--encoder",
                   str(tmp_path / "personal" / "personal.encoder.astore"), "--encoder",
                   str(tmp_path / "bank" / "bank.encoder.astore"), "--host",
                   str(tmp_path / "host" / "host.astore"), "--trust", str(keys / "personal.pub"),
                   "--trust", str(keys / "bank.pub"), "--trust", str(keys / "host.pub"),
                   "--sign-key", str(keys / "host.key"), "--out", str(tmp_path / "c.astore"))
    assert done.returncode == 0, done.stderr
    composed = load(tmp_path / "c.astore", trusted_keys=[keys / "host.pub"],
                    use_default_trust=False)
    names = [c for cols in PARTIES.values() for c in cols]
    scores = composed.score(np.stack([data[c] for c in names], axis=1))[:, 0]
    distributed = np.asarray([float(line.split(",")[1]) for line in predictions[1:]])
    assert np.array_equal(scores.view(np.uint64), distributed.view(np.uint64))
    done = run_cli("vertical-host", "compose", "--encoder",
                   str(tmp_path / "personal" / "personal.encoder.astore"), "--encoder",
                   str(tmp_path / "bank" / "bank.encoder.astore"), "--host",
                   str(tmp_path / "host" / "host.astore"), "--trust", str(keys / "host.pub"),
                   "--sign-key", str(keys / "host.key"), "--out", str(tmp_path / "d.astore"))
    assert done.returncode == 4 and "not a trusted key" in done.stderr


def make_log_key(folder: Path) -> Path:
    from pyastore import keys

    secret, _ = keys.keygen(folder / "log")
    return secret


# ---- a missing participant: a timeout, not a hang --------------------------------------------


def test_host_without_parties_times_out(tmp_path):
    fed = make_federation(tmp_path)
    paths = write_key_files(fed, tmp_path / "keys")
    started = time.monotonic()
    done = run_cli("vertical-host", "run", "--sign-key", str(paths["host"]), "--box-key",
                   str(tmp_path / "keys" / "host.box.key"), "--out", str(tmp_path / "host"),
                   "--chain", str(fed.log_path), "--store", str(fed.store.root), "--roster",
                   str(paths["roster"]), "--timeout", "1.5")
    assert done.returncode == 8, done.stderr
    assert "timed out after 1.5 s waiting for representations of round 0 from every party; " \
           "nothing from: bank, personal" in done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - started < 30


def test_party_without_host_times_out(tmp_path):
    fed = make_federation(tmp_path)
    write_data(tmp_path / "data.csv", n_rows=80)
    paths = write_key_files(fed, tmp_path / "keys")
    done = run_cli("vertical-party", "run", "--name", "bank", "--data", str(tmp_path / "data.csv"),
                   "--id", "id", "--target", "label", "--columns", ",".join(PARTIES["bank"]),
                   "--sign-key", str(paths["bank"]), "--box-key",
                   str(tmp_path / "keys" / "bank.box.key"), "--id-key", str(paths["ids"]),
                   "--out", str(tmp_path / "bank"), "--chain", str(fed.log_path), "--store",
                   str(fed.store.root), "--roster", str(paths["roster"]), "--epochs", "1",
                   "--timeout", "1.5")
    assert done.returncode == 8, done.stderr
    assert "bank: timed out after 1.5 s without a request or close from the host" in done.stderr
    with Log.open(fed.log_path) as log:  # it did send its representations before waiting
        assert [r.name for r in log.records()] == ["vertical representations"]


# ---- bad input: a clear error and exit code, never a traceback -------------------------------


def _vertical(tmp_path, csv_text: str | None, *parties: str, id_column: str = "id"):
    data = tmp_path / "data.csv"
    if csv_text is not None:
        data.write_text(csv_text)
    party_args = [a for p in parties for a in ("--party", p)]
    return run_cli("vertical", "--data", str(data), "--target", "label", "--id", id_column,
                   *party_args, "--chain", str(tmp_path / "x.log"), "--store",
                   str(tmp_path / "store"), "--out", str(tmp_path / "out"), "--timeout", "5")


GOOD = "id,a,b,label\n1,0.5,2.5,0\n2,1.5,3.5,1\n3,2.5,1.5,0\n"


@pytest.mark.parametrize("csv_text, parties, id_column, code, message", [
    (GOOD, ("p=a", "q=b"), "customer", 5, "no ID column 'customer'"),
    ("id,a,id,b,label\n1,1,1,2,0\n", ("p=a", "q=b"), "id", 5, "'id' appear more than once"),
    ("id,a,b,label\n1,0.5,2.5,0\n2,1.5,3.5,1\n1,2.5,1.5,0\n", ("p=a", "q=b"), "id", 5,
     "ID '1' in column 'id' is duplicated (data rows 1 and 3)"),
    (GOOD, ("p=a,b", "q=b"), "id", 2, "column 'b' is claimed by two parties, 'p' and 'q'"),
    (GOOD, ("p=a", "q=b,c"), "id", 5, "party 'q' claims column 'c', which the file does not have"),
    (GOOD, ("p=a", "q=label"), "id", 2, "claims column 'label', which is the target column"),
    ("id,a,b,label\n1,0.5,x,0\n2,1.5,3.5,1\n", ("p=a", "q=b"), "id", 5,
     "column 'b', data row 1: 'x' is not a number"),
    (GOOD, ("p=a", "host=b"), "id", 2, "'host' is the host's name"),
    (GOOD, ("p",), "id", 2, "expected NAME=COLUMN,COLUMN"),
    (None, ("p=a",), "id", 2, "no such file"),
])
def test_bad_input_gets_a_clear_error_and_exit_code(tmp_path, csv_text, parties, id_column,
                                                    code, message):
    done = _vertical(tmp_path, csv_text, *parties, id_column=id_column)
    assert done.returncode == code, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "round-0" / "logs").exists()  # refused before any process


def test_vertical_stops_every_process_when_one_fails(tmp_path):
    """The parties need far longer than half a second to start torch and train 50 epochs: the
    host gives up, and the orchestrator stops the parties and reports the host's error and
    exit code."""
    write_data(tmp_path / "data.csv", n_rows=80)
    started = time.monotonic()
    done = run_cli("vertical", "--data", str(tmp_path / "data.csv"), "--target", "label", "--id",
                   "id", *PARTY_ARGS, "--chain", str(tmp_path / "x.log"), "--store",
                   str(tmp_path / "store"), "--out", str(tmp_path / "out"), "--epochs", "50",
                   "--timeout", "0.5")
    assert done.returncode == 8, done.stderr
    assert "host failed (exit code 8): pyastore-train: error: host: timed out after 0.5 s " \
           "waiting for representations" in done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - started < 60
    logs = tmp_path / "out" / "round-0" / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["bank.log", "host.log", "personal.log"]


def test_party_audit_finds_nothing_in_a_run_and_names_a_planted_leak(cli_run, tmp_path):
    import shutil

    root, data, done, _ = cli_run
    assert done.returncode == 0, done.stderr
    audit = ["vertical-party", "audit", "--data", str(root / "data.csv"), "--id", "id",
             "--columns", ",".join(PARTIES["bank"])]
    clean = run_cli(*audit, "--store", str(root / "store"), "--chain", str(root / "exchange.log"))
    assert clean.returncode == 0, clean.stderr
    assert "no trace of 240 rows" in clean.stderr
    shutil.copytree(root / "store", tmp_path / "store")
    row = [data[c][7] for c in PARTIES["bank"]]
    (tmp_path / "store" / "leak").write_bytes(b"\x00" + struct.pack("<3d", *row) + b"\x01")
    leaked = run_cli(*audit, "--store", str(tmp_path / "store"), "--chain",
                     str(root / "exchange.log"))
    assert leaked.returncode == 4, leaked.stderr
    assert "1 trace(s) of this party's raw rows" in leaked.stderr
    assert "leak: row 8 as <d values" in leaked.stderr
