"""Published RFC 6962 / RFC 9162 test vectors.

Source: transparency-dev/merkle, ``testonly/constants.go`` (leaf inputs, node hashes of all
complete subtrees, root hashes for sizes 0..8) and ``proof/verify_test.go`` (inclusion and
consistency proofs; its leaf numbers are 1-based, ours 0-based). The same vectors appear in
google/certificate-transparency-go.

Each hash comes with the shell command that reproduces it (bash, xxd, sha256sum);
``test_commands_reproduce_hashes`` runs them when those tools are installed.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from chain import merkle
from chain.errors import ProofError

LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]


def _leaf_cmd(leaf: str) -> str:
    return f"printf '00{leaf}' | xxd -r -p | sha256sum"


def _node_cmd(left: str, right: str) -> str:
    return f"printf '01{left}{right}' | xxd -r -p | sha256sum"


# (level, index, hash, command) for every complete subtree of the 8-leaf tree.
L0 = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
]
L1 = [
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
]
L2 = [
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]
L3 = ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]

NODE_VECTORS = (
    [(0, i, h, _leaf_cmd(LEAVES[i])) for i, h in enumerate(L0)]
    + [(1, i, h, _node_cmd(L0[2 * i], L0[2 * i + 1])) for i, h in enumerate(L1)]
    + [(2, i, h, _node_cmd(L1[2 * i], L1[2 * i + 1])) for i, h in enumerate(L2)]
    + [(3, 0, L3[0], _node_cmd(L2[0], L2[1]))]
)

# Tree size -> root hash, with the command that reproduces it.
EMPTY_ROOT_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ROOT_VECTORS = [
    (0, EMPTY_ROOT_HEX, "printf '' | sha256sum"),
    (1, L0[0], _leaf_cmd(LEAVES[0])),
    (2, L1[0], _node_cmd(L0[0], L0[1])),
    (3, "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
     _node_cmd(L1[0], L0[2])),
    (4, L2[0], _node_cmd(L1[0], L1[1])),
    (5, "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
     _node_cmd(L2[0], L0[4])),
    (6, "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
     _node_cmd(L2[0], L1[2])),
    (
        7,
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        # MTH(7) = node(MTH(0..4), node(MTH(4..6), leaf 6))
        f"printf \"01{L2[0]}$(printf '01{L1[2]}{L0[6]}' | xxd -r -p | sha256sum | cut -c1-64)\""
        " | xxd -r -p | sha256sum",
    ),
    (8, L3[0], _node_cmd(L2[0], L2[1])),
]

# (leaf index (0-based), tree size, audit path) from proof/verify_test.go.
INCLUSION_VECTORS = [
    (0, 1, []),
    (0, 8, [L0[1], L1[1], L2[1]]),
    (5, 8, [L0[4], L1[3], L2[0]]),
    (2, 3, [L1[0]]),
    (1, 5, [L0[0], L1[1], L0[4]]),
]

# (old size, new size, consistency proof) from proof/verify_test.go.
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (1, 8, [L0[1], L1[1], L2[1]]),
    (6, 8, [L1[2], L1[3], L2[0]]),
    (2, 5, [L1[1], L0[4]]),
    (6, 7, [L1[2], L0[6], L2[0]]),
]

ROOTS = {size: bytes.fromhex(root) for size, root, _ in ROOT_VECTORS}


@pytest.fixture(scope="module")
def tree() -> merkle.MemoryTree:
    return merkle.MemoryTree([merkle.leaf_hash(bytes.fromhex(leaf)) for leaf in LEAVES])


@pytest.mark.parametrize("level,index,expected,command", NODE_VECTORS)
def test_node_hashes(tree, level, index, expected, command):
    assert tree.node(level, index).hex() == expected


@pytest.mark.parametrize("size,expected,command", ROOT_VECTORS)
def test_root_hashes(tree, size, expected, command):
    assert merkle.root_hash(tree, size).hex() == expected
    in_memory = merkle.MemoryTree(
        [merkle.leaf_hash(bytes.fromhex(leaf)) for leaf in LEAVES[:size]]
    )
    assert in_memory.root().hex() == expected
    accumulator = merkle.RootAccumulator()
    for leaf in LEAVES[:size]:
        accumulator.push(merkle.leaf_hash(bytes.fromhex(leaf)))
    assert accumulator.root().hex() == expected


@pytest.mark.parametrize("index,size,path", INCLUSION_VECTORS)
def test_inclusion_vectors(tree, index, size, path):
    proof = merkle.inclusion_proof(tree, index, size)
    assert [h.hex() for h in proof] == path
    leaf = merkle.leaf_hash(bytes.fromhex(LEAVES[index]))
    merkle.verify_inclusion(index, size, leaf, proof, ROOTS[size])
    assert merkle.root_from_inclusion_proof(index, size, leaf, proof) == ROOTS[size]


@pytest.mark.parametrize("old,new,path", CONSISTENCY_VECTORS)
def test_consistency_vectors(tree, old, new, path):
    proof = merkle.consistency_proof(tree, old, new)
    assert [h.hex() for h in proof] == path
    merkle.verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


@pytest.mark.parametrize("index,size,path", [v for v in INCLUSION_VECTORS if v[2]])
def test_inclusion_vector_corruptions_fail(index, size, path):
    """The corruptions transparency-dev's verifier tests apply, each must fail."""
    proof = [bytes.fromhex(h) for h in path]
    root = ROOTS[size]
    leaf = merkle.leaf_hash(bytes.fromhex(LEAVES[index]))
    some_hash = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes = [
        (index - 1, size, leaf, proof, root),
        (index + 1, size, leaf, proof, root),
        (index ^ 2, size, leaf, proof, root),
        (index, size * 2, leaf, proof, root),
        (index, size // 2, leaf, proof, root),
        (index, size, merkle.leaf_hash(b"WrongLeaf"), proof, root),
        (index, size, leaf, proof, merkle.EMPTY_ROOT),
        (index, size, leaf, proof, some_hash),
        (index, size, leaf, proof + [root], root),
        (index, size, leaf, [root] + proof, root),
        (index, size, leaf, proof[:-1], root),
    ]
    for position in range(len(proof)):
        flipped = list(proof)
        flipped[position] = bytes([flipped[position][0] ^ 8]) + flipped[position][1:]
        probes.append((index, size, leaf, flipped, root))
    if len(proof) > 1:
        probes.append((index, size, leaf, [proof[0], some_hash] + proof[1:], root))
    for probe in probes:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*probe)


