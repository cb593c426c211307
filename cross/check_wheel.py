"""Check an unpacked pyastore wheel with the target's own Python (run by cross/wheel.sh).

    PYTHONPATH=SITE PYASTORE_LIBASTORE=libastore.so python check_wheel.py REPO_ROOT SITE

Runs on the device's interpreter (under qemu for aarch64/armv7) with the standard library,
pyastore's runtime dependencies and cffi only: no numpy, no pytest. Checks that

* ``pyastore`` and its ``_core`` extension are the wheel's, built for this machine;
* both backends (the pybind11 extension and ``_cffi_core`` over the cross-built
  ``libastore.so``) score every golden input of ``tests/golden_scores`` to the golden bytes;
* both raise the same error class, message and offset for every negative-corpus container;
* ``pyastore.load`` verifies the golden container's Ed25519 signature and scores with it.

Prints ``RESULT <check> ok|FAIL [detail]`` lines; exits 1 when a check failed.
"""

from __future__ import annotations

import json
import os
import platform
import struct
import sys
from array import array

failed = 0


def result(check: str, ok: bool, detail: str = "") -> None:
    global failed
    failed += not ok
    print(f"RESULT wheel-{check} {'ok' if ok else 'FAIL'}{' ' + detail if detail else ''}",
          flush=True)


def little_endian(values: array) -> bytes:
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def ulp_distance(a: float, b: float) -> int:
    ia, ib = (struct.unpack("<q", struct.pack("<d", v))[0] for v in (a, b))
    ia, ib = (i if i >= 0 else -(1 << 63) - i for i in (ia, ib))
    return abs(ia - ib)


def score_golden(core, root: str, name: str, entry: dict) -> tuple[bool, str]:
    """Scores the golden input; (bit-identical?, detail with the largest ulp distance)."""
    folder = os.path.join(root, "tests", "golden_scores")
    with open(os.path.join(root, entry["container"]), "rb") as handle:
        model = core.Model(core.Container(handle.read()))
    x = array("f")
    with open(os.path.join(folder, f"{name}.input.f32"), "rb") as handle:
        x.frombytes(handle.read())
    if sys.byteorder == "big":
        x.byteswap()
    out = array("d", bytes(8 * entry["n_rows"] * entry["n_outputs"]))
    model.score_into(x, out, 1)
    with open(os.path.join(folder, f"{name}.expected.f64"), "rb") as handle:
        expected = array("d", handle.read())
    if sys.byteorder == "big":
        expected.byteswap()
    differing = [(a, b) for a, b in zip(out, expected)
                 if struct.pack("<d", a) != struct.pack("<d", b)]
    if not differing:
        return True, f"{entry['n_rows']} rows bit-identical"
    worst = max(ulp_distance(a, b) for a, b in differing)
    return False, f"{len(differing)} of {len(out)} values differ, up to {worst} ulp"


def error_of(core, data: bytes):
    try:
        core.Model(core.Container(data))
    except Exception as exc:  # noqa: BLE001 - the comparison is the point
        return type(exc).__name__, str(exc), getattr(exc, "offset", None)
    return None


def main() -> int:
    root, site = sys.argv[1], os.path.abspath(sys.argv[2])
    import pyastore
    from pyastore import _core

    result("import", pyastore.__file__.startswith(site) and _core.__file__.startswith(site),
           f"{platform.machine()} Python {platform.python_version()} "
           f"{os.path.basename(_core.__file__)}")
    from pyastore import _cffi_core

    result("cffi-import", True,
           f"libastore {_cffi_core.LIBRARY_VERSION} from {_cffi_core.LIBRARY_PATH}")
    result("status-names", _cffi_core.STATUS_NAMES == _core.STATUS_NAMES)

    with open(os.path.join(root, "tests", "golden_scores", "manifest.json")) as handle:
        golden = json.load(handle)["golden"]
    for name, entry in sorted(golden.items()):
        for label, core in (("pybind", _core), ("cffi", _cffi_core)):
            result(f"golden-{name}-{label}", *score_golden(core, root, name, entry))

    corpus = os.path.join(root, "tests", "corpus", "negative")
    mismatches = []
    names = sorted(n for n in os.listdir(corpus) if n.endswith(".astore"))
    for name in names:
        with open(os.path.join(corpus, name), "rb") as handle:
            data = handle.read()
        if error_of(_core, data) != error_of(_cffi_core, data):
            mismatches.append(name)
    result("corpus-errors", not mismatches,
           f"{len(names)} containers" if not mismatches else "differ: " + ", ".join(mismatches))

    golden_path = os.path.join(root, "tests", "golden", "tiny_forest.astore")
    model = pyastore.load(golden_path, trusted_keys=[
        os.path.join(root, "tests", "golden", "golden_test_key.pub")])
    reference = _core.Model(_core.Container(open(golden_path, "rb").read()))
    rows = [[0.0, 0.0, 0.0], [1.0, 2.0, -1.0], [None, 3.0, 0.25]]
    result("load-verify-score", model.signature_status == "trusted" and
           model.score(rows) == [reference.score_one(r) for r in rows],
           f"store key {model.store_key[:16]}...")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
