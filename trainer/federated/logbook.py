"""The federation's records in the verifiable log (kinds ``process``, ``fit``, ``share``,
``status``; docs/FEDERATED.md lists every field).

Every record's ``description`` is canonical JSON (sorted keys, no spaces) naming the process
it belongs to. The process id is the hex SHA-256 of the process manifest, which is also the
process record's subject (``sha256:<id>``).

* ``process`` (submitter: the coordinator): the manifest -- parameters (n_new, n_max,
  n_share, topology, rounds, seed, ranking, schedule, ...), the SHA-256 of the trainer code
  that runs (``code_sha256``), the consortium's public keys in agent order (``members``) and
  the start time.
* ``fit`` (submitter: the creator): subject = the store key of the tree's one-tree container;
  ``{process, creator, counter, round, tree_sha256}``.
* ``share`` (submitter: the sender): subject = the store key of the shared tree's container;
  ``{process, from, to, round, tree}``.
* ``status`` (submitter: the agent): subject = ``sha256:`` of the description; ``{process,
  agent, round, phase, trees, ...}`` with ``phase`` one of ``join``, ``fit``, ``share``,
  ``get`` (with the refused trees and why), ``leave``, ``done``.
* the final model of each agent is an ordinary ``model`` record (``append_model``) signed by
  the agent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.records import KIND_FIT, KIND_PROCESS, KIND_SHARE, KIND_STATUS, MAX_DESCRIPTION
from pyastore import keys
from pyastore.errors import LogError, UsageError

MANIFEST_VERSION = 1


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def code_sha256() -> str:
    """SHA-256 over the federated trainer's source files (name, length, bytes; sorted)."""
    digest = hashlib.sha256(b"pyastore-federated-code-v1\n")
    folder = Path(__file__).resolve().parent
    for path in sorted(folder.glob("*.py")):
        data = path.read_bytes()
        digest.update(f"{path.name}\n{len(data)}\n".encode())
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class Process:
    """An opened federation: its id (hex), the manifest, the member keys (raw bytes)."""

    process_id: str
    manifest: dict[str, Any]
    members: tuple[bytes, ...]
    index: int

    @property
    def params(self) -> dict[str, Any]:
        return self.manifest["params"]

    def member_of(self, public_key: bytes) -> int | None:
        try:
            return self.members.index(bytes(public_key))
        except ValueError:
            return None


def _description(value: dict[str, Any], what: str) -> str:
    text = canonical_json(value)
    if len(text) > MAX_DESCRIPTION:
        raise UsageError(f"the {what} record would be {len(text)} characters, more than the "
                         f"log's {MAX_DESCRIPTION}: too many members or refusals to list")
    return text


def open_process(log, coordinator: keys.SigningKey, params: dict[str, Any],
                 members: list[bytes], *, started: str) -> Process:
    """Append the process record that opens a federation; returns the :class:`Process`."""
    manifest = {"v": MANIFEST_VERSION, "params": params, "code_sha256": code_sha256(),
                "members": [bytes(m).hex() for m in members], "started": started}
    text = _description(manifest, "process")
    process_id = hashlib.sha256(text.encode()).hexdigest()
    record = log.append_record(KIND_PROCESS, f"sha256:{process_id}", coordinator,
                               name=f"federation of {len(members)} agents", description=text)
    return Process(process_id, manifest, tuple(bytes(m) for m in members), record.index)


def find_process(log, process_id: str) -> Process:
    """The process record with this id; ``LogError`` when the log has none."""
    for stored in log.storage.find_by_subject(f"sha256:{process_id}"):
        record = stored.record()
        if record.kind != KIND_PROCESS:
            continue
        manifest = json.loads(record.description)
        members = tuple(bytes.fromhex(m) for m in manifest["members"])
        return Process(process_id, manifest, members, record.index)
    raise LogError(f"no process record {process_id} in the log")


def latest_process_for(log, members: list[bytes]) -> Process | None:
    """The newest process record whose consortium is exactly ``members`` (in order)."""
    wanted = [bytes(m).hex() for m in members]
    found = None
    for record in log.records():
        if record.kind != KIND_PROCESS:
            continue
        try:
            manifest = json.loads(record.description)
        except ValueError:
            continue
        if manifest.get("members") == wanted:
            found = Process(record.subject.split(":", 1)[1], manifest,
                            tuple(bytes(m) for m in members), record.index)
    return found


def append_fit(log, process: Process, creator_key: keys.SigningKey, *, creator: int,
               counter: int, round_: int, store_key: str, tree_sha256: str):
    text = canonical_json({"process": process.process_id, "creator": creator,
                           "counter": counter, "round": round_, "tree_sha256": tree_sha256})
    return log.append_record(KIND_FIT, store_key, creator_key,
                             name=f"fit {creator}/{counter}", description=text)


def append_share(log, process: Process, sender_key: keys.SigningKey, *, sender: int,
                 receiver: int, round_: int, store_key: str, tree: str):
    text = canonical_json({"process": process.process_id, "from": sender, "to": receiver,
                           "round": round_, "tree": tree})
    return log.append_record(KIND_SHARE, store_key, sender_key,
                             name=f"share {tree} {sender}->{receiver}", description=text)


def append_status(log, process: Process, agent_key: keys.SigningKey, *, agent: int,
                  round_: int, phase: str, **details: Any):
    body = {"process": process.process_id, "agent": agent, "round": round_, "phase": phase}
    body.update(details)
    text = _description(body, "status")
    subject = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return log.append_record(KIND_STATUS, subject, agent_key,
                             name=f"agent {agent} round {round_} {phase}", description=text)


def parse_description(record) -> dict[str, Any]:
    try:
        value = json.loads(record.description)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class IndexedRecord:
    """A fit or share record as the index saw it (index, submitter, parsed description)."""

    index: int
    submitter: str
    body: dict[str, Any]


class LogIndex:
    """An agent's incremental index of one process's fit and share records.

    GET looks up "the fit record of this store key" and "a share record of this key from this
    sender to me" for every container in every slot, every round; a popular tree gathers
    hundreds of share records, so looking them up by subject (decoding each) would cost
    O(records) per container. The index reads each new record once (``refresh``), unpacking
    only its MessagePack fields; the one record a decision relies on is then decoded in full
    and its signature checked (``verified``), so the index never decides on an unchecked record.
    """

    def __init__(self, process: Process):
        self.process = process
        self.cursor = process.index + 1
        self.fits: dict[str, list[IndexedRecord]] = {}
        self.shares: dict[tuple[str, int, int], list[IndexedRecord]] = {}

    def refresh(self, log) -> None:
        import msgpack

        for stored in log.storage.iterate(self.cursor):
            self.cursor = stored.index + 1
            if stored.kind not in (KIND_FIT, KIND_SHARE):
                continue
            try:
                fields = msgpack.unpackb(stored.body, raw=False)
                body = json.loads(fields[5])
            except (ValueError, TypeError, IndexError, msgpack.UnpackException):
                continue
            if not isinstance(body, dict) or body.get("process") != self.process.process_id:
                continue
            entry = IndexedRecord(stored.index, str(fields[7]), body)
            if stored.kind == KIND_FIT:
                self.fits.setdefault(stored.subject, []).append(entry)
            elif isinstance(body.get("from"), int) and isinstance(body.get("to"), int):
                key = (stored.subject, body["from"], body["to"])
                self.shares.setdefault(key, []).append(entry)

    @staticmethod
    def verified(log, entry: IndexedRecord) -> bool:
        """The full record behind an index entry decodes and its signature verifies."""
        record = log.record(entry.index)
        return record.submitter == entry.submitter and record.signature_valid()
