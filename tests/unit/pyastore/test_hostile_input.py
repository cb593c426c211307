"""Hostile and odd input to the command line and the API: every case ends in one clear error
line and its exit code (or is accepted, where it should be), never a traceback, a hang, a
file left behind, or a silent wrong answer."""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import warnings

import msgpack
import pytest

import golden_models
from pyastore import batch, keys
from pyastore import format as fmt
from pyastore.cli import main
from pyastore.errors import SecurityWarning

INPUTS = ["amount", "velocity", "age_days"]


@pytest.fixture()
def trust(golden_pub):
    return ["--trust", str(golden_pub)]


def score(golden_path, trust, *argv):
    return main(["score", str(golden_path), *map(str, argv), *trust])


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def run_cli(*argv, stdin=None, timeout=60):
    result = subprocess.run([sys.executable, "-m", "pyastore", *map(str, argv)], input=stdin,
                            capture_output=True, timeout=timeout)
    stderr = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    return result.returncode, stderr + result.stdout.decode("utf-8", "replace")


# ---- input bytes and text --------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"amount,velocity,age_days\n1,2,3\n\xff\xfe,2,3\n",  # a used column
    b"amount,velocity,age_days,note\n1,2,3,caf\xe9\n",  # an ignored column
    b"amount,velocity,\xffage_days\n1,2,3\n",  # the header
])
def test_bytes_that_are_not_utf8_are_an_input_error(tmp_path, golden_path, trust, capsys, data):
    path = write(tmp_path / "in.csv", data)
    assert score(golden_path, trust, path, "-o", tmp_path / "out.csv") == 5
    assert "is not UTF-8" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_ndjson_numbers_and_nesting_beyond_what_a_float_or_the_parser_holds(
        tmp_path, golden_path, trust, capsys):
    lines = [
        json.dumps({"amount": 1, "velocity": 2, "age_days": 3}),
        '{"amount": 1' + "0" * 400 + ', "velocity": 2, "age_days": 3}',  # > float64
        '{"amount": ' + "1" * 5001 + ', "velocity": 2, "age_days": 3}',  # > int digits
        '{"amount": 1, "velocity": 2, "age_days": 3, "x": ' + "[" * 100000 + "]" * 100000 + "}",
    ]
    path = write(tmp_path / "in.ndjson", "\n".join(lines) + "\n")
    out = tmp_path / "out.ndjson"
    assert score(golden_path, trust, path, "-o", out, "--on-error", "null") == 0
    err = capsys.readouterr().err
    assert "bad row 2" in err and "is not a number" in err
    assert "line 3: not usable JSON" in err
    assert "line 4: JSON nested too deeply" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["P_fraud"] is not None and [r["P_fraud"] for r in rows[1:]] == [None] * 3


@pytest.mark.parametrize("cell", ["1_000", "\u0661\u0662", "\uff11"])
def test_numbers_are_ascii_without_underscores(tmp_path, golden_path, trust, capsys, cell):
    path = write(tmp_path / "in.csv", f"amount,velocity,age_days\n{cell},2,3\n")
    assert score(golden_path, trust, path) == 5
    assert "is not a number" in capsys.readouterr().err


def test_a_line_longer_than_the_limit_is_refused(tmp_path, golden_path, trust, capsys,
                                                 monkeypatch):
    monkeypatch.setattr(batch, "MAX_LINE_CHARS", 1000)
    path = write(tmp_path / "in.ndjson", json.dumps(
        {"amount": 1, "velocity": 2, "age_days": 3, "pad": "x" * 5000}) + "\n")
    assert score(golden_path, trust, path) == 5
    assert "line 1 is longer than 1,000 characters" in capsys.readouterr().err


