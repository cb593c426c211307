"""Hypothesis-driven fuzzing of the Python surface: every parser of untrusted bytes either
accepts its input or raises the library's own error, never anything else.

* signed checkpoints (C2SP signed notes): ``chain.checkpoint.parse`` / ``verify`` on random
  text and on byte-level mutations of a real note -- only ``ProofError``;
* proof bundles: ``chain.proof.verify_bundle`` on mutations of a real bundle and on random
  JSON values -- only ``LogError`` (``ProofError``, ``RevokedError``);
* key files: ``pyastore.keys.load_public_key`` / ``load_secret_seed`` / ``parse_public_key``
  on random and mutated key text -- only ``PyastoreError``;
* META decoding: containers whose META is random msgpack or mutated bytes, re-framed and
  signed with the golden key, through ``pyastore.load`` and ``Model.describe`` -- only
  ``PyastoreError``;
* the CSV and NDJSON readers of ``pyastore score``: random and mutated input files -- an
  exit code the CLI documents, never a traceback.

Examples are derandomized (the same on every run) and the example counts are kept small
for CI; ``ASTORE_FUZZ_EXAMPLES`` raises them for a longer run.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import golden_models  # tests/golden, on sys.path through tests/conftest.py
import pyastore
from chain import checkpoint as checkpoints
from chain.errors import LogError, ProofError
from pyastore import errors, keys
from pyastore import format as fmt

ROOT = Path(__file__).resolve().parents[2]

EXAMPLES = int(os.environ.get("ASTORE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
CLI_EXIT_CODES = {0, 1, 2, 3, 4, 5, 6, 7, 8}


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """``original`` with a few bytes flipped, inserted, deleted or the tail cut."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "cut", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[at:at + draw(st.integers(1, 8))]
        elif kind == "cut":
            del data[at:]
        elif kind == "splice":
            data[at:at] = data[draw(st.integers(0, max(len(data) - 1, 0))):][:16]
    return bytes(data)


# ---- signed checkpoints ----------------------------------------------------------------

LOG_KEY = keys.SigningKey(bytes(range(32)))
NOTE = checkpoints.sign(checkpoints.Checkpoint("example.com/log", 7, bytes(32)),
                        LOG_KEY).text.encode()


def checkpoint_refuses_or_verifies(data: bytes | str) -> None:
    try:
        checkpoints.parse(data)
    except ProofError:
        pass
    try:
        checkpoints.verify(data, LOG_KEY.public_key)
    except ProofError:
        pass


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300), mutated(NOTE)))
def test_checkpoint_parser_raises_only_proof_error(data):
    checkpoint_refuses_or_verifies(data)


def test_the_unmutated_note_verifies():
    assert checkpoints.verify(NOTE, LOG_KEY.public_key).size == 7


# ---- proof bundles -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from chain.log import Log

    folder = tmp_path_factory.mktemp("log")
    key_path = folder / "log.key"
    key_path.write_text(f"ed25519-secret:{LOG_KEY.seed.hex()}\n")
    key_path.chmod(0o600)
    log = Log.init(folder / "test.log", key_path, origin="example.com/fuzz")
    store_key = "ab" * 32
    log.append_model(store_key, "model", "", keys.SigningKey(bytes(32)),
                     time="2025-01-01T00:00:00Z")
    data = log.prove(store_key, key_path).to_bytes()
    log.close()
    return store_key, data


def bundle_refuses_or_verifies(data: bytes, store_key: str) -> None:
    from chain.proof import verify_bundle

    try:
        verify_bundle(data, store_key, LOG_KEY.public_key)
    except LogError:
        pass


def test_the_unmutated_bundle_verifies(bundle):
    from chain.proof import verify_bundle

    store_key, data = bundle
    assert verify_bundle(data, store_key, LOG_KEY.public_key)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=20)


@FUZZ
@given(st.data())
def test_bundle_verifier_raises_only_log_errors(bundle, data):
    store_key, original = bundle
    value = json.loads(original)
    choice = data.draw(st.sampled_from(["bytes", "field", "record_field", "whole"]))
    if choice == "bytes":
        candidate = data.draw(mutated(original))
    elif choice == "field":
        value[data.draw(st.sampled_from(sorted(value)))] = data.draw(json_values)
        candidate = json.dumps(value).encode()
    elif choice == "record_field":
        record = value["record"]
        record[data.draw(st.sampled_from(sorted(record)))] = data.draw(json_values)
        candidate = json.dumps(value).encode()
    else:
        candidate = json.dumps(data.draw(json_values)).encode()
    bundle_refuses_or_verifies(candidate, store_key)


# ---- key files -----------------------------------------------------------------------------

PUBLIC_LINE = keys.public_key_line(LOG_KEY.public_key).encode()
SECRET_LINE = f"ed25519-secret:{LOG_KEY.seed.hex()}\n".encode()


