"""``pyastore chain provenance``: closure holds for honest models, and each injected tree --
signed by a non-member, a member's tree never shared to this agent, a tree altered after
sharing -- is caught and named by its tree id."""

from __future__ import annotations

import dataclasses
import json

import pytest

import pyastore
from chain.log import Log
from chain.provenance import ProvenanceError, prove_closure
from fedlib import FEATURES, seeded_key, small_federation
from pyastore import cli
from pyastore import format as fmt
from pyastore.cli_provenance import model_tree_claims
from pyastore.errors import EXIT_LOG, EXIT_OK
from pyastore.ir import Tree
from trainer.federated import containers, logbook
from trainer.federated.trees import FedTree, TreeId


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    return small_federation(tmp_path_factory.mktemp("prov"), n_agents=4, topology="ring",
                            rounds=3, ranking="kernel")


def _check(fed, path):
    model = pyastore.load(path, trusted_keys=fed.members, use_default_trust=False)
    agent, process, claims = model_tree_claims(model)
    with Log.open(fed.log_path, readonly=True) as log:
        return prove_closure(log, process=process, agent=agent, model_store_key=model.store_key,
                             model_signer=model.signer, trees=claims)


def test_honest_models_close_through_the_cli(fed, capsys):
    for agent, path in zip(fed.agents, fed.model_paths):
        proof = _check(fed, path)
        assert len(proof.trees) == len(agent.ensemble)
        for tree in proof.trees:
            assert tree.path[-1] == agent.id and tree.path[0] == int(tree.tree_id.split("/")[0])
            assert len(tree.share_indices) == len(tree.path) - 1
    assert any(len(t.path) >= 3 for p in fed.model_paths for t in _check(fed, p).trees), \
        "no tree travelled two hops"
    code = cli.main(["chain", "provenance", str(fed.model_paths[0]), "--log", str(fed.log_path)])
    out = capsys.readouterr().out
    assert code == EXIT_OK and "closure proven" in out
    code = cli.main(["chain", "provenance", str(fed.model_paths[1]), "--log", str(fed.log_path),
                     "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK and document["closed"] and document["agent"] == 1


def _republish(fed, trees: list[FedTree], name: str):
    """Agent 0 signs and publishes a model made of ``trees`` (it may sign anything)."""
    agent = fed.agents[0]
    data = containers.final_container(trees, agent=0, process_id=fed.process.process_id,
                                      feature_names=FEATURES, params={}, signing_key=agent.key,
                                      created=agent.created)
    path = fed.model_paths[0].with_name(name)
    fmt.write_file(path, data)
    model = pyastore.load(data, trusted_keys=[agent.key.public_key], use_default_trust=False)
    with Log.open(fed.log_path) as log:
        log.append_model(model.store_key, name, "", agent.key)
    return path


def _new_tree(fed, creator_key, tree_id: TreeId, tree: Tree) -> FedTree:
    data = containers.one_tree_container(
        tree, creator=tree_id.creator, counter=tree_id.counter, round_=3,
        process_id=fed.process.process_id, feature_names=FEATURES, tree_params={},
        signing_key=creator_key, created=fed.agents[0].created)
    key = pyastore.load(data, allow_untrusted=True, use_default_trust=False).store_key
    return FedTree(tree_id, tree, key, data, containers.tree_digest(tree, len(FEATURES)), 3)


def _assert_caught(fed, path, tree_id: str, words: str, capsys):
    with pytest.raises(ProvenanceError) as caught:
        _check(fed, path)
    assert [f.tree_id for f in caught.value.failures] == [tree_id]
    assert words in caught.value.failures[0].reason
    code = cli.main(["chain", "provenance", str(path), "--log", str(fed.log_path)])
    err = capsys.readouterr().err
    assert code == EXIT_LOG and f"tree {tree_id}" in err and words in err


def test_a_tree_signed_by_a_non_member_is_caught(fed, capsys):
    outsider = seeded_key("outsider")
    base = fed.agents[0].ensemble[0].tree
    injected = _new_tree(fed, outsider, TreeId(0, 990), base)
    with Log.open(fed.log_path) as log:  # the outsider logs a fit and a share in member 0's name
        logbook.append_fit(log, fed.process, outsider, creator=0, counter=990, round_=3,
                           store_key=injected.store_key, tree_sha256=injected.digest)
        logbook.append_share(log, fed.process, outsider, sender=1, receiver=0, round_=3,
                             store_key=injected.store_key, tree="0/990")
    path = _republish(fed, fed.agents[0].ensemble + [injected], "nonmember.astore")
    _assert_caught(fed, path, "0/990", "non-member", capsys)


def test_a_member_tree_never_shared_to_this_agent_is_caught(fed, capsys):
    member = fed.agents[2]
    injected = _new_tree(fed, member.key, TreeId(2, 991), member.ensemble[-1].tree)
    with Log.open(fed.log_path) as log:
        logbook.append_fit(log, fed.process, member.key, creator=2, counter=991, round_=3,
                           store_key=injected.store_key, tree_sha256=injected.digest)
        logbook.append_share(log, fed.process, member.key, sender=2, receiver=3, round_=3,
                             store_key=injected.store_key, tree="2/991")
    path = _republish(fed, fed.agents[0].ensemble + [injected], "unshared.astore")
    _assert_caught(fed, path, "2/991", "never shared to agent 0", capsys)


def test_a_tree_altered_after_sharing_is_caught(fed, capsys):
    ensemble = list(fed.agents[0].ensemble)
    position = next(i for i, t in enumerate(ensemble) if t.tree_id.creator != 0)
    victim = ensemble[position]
    leaf = next(i for i, v in enumerate(victim.tree.value) if v)
    values = list(victim.tree.value)
    values[leaf] = (1.0 - values[leaf][0],)
    ensemble[position] = dataclasses.replace(
        victim, tree=dataclasses.replace(victim.tree, value=tuple(values)))
    path = _republish(fed, ensemble, "altered.astore")
    _assert_caught(fed, path, victim.tree_id.text, "altered", capsys)


def test_a_model_not_signed_by_the_agent_is_refused(fed, capsys):
    agent = fed.agents[0]
    data = containers.final_container(agent.ensemble, agent=0, process_id=fed.process.process_id,
                                      feature_names=FEATURES, params={},
                                      signing_key=fed.agents[1].key, created=agent.created)
    path = fed.model_paths[0].with_name("wrong-signer.astore")
    fmt.write_file(path, data)
    code = cli.main(["chain", "provenance", str(path), "--log", str(fed.log_path)])
    assert code == EXIT_LOG and "not by agent 0" in capsys.readouterr().err


def test_a_plain_model_is_a_usage_error(fed, capsys, golden_path):
    code = cli.main(["chain", "provenance", str(golden_path), "--log", str(fed.log_path)])
    assert code == 2 and "not a federated model" in capsys.readouterr().err


def test_a_process_record_from_an_untrusted_coordinator_is_refused(fed):
    model = pyastore.load(fed.model_paths[2], trusted_keys=fed.members, use_default_trust=False)
    agent, process, claims = model_tree_claims(model)
    with Log.open(fed.log_path, readonly=True) as log:
        with pytest.raises(ProvenanceError, match="not a trusted coordinator"):
            prove_closure(log, process=process, agent=agent, model_store_key=model.store_key,
                          model_signer=model.signer, trees=claims,
                          coordinators=[seeded_key("someone else").public_key])
        proof = prove_closure(log, process=process, agent=agent,
                              model_store_key=model.store_key, model_signer=model.signer,
                              trees=claims, coordinators=[log.public_key])
    assert proof.agent == 2 and len(proof.trees) == len(claims)
