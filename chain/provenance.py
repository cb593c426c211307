"""Provenance closure of a federated model: every tree traces to its creator and to shares.

A federated agent's final model lists, per tree, a claim ``(creator, counter, store key)``
and carries the tree itself, whose digest the caller recomputes from the model's bytes
(``pyastore.cli_provenance``). :func:`prove_closure` checks, against the log:

1. the **process record** ``sha256:<process>`` exists and is signed by a trusted coordinator
   (the log's own key unless others are given); its manifest lists the consortium keys;
2. the model is signed by the agent's consortium key and published (a ``model`` record with
   its store key, signed by that key);
3. for every tree: its creator is a member; a ``fit`` record of this process for the claimed
   store key is signed by the creator's key, names the same ``creator/counter``, precedes the
   model record, and logs the **same tree digest** as the tree in the model (else the tree
   was altered after it was shared, or never made by that creator);
4. for every tree: a chain of ``share`` records of this process for that store key carries it
   from the creator to the agent: each hop ``a -> b`` signed by ``a``'s key, each after the
   hop (or the fit) that brought the tree to ``a``, all before the model record.

Every failing tree is named by its id ``creator/counter`` in one :class:`ProvenanceError`
(a ``LogError``: exit code 7). The log's own integrity (hashes, chain, signatures of all
records) is :meth:`chain.log.Log.verify`'s job and is run first by the CLI; this module also
checks the signature of every record it relies on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chain.records import KIND_FIT, KIND_MODEL, KIND_PROCESS, KIND_SHARE, Record
from pyastore.errors import LogError


@dataclass(frozen=True)
class TreeClaim:
    """What a model says about its tree at ``position``, and the digest of the tree it holds."""

    position: int
    creator: int
    counter: int
    store_key: str
    digest: str

    @property
    def tree_id(self) -> str:
        return f"{self.creator}/{self.counter}"


@dataclass(frozen=True)
class TreeProof:
    """How one tree reached the agent: the fit record, the agents on the path, the shares."""

    tree_id: str
    store_key: str
    fit_index: int
    path: tuple[int, ...]
    share_indices: tuple[int, ...]


@dataclass(frozen=True)
class TreeFailure:
    tree_id: str
    position: int
    reason: str


@dataclass(frozen=True)
class ClosureProof:
    """A proven closure: the process, the agent, its model record and each tree's proof."""

    process: str
    agent: int
    model_index: int
    trees: tuple[TreeProof, ...]

    def to_json(self) -> dict[str, Any]:
        return {"process": self.process, "agent": self.agent, "model_index": self.model_index,
                "closed": True,
                "trees": [{"tree": t.tree_id, "store_key": t.store_key,
                           "fit_index": t.fit_index, "path": list(t.path),
                           "share_indices": list(t.share_indices)} for t in self.trees]}


class ProvenanceError(LogError):
    """Closure fails; ``failures`` names every offending tree (empty for a model-level fault)."""

    def __init__(self, message: str, failures: tuple[TreeFailure, ...] = ()):
        super().__init__(message)
        self.failures = failures


def _description(record: Record) -> dict[str, Any]:
    try:
        value = json.loads(record.description)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _process_manifest(log: Any, process: str, coordinators: list[bytes] | None
                      ) -> tuple[Record, list[str]]:
    trusted = {bytes(k).hex() for k in coordinators} if coordinators else {log.public_key.hex()}
    for stored in log.storage.find_by_subject(f"sha256:{process}"):
        record = stored.record()
        if record.kind != KIND_PROCESS:
            continue
        if record.submitter not in trusted or not record.signature_valid():
            raise ProvenanceError(f"process record {record.index} ({process}) is signed by "
                                  f"{record.submitter}, not a trusted coordinator")
        members = _description(record).get("members")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ProvenanceError(f"process record {record.index} lists no consortium")
        return record, members
    raise ProvenanceError(f"the log holds no process record {process}")


