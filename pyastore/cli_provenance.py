"""``pyastore chain provenance MODEL --log LOG``: prove where every tree of a model came from.

A federated agent's final model (``docs/FEDERATED.md``) lists in META, for each of its trees,
the tree's origin: creator, counter and the store key of the one-tree container its creator
signed. This command proves *closure*: every tree of the model traces to a FIT record of its
creator in the log (same store key, same tree digest, signed by the creator's consortium key)
and to a chain of share records, each signed by its sender, that carries the tree from its
creator to this agent, in log order. Anything else (a tree signed by a non-member, a member's
tree never shared to this agent, a tree altered after sharing, a model not signed by the agent)
is reported by tree id and the command exits 7. The logic lives in :mod:`chain.provenance`;
this module reads the container and recomputes each tree's digest from its FRST section.

Tree digest (also what FIT records carry): ``SHA-256("pyastore-tree-v1\\n" || u32 output ||
u32 split count || u32 leaf count || u32 leaf width || split nodes || leaf values)``, the
tree's own bytes in a FRST section (docs/FORMAT.md), which do not depend on where in the
section the tree lies (children are indexed within the tree).

Exit codes: 0 closure proven, 2 usage, 3/4 the container is malformed or its signature fails,
7 the log is corrupt or a tree's provenance does not close.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from typing import TYPE_CHECKING, Any

from pyastore.errors import FormatError, UsageError

if TYPE_CHECKING:
    from chain.provenance import TreeClaim
    from pyastore.model import Model

TREE_DIGEST_DOMAIN = b"pyastore-tree-v1\n"


def frst_tree_digests(frst: bytes) -> list[str]:
    """The digest of every tree of a FRST section body, in tree order (module docstring)."""
    from pyastore.format import stored_trees

    digests = []
    for tree in stored_trees(frst):
        digest = hashlib.sha256(TREE_DIGEST_DOMAIN)
        digest.update(struct.pack("<4I", tree.output, tree.n_nodes, tree.n_leaves,
                                  tree.leaf_width))
        digest.update(tree.node_bytes)
        digest.update(tree.leaf_bytes)
        digests.append(digest.hexdigest())
    return digests


def section_body(model: Model, kind: str) -> bytes:
    """The body of section ``kind`` of a loaded ``pyastore.Model``."""
    for section_kind, _flags, offset, length in model.sections():
        if section_kind == kind:
            return bytes(model.container_bytes[offset:offset + length])
    raise FormatError(f"{model.source}: the container has no {kind} section")


def model_tree_digests(model: Model) -> list[str]:
    """The digest of every tree of a loaded forest model, in tree order."""
    return frst_tree_digests(section_body(model, "FRST"))


def model_tree_claims(model: Model) -> tuple[int, str, list[TreeClaim]]:
    """The model's per-tree origin (META ``provenance.federation``) joined with the digests
    recomputed from its FRST section: ``(agent, process, [TreeClaim...])``."""
    from chain.provenance import TreeClaim

    federation = (model.meta.get("provenance") or {}).get("federation")
    if not isinstance(federation, dict) or not isinstance(federation.get("trees"), list):
        raise UsageError(f"{model.source}: not a federated model (META provenance has no "
                         "federation.trees list)")
    digests = model_tree_digests(model)
    origins = federation["trees"]
    if len(origins) != len(digests):
        raise FormatError(f"{model.source}: META lists {len(origins)} tree origins but the "
                          f"forest has {len(digests)} trees")
    claims = []
    for position, (origin, digest) in enumerate(zip(origins, digests)):
        try:
            claims.append(TreeClaim(position=position, creator=int(origin["creator"]),
                                    counter=int(origin["counter"]),
                                    store_key=str(origin["store_key"]), digest=digest))
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{model.source}: META tree origin {position} is not "
                              "{creator, counter, store_key}") from None
    try:
        agent = int(federation["agent"])
        process = str(federation["process"])
    except (KeyError, TypeError, ValueError):
        raise FormatError(f"{model.source}: META federation has no agent/process") from None
    return agent, process, claims


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``provenance`` on the ``pyastore chain`` subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "provenance",
        help="prove every tree of a federated model traces to its creator and to shares",
        description="Prove closure for a federated agent's model: every tree traces to a FIT "
                    "record of its creator (same store key and tree digest) and a chain of "
                    "share records ending at this agent. See docs/FEDERATED.md.",
        epilog="example:\n  pyastore chain provenance out/agent-03.astore --log fed.log\n"
               "exit codes: 0 proven, 2 usage, 3/4 bad container, 7 provenance fails",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", metavar="MODEL.astore", help="the agent's final container")
    parser.add_argument("--log", required=True, metavar="LOG", help="the federation's log")
    parser.add_argument("--coordinator", metavar="KEY.pub", action="append", default=[],
                        help="accept process records signed by this key (repeatable; default: "
                             "the log's own key)")
    parser.add_argument("--json", action="store_true", help="print the proof as JSON")
    parser.set_defaults(chain_command="provenance")
    return parser


def run(args: argparse.Namespace) -> int:
    """Check closure; print one line per tree (or JSON); raise ``ProvenanceError`` on failure."""
    import warnings

    import pyastore
    from chain.log import Log
    from chain.provenance import prove_closure
    from pyastore import keys

    with warnings.catch_warnings():  # trust is decided against the consortium below
        warnings.simplefilter("ignore")
        model = pyastore.load(args.model, trusted_keys=[], allow_untrusted=True,
                              use_default_trust=False)
    agent, process, claims = model_tree_claims(model)
    coordinators = [keys.load_public_key(path) for path in args.coordinator]
    with Log.open(args.log, readonly=True) as log:
        log.verify()
        proof = prove_closure(log, process=process, agent=agent, model_store_key=model.store_key,
                              model_signer=model.signer, trees=claims,
                              coordinators=coordinators or None)
    if args.json:
        json.dump(proof.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(f"{args.model}: agent {agent} of process {process[:16]}..., "
              f"{len(proof.trees)} tree(s), closure proven against {args.log}")
        for tree in proof.trees:
            hops = " -> ".join(str(a) for a in tree.path)
            print(f"  tree {tree.tree_id}: fit at record {tree.fit_index}, path {hops} "
                  f"(share records {', '.join(str(i) for i in tree.share_indices) or 'none'})")
    return 0
