"""RFC 9162 (RFC 6962) Merkle tree hashing, proof generation and proof verification.

Hashing (RFC 9162 section 2.1.1), SHA-256 throughout::

    MTH({})        = SHA-256()                              the empty tree
    leaf hash      = SHA-256(0x00 || leaf bytes)
    node hash      = SHA-256(0x01 || left || right)
    MTH(D[n])      = node hash(MTH(D[0:k]), MTH(D[k:n]))    k = largest power of two < n

The distinct 0x00 / 0x01 prefixes make a leaf impossible to pass off as an inner node.

Generation works from a :class:`NodeSource`: anything that returns the hash of a *perfect,
aligned* subtree -- level ``L``, position ``i`` covers leaves ``[i * 2**L, (i + 1) * 2**L)``
(level 0 is the leaf hashes). :class:`MemoryTree` is the in-memory source; the SQLite storage
keeps the same nodes in a table, so a proof at 1M leaves costs O(log n) look-ups, not a
rebuild of the tree. Any MTH of a range is assembled from at most 2 log2(n) such nodes.

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) is pure: hashes in,
``None`` or a :class:`~chain.errors.ProofError` out, no storage. It follows the algorithms of
RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step. The two algorithms climb a path the
same way, so one walk (``_path_sides``) says on which side each path hash joins and how many
there must be; a proof of the wrong length is refused before anything is hashed. Each failure
carries the expected and the computed value (root hashes as hex, path lengths as ints).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from chain.errors import ProofError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 || leaf): the hash of one log entry."""
    return hashlib.sha256(LEAF_PREFIX + bytes(leaf)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an inner node."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


class NodeSource(Protocol):
    """Hashes of perfect aligned subtrees: ``node(level, index)``.

    Level 0 is the leaf hashes; ``node(L, i)`` covers leaves ``[i * 2**L, (i + 1) * 2**L)``.
    Callers only ask for nodes lying entirely inside the tree size they work on.
    """

    def node(self, level: int, index: int) -> bytes: ...


def subtree_root(source: NodeSource, start: int, end: int) -> bytes:
    """MTH of leaves ``[start, end)``; ``start`` must be a multiple of the split size.

    The ranges the RFC recursions visit always satisfy that, so a perfect range is one
    node and a ragged one splits into O(log n) nodes.
    """
    size = end - start
    if size <= 0:
        if size == 0:
            return EMPTY_ROOT
        raise ValueError(f"bad range [{start}, {end})")
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return source.node(level, start >> level)
    k = split_point(size)
    return node_hash(subtree_root(source, start, start + k), subtree_root(source, start + k, end))


def root_hash(source: NodeSource, size: int) -> bytes:
    """MTH of the first ``size`` leaves."""
    return subtree_root(source, 0, size)


def inclusion_proof(source: NodeSource, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1, leaf-to-root order."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            path.append(subtree_root(source, start + k, end))
            end = start + k
        else:
            path.append(subtree_root(source, start, start + k))
            start = start + k
    path.reverse()
    return path


def consistency_proof(source: NodeSource, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 section 2.1.4.1.

    Empty when ``old_size`` is 0 or equal to ``new_size`` (nothing to prove).
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    proof: list[bytes] = []
    start, end, whole_old_tree = 0, new_size, True
    while old_size != end:
        k = split_point(end - start)
        if old_size - start <= k:
            proof.append(subtree_root(source, start + k, end))
            end = start + k
        else:
            proof.append(subtree_root(source, start, start + k))
            start, whole_old_tree = start + k, False
    if not whole_old_tree:
        proof.append(subtree_root(source, start, end))
    proof.reverse()
    return proof


class MemoryTree:
    """A :class:`NodeSource` over leaf hashes held in memory (tests, small logs, bench).

    Complete levels are computed once at construction and on :meth:`append`.
    """

    def __init__(self, leaf_hashes: Sequence[bytes] = ()):
        self._levels: list[list[bytes]] = [[]]
        for value in leaf_hashes:
            self.append(value)

    def append(self, value: bytes) -> None:
        if len(value) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        self._levels[0].append(bytes(value))
        level = 0
        while len(self._levels[level]) % 2 == 0:
            row = self._levels[level]
            parent = node_hash(row[-2], row[-1])
            if level + 1 == len(self._levels):
                self._levels.append([])
            self._levels[level + 1].append(parent)
            level += 1

    def __len__(self) -> int:
        return len(self._levels[0])

    def node(self, level: int, index: int) -> bytes:
        return self._levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        return root_hash(self, len(self) if size is None else size)


class RootAccumulator:
    """Running MTH over a stream of leaf hashes, O(log n) memory (a compact range).

    ``push`` returns the perfect nodes completed by that leaf as ``(level, index, hash)``
    (level >= 1), so a verifier can compare them with stored ones as it goes.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing
        self.size = 0

    @classmethod
    def resume(cls, source: NodeSource, size: int) -> RootAccumulator:
        """An accumulator positioned after the first ``size`` leaves of ``source``."""
        accumulator = cls()
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                accumulator._stack.append((level, source.node(level, start >> level)))
                start += 1 << level
        accumulator.size = size
        return accumulator

    def push(self, value: bytes) -> list[tuple[int, int, bytes]]:
        completed: list[tuple[int, int, bytes]] = []
        level, current = 0, value
        while self._stack and self._stack[-1][0] == level:
            _, left = self._stack.pop()
            current = node_hash(left, current)
            level += 1
            completed.append((level, self.size >> level, current))
        self._stack.append((level, current))
        self.size += 1
        return completed

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        current = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            current = node_hash(left, current)
        return current


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != HASH_SIZE:
        got = len(value) if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise ProofError(f"{what} must be a {HASH_SIZE}-byte hash (got {got})")


def _check_hashes(values: Sequence[bytes], what: str) -> None:
    for position, value in enumerate(values):
        _check_hash(value, f"{what} element {position}")


def _root_mismatch(what: str, expected: bytes, computed: bytes) -> ProofError:
    """The error for a root that is not the one expected: both go into the message and onto
    the error, as hex."""
    return ProofError(
        f"{what}: expected root {expected.hex()}, computed {computed.hex()}",
        expected=expected.hex(),
        computed=computed.hex(),
    )


def _path_sides(fn: int, sn: int) -> list[bool]:
    """Where each hash of a proof path joins, walking up from node ``fn`` to the root.

    ``fn`` is the position of the starting node among the ``sn + 1`` nodes of its level
    (RFC 9162 section 2.1.3.2 steps 2-5, which section 2.1.4.2 step 6 repeats). ``True``:
    the path hash is the left sibling (``node_hash(path hash, current)``); ``False``: the
    right one. The list is exactly as long as a valid path, so a proof of any other length
    is refused before anything is hashed.
    """
    sides: list[bool] = []
    while sn != 0:
        if fn & 1 or fn == sn:
            sides.append(True)
            if not fn & 1:  # the last node of its level: skip the levels it is promoted through
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sides.append(False)
        fn >>= 1
        sn >>= 1
    return sides


def _check_length(what: str, expected: int, proof: Sequence[bytes]) -> None:
    if len(proof) != expected:
        problem = "too long" if len(proof) > expected else "too short"
        raise ProofError(
            f"{what} is {problem}: expected {expected} hashes, got {len(proof)}",
            expected=expected,
            computed=len(proof),
        )


def root_from_inclusion_proof(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 section 2.1.3.2, steps 1-5).

    Raises :class:`ProofError` when the proof has the wrong length for ``(index, size)``.
    """
    if not 0 <= index < size:
        raise ProofError(
            f"leaf index {index} is outside a tree of size {size}", expected=size, computed=index
        )
    _check_hash(leaf, "leaf hash")
    _check_hashes(proof, "inclusion proof")
    sides = _path_sides(index, size - 1)
    _check_length(f"inclusion proof for leaf {index} in a tree of size {size}", len(sides), proof)
    result = bytes(leaf)
    for item, on_left in zip(proof, sides):
        result = node_hash(item, result) if on_left else node_hash(result, item)
    return result


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` (a leaf *hash*) is leaf ``index`` of the tree ``(size, root)``."""
    _check_hash(root, "root hash")
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    if computed != root:
        raise _root_mismatch(
            f"inclusion proof for leaf {index} does not lead to the root of the tree of size "
            f"{size}",
            bytes(root),
            computed,
        )


def roots_from_consistency_proof(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """The old and new roots implied by a consistency proof (RFC 9162 section 2.1.4.2,
    steps 1-7), for ``0 < old_size < new_size``.

    Raises :class:`ProofError` when the proof has the wrong length for the two sizes.
    """
    old_is_perfect = old_size & (old_size - 1) == 0
    # step 2: a perfect old tree is a subtree of the new one; the path starts at its root
    path = [bytes(old_root), *proof] if old_is_perfect else list(proof)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    sides = _path_sides(fn, sn)  # steps 1 and 7: the length the walk needs
    _check_length(
        f"consistency proof from size {old_size} to {new_size}",
        len(sides) + (0 if old_is_perfect else 1),
        proof,
    )
    first_root = second_root = path[0]  # step 5
    for item, on_left in zip(path[1:], sides):  # step 6
        if on_left:
            first_root = node_hash(item, first_root)
            second_root = node_hash(item, second_root)
        else:
            second_root = node_hash(second_root, item)
    return first_root, second_root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``(new_size, new_root)`` extends ``(old_size, old_root)``.

    RFC 9162 section 2.1.4.2, with the degenerate cases made explicit: ``old_size == 0``
    and ``old_size == new_size`` need an empty proof (and equal roots for the latter).
    """
    _check_hash(old_root, "old root hash")
    _check_hash(new_root, "new root hash")
    _check_hashes(proof, "consistency proof")
    if not 0 <= old_size <= new_size:
        raise ProofError(
            f"tree size went backwards: {old_size} -> {new_size}",
            expected=f"<= {new_size}",
            computed=old_size,
        )
    if old_size == 0 or old_size == new_size:
        start = "the empty tree" if old_size == 0 else "a tree to one of the same size"
        _check_length(f"a consistency proof from {start}", 0, proof)
        if old_size == new_size and old_root != new_root:
            what = f"two different roots for tree size {old_size}"
            raise _root_mismatch(what, old_root, new_root)
        return
    first_root, second_root = roots_from_consistency_proof(old_size, new_size, old_root, proof)
    for computed, expected, which, size in (
        (first_root, old_root, "old", old_size),
        (second_root, new_root, "new", new_size),
    ):
        if computed != expected:  # step 8
            raise _root_mismatch(
                f"consistency proof does not lead to the {which} root (size {size})",
                bytes(expected),
                computed,
            )