def test_chunks_end_at_a_size_in_characters_too(tmp_path, golden_path, trust, monkeypatch):
    """Wide kept columns: chunks are cut by characters as well as rows; output unchanged."""
    seen = []
    real = batch.BatchScorer.score_chunk

    def spy(self, rows):
        seen.append(len(rows))
        return real(self, rows)

    monkeypatch.setattr(batch, "CHUNK_CHARS", 10000)
    monkeypatch.setattr(batch.BatchScorer, "score_chunk", spy)
    rows = [[f"{i}", 2, 3, "n" * 1000] for i in range(50)]
    with open(tmp_path / "in.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([INPUTS + ["note"], *rows])
    out = tmp_path / "out.csv"
    assert score(golden_path, trust, tmp_path / "in.csv", "-o", out, "--keep", "note") == 0
    assert max(seen) == 10 and sum(seen) == 50
    assert len(out.read_text().splitlines()) == 51


def test_csv_quirks_are_refused(tmp_path, golden_path, trust, capsys):
    path = write(tmp_path / "quote.csv", 'amount,velocity,age_days\n1,2,"3\n')
    assert score(golden_path, trust, path) == 5
    assert "unexpected end of data" in capsys.readouterr().err
    path = write(tmp_path / "dup.csv", "amount,velocity,age_days,amount\n1,2,3,4\n")
    assert score(golden_path, trust, path) == 5
    assert "two columns named 'amount' (columns 1 and 4)" in capsys.readouterr().err
    path = write(tmp_path / "ok.csv", "amount,velocity,age_days,note,note\n1,2,3,a,b\n")
    assert score(golden_path, trust, path) == 0  # an unused duplicate is harmless


def test_keep_cannot_duplicate_an_output_column(tmp_path, golden_path, trust, capsys):
    path = write(tmp_path / "in.csv", "amount,velocity,age_days,P_fraud\n1,2,3,x\n")
    assert score(golden_path, trust, path, "--keep", "P_fraud") == 2
    assert "already has a column of that name" in capsys.readouterr().err


def test_quoted_header_with_a_bom_on_stdin(golden_path, golden_pub):
    data = '\ufeff"amount","velocity","age_days"\n1,2,3\n'.encode()
    code, err = run_cli("score", golden_path, "-", "--trust", golden_pub, stdin=data)
    assert code == 0, err


def test_options_between_the_model_and_the_input(tmp_path, golden_path, golden_pub):
    path = write(tmp_path / "in.csv", "amount,velocity,age_days\n1,2,3\n")
    assert main(["score", str(golden_path), "--trust", str(golden_pub), str(path)]) == 0


def test_a_closed_stdin(golden_path, golden_pub):
    result = subprocess.run(
        f'"{sys.executable}" -m pyastore score "{golden_path}" --trust "{golden_pub}" <&-',
        shell=True, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "standard input is closed" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("threads", ["-1", "0", "100000", "two"])
def test_thread_counts_outside_the_range(tmp_path, golden_path, trust, capsys, threads):
    path = write(tmp_path / "in.csv", "amount,velocity,age_days\n1,2,3\n")
    with pytest.raises(SystemExit) as exited:
        score(golden_path, trust, path, "--threads", threads)
    assert exited.value.code == 2 and "--threads" in capsys.readouterr().err


# ---- outputs ---------------------------------------------------------------------------


def test_outputs_that_are_directories(tmp_path, golden_path, trust, capsys):
    path = write(tmp_path / "in.csv", "amount,velocity,age_days\n1,2,3\n")
    assert score(golden_path, trust, path, "-o", tmp_path) == 2
    assert "is a directory" in capsys.readouterr().err
    bad = write(tmp_path / "bad.csv", "amount,velocity,age_days\nx,2,3\n")
    assert score(golden_path, trust, bad, "--on-error", "skip", "--errors", tmp_path) == 2
    assert "is a directory" in capsys.readouterr().err


def test_a_device_and_a_fifo_are_written_to_not_replaced(tmp_path, golden_path, trust):
    path = write(tmp_path / "in.csv", "amount,velocity,age_days\n1,2,3\n")
    device = tmp_path / "null"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a copy of /dev/null
    assert score(golden_path, trust, path, "-o", device) == 0
    assert stat.S_ISCHR(os.stat(device).st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo).read()))
    reader.start()
    assert score(golden_path, trust, path, "-o", fifo) == 0
    reader.join(10)
    assert received and received[0].startswith("P_fraud\n")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_sigterm_mid_run_leaves_no_file_behind(tmp_path, golden_path, golden_pub):
    out = tmp_path / "out.csv"
    child = subprocess.Popen(
        [sys.executable, "-m", "pyastore", "score", str(golden_path), "-", "-o", str(out),
         "--trust", str(golden_pub)], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdin.write(b"amount,velocity,age_days\n1,2,3\n")
    child.stdin.flush()
    deadline = time.monotonic() + 30
    while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline, "the temporary output never appeared"
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 128 + signal.SIGTERM
    assert b"terminated by SIGTERM" in err and b"Traceback" not in err
    assert list(tmp_path.iterdir()) == []


# ---- special files as containers, keys and proofs --------------------------------------


def test_a_device_or_fifo_is_never_read_as_a_container_or_key(tmp_path, golden_path, golden_pub):
    fifo = tmp_path / "model.astore"
    os.mkfifo(fifo)
    code, err = run_cli("describe", fifo, timeout=30)  # nobody writes: must not block
    assert code == 2 and "not a regular file" in err
    code, err = run_cli("verify", "/dev/zero", timeout=30)  # endless: must not be read
    assert code == 2 and "not a regular file" in err
    key_fifo = tmp_path / "k.pub"
    os.mkfifo(key_fifo)
    code, err = run_cli("verify", golden_path, "--trust", key_fifo, timeout=30)
    assert code == 2 and "not a regular file" in err


def test_keygen_leaves_no_empty_key_when_the_disk_is_full(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(keys.KeyFileError, match="No space left on device"):
        keys.keygen(tmp_path / "publisher")
    assert list(tmp_path.iterdir()) == []


def test_a_secret_key_others_can_read_is_used_with_a_warning(tmp_path):
    secret, _ = keys.keygen(tmp_path / "publisher")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keys.SigningKey.load(secret)  # 0600: no warning
    os.chmod(secret, 0o644)
    with pytest.warns(SecurityWarning, match="readable or writable by others"):
        keys.SigningKey.load(secret)


# ---- hostile but validly signed META ---------------------------------------------------


def signed_with_meta(tmp_path, **changes):
    """The golden forest with META fields replaced, signed by the golden key."""
    spec = golden_models.tiny_forest_spec()
    meta = fmt.meta_dict(spec, golden_models.CREATED)
    meta.update(changes)

    def sorted_maps(value):  # canonical msgpack: maps with sorted keys, as readers require
        if isinstance(value, dict):
            return {key: sorted_maps(value[key]) for key in sorted(value)}
        return [sorted_maps(v) for v in value] if isinstance(value, list) else value

    body = msgpack.packb(sorted_maps(meta), use_bin_type=True)
    sections = [(b"META", body, True), (b"FRST", fmt.encode_forest(spec.forest), True)]
    path = tmp_path / "odd.astore"
    path.write_bytes(fmt.assemble(sections, golden_models.golden_key()))
    return path


def test_describe_shows_odd_meta_types_and_escapes_control_characters(tmp_path, trust, capsys):
    forged = "x\nsignature:     ed25519, valid, signer trusted\x1b[2J"
    path = signed_with_meta(tmp_path, name=forged, payload=[1, 2], provenance="text",
                            training_params=7, description=b"\x00\x01")
    assert main(["describe", str(path), *trust]) == 0
    text = capsys.readouterr().out
    assert "\nsignature:     ed25519, valid, signer trusted\x1b" not in text
    assert "x\\nsignature:" in text and "\\x1b[2J" in text
    assert main(["describe", str(path), "--json", *trust]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["meta"]["description"] == "0x0001"


@pytest.mark.parametrize("rules, message", [
    ({"task": "binary", "cutoff": "high"}, "cutoff 'high' is not a number"),
    ({"task": "binary", "class_labels": [0]}, "1 class labels; a binary model"),
    ({"task": "binary", "class_labels": "ab"}, "class_labels must be a list"),
])
def test_score_rules_a_decision_needs_are_checked_at_load(tmp_path, trust, capsys, rules,
                                                           message):
    path = signed_with_meta(tmp_path, score_rules=rules)
    csv_path = write(tmp_path / "in.csv", "amount,velocity,age_days\n1,2,3\n")
    assert main(["score", str(path), str(csv_path), "--label", *trust]) == 3
    assert message in capsys.readouterr().err


# ---- Parquet ---------------------------------------------------------------------------


def test_parquet_outputs_with_null_first_chunks_and_changing_kept_types(
        tmp_path, golden_path, trust, capsys):
    import pyarrow.parquet as pq

    rows = [["a", "x", 2, 3], ["b", 1, 2, 3], ["c", 1, 2, 3]]
    with open(tmp_path / "in.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["id"] + INPUTS, *rows])
    out = tmp_path / "out.parquet"
    assert score(golden_path, trust, tmp_path / "in.csv", "-o", out, "--keep", "id",
                 "--on-error", "null", "--chunk-rows", "1", "--label") == 0
    table = pq.read_table(out).to_pydict()
    assert table["id"] == ["a", "b", "c"] and table["P_fraud"][0] is None
    assert table["label"][0] is None and table["label"][1] in (0, 1)
    events = [{"id": 1, "amount": 1, "velocity": 2, "age_days": 3},
              {"id": "later text", "amount": 1, "velocity": 2, "age_days": 3}]
    source = write(tmp_path / "in.ndjson", "\n".join(map(json.dumps, events)) + "\n")
    assert score(golden_path, trust, source, "-o", tmp_path / "o2.parquet", "--keep", "id") == 5
    assert "kept column 'id' changes type" in capsys.readouterr().err
    assert not (tmp_path / "o2.parquet").exists()


def test_a_parquet_file_with_corrupt_pages(tmp_path, golden_path, trust, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "in.parquet"
    table = pa.table({name: [float(i) for i in range(5000)] for name in INPUTS})
    pq.write_table(table, path, compression="snappy")
    data = bytearray(path.read_bytes())
    for offset in range(200, len(data) - 400, 7):  # damage the pages, keep the footer
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    code = score(golden_path, trust, path, "-o", tmp_path / "out.csv")
    err = capsys.readouterr().err
    assert code == 5 and "in.parquet" in err, err
    assert not (tmp_path / "out.csv").exists()
