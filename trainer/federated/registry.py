"""The registry: one bounded slot per directed edge, and GET's acceptance rules.

Layout (a directory every agent can read and write; nothing in it is trusted)::

    REGISTRY/slots/to-<receiver>/from-<sender>.slot

A slot file is msgpack ``{"v": 1, "from", "to", "round", "containers": [bytes, ...]}`` holding
at most ``n_share`` one-tree containers. SHARE **overwrites** the whole slot atomically
(temporary file, then rename), so a reader sees the old or the new slot, never a mix, and the
registry never holds more than ``n_share`` trees per directed edge: its size is bounded by
``edges x n_share x (container size)`` however many rounds run.

GET accepts a container from slot ``sender -> receiver`` only when, in order:

1. its bytes frame and hash to their store key (else ``altered``: bytes changed after
   signing, or not a container at all: ``malformed``);
2. its Ed25519 signature verifies (else ``forged``);
3. its signer is a consortium member (else ``non-member``) and is the member its META names as
   the tree's creator (else ``forged``);
4. the log holds a ``fit`` record of this process for its store key, signed by that creator,
   with the same tree id and the same tree digest as the container's tree (else
   ``unanchored``; a digest mismatch is ``altered``);
5. the log holds a ``share`` record of this process for its store key, signed by ``sender``,
   from ``sender`` to this ``receiver`` (else ``misaddressed``).

A refused container is never merged; the refusal (tree id when known, store key, sender,
reason, detail) is returned to the agent, which reports it in its ``get`` status record.
"""

from __future__ import annotations

import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import msgpack

from pyastore import format as fmt
from pyastore.errors import (
    FormatError,
    IntegrityError,
    PyastoreError,
    SignatureError,
    UntrustedSignerError,
    UsageError,
)
from trainer.federated.logbook import LogIndex, Process
from trainer.federated.trees import FedTree, TreeId

REASONS = ("malformed", "altered", "forged", "non-member", "unanchored", "misaddressed")
SLOT_VERSION = 1


@dataclass(frozen=True)
class Slot:
    """What one slot file held: the sender (from the file name), the round it says, bytes."""

    sender: int
    receiver: int
    round: int
    containers: tuple[bytes, ...]


@dataclass(frozen=True)
class Refusal:
    """A container GET refused, and why (``reason`` one of ``REASONS``)."""

    sender: int
    reason: str
    detail: str
    store_key: str = ""
    tree: str = ""

    def to_json(self) -> dict[str, object]:
        return {"from": self.sender, "reason": self.reason, "detail": self.detail[:200],
                "store_key": self.store_key, "tree": self.tree}


class Registry:
    """A registry directory (module docstring). ``capacity`` is ``n_share`` (None: unbounded,
    the pool-everything baseline)."""

    def __init__(self, root: str | os.PathLike[str], capacity: int | None):
        self.root = Path(root)
        self.capacity = capacity
        (self.root / "slots").mkdir(parents=True, exist_ok=True)

    def slot_path(self, sender: int, receiver: int) -> Path:
        return self.root / "slots" / f"to-{receiver:03d}" / f"from-{sender:03d}.slot"

    def write_slot(self, sender: int, receiver: int, round_: int,
                   containers: list[bytes]) -> int:
        """Overwrite slot ``sender -> receiver`` with ``containers``; returns the bytes written."""
        if self.capacity is not None and len(containers) > self.capacity:
            raise UsageError(f"slot {sender}->{receiver} holds at most {self.capacity} trees, "
                             f"got {len(containers)}")
        data = msgpack.packb({"v": SLOT_VERSION, "from": sender, "to": receiver,
                              "round": round_, "containers": list(containers)},
                             use_bin_type=True)
        path = self.slot_path(sender, receiver)
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt.write_file(path, data)
        return len(data)

    def read_slots(self, receiver: int) -> tuple[list[Slot], list[Refusal]]:
        """Every slot addressed to ``receiver``; unreadable slots come back as refusals."""
        folder = self.root / "slots" / f"to-{receiver:03d}"
        slots: list[Slot] = []
        refusals: list[Refusal] = []
        if not folder.is_dir():
            return slots, refusals
        for path in sorted(folder.glob("from-*.slot")):
            try:
                sender = int(path.stem.split("-", 1)[1])
            except ValueError:
                continue
            try:
                value = msgpack.unpackb(path.read_bytes(), raw=False)
                containers = tuple(bytes(c) for c in value["containers"])
                round_ = int(value.get("round", -1))
            except (OSError, ValueError, KeyError, TypeError, msgpack.UnpackException) as exc:
                refusals.append(Refusal(sender, "malformed", f"{path.name}: unreadable slot "
                                        f"({type(exc).__name__})"))
                continue
            if self.capacity is not None and len(containers) > self.capacity:
                # an overfilled slot is not read at all: a reader's memory stays bounded
                refusals.append(Refusal(sender, "malformed", f"{path.name}: holds "
                                        f"{len(containers)} trees, more than {self.capacity}"))
                continue
            slots.append(Slot(sender, receiver, round_, containers))
        return slots, refusals

    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.root / "slots").rglob("*.slot"))

    def slot_count(self) -> int:
        return sum(1 for _ in (self.root / "slots").rglob("*.slot"))


