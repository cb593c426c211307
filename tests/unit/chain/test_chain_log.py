"""The Log API and offline proof bundles: happy paths and every refusal the log makes."""

from __future__ import annotations

import base64
import json

import pytest

from chain import checkpoint as checkpoints
from chain import merkle
from chain.errors import DuplicateRecordError, ProofError, RevokedError
from chain.log import Log
from chain.proof import ProofBundle, verify_bundle
from chain_testlib import (
    backend,  # noqa: F401 (a fixture)
    key_files,  # noqa: F401 (a fixture)
    log_key,  # noqa: F401 (a fixture)
    new_log,  # noqa: F401 (a fixture)
    seeded_key,
    store_key,
    submitter,  # noqa: F401 (a fixture)
)
from postgres.pg_testlib import pg_server  # noqa: F401 (a fixture)
from pyastore.errors import KeyFileError, LogError, UsageError

# Every log made with new_log here: once on SQLite, once on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")


def test_append_links_and_verifies(new_log, submitter):
    path, log = new_log(records=5)
    assert log.size == 5
    records = list(log.records())
    assert [r.index for r in records] == list(range(5))
    assert records[0].prev_hash == "0" * 64
    for before, after in zip(records, records[1:]):
        assert after.prev_hash == before.record_hash().hex()
    assert all(r.submitter == submitter.public_key.hex() for r in records)
    report = log.verify()
    assert report.size == 5 and report.models == 5
    assert report.root_hash == merkle.MemoryTree([r.record_hash() for r in records]).root()


def test_duplicate_publish_refused(new_log, submitter):
    _, log = new_log(records=3)
    with pytest.raises(DuplicateRecordError, match="already published .* at index 1") as caught:
        log.append_model(store_key(1).upper(), "again", "", seeded_key("someone else"))
    assert caught.value.index == 1
    assert log.size == 3


def test_bad_store_key_is_usage_error(new_log, submitter):
    _, log = new_log()
    with pytest.raises(UsageError, match="not a store key"):
        log.append_model("abc", "x", "", submitter)
    with pytest.raises(UsageError, match="name"):
        log.append_model(store_key(1), "n" * 1000, "", submitter)
    assert log.size == 0


def test_revoke_policy(new_log, submitter, log_key):
    _, log = new_log(records=3)
    with pytest.raises(LogError, match="not published"):
        log.revoke(store_key(99), "why", submitter)
    with pytest.raises(LogError, match="only the publisher"):
        log.revoke(store_key(1), "why", seeded_key("stranger"))
    with pytest.raises(UsageError, match="reason"):
        log.revoke(store_key(1), " ", submitter)
    record = log.revoke(store_key(1), "key leaked", submitter)
    assert record.kind == "revoke" and record.reason == "key leaked" and record.index == 3
    with pytest.raises(DuplicateRecordError, match="already revoked"):
        log.revoke(store_key(1), "again", log_key)
    log.revoke(store_key(2), "operator decision", log_key)  # the log key may revoke too
    status = log.status(store_key(1))
    assert status.published.index == 1 and status.revoked.index == 3
    assert log.verify().revocations == 2


def test_unknown_kinds_stored_and_flagged(new_log, submitter):
    _, log = new_log(records=1)
    log.append_record("score-receipt", "sha256:" + store_key(5), submitter, name="batch 7")
    report = log.verify()
    assert report.unknown_kind_indices == (1,)
    assert not log.record(1).kind_known


def test_checkpoint_signed_by_log_key(new_log, log_key):
    _, log = new_log(records=4)
    signed = log.checkpoint()
    assert signed.origin == "example.com/test" and signed.size == 4
    assert signed.root_hash == log.root()
    checkpoints.verify(signed.text, log_key.public_key)
    assert log.checkpoint().text == signed.text  # same size: the stored one
    assert log.verify().checkpoints_checked == 1


