"""A child process for the crash and concurrency tests (run as a script, not collected).

    chain_worker.py LOG LABEL FIRST COUNT [wait]

Appends ``COUNT`` model records (store keys ``store_key(FIRST + i)``) signed by the key
seeded from ``LABEL``, one durable append each; ``COUNT`` 0 means forever. Prints ``ready``
once the log is open, and at the end ``done <published> <duplicates>``: a publish refused as a
duplicate (another process won the race) is counted, not fatal. With ``wait`` it reads
one line from stdin after ``ready`` before appending, so several workers start together.
"""

from __future__ import annotations

import itertools
import sys

from chain.errors import DuplicateRecordError
from chain.log import Log
from chain_testlib import seeded_key, store_key


def main(argv: list[str]) -> int:
    path, label, first, count = argv[0], argv[1], int(argv[2]), int(argv[3])
    submitter = seeded_key(label)
    published = duplicates = 0
    with Log.open(path) as log:
        print("ready", flush=True)
        if argv[4:] == ["wait"]:
            sys.stdin.readline()
        numbers = itertools.count(first) if count == 0 else range(first, first + count)
        for number in numbers:
            try:
                log.append_model(store_key(number), f"{label} {number}", "", submitter)
                published += 1
            except DuplicateRecordError:
                duplicates += 1
    print(f"done {published} {duplicates}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
