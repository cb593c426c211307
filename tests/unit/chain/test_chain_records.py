"""Record values: the round-trip law, canonical-form refusals, signatures."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.errors import ProofError
from chain.proof import ProofBundle, ProofEntry
from chain.records import (
    GENESIS_PREV_HASH,
    SIGNING_DOMAIN,
    Record,
    RecordError,
    parse_subject,
)
from chain_testlib import seeded_key, store_key
from pyastore.errors import UsageError

HEX = "0123456789abcdef"
hex64 = st.text(alphabet=HEX, min_size=64, max_size=64)
times = st.builds(
    lambda y, mo, d, h, mi, s, frac: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}Z",
    st.integers(1970, 2200), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23),
    st.integers(0, 59), st.integers(0, 59),
    st.sampled_from(["", ".5", ".123456"]),
)
records = st.builds(
    Record,
    index=st.integers(0, 2**63 - 1),
    kind=st.sampled_from(["model", "revoke", "score-receipt", "fed-share", "x"]),
    subject=st.one_of(hex64, hex64.map(lambda h: "sha256:" + h)),
    name=st.text(max_size=40),
    description=st.text(max_size=200),
    time=times,
    submitter=hex64,
    prev_hash=hex64,
    reason=st.text(max_size=40),
    signature=st.text(alphabet=HEX, min_size=128, max_size=128),
)


@settings(max_examples=200, deadline=None)
@given(records)
def test_round_trip(record):
    data = record.encode()
    assert Record.decode(data) == record
    assert Record.decode(data).encode() == data


def _record(**changes) -> Record:
    base = Record(
        index=0, kind="model", subject=store_key(1), name="fraud", description="d",
        time="2025-01-01T00:00:00Z", submitter="0" * 64, prev_hash=GENESIS_PREV_HASH,
        reason="", signature="",
    )
    return dataclasses.replace(base, **changes)


def test_signature_covers_every_field():
    key = seeded_key("signer")
    record = _record().signed(key)
    assert record.submitter == key.public_key.hex()
    assert record.signature_valid()
    assert record.signing_message().startswith(SIGNING_DOMAIN)
    for field, value in [
        ("index", 1), ("kind", "revoke"), ("subject", store_key(2)), ("name", "other"),
        ("description", "x"), ("time", "2025-01-01T00:00:01Z"), ("prev_hash", "1" * 64),
        ("reason", "r"), ("submitter", seeded_key("other").public_key.hex()),
    ]:
        assert not dataclasses.replace(record, **{field: value}).signature_valid(), field


def test_unsigned_record_cannot_be_encoded():
    with pytest.raises(RecordError, match="not signed"):
        _record().encode()


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"index": -1}, "index"),
        ({"index": True}, "index"),
        ({"kind": "Model"}, "kind"),
        ({"kind": ""}, "kind"),
        ({"subject": store_key(1).upper()}, "subject"),
        ({"subject": "sha512:" + "0" * 64}, "subject"),
        ({"time": "2025-01-01 00:00:00"}, "time"),
        ({"time": "2025-01-01T00:00:00+00:00"}, "time"),
        ({"submitter": "xyz"}, "submitter"),
        ({"prev_hash": "0" * 63}, "prev_hash"),
        ({"name": "n" * 300}, "name"),
        ({"signature": "ab"}, "signature"),
    ],
)
def test_invalid_fields_refused(changes, message):
    with pytest.raises(RecordError, match=message):
        _record(**changes)


def test_unknown_kinds_are_flagged_not_refused():
    assert _record(kind="model").kind_known
    assert _record(kind="revoke").kind_known
    assert not _record(kind="score-receipt").kind_known


def test_decode_refuses_non_canonical_and_garbage():
    record = _record().signed(seeded_key("signer"))
    data = record.encode()
    fields = msgpack.unpackb(data)
    # the same value with a non-minimal integer encoding (uint64 for the index)
    uint64_index = b"\xcf" + (0).to_bytes(8, "big")
    non_canonical = b"\x9b" + b"\x01" + uint64_index + msgpack.packb(fields[2:])[1:]
    with pytest.raises(RecordError):
        Record.decode(non_canonical)
    with pytest.raises(RecordError, match="canonical"):
        Record.decode(msgpack.packb([1, 0] + fields[2:]).replace(b"\xa5model", b"\xd9\x05model"))
    with pytest.raises(RecordError, match="version"):
        Record.decode(msgpack.packb([2] + fields[1:]))
    with pytest.raises(RecordError, match="11 fields"):
        Record.decode(msgpack.packb(fields[:-1]))
    with pytest.raises(RecordError, match="MessagePack"):
        Record.decode(data[:-5])
    with pytest.raises(RecordError):
        Record.decode(data + b"\x00")
    with pytest.raises(RecordError):
        Record.decode(b"")


hashes = st.binary(min_size=32, max_size=32)
entries = st.builds(
    ProofEntry, st.integers(0, 2**40), st.binary(max_size=300),
    st.lists(hashes, max_size=40).map(tuple),
)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200), entries, st.lists(entries, max_size=3))
def test_proof_bundle_round_trip(checkpoint_text, record, revocations):
    bundle = ProofBundle(checkpoint_text, record, tuple(revocations))
    assert ProofBundle.from_bytes(bundle.to_bytes()) == bundle


def test_parse_subject_normalizes_and_keeps_the_digest_prefix():
    key = "ab" * 32
    assert parse_subject(f"  {key.upper()}\n") == key
    assert parse_subject(f"SHA256:{key.upper()}") == f"sha256:{key}"  # a digest stays a digest
    with pytest.raises(UsageError, match="is not a store key"):
        parse_subject(key[:-2])
    with pytest.raises(ProofError, match="or a payload digest"):
        parse_subject(f"sha512:{key}", ProofError)
    with pytest.raises(UsageError):
        parse_subject(None)