@dataclass(frozen=True)
class Verified:
    """A container whose bytes and signature verified: its tree, id, key and digest."""

    fed_tree: FedTree
    signer: bytes


def verify_container(data: bytes, process: Process, sender: int) -> Verified | Refusal:
    """Steps 1-3 of GET (module docstring): framing, store key, signature, membership."""
    import pyastore
    from pyastore.cli_provenance import section_body
    from trainer.federated.containers import decode_trees, tree_digest

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = pyastore.load(bytes(data), trusted_keys=list(process.members),
                                  use_default_trust=False)
    except IntegrityError as exc:
        return Refusal(sender, "altered", str(exc))
    except UntrustedSignerError as exc:
        return Refusal(sender, "non-member", str(exc))
    except SignatureError as exc:
        return Refusal(sender, "forged", str(exc))
    except (FormatError, PyastoreError) as exc:
        return Refusal(sender, "malformed", str(exc))
    store_key = model.store_key
    federation = (model.meta.get("provenance") or {}).get("federation") or {}
    tree_meta = federation.get("tree") or {}
    try:
        tree_id = TreeId(int(tree_meta["creator"]), int(tree_meta["counter"]))
        round_ = int(tree_meta.get("round", -1))
    except (KeyError, TypeError, ValueError):
        return Refusal(sender, "malformed", "META names no tree id", store_key)
    if federation.get("process") != process.process_id:
        return Refusal(sender, "unanchored", "the tree belongs to another process", store_key,
                       tree_id.text)
    signer = bytes.fromhex(model.signer)
    if not 0 <= tree_id.creator < len(process.members) or \
            process.members[tree_id.creator] != signer:
        return Refusal(sender, "forged", f"signed by member {process.member_of(signer)}, but "
                       f"META names creator {tree_id.creator}", store_key, tree_id.text)
    try:
        trees = decode_trees(section_body(model, "FRST"))
    except (FormatError, struct.error, IndexError, RecursionError) as exc:  # signed, but bad
        return Refusal(sender, "malformed", f"FRST: {exc}", store_key, tree_id.text)
    if len(trees) != 1:
        return Refusal(sender, "malformed", f"{len(trees)} trees in a one-tree container",
                       store_key, tree_id.text)
    digest = tree_digest(trees[0], len(model.input_names))
    return Verified(FedTree(tree_id, trees[0], store_key, bytes(data), digest, round_), signer)


def check_anchored(log, index: LogIndex, process: Process, verified: Verified, sender: int,
                   receiver: int) -> Refusal | None:
    """Steps 4-5 of GET: the fit record and a share record addressed to ``receiver``.

    ``index`` must be refreshed by the caller; every record relied on is decoded and its
    signature checked.
    """
    tree = verified.fed_tree
    creator_key = process.members[tree.tree_id.creator].hex()
    fits = [e for e in index.fits.get(tree.store_key, [])
            if e.submitter == creator_key and e.body.get("creator") == tree.tree_id.creator
            and e.body.get("counter") == tree.tree_id.counter]
    if not fits:
        return Refusal(sender, "unanchored", f"no fit record by creator {tree.tree_id.creator} "
                       f"for store key {tree.store_key}", tree.store_key, tree.tree_id.text)
    matching = [e for e in fits if e.body.get("tree_sha256") == tree.digest]
    if not matching:
        return Refusal(sender, "altered", "the tree digest differs from its fit record",
                       tree.store_key, tree.tree_id.text)
    if not any(index.verified(log, e) for e in matching):
        return Refusal(sender, "unanchored", "the fit record's signature does not verify",
                       tree.store_key, tree.tree_id.text)
    if not 0 <= sender < len(process.members):
        return Refusal(sender, "misaddressed", f"slot sender {sender} is not a member",
                       tree.store_key, tree.tree_id.text)
    sender_key = process.members[sender].hex()
    for entry in index.shares.get((tree.store_key, sender, receiver), []):
        if entry.submitter == sender_key and index.verified(log, entry):
            return None
    return Refusal(sender, "misaddressed", f"no share record from {sender} to {receiver} for "
                   f"this tree", tree.store_key, tree.tree_id.text)