def test_log_key_handling(tmp_path, key_files, submitter):
    path = tmp_path / "k.log"
    Log.init(path, key_files["log.key"], origin="example.com/k").close()
    with Log.open(path) as log:  # remembered path
        log.append_model(store_key(0), "m", "", submitter)
        log.checkpoint()
        with pytest.raises(KeyFileError, match="not this log's key"):
            log.checkpoint(key_files["me.key"])
        with pytest.raises(KeyFileError, match="expected a secret key"):
            log.checkpoint(key_files["log.pub"])
    key_files["log.key"].rename(tmp_path / "moved.key")
    with Log.open(path) as log:
        log.append_model(store_key(1), "m", "", submitter)
        with pytest.raises(KeyFileError, match="log.key: no such file"):
            log.checkpoint()
        log.checkpoint(tmp_path / "moved.key")


def test_consistency_between_sizes(new_log, submitter):
    _, log = new_log(records=9)
    for old in range(0, 10):
        for new in range(old, 10):
            proof = log.consistency(old, new)
            merkle.verify_consistency(old, new, log.root(old), log.root(new), proof)
    with pytest.raises(UsageError):
        log.consistency(5, 20)


def _bundle(log, number: int = 2) -> bytes:
    return log.prove(store_key(number)).to_bytes()


def test_prove_and_verify_offline(new_log, log_key, submitter):
    _, log = new_log(records=20)
    data = _bundle(log, 13)
    verdict = verify_bundle(data, store_key(13), log_key.public_key)
    assert verdict.record.index == 13 and verdict.status_as_of_size == 20
    assert verdict.record.submitter == submitter.public_key.hex()
    assert "not revoked as of tree size 20" in verdict.summary()
    assert ProofBundle.from_bytes(data).to_bytes() == data
    assert len(ProofBundle.from_bytes(data).record.inclusion_proof) == 5
    verify_bundle(data, store_key(13).upper(), log_key.public_key, origin="example.com/test")
    log.recheck(verdict)


def test_proof_for_another_key_refused(new_log, log_key):
    _, log = new_log(records=5)
    with pytest.raises(ProofError, match="is for store key") as caught:
        verify_bundle(_bundle(log, 2), store_key(3), log_key.public_key)
    assert caught.value.expected == store_key(3) and caught.value.computed == store_key(2)


def test_unknown_log_key_refused(new_log):
    _, log = new_log(records=5)
    with pytest.raises(ProofError, match="not signed by the trusted log key"):
        verify_bundle(_bundle(log), store_key(2), seeded_key("another log").public_key)


def test_revoked_key_refused(new_log, log_key, submitter):
    _, log = new_log(records=5)
    log.revoke(store_key(2), "model leaked", submitter)
    with pytest.raises(RevokedError, match="revoked at log index 5.*model leaked") as caught:
        verify_bundle(_bundle(log), store_key(2), log_key.public_key)
    assert caught.value.index == 5
    verify_bundle(_bundle(log, 3), store_key(3), log_key.public_key)


def test_stale_bundle(new_log, log_key, submitter):
    """A bundle made before a revoke still verifies offline (status as of its checkpoint);
    a device that knows a newer size refuses it; the online recheck finds the revocation."""
    _, log = new_log(records=5)
    stale = _bundle(log)
    log.revoke(store_key(2), "bad model", submitter)
    verdict = verify_bundle(stale, store_key(2), log_key.public_key)
    assert verdict.status_as_of_size == 5
    with pytest.raises(ProofError, match="stale") as caught:
        verify_bundle(stale, store_key(2), log_key.public_key, min_tree_size=6)
    assert caught.value.computed == 5
    with pytest.raises(RevokedError, match="after the proof's checkpoint"):
        log.recheck(verdict)


