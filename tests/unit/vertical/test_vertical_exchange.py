"""The exchange: sealed boxes, the content-addressed store, signed blob records, and every
check the receiver makes, each refusal with an error that names what failed."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.log import Log
from chain.records import KIND_BLOB
from pyastore.errors import KeyFileError, UsageError
from trainer.vertical import crypto
from trainer.vertical.errors import (
    DecryptionError,
    DigestMismatchError,
    ExchangeTimeoutError,
    MessageError,
    MissingBlobError,
    ReplayError,
    UnknownSenderError,
    WrongRecipientError,
)
from trainer.vertical.exchange import Exchange
from trainer.vertical.ids import IdKey
from trainer.vertical.messages import Announcement, Message, new_request_id
from trainer.vertical.roster import Participant, Roster
from trainer.vertical.store import DirectoryStore, digest_of
from vertical_testlib import make_federation, seeded_key


@pytest.fixture
def fed(tmp_path):
    return make_federation(tmp_path)


def _representations(fed, sender="bank", round_number=0) -> Message:
    host_key = crypto.key_id(fed.roster.host.box_key)
    return Message(kind="representations", sender=sender, recipient=host_key,
                   round=round_number, request_id=new_request_id(),
                   ids=bytes(range(32)) + bytes(range(1, 33)), width=2,
                   values=b"\x00\x00\x80\x3f" * 4, labels=b"\x00\x01")


def _announce(fed, signer, digest: str, announcement: Announcement) -> int:
    with Log.open(fed.log_path) as log:
        return log.append_record(KIND_BLOB, digest, signer, name=f"vertical {announcement.kind}",
                                 description=announcement.to_description()).index


# ---- values and files --------------------------------------------------------------------


def test_message_round_trip_and_canonical_form(fed):
    message = _representations(fed)
    assert Message.decode(message.encode(), "m") == message
    import msgpack

    value = msgpack.unpackb(message.encode(), raw=False)
    with pytest.raises(MessageError, match="not a message"):
        Message.decode(msgpack.packb({**value, "extra": 1}), "m")
    with pytest.raises(MessageError, match="value bytes for 2 rows"):
        dataclasses.replace(message, values=b"\x00" * 4).encode()
    with pytest.raises(MessageError, match="0/1 label"):
        dataclasses.replace(message, labels=b"\x00\x02").encode()


def test_store_is_content_addressed_and_checks_what_it_returns(tmp_path):
    store = DirectoryStore(tmp_path / "store")
    digest = store.put(b"ciphertext")
    assert digest == digest_of(b"ciphertext")
    assert store.path_of(digest).name == digest.split(":")[1]
    assert store.put(b"ciphertext") == digest and list(store.digests()) == [digest]
    assert store.get(digest) == b"ciphertext"
    store.path_of(digest).write_bytes(b"Ciphertext")
    with pytest.raises(DigestMismatchError, match=f"expected {digest}"):
        store.get(digest)
    with pytest.raises(MissingBlobError, match="not in the store"):
        store.get(digest_of(b"other"))
    with pytest.raises(UsageError, match="not a digest"):
        store.get("sha256:xyz")


def test_sealed_box_opens_only_for_its_recipient():
    alice, bob = crypto.BoxKey.generate(), crypto.BoxKey.generate()
    sealed = crypto.seal(b"hello", alice.public)
    assert sealed != crypto.seal(b"hello", alice.public)  # a fresh ephemeral key each time
    assert alice.open(sealed, "m") == b"hello"
    with pytest.raises(DecryptionError, match="does not open"):
        bob.open(sealed, "m")
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(DecryptionError, match="altered"):
        alice.open(bytes(tampered), "m")


def test_box_key_files(tmp_path):
    secret_path, public_path, key = crypto.write_box_key_files(tmp_path / "bank")
    assert stat.S_IMODE(os.stat(secret_path).st_mode) == 0o600
    assert crypto.BoxKey.load(secret_path) == key
    assert crypto.load_box_public_key(public_path) == key.public
    with pytest.raises(KeyFileError, match="already exists"):
        crypto.write_box_key_files(tmp_path / "bank")
    with pytest.raises(KeyFileError, match="expected the public key"):
        crypto.load_box_public_key(secret_path)


def test_pseudonyms_are_keyed():
    key, other = IdKey(b"k" * 32), IdKey(b"j" * 32)
    assert key.pseudonym("17") == key.pseudonym(" 17 ") != key.pseudonym("017")
    assert key.pseudonym("17") != other.pseudonym("17")
    assert key.pseudonym("17") != hashlib.sha256(b"17").digest()
    assert "k" * 8 not in repr(key)


def test_roster_round_trip_and_refusals(fed):
    assert Roster.parse(fed.roster.to_json()) == fed.roster
    host = fed.roster.host
    with pytest.raises(UsageError, match="exactly one host"):
        Roster(tuple(p for p in fed.roster.participants if p.role == "party"))
    with pytest.raises(UsageError, match="listed twice"):
        Roster(fed.roster.participants + (Participant("spare", "party", host.sign_key,
                                                      b"\x07" * 32),))
    with pytest.raises(UsageError, match="not a roster"):
        Roster.parse('{"participants": []}')


# ---- sending and receiving -----------------------------------------------------------------


def test_send_then_receive(fed):
    message = _representations(fed)
    with fed.exchange("bank") as bank, fed.exchange("host") as host:
        sent = bank.send(message)
        received = host.inbox()
        assert [r.message for r in received] == [message]
        assert received[0].digest == sent.digest and received[0].index == sent.index
        assert host.inbox() == []  # each record is received once
    with Log.open(fed.log_path) as log:
        record = log.record(sent.index)
    assert record.kind == KIND_BLOB and record.subject == sent.digest
    assert record.submitter == fed.signing["bank"].public_key.hex()
    announcement = Announcement.from_description(record.description, "r")
    assert announcement == message.announcement()
    assert fed.store.get(sent.digest) != message.encode()  # the store holds ciphertext


def test_tampered_ciphertext_in_the_store_is_refused(fed):
    with fed.exchange("bank") as bank, fed.exchange("host") as host:
        sent = bank.send(_representations(fed))
        path = fed.store.path_of(sent.digest)
        data = bytearray(path.read_bytes())
        data[40] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(DigestMismatchError, match=f"hash to sha256:.*expected {sent.digest}"):
            host.inbox()


def test_tampered_ciphertext_announced_under_its_own_digest_does_not_open(fed):
    message = _representations(fed)
    sealed = bytearray(crypto.seal(message.encode(), fed.roster.host.box_key))
    sealed[50] ^= 0x01
    digest = fed.store.put(bytes(sealed))
    index = _announce(fed, fed.signing["bank"], digest, message.announcement())
    with fed.exchange("host") as host:
        with pytest.raises(DecryptionError, match=f"log record {index}.*does not open"):
            host.inbox()


def test_wrong_recipient_is_refused(fed):
    bank_key = crypto.key_id(fed.roster.get("bank").box_key)
    message = dataclasses.replace(
        _representations(fed, sender="personal"), kind="predict-request", recipient=bank_key,
        ids=bytes(32), width=0, values=b"", labels=b"")
    with fed.exchange("personal") as personal, fed.exchange("host") as host:
        personal.send(message)
        with Log.open(fed.log_path) as log:
            record = log.record(log.size - 1)
        assert host.inbox() == []  # not the host's: it does not even try
        with pytest.raises(WrongRecipientError, match=r"\(bank\), not to host"):
            host.receive(record)


def test_message_sealed_to_another_key_than_announced_is_refused(fed):
    message = _representations(fed)
    sealed = crypto.seal(message.encode(), fed.roster.get("personal").box_key)
    _announce(fed, fed.signing["bank"], fed.store.put(sealed), message.announcement())
    with fed.exchange("host") as host:
        with pytest.raises(DecryptionError, match="not sealed to this key"):
            host.inbox()


def test_replayed_request_id_is_refused(fed):
    message = _representations(fed)
    with fed.exchange("bank") as bank, fed.exchange("host") as host:
        sent = bank.send(message)
        assert len(host.inbox()) == 1
        replay = _announce(fed, fed.signing["bank"], sent.digest, message.announcement())
        with pytest.raises(ReplayError, match=f"log record {replay}.*{message.request_id} was "
                                              f"already used by log record {sent.index}"):
            host.inbox()
    with fed.exchange("host") as fresh:  # a new receiver finds the replay from the log alone
        with pytest.raises(ReplayError, match="already used"):
            fresh.inbox()


def test_blob_announced_by_a_non_party_is_refused(fed):
    outsider = seeded_key("outsider")
    message = _representations(fed)
    sealed = crypto.seal(message.encode(), fed.roster.host.box_key)
    _announce(fed, outsider, fed.store.put(sealed), message.announcement())
    with fed.exchange("host") as host:
        with pytest.raises(UnknownSenderError, match="not a participant's key in the roster"):
            host.inbox()


def test_record_signed_by_another_party_than_it_names_is_refused(fed):
    message = _representations(fed, sender="bank")
    sealed = crypto.seal(message.encode(), fed.roster.host.box_key)
    _announce(fed, fed.signing["personal"], fed.store.put(sealed), message.announcement())
    with fed.exchange("host") as host:
        with pytest.raises(UnknownSenderError, match="signed by personal but names 'bank'"):
            host.inbox()


def test_ciphertext_reannounced_under_another_sender_is_refused(fed):
    message = _representations(fed, sender="bank")
    sealed = crypto.seal(message.encode(), fed.roster.host.box_key)
    forged = dataclasses.replace(message.announcement(), sender="personal",
                                 request_id=new_request_id())
    _announce(fed, fed.signing["personal"], fed.store.put(sealed), forged)
    with fed.exchange("host") as host:
        with pytest.raises(MessageError, match="differs from its signed announcement"):
            host.inbox()


def test_record_whose_digest_names_no_blob_is_refused(fed):
    message = _representations(fed)
    ghost = digest_of(b"never stored")
    index = _announce(fed, fed.signing["bank"], ghost, message.announcement())
    with fed.exchange("host") as host:
        with pytest.raises(MissingBlobError, match=f"blob {ghost} is announced but not in"):
            host.inbox()
    assert index >= 0


def test_keys_must_match_the_roster(fed):
    with pytest.raises(UnknownSenderError, match="not the one the roster lists"):
        Exchange(fed.log_path, fed.store, fed.roster, "bank", fed.signing["personal"],
                 fed.boxes["bank"])
    with pytest.raises(WrongRecipientError, match="box key given for 'bank'"):
        Exchange(fed.log_path, fed.store, fed.roster, "bank", fed.signing["bank"],
                 fed.boxes["host"])


def test_wait_times_out_naming_what_it_waited_for(fed):
    with fed.exchange("host") as host:
        started = time.monotonic()
        with pytest.raises(ExchangeTimeoutError, match="timed out after 0.3 s waiting for "
                                                       "the bank's answer"):
            host.wait(lambda: None, 0.3, "the bank's answer")
        assert time.monotonic() - started < 2.0
        assert ExchangeTimeoutError("x").exit_code == 8


# ---- round-trip laws --------------------------------------------------------------------------

_HEX32 = st.binary(min_size=16, max_size=16).map(bytes.hex)
_KEY_ID = st.binary(min_size=32, max_size=32).map(lambda b: hashlib.sha256(b).hexdigest())


@st.composite
def messages(draw) -> Message:
    kind = draw(st.sampled_from(["representations", "predict-request", "predict-response",
                                 "close"]))
    rows = 0 if kind == "close" else draw(st.integers(0, 6))
    width = draw(st.integers(1, 5)) if kind in ("representations", "predict-response") else 0
    return Message(kind=kind, sender=draw(st.sampled_from(["bank", "personal", "host"])),
                   recipient=draw(_KEY_ID), round=draw(st.integers(0, 2**31 - 1)),
                   request_id=draw(_HEX32),
                   reply_to=draw(_HEX32) if kind == "predict-response" else "",
                   ids=draw(st.binary(min_size=32 * rows, max_size=32 * rows)), width=width,
                   values=draw(st.binary(min_size=4 * rows * width, max_size=4 * rows * width)),
                   labels=bytes(draw(st.lists(st.integers(0, 1), min_size=rows, max_size=rows)))
                   if kind == "representations" else b"")


@settings(max_examples=200, deadline=None)
@given(messages())
def test_message_round_trip_law(message):
    assert Message.decode(message.encode(), "m") == message
    announcement = message.announcement()
    assert Announcement.from_description(announcement.to_description(), "r") == announcement


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=32, max_size=32),
                          st.binary(min_size=32, max_size=32)), min_size=2, max_size=5,
                unique_by=(lambda k: k[0], lambda k: k[1])))
def test_roster_round_trip_law(key_pairs):
    participants = tuple(Participant(f"p{i}", "host" if i == 0 else "party", sign, box)
                         for i, (sign, box) in enumerate(key_pairs))
    if len({k for pair in key_pairs for k in pair}) != 2 * len(key_pairs):
        return  # a key shared between a signing and a box slot: refused, tested above
    roster = Roster(participants)
    assert Roster.parse(roster.to_json()) == roster
