"""The signed-note rule of docs/CHAIN.md, as Go's note.Open applies it: the first signature
line that claims the trusted key (its name and key ID) decides; later lines claiming the same
key are ignored; other keys' lines are ignored; no line of the trusted key refuses the note."""

from __future__ import annotations

import base64

import pytest

from chain import checkpoint as checkpoints
from chain.errors import ProofError
from pyastore import keys

LOG = keys.SigningKey(bytes(range(32)))
WITNESS = keys.SigningKey(bytes(range(1, 33)))
BODY = checkpoints.Checkpoint("example.com/log", 3, bytes(range(32)))


def line(key: keys.SigningKey, name: str = "example.com/log", valid: bool = True) -> str:
    signature = key.sign(BODY.body().encode())
    if not valid:
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    blob = checkpoints.key_id(name, key.public_key) + signature
    return f"\u2014 {name} {base64.b64encode(blob).decode()}\n"


def note(*lines: str) -> str:
    return BODY.body() + "\n" + "".join(lines)


GOOD, BAD = line(LOG), line(LOG, valid=False)


@pytest.mark.parametrize("lines, verifies", [
    ((GOOD,), True),
    ((BAD,), False),                    # the trusted key's only line does not verify
    ((GOOD, BAD), True),                # a later line of the same key is ignored
    ((BAD, GOOD), False),               # the first line of the trusted key decides
    ((line(WITNESS, valid=False), GOOD), True),  # another key's bad line is ignored
    ((line(WITNESS, "witness.example"), GOOD), True),
    ((line(WITNESS, "witness.example"),), False),  # no line of the trusted key
    ((line(LOG, "other.example"),), False),        # the trusted key under another name
])
def test_first_line_of_the_trusted_key_decides(lines, verifies):
    text = note(*lines)
    if verifies:
        assert checkpoints.verify(text, LOG.public_key).size == 3
    else:
        with pytest.raises(ProofError):
            checkpoints.verify(text, LOG.public_key)
