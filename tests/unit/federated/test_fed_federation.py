"""A federation end to end: bounded overwritten registry, signed anchored trees, final models,
and GET refusing forged, non-member, unanchored, misaddressed and altered trees."""

from __future__ import annotations

import json

import numpy as np
import pytest

import pyastore
from chain.log import Log
from chain.records import KIND_FIT, KIND_PROCESS, KIND_SHARE, KIND_STATUS
from fedlib import FEATURES, seeded_key, small_federation
from pyastore.errors import UsageError
from trainer.federated import containers, logbook
from trainer.federated.registry import Registry
from trainer.federated.trees import TreeId, predict_tree


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    return small_federation(tmp_path_factory.mktemp("ring"), n_agents=4, topology="ring",
                            rounds=3)


def test_registry_overwrites_and_is_bounded(tmp_path):
    registry = Registry(tmp_path / "reg", capacity=2)
    registry.write_slot(0, 1, 1, [b"a", b"b"])
    registry.write_slot(0, 1, 2, [b"c"])
    slots, refusals = registry.read_slots(1)
    assert refusals == [] and len(slots) == 1
    assert slots[0].containers == (b"c",) and slots[0].round == 2 and slots[0].sender == 0
    with pytest.raises(UsageError, match="at most 2"):
        registry.write_slot(0, 1, 3, [b"x", b"y", b"z"])
    assert registry.read_slots(1)[0][0].containers == (b"c",)  # a refused write changes nothing
    registry.slot_path(2, 1).write_bytes(b"\xc1 not msgpack")
    slots, refusals = registry.read_slots(1)
    assert [r.reason for r in refusals] == ["malformed"] and len(slots) == 1


def test_ring_run_registry_holds_one_bounded_slot_per_directed_edge(ring):
    assert ring.registry.slot_count() == 4 * 2
    for receiver in range(4):
        slots, refusals = ring.registry.read_slots(receiver)
        assert refusals == []
        assert sorted(s.sender for s in slots) == sorted({(receiver - 1) % 4, (receiver + 1) % 4})
        assert all(len(s.containers) <= 2 and s.round == 3 for s in slots)


def test_every_final_model_verifies_scores_and_lists_tree_origins(ring):
    probe = np.random.default_rng(3).normal(size=(50, len(FEATURES))).astype(np.float32)
    probe[:, 2] = probe[:, 2] * 40 + 100
    for agent, path in zip(ring.agents, ring.model_paths):
        model = pyastore.load(path, trusted_keys=[ring.members[agent.id]],
                              use_default_trust=False)
        origins = model.meta["provenance"]["federation"]["trees"]
        assert [(o["creator"], o["counter"], o["store_key"]) for o in origins] == [
            (t.tree_id.creator, t.tree_id.counter, t.store_key) for t in agent.ensemble]
        assert len(origins) <= 6
        expected = np.mean([predict_tree(t.tree, probe) for t in agent.ensemble], axis=0)
        np.testing.assert_allclose(model.score(probe)[:, 0], expected, atol=1e-6)
    creators = {t.tree_id.creator for a in ring.agents for t in a.ensemble
                if t.tree_id.creator != a.id}
    assert creators, "sharing moved no tree between agents"


def test_log_holds_process_fit_share_status_and_model_records(ring):
    with Log.open(ring.log_path, readonly=True) as log:
        log.verify()
        records = list(log.records())
    kinds = [r.kind for r in records]
    assert kinds[0] == KIND_PROCESS
    manifest = json.loads(records[0].description)
    assert manifest["members"] == [m.hex() for m in ring.members]
    assert len(manifest["code_sha256"]) == 64 and manifest["params"]["n_max"] == 6
    assert kinds.count(KIND_FIT) == 4 * 3 * 3  # agents x rounds x n_new
    assert kinds.count(KIND_SHARE) == 4 * 3 * 2 * 2  # agents x rounds x neighbours x n_share
    assert kinds.count("model") == 4
    assert kinds.count(KIND_STATUS) == 4 * (3 * 3 + 1)
    for record in records:
        if record.kind == KIND_SHARE:
            body = json.loads(record.description)
            assert record.submitter == ring.members[body["from"]].hex()
            assert body["process"] == ring.process.process_id


def _tamper(data: bytes, offset: int) -> bytes:
    changed = bytearray(data)
    changed[offset] ^= 0x01
    return bytes(changed)