@FUZZ
@given(st.one_of(st.binary(max_size=200), mutated(PUBLIC_LINE), mutated(SECRET_LINE)))
def test_key_files_raise_only_pyastore_errors(tmp_path, data):
    path = tmp_path / "fuzzed.key"
    path.write_bytes(data)
    path.chmod(0o600)
    for load in (keys.load_public_key, keys.load_secret_seed, keys.SigningKey.load):
        try:
            load(path)
        except errors.PyastoreError:
            pass
    try:
        keys.parse_public_key(data.decode("utf-8", "surrogateescape"))
    except errors.PyastoreError:
        pass


# ---- META decoding -------------------------------------------------------------------------

GOLDEN = golden_models.build("tiny_forest")
GOLDEN_KEY = golden_models.golden_key()


def sections_of(data: bytes) -> dict[bytes, bytes]:
    count = struct.unpack_from("<I", data, 24)[0]
    out = {}
    for i in range(count):
        kind, _, offset, length = struct.unpack_from("<4sIQQ", data, 64 + 32 * i)
        out[kind] = data[offset:offset + length]
    return out


META = sections_of(GOLDEN)[b"META"]
FRST = sections_of(GOLDEN)[b"FRST"]

msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats()
    | st.text(max_size=12) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=16)


def sorted_maps(value):
    """``value`` with every map's keys sorted: the canonical form META must have."""
    if isinstance(value, dict):
        return {key: sorted_maps(value[key]) for key in sorted(value)}
    return [sorted_maps(item) for item in value] if isinstance(value, list) else value


def load_and_describe(meta: bytes) -> None:
    data = fmt.assemble([(b"META", meta, True), (b"FRST", FRST, True)], GOLDEN_KEY)
    try:
        model = pyastore.load(data, trusted_keys=[GOLDEN_KEY.public_key])
    except errors.PyastoreError:
        return
    model.describe()


@FUZZ
@given(st.data())
def test_meta_decoding_raises_only_pyastore_errors(data):
    choice = data.draw(st.sampled_from(["bytes", "field", "random"]))
    if choice == "bytes":
        meta = data.draw(mutated(META))
    elif choice == "field":
        value = msgpack.unpackb(META, raw=False)
        value[data.draw(st.sampled_from(sorted(value)))] = data.draw(msgpack_values)
        meta = msgpack.packb(sorted_maps(value) if data.draw(st.booleans()) else value,
                             use_bin_type=True)
    else:
        meta = msgpack.packb(data.draw(msgpack_values), use_bin_type=True)
    load_and_describe(meta)


# ---- the CSV and NDJSON readers of `pyastore score` ------------------------------------------

CSV = b"amount,velocity,age_days\n0,0,0\n1,2,-1\n,3,0.25\n"
NDJSON = b'{"amount": 0, "velocity": 0, "age_days": 0}\n{"amount": 1, "velocity": null, ' \
         b'"age_days": 2}\n'


@pytest.fixture(scope="module")
def scoring(tmp_path_factory):
    folder = tmp_path_factory.mktemp("score")
    model = folder / "model.astore"
    model.write_bytes(GOLDEN)
    pub = folder / "golden.pub"
    pub.write_text(keys.public_key_line(GOLDEN_KEY.public_key))
    return folder, model, pub


HOSTILE_TOKENS = [b"9" * 5001, b"1" * 401, b"1e400", b"-1e400", b"[" * 3000 + b"]" * 3000,
                  b'{"a":' * 2000 + b"1" + b"}" * 2000, b"\xff\xfe", b"\xef\xbb\xbf", b'"',
                  b'"unterminated', b"1_000", "\u0661\u0662".encode(), b"nan", b"inf", b"\r",
                  b"\x00", b",,,,", b"\n\n", b"amount", b"null", b"true", b"{}", b"[]"]


@st.composite
def spliced(draw, original: bytes) -> bytes:
    """``original`` with tokens that break naive readers spliced in at random places."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.sampled_from(HOSTILE_TOKENS))
    return bytes(data)


@FUZZ
@given(data=st.data())
def test_score_readers_exit_with_a_documented_code(scoring, data, capsys):
    from pyastore.cli import main

    folder, model, pub = scoring
    suffix = data.draw(st.sampled_from([".csv", ".ndjson"]))
    original = CSV if suffix == ".csv" else NDJSON
    content = data.draw(st.one_of(mutated(original), spliced(original),
                                  st.binary(max_size=200)))
    source = folder / f"input{suffix}"
    source.write_bytes(content)
    out = folder / f"out{suffix}"
    code = main(["score", str(model), str(source), "-o", str(out), "--trust", str(pub)])
    captured = capsys.readouterr()
    assert code in CLI_EXIT_CODES, (content, code, captured.err[-2000:])
    assert "Traceback" not in captured.err, (content, captured.err[-2000:])
