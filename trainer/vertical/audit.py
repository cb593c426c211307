"""A party's audit of the exchange: does any of its raw data appear in the store or the log?

A party (or its privacy officer) holds its own raw rows, so it can check the shared files for
them: every byte of every blob in the store and of the log file (with its SQLite side files).
``needles`` lists what a leak would look like, chosen so that a hit cannot be a coincidence
even for small integer columns (a single 0/1 value occurs in any file):

* each row's values of the party's columns, consecutive, as float32 and float64 in both byte
  orders (a row-major matrix), when the party has two columns or more;
* four consecutive rows of one column, the same encodings (a column-major matrix);
* each row's cells as CSV text, the customer ID first and without it;
* four consecutive customer IDs as int32, int64, float32 and float64 (little-endian).

Needles with fewer than six non-zero bytes are left out (a row of zeros is a run of zero
bytes, which every SQLite page holds), so a run on 0/1 columns stays free of false alarms.

``scan`` returns one ``Finding`` per needle found, naming the file and what matched.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

RUN = 4  # consecutive rows that make a column needle
PREFIX = 6  # every needle is at least this long (see _distinctive)


@dataclass(frozen=True)
class Finding:
    path: str
    what: str


def needles(ids: Sequence[str], texts: Sequence[Sequence[str]],
            values: Sequence[Sequence[float]]) -> dict[bytes, str]:
    """What a leak of these rows would look like (module docstring). ``texts`` are the CSV
    cells as written, ``values`` the same cells as numbers, one row per customer."""
    found: dict[bytes, str] = {}
    n_columns = len(values[0]) if values else 0
    codes = ("<f", ">f", "<d", ">d")
    for r, row in enumerate(values):
        if n_columns >= 2:
            for code in codes:
                found[struct.pack(code[0] + code[1] * n_columns, *row)] = \
                    f"row {r + 1} as {code} values"
        cells = ",".join(texts[r])
        found[cells.encode()] = f"row {r + 1} as CSV text"
        found[f"{ids[r]},{cells}".encode()] = f"row {r + 1} with its ID as CSV text"
    for c in range(n_columns):
        for r in range(len(values) - RUN + 1):
            run = [values[r + k][c] for k in range(RUN)]
            for code in codes:
                found.setdefault(struct.pack(code[0] + code[1] * RUN, *run),
                                 f"column {c + 1}, rows {r + 1}-{r + RUN} as {code} values")
    numeric = [int(i) for i in ids if i.lstrip("-").isdigit()]
    if len(numeric) == len(ids):
        for r in range(len(ids) - RUN + 1):
            run = numeric[r:r + RUN]
            for code in ("<i", "<q"):
                if all(-2**31 <= v < 2**31 for v in run) or code == "<q":
                    found[struct.pack("<" + code[1] * RUN, *run)] = \
                        f"IDs of rows {r + 1}-{r + RUN} as {code}"
            for code in ("<f", "<d"):
                found[struct.pack("<" + code[1] * RUN, *map(float, run))] = \
                    f"IDs of rows {r + 1}-{r + RUN} as {code}"
    return {needle: what for needle, what in found.items() if _distinctive(needle)}


def _distinctive(needle: bytes) -> bool:
    """Long and varied enough that no file holds it by chance: at least 6 bytes that are not
    zero (a row of zeros is a run of zero bytes, which every SQLite page has)."""
    return len(needle) >= 6 and sum(1 for b in needle if b != 0) >= 6


def files_of(store: Path, log: Path) -> list[Path]:
    """Every blob of the store, the log and its SQLite side files (-wal, -shm, -journal)."""
    blobs = sorted(p for p in store.iterdir() if p.is_file())
    return blobs + sorted(p for p in log.parent.glob(log.name + "*") if p.is_file())


def scan(paths: Iterable[Path], wanted: dict[bytes, str]) -> list[Finding]:
    """Every needle found in every file, in one pass over each file's bytes: each needle is
    indexed by its most varied ``PREFIX``-byte window (one search per needle would be 100,000
    passes for a 5,000-row party, and a window of zeros would match every run of zeros)."""
    index: dict[bytes, list[tuple[bytes, int, str]]] = {}
    for needle, what in wanted.items():
        offset = max(range(len(needle) - PREFIX + 1),
                     key=lambda o: len(set(needle[o:o + PREFIX])))
        index.setdefault(needle[offset:offset + PREFIX], []).append((needle, offset, what))
    findings = []
    for path in paths:
        data = path.read_bytes()
        hits: set[str] = set()
        get = index.get
        for i in range(len(data) - PREFIX + 1):
            group = get(data[i:i + PREFIX])
            if group:
                hits.update(what for needle, offset, what in group
                            if i >= offset and data.startswith(needle, i - offset))
        findings += [Finding(str(path), what) for what in sorted(hits)]
    return findings