def test_get_refuses_and_reports_each_kind_of_bad_tree(ring):
    receiver = ring.agents[1]
    sender = 0
    process = ring.process
    honest = ring.agents[0].ensemble[0]
    outsider = seeded_key("not a member")
    created = receiver.created
    # non-member: a well-formed tree signed by a key outside the consortium
    non_member = containers.one_tree_container(
        honest.tree, creator=0, counter=900, round_=3, process_id=process.process_id,
        feature_names=FEATURES, tree_params={}, signing_key=outsider, created=created)
    # unanchored: signed by member 0 but never logged
    unanchored = containers.one_tree_container(
        honest.tree, creator=0, counter=901, round_=3, process_id=process.process_id,
        feature_names=FEATURES, tree_params={}, signing_key=ring.agents[0].key, created=created)
    # misaddressed: anchored by a fit record and shared, but to agent 3, not to agent 1
    shared_elsewhere = containers.one_tree_container(
        honest.tree, creator=0, counter=902, round_=3, process_id=process.process_id,
        feature_names=FEATURES, tree_params={}, signing_key=ring.agents[0].key, created=created)
    model = pyastore.load(shared_elsewhere, trusted_keys=[ring.members[0]],
                          use_default_trust=False)
    with Log.open(ring.log_path) as log:
        logbook.append_fit(log, process, ring.agents[0].key, creator=0, counter=902, round_=3,
                           store_key=model.store_key,
                           tree_sha256=containers.tree_digest(honest.tree, len(FEATURES)))
        logbook.append_share(log, process, ring.agents[0].key, sender=0, receiver=3,
                             round_=3, store_key=model.store_key, tree="0/902")
    signature_at = len(honest.container) - 64
    forged = _tamper(honest.container, signature_at + 5)  # the signature bytes
    altered = _tamper(honest.container, 200)  # a byte under the store key
    ring.registry.slot_path(2, receiver.id).unlink()  # only the attacked slot is read
    held_before = [t.tree_id for t in receiver.ensemble]
    added = 0
    with Log.open(ring.log_path) as log:
        receiver.log = log
        for round_, batch in ((4, [forged, altered]), (5, [non_member, unanchored]),
                              (6, [shared_elsewhere])):
            ring.registry.write_slot(sender, receiver.id, round_, batch)
            added += receiver.get(round_)
        statuses = [json.loads(r.description) for r in log.records() if r.kind == KIND_STATUS]
    assert added == 0
    assert [t.tree_id for t in receiver.ensemble] == held_before  # nothing merged
    reasons = [r.reason for round_, r in receiver.refusals if round_ >= 4]
    assert reasons == ["forged", "altered", "non-member", "unanchored", "misaddressed"]
    details = [r.detail for round_, r in receiver.refusals if round_ >= 4]
    assert "signature" in details[0] and "store key" in details[1].lower()
    assert "not a trusted key" in details[2] and "no fit record" in details[3]
    assert "no share record from 0 to 1" in details[4]
    reported = [r for body in statuses if body["phase"] == "get" and body["round"] >= 4
                for r in body["refused"]]
    assert [r["reason"] for r in reported] == reasons
    assert reported[4]["tree"] == "0/902" and reported[3]["tree"] == "0/901"


def test_an_overfilled_slot_is_refused_whole(ring):
    receiver = ring.agents[2]
    attacker = Registry(ring.registry.root, capacity=None)
    attacker.write_slot(1, receiver.id, 9, [t.container for t in ring.agents[1].ensemble[:3]])
    slots, refusals = ring.registry.read_slots(receiver.id)
    assert [s.sender for s in slots] == [3]
    assert refusals[0].reason == "malformed" and "more than 2" in refusals[0].detail


def test_a_member_signing_another_members_tree_is_refused_as_forged(ring):
    receiver = ring.agents[3]
    impostor = containers.one_tree_container(
        ring.agents[0].ensemble[0].tree, creator=0, counter=950, round_=3,
        process_id=ring.process.process_id, feature_names=FEATURES, tree_params={},
        signing_key=ring.agents[2].key, created=receiver.created)
    ring.registry.write_slot(0, receiver.id, 7, [impostor])
    with Log.open(ring.log_path) as log:
        receiver.log = log
        receiver.get(7)
    assert all(t.tree_id != TreeId(0, 950) for t in receiver.ensemble)  # never merged
    refusal = [r for round_, r in receiver.refusals if round_ == 7][0]
    assert refusal.reason == "forged" and "META names creator 0" in refusal.detail
    assert refusal.tree == "0/950"