def test_truncated_bundle_refused(new_log, log_key):
    _, log = new_log(records=5)
    data = _bundle(log)
    for cut in (0, 1, len(data) // 3, len(data) // 2, len(data) - 3):
        with pytest.raises(ProofError):
            verify_bundle(data[:cut], store_key(2), log_key.public_key)


def _edit(data: bytes, change) -> bytes:
    value = json.loads(data)
    change(value)
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda v: v["record"]["inclusion_proof"].pop(), "too short"),
        (lambda v: v["record"]["inclusion_proof"].append("00" * 32), "too long"),
        (lambda v: v["record"]["inclusion_proof"].__setitem__(0, "11" * 32), "expected root"),
        (lambda v: v["record"].__setitem__("index", 3), "claims index"),
        (lambda v: v.__setitem__("format", "other"), "format"),
        (lambda v: v.__setitem__("extra", 1), "unknown"),
        (lambda v: v.pop("revocations"), "missing"),
        (lambda v: v["record"].__setitem__("leaf", "AAAA"), "not a valid log record"),
        (
            lambda v: v.__setitem__("checkpoint", v["checkpoint"].replace("\n5\n", "\n6\n")),
            "invalid",
        ),
    ],
    ids=["short", "long", "flipped", "index", "format", "extra", "missing", "leaf", "forged-size"],
)
def test_damaged_bundle_refused(new_log, log_key, change, message):
    _, log = new_log(records=5)
    with pytest.raises(ProofError, match=message):
        verify_bundle(_edit(_bundle(log), change), store_key(2), log_key.public_key)


def test_record_with_forged_signature_refused(new_log, log_key):
    _, log = new_log(records=5)
    data = _bundle(log)

    def forge(value):
        leaf = bytearray(base64.b64decode(value["record"]["leaf"]))
        leaf[-3] = ord("1") if leaf[-3] != ord("1") else ord("2")  # one hex digit of the signature
        value["record"]["leaf"] = base64.b64encode(bytes(leaf)).decode()

    with pytest.raises(ProofError, match="invalid submitter signature"):
        verify_bundle(_edit(data, forge), store_key(2), log_key.public_key)


def test_bundle_cannot_smuggle_foreign_records_as_revocations(new_log, log_key):
    _, log = new_log(records=5)
    data = _bundle(log, 2)
    other = json.loads(_bundle(log, 3))["record"]
    with pytest.raises(ProofError, match="not a revocation"):
        verify_bundle(_edit(data, lambda v: v["revocations"].append(other)), store_key(2),
                      log_key.public_key)


def test_prove_without_log_key_uses_stored_checkpoint(tmp_path, log_key, submitter):
    path = tmp_path / "nokey.log"
    with Log.init(path, log_key, origin="example.com/nokey") as log:  # key object: not remembered
        log.append_model(store_key(0), "m", "", submitter)
        log.checkpoint()
    with Log.open(path) as log:
        log.append_model(store_key(1), "m", "", submitter)
        data = log.prove(store_key(0)).to_bytes()
        assert verify_bundle(data, store_key(0), log_key.public_key).status_as_of_size == 1
        with pytest.raises(LogError, match="no checkpoint covers record 1"):
            log.prove(store_key(1))
        with pytest.raises(LogError, match="not published"):
            log.prove(store_key(7))


def test_recheck_refuses_other_or_truncated_log(new_log, log_key, tmp_path, key_files, submitter):
    _, log = new_log(records=6)
    verdict = verify_bundle(_bundle(log), store_key(2), log_key.public_key)
    with Log.init(tmp_path / "other.log", key_files["log.key"], origin="example.com/test") as other:
        for number in range(3):
            other.append_model(store_key(number + 50), "x", "", submitter)
        with pytest.raises(ProofError, match="truncated"):
            other.recheck(verdict)
        for number in range(3):
            other.append_model(store_key(number + 60), "x", "", submitter)
        with pytest.raises(ProofError, match="two different roots for tree size 6"):
            other.recheck(verdict)
        other.append_model(store_key(70), "x", "", submitter)
        with pytest.raises(ProofError, match="consistency proof does not lead to the old root"):
            other.recheck(verdict)