def prove_closure(log: Any, *, process: str, agent: int, model_store_key: str,
                  model_signer: str | None, trees: list[TreeClaim],
                  coordinators: list[bytes] | None = None) -> ClosureProof:
    """Prove closure (module docstring) or raise :class:`ProvenanceError`."""
    process_record, members = _process_manifest(log, process, coordinators)
    if not 0 <= agent < len(members):
        raise ProvenanceError(f"agent {agent} is not one of the {len(members)} members")
    agent_key = members[agent]
    if model_signer != agent_key:
        raise ProvenanceError(f"the model is signed by {model_signer}, not by agent {agent}'s "
                              f"key {agent_key}")
    model_records = [s.record() for s in log.storage.find_by_subject(model_store_key)]
    model_records = [r for r in model_records if r.kind == KIND_MODEL
                     and r.submitter == agent_key and r.signature_valid()]
    if not model_records:
        raise ProvenanceError(f"the model's store key {model_store_key} is not published in "
                              f"the log by agent {agent}")
    model_index = model_records[0].index

    failures: list[TreeFailure] = []
    proofs: list[TreeProof] = []
    seen: dict[str, int] = {}
    for claim in trees:
        def fail(reason: str, claim: TreeClaim = claim) -> None:
            failures.append(TreeFailure(claim.tree_id, claim.position, reason))

        if claim.tree_id in seen:
            fail(f"listed twice (also at position {seen[claim.tree_id]})")
            continue
        seen[claim.tree_id] = claim.position
        if not 0 <= claim.creator < len(members):
            fail(f"creator {claim.creator} is not a consortium member")
            continue
        creator_key = members[claim.creator]
        related = [s.record() for s in log.storage.find_by_subject(claim.store_key)]
        related = [r for r in related if r.index < model_index]
        fits = [r for r in related if r.kind == KIND_FIT
                and _description(r).get("process") == process]
        own = [r for r in fits if r.submitter == creator_key and r.signature_valid()
               and _description(r).get("creator") == claim.creator
               and _description(r).get("counter") == claim.counter]
        if not own:
            others = sorted({r.submitter for r in fits} - {creator_key})
            if others:
                outsiders = [k for k in others if k not in members]
                who = "a non-member key " if outsiders else "another member's key "
                fail(f"its fit record is signed by {who}{others[0]}, not by creator "
                     f"{claim.creator}")
            else:
                fail(f"no fit record of creator {claim.creator} for store key "
                     f"{claim.store_key}")
            continue
        fit = own[0]
        if _description(fit).get("tree_sha256") != claim.digest:
            fail(f"altered: the tree in the model has digest {claim.digest}, its creator "
                 f"logged {_description(fit).get('tree_sha256')} at record {fit.index}")
            continue
        # reachability over share records in log order
        reached: dict[int, int] = {claim.creator: fit.index}
        parent: dict[int, tuple[int, int]] = {}
        for record in sorted((r for r in related if r.kind == KIND_SHARE), key=lambda r: r.index):
            body = _description(record)
            sender, receiver = body.get("from"), body.get("to")
            if body.get("process") != process or not isinstance(sender, int) \
                    or not isinstance(receiver, int) or sender not in reached:
                continue
            if reached[sender] >= record.index or receiver in reached:
                continue
            if not 0 <= sender < len(members) or record.submitter != members[sender] \
                    or not record.signature_valid():
                continue
            reached[receiver] = record.index
            parent[receiver] = (sender, record.index)
        if agent not in reached:
            fail(f"member {claim.creator}'s tree was never shared to agent {agent} (no chain of "
                 "share records from its creator)")
            continue
        path, shares = [agent], []
        while path[-1] != claim.creator:
            sender, index = parent[path[-1]]
            path.append(sender)
            shares.append(index)
        proofs.append(TreeProof(claim.tree_id, claim.store_key, fit.index,
                                tuple(reversed(path)), tuple(reversed(shares))))
    if failures:
        listed = "; ".join(f"tree {f.tree_id} (position {f.position}): {f.reason}"
                           for f in failures[:20])
        more = f"; and {len(failures) - 20} more" if len(failures) > 20 else ""
        raise ProvenanceError(f"provenance does not close for {len(failures)} of {len(trees)} "
                              f"tree(s) of agent {agent}'s model: {listed}{more}",
                              tuple(failures))
    del process_record
    return ClosureProof(process, agent, model_index, tuple(proofs))
