"""The import rules of DESIGN.md: the device runtime never pulls training frameworks."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN_IN_RUNTIME = {"trainer", "sklearn", "xgboost", "torch", "pickle", "bench", "tests"}
OWN_PACKAGES = {"pyastore", "trainer", "chain", "bench", "tests"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_runtime_imports_no_training_framework_or_pickle():
    offenders = {}
    for path in (ROOT / "pyastore").rglob("*.py"):
        bad = imported_roots(path) & FORBIDDEN_IN_RUNTIME
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_nothing_imports_bench_or_tests():
    offenders = {}
    for package in ("pyastore", "trainer", "chain"):
        for path in (ROOT / package).rglob("*.py"):
            bad = imported_roots(path) & {"bench", "tests"}
            if bad:
                offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_chain_imports_only_pyastore_key_helpers():
    allowed = {"pyastore.keys", "pyastore.errors"}
    offenders = {}
    for path in (ROOT / "chain").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("pyastore")
            ):
                modules = ({f"pyastore.{alias.name}" for alias in node.names}
                           if node.module == "pyastore" else {node.module})
                for module in sorted(modules - allowed):
                    offenders.setdefault(str(path.relative_to(ROOT)), []).append(module)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in {"trainer"}:
                        offenders.setdefault(str(path.relative_to(ROOT)), []).append(alias.name)
    assert offenders == {}


def test_scoring_a_list_does_not_import_numpy(golden_path, golden_pub):
    code = (
        "import sys, pyastore\n"
        f"m = pyastore.load({str(golden_path)!r}, trusted_keys=[{str(golden_pub)!r}])\n"
        "m.score_one([0.0, 1.0, 2.0]); m.score([[0.0, 1.0, 2.0]])\n"
        "heavy = ('numpy', 'pandas', 'torch', 'sklearn', 'xgboost', 'trainer', 'nacl.signing')\n"
        "bad = sorted(n for n in heavy if n in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
