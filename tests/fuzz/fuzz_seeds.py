"""Seed corpora for the libFuzzer harnesses of csrc/fuzz, made from the committed files.

    python tests/fuzz/fuzz_seeds.py OUT     # OUT/container, OUT/model, OUT/meta, OUT/frst, ...

``container`` and ``model`` get every container of tests/golden, tests/golden_scores and
tests/corpus/negative whole; ``meta``, ``frst``, ``mlp`` and ``xfrm`` get the body of that
section type from every one of them that holds it (the section harnesses frame the body
themselves). Files are named by the SHA-256 of their bytes, so a body shared by many
containers is one seed.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "tests" / "golden", ROOT / "tests" / "golden_scores",
           ROOT / "tests" / "corpus" / "negative"]
SECTION_TARGETS = {b"META": "meta", b"FRST": "frst", b"MLP_": "mlp", b"XFRM": "xfrm"}
TARGETS = ("container", "model", *SECTION_TARGETS.values())


def containers() -> list[bytes]:
    return [path.read_bytes() for folder in SOURCES for path in sorted(folder.glob("*.astore"))]


def section_bodies(data: bytes) -> dict[bytes, bytes]:
    """The bodies of ``data``'s sections by type, as far as its table can be read."""
    if len(data) < 64:
        return {}
    count = min(struct.unpack_from("<I", data, 24)[0], (len(data) - 64) // 32)
    bodies = {}
    for i in range(count):
        kind, _, offset, length = struct.unpack_from("<4sIQQ", data, 64 + 32 * i)
        if kind in SECTION_TARGETS and offset + length <= len(data):
            bodies.setdefault(kind, data[offset:offset + length])
    return bodies


def write_seeds(out: Path) -> dict[str, int]:
    """Write every target's seeds under ``out``; return the number of seeds per target."""
    seeds: dict[str, set[bytes]] = {target: set() for target in TARGETS}
    for data in containers():
        seeds["container"].add(data)
        seeds["model"].add(data)
        for kind, body in section_bodies(data).items():
            seeds[SECTION_TARGETS[kind]].add(body)
    for target, items in seeds.items():
        folder = out / target
        folder.mkdir(parents=True, exist_ok=True)
        for item in items:
            (folder / hashlib.sha256(item).hexdigest()).write_bytes(item)
    return {target: len(items) for target, items in seeds.items()}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/fuzz/fuzz_seeds.py OUT")
    for target, count in write_seeds(Path(sys.argv[1])).items():
        print(f"{target}: {count} seeds")