@pytest.mark.parametrize("old,new,path", [v for v in CONSISTENCY_VECTORS if v[2]])
def test_consistency_vector_corruptions_fail(old, new, path):
    proof = [bytes.fromhex(h) for h in path]
    root1, root2 = ROOTS[old], ROOTS[new]
    probes = [
        (old - 1, new, root1, root2, proof),
        (old + 1, new, root1, root2, proof),
        (old ^ 2, new, root1, root2, proof),
        (old, new * 2, root1, root2, proof),
        (old, new // 2, root1, root2, proof),
        (old, new, merkle.leaf_hash(b"WrongRoot"), root2, proof),
        (old, new, root1, merkle.leaf_hash(b"WrongRoot"), proof),
        (old, new, root2, root1, proof),
        (old, new, root1, root2, []),
        (old, new, root1, root2, proof + [root1]),
        (old, new, root1, root2, proof + [root2]),
        (old, new, root1, root2, [root1] + proof),
        (old, new, root1, root2, [root2] + proof),
        (old, new, root1, root2, [proof[0]] + proof),
        (old, new, root1, root2, proof[:-1]),
    ]
    for position in range(len(proof)):
        flipped = list(proof)
        flipped[position] = bytes([flipped[position][0] ^ 16]) + flipped[position][1:]
        probes.append((old, new, root1, root2, flipped))
    for size1, size2, first, second, bad_proof in probes:
        with pytest.raises(ProofError):
            merkle.verify_consistency(size1, size2, first, second, bad_proof)


def test_degenerate_consistency_cases():
    some = merkle.leaf_hash(b"x")
    other = merkle.leaf_hash(b"y")
    merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, some, [])
    merkle.verify_consistency(3, 3, some, some, [])
    with pytest.raises(ProofError):
        merkle.verify_consistency(3, 3, some, other, [])
    with pytest.raises(ProofError):
        merkle.verify_consistency(3, 3, some, some, [some])
    with pytest.raises(ProofError):
        merkle.verify_consistency(0, 1, some, some, [some])
    with pytest.raises(ProofError):
        merkle.verify_consistency(2, 1, some, other, [])
    with pytest.raises(ProofError):
        merkle.verify_consistency(1, 2, some, other, [])


def test_proof_error_carries_expected_and_computed():
    leaf = merkle.leaf_hash(b"")
    with pytest.raises(ProofError) as caught:
        merkle.verify_inclusion(0, 2, leaf, [merkle.leaf_hash(b"\x00")], ROOTS[3])
    assert caught.value.expected == ROOTS[3].hex()
    assert caught.value.computed == ROOTS[2].hex()
    assert ROOTS[3].hex() in str(caught.value) and ROOTS[2].hex() in str(caught.value)


@pytest.mark.parametrize("old,new,path", [v for v in CONSISTENCY_VECTORS if v[2]])
def test_consistency_errors_carry_expected_and_computed(old, new, path):
    proof = [bytes.fromhex(h) for h in path]
    for wrong_length in (proof[:-1], proof + [proof[0]]):
        with pytest.raises(ProofError, match="too (short|long)") as caught:
            merkle.verify_consistency(old, new, ROOTS[old], ROOTS[new], wrong_length)
        assert (caught.value.expected, caught.value.computed) == (len(proof), len(wrong_length))
    wrong_root = merkle.leaf_hash(b"WrongRoot")
    with pytest.raises(ProofError, match="new root") as caught:
        merkle.verify_consistency(old, new, ROOTS[old], wrong_root, proof)
    assert (caught.value.expected, caught.value.computed) == (wrong_root.hex(), ROOTS[new].hex())


_HAVE_TOOLS = all(shutil.which(tool) for tool in ("bash", "xxd", "sha256sum", "cut"))


@pytest.mark.skipif(not _HAVE_TOOLS, reason="needs bash, xxd, sha256sum and cut")
def test_commands_reproduce_hashes():
    """Every command given beside a vector prints that vector's hash."""
    cases = [(expected, command) for _, _, expected, command in NODE_VECTORS]
    cases += [(expected, command) for _, expected, command in ROOT_VECTORS]
    script = "\n".join(command for _, command in cases)
    output = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split("\n")
    printed = [line.split()[0] for line in output if line.strip()]
    assert printed == [expected for expected, _ in cases]
