"""Signed checkpoints: C2SP signed-note syntax, key IDs, forged and unknown-key notes."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import checkpoint as checkpoints
from chain.errors import ProofError
from chain.merkle import leaf_hash
from chain_testlib import seeded_key

ROOT = leaf_hash(b"root")


def _signed(size: int = 5, origin: str = "example.com/log", key=None) -> str:
    key = key or seeded_key("log key")
    return checkpoints.sign(checkpoints.Checkpoint(origin, size, ROOT), key).text


def test_layout_matches_tlog_checkpoint():
    key = seeded_key("log key")
    text = _signed(key=key)
    lines = text.split("\n")
    assert lines[:4] == ["example.com/log", "5", base64.b64encode(ROOT).decode(), ""]
    assert lines[4].startswith("\u2014 example.com/log ")
    assert lines[5:] == [""]
    blob = base64.b64decode(lines[4].split(" ")[2])
    assert len(blob) == 68
    # key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4]  (c2sp.org/signed-note)
    expected_id = hashlib.sha256(b"example.com/log\n\x01" + key.public_key).digest()[:4]
    assert blob[:4] == expected_id
    body = "example.com/log\n5\n" + base64.b64encode(ROOT).decode() + "\n"
    from pyastore import keys

    assert keys.verify(key.public_key, body.encode(), blob[4:])


def test_verifier_key_string():
    key = seeded_key("log key")
    vkey = checkpoints.verifier_key("example.com/log", key.public_key)
    name, key_id_hex, encoded = vkey.split("+", 2)
    assert name == "example.com/log"
    assert bytes.fromhex(key_id_hex) == checkpoints.key_id(name, key.public_key)
    assert base64.b64decode(encoded) == b"\x01" + key.public_key


@settings(max_examples=100, deadline=None)
@given(
    origin=st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1,
        max_size=30,
    ).filter(lambda s: "+" not in s and s == s.strip()),
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
)
def test_round_trip(origin, size, root):
    checkpoint = checkpoints.Checkpoint(origin, size, root)
    assert checkpoints.Checkpoint.parse_body(checkpoint.body()) == checkpoint
    signed = checkpoints.sign(checkpoint, seeded_key("log key"))
    assert checkpoints.parse(signed.text) == signed
    key = seeded_key("log key")
    assert checkpoints.verify(signed.text, key.public_key).checkpoint == checkpoint


def test_verify_accepts_and_ignores_other_signatures():
    key, witness = seeded_key("log key"), seeded_key("witness")
    text = _signed(key=key)
    witness_line = checkpoints.NoteSignature(
        "witness.example", checkpoints.key_id("witness.example", witness.public_key), b"\x00" * 64
    ).line()
    signed = checkpoints.verify(text + witness_line, key.public_key)
    assert signed.size == 5 and signed.root_hash == ROOT


def test_unknown_key_refused():
    text = _signed(key=seeded_key("some other log"))
    with pytest.raises(ProofError, match="not signed by the trusted log key"):
        checkpoints.verify(text, seeded_key("log key").public_key)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace("\n5\n", "\n6\n", 1),
        lambda t: t.replace(
            base64.b64encode(ROOT).decode(), base64.b64encode(leaf_hash(b"x")).decode()
        ),
        lambda t: t.replace("\n\n", "\nextra\n\n", 1),
    ],
    ids=["size", "root", "extension"],
)
def test_forged_body_refused(mutate):
    key = seeded_key("log key")
    with pytest.raises(ProofError, match="invalid"):
        checkpoints.verify(mutate(_signed(key=key)), key.public_key)


def test_origin_pinning():
    key = seeded_key("log key")
    with pytest.raises(ProofError, match="expected log"):
        checkpoints.verify(_signed(key=key), key.public_key, origin="example.com/other")


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "truncated"),
        ("example.com/log\n5\n", "empty line"),
        ("example.com/log\n5\nAAAA\n\n", "no signature"),
        ("example.com/log\n05\n{root}\n\n\u2014 a AAAAAAA=\n", "decimal"),
        ("example.com/log\n5\n{root}\n\n-- a AAAAAAA=\n", "malformed signature"),
        ("example.com/log\n5\n{root}\n\n\u2014 a b c\n", "malformed signature"),
        ("example.com/log\n5\n{root}\n\n\u2014 a AAAAAAA\n", "base64"),
        ("example.com/log\n5\nAAAA\n\n\u2014 a AAAAAAA=\n", "root hash is 3 bytes"),
        ("example.com/log\r\n5\n{root}\n\n\u2014 a AAAAAAA=\n", "control"),
        ("example.com/log\n5\n{root}\n\n\n\u2014 a AAAAAAA=\n", "extension"),
        ("example.com/log\n5\n{root}\n\n\u2014 a AAAAAAA=", "truncated"),
    ],
)
def test_strict_parsing(text, message):
    text = text.replace("{root}", base64.b64encode(ROOT).decode())
    with pytest.raises(ProofError, match=message):
        checkpoints.parse(text)


def test_truncated_signed_note_refused():
    key = seeded_key("log key")
    text = _signed(key=key)
    for cut in range(0, len(text) - 1, 7):
        with pytest.raises(ProofError):
            checkpoints.verify(text[:cut], key.public_key)
