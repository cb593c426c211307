"""Cross-check chain.merkle against a brute-force reference written from RFC 9162's definitions.

The reference computes MTH, PATH and PROOF by the recursive definitions of RFC 9162 section
2.1 directly on leaf ranges (memoized so it stays fast); the code under test works from
perfect-subtree nodes and verifies with the iterative algorithms. Trees of 1..300 random
leaves: every leaf of every size for inclusion; every pair of sizes up to 64 and a seeded
sample of pairs up to 300 for consistency.
"""

from __future__ import annotations

import functools
import hashlib
import random

import pytest

from chain import merkle
from chain.errors import ProofError

MAX_LEAVES = 300
ALL_PAIRS_UP_TO = 64
SAMPLED_PAIRS = 3000


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Reference:
    """RFC 9162 section 2.1.1, 2.1.3.1, 2.1.4.1, literally."""

    def __init__(self, leaves: list[bytes]):
        self.leaves = leaves
        self.mth = functools.lru_cache(maxsize=None)(self._mth)

    def _mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 0:
            return _sha(b"")
        if n == 1:
            return _sha(b"\x00" + self.leaves[lo])
        k = 1
        while k * 2 < n:
            k *= 2
        return _sha(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi))

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = 1
        while k * 2 < n:
            k *= 2
        if m < k:
            return self.path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self.path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if whole else [self.mth(lo, hi)]
        k = 1
        while k * 2 < n:
            k *= 2
        if m <= k:
            return self.subproof(m, lo, lo + k, whole) + [self.mth(lo + k, hi)]
        return self.subproof(m - k, lo + k, hi, False) + [self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return [] if m in (0, n) else self.subproof(m, 0, n, True)


@pytest.fixture(scope="module")
def trees():
    rng = random.Random(20250105)
    # distinct leaves (an index prefix), else two equal neighbours make "wrong index" verify
    leaves = [i.to_bytes(2, "big") + rng.randbytes(rng.randrange(0, 40)) for i in range(MAX_LEAVES)]
    reference = Reference(leaves)
    tree = merkle.MemoryTree([merkle.leaf_hash(leaf) for leaf in leaves])
    return leaves, reference, tree


def test_roots_match_reference(trees):
    leaves, reference, tree = trees
    accumulator = merkle.RootAccumulator()
    for size in range(0, MAX_LEAVES + 1):
        expected = reference.mth(0, size)
        assert merkle.root_hash(tree, size) == expected, size
        assert accumulator.root() == expected, size
        if size < MAX_LEAVES:
            accumulator.push(merkle.leaf_hash(leaves[size]))
        resumed = merkle.RootAccumulator.resume(tree, size)
        assert resumed.root() == expected and resumed.size == size


def test_every_inclusion_proof(trees):
    leaves, reference, tree = trees
    rng = random.Random(7)
    checked = 0
    for size in range(1, MAX_LEAVES + 1):
        root = reference.mth(0, size)
        for index in range(size):
            proof = merkle.inclusion_proof(tree, index, size)
            assert proof == reference.path(index, 0, size), (index, size)
            leaf = merkle.leaf_hash(leaves[index])
            merkle.verify_inclusion(index, size, leaf, proof, root)
            checked += 1
            if rng.random() < 0.02:  # a seeded sample of corruptions must each fail
                _assert_inclusion_corruptions_fail(rng, index, size, leaf, proof, root)
    assert checked == MAX_LEAVES * (MAX_LEAVES + 1) // 2


def _assert_inclusion_corruptions_fail(rng, index, size, leaf, proof, root):
    wrong_leaf = merkle.leaf_hash(b"not the leaf")
    probes = [(index, size, wrong_leaf, proof, root), (index, size, leaf, proof + [root], root)]
    if index + 1 < size:
        probes.append((index + 1, size, leaf, proof, root))
    if proof:
        position = rng.randrange(len(proof))
        flipped = list(proof)
        flipped[position] = bytes([flipped[position][0] ^ 1]) + flipped[position][1:]
        probes += [(index, size, leaf, flipped, root), (index, size, leaf, proof[:-1], root)]
    for probe in probes:
        try:
            merkle.verify_inclusion(*probe)
        except ProofError:
            continue
        raise AssertionError(f"corrupted inclusion proof verified: {probe[:2]}")


def _pairs(rng: random.Random) -> list[tuple[int, int]]:
    pairs = [(m, n) for n in range(1, ALL_PAIRS_UP_TO + 1) for m in range(0, n + 1)]
    for _ in range(SAMPLED_PAIRS):
        n = rng.randrange(ALL_PAIRS_UP_TO + 1, MAX_LEAVES + 1)
        pairs.append((rng.randrange(0, n + 1), n))
    return pairs


def test_consistency_proofs(trees):
    _, reference, tree = trees
    rng = random.Random(11)
    for old, new in _pairs(rng):
        proof = merkle.consistency_proof(tree, old, new)
        assert proof == reference.proof(old, new), (old, new)
        old_root, new_root = reference.mth(0, old), reference.mth(0, new)
        merkle.verify_consistency(old, new, old_root, new_root, proof)
        if proof and rng.random() < 0.05:
            position = rng.randrange(len(proof))
            flipped = list(proof)
            flipped[position] = bytes([flipped[position][0] ^ 1]) + flipped[position][1:]
            for args in (
                (old, new, old_root, new_root, flipped),
                (old, new, old_root, new_root, proof[:-1]),
                (old, new, new_root, old_root, proof),
            ):
                with pytest.raises(ProofError):
                    merkle.verify_consistency(*args)


def test_proof_lengths_are_logarithmic(trees):
    _, _, tree = trees
    for size in (1, 2, 3, 64, 65, 255, 256, 300):
        bound = max(1, (size - 1).bit_length())
        for index in range(size):
            assert len(merkle.inclusion_proof(tree, index, size)) <= bound
