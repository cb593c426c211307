"""The benchmark harness keeps working: ``python -m bench --quick`` on tiny models.

It must report a row for every contender engine, with a reason for each one that is missing
(the optional contenders -- onnxruntime, treelite/tl2cgen, m2cgen, lleaves -- need not be
installed), and score with pyastore, its C API and the original libraries. Every table it
prints starts with the CPU line; single events come in blocks, each with its median and p99.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import harness

ROOT = Path(__file__).resolve().parents[3]
ENGINES = ("pyastore", "pyastore-c", "xgboost-inplace", "xgboost-dmatrix", "sklearn",
           "onnxruntime", "tl2cgen", "m2cgen", "lleaves")
ALWAYS_AVAILABLE = ("pyastore", "pyastore-c", "xgboost-inplace", "xgboost-dmatrix", "sklearn")
TREE_MODELS = ("M1", "M2", "M3", "M5")
QUICK_BLOCKS = 2  # bench.models.QUICK.latency_blocks


def test_quick_bench_reports_every_contender(tmp_path):
    out = tmp_path / "results.json"
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", "--cache", str(tmp_path),
                             "--json", str(out)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    rows = results["rows"]
    machine = results["machine"]
    assert machine["cpu"] and isinstance(machine["isa"], list) and machine["arch"]
    lines = result.stdout.splitlines()
    cpu = harness.cpu_line(machine)
    header = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    assert lines[header - 2] == cpu  # the Markdown table
    summary = next(i for i, line in enumerate(lines) if line.startswith("load average at start"))
    assert lines[summary - 1] == cpu  # the summary
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(table) == len(rows) + len([c for c in results["cold_start"]
                                          if (c["model"], c["engine"]) not in
                                          {(r["model"], r["engine"]) for r in rows}])

    assert {row["engine"] for row in rows} >= set(ENGINES)
    for row, line in zip(rows, table):
        assert line.startswith(f"| {row['model']} | {row['name']} |")
        if row["status"] == "ok":
            assert row["batch"]["1"]["ns_per_row"] > 0 and row["single"]["median_us"] > 0
            blocks = row["single"]["blocks"]
            assert len(blocks) == QUICK_BLOCKS, row
            assert sum(b["calls"] for b in blocks) == row["single"]["calls"]
            assert " · " in line
            assert row["max_abs_diff"] < 1e-5 or row["engine"] in ("m2cgen", "onnxruntime"), row
        else:
            assert row["status"] in ("missing", "failed") and row["reason"], row
            assert f"**{row['status']}**: " in line
    for row in rows:
        if row["engine"] in ALWAYS_AVAILABLE and row["model"] in TREE_MODELS:
            assert row["status"] == "ok", row

    cold = {c["engine"]: c for c in results["cold_start"]}
    for key in ("python", "numpy", "pyastore", "pyastore-nonumpy"):
        assert cold[key]["status"] == "ok", cold[key]
        assert cold[key]["wall_ms"] > 0 and cold[key]["peak_rss_mib"] > 0


def test_cpu_info_reads_x86_and_aarch64():
    x86 = ("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"
           "flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni\n")
    assert harness.cpu_info(x86) == ("AMD EPYC 7B13", ["SSE4.2", "AVX", "AVX2", "FMA",
                                                       "AVX-512F", "AVX-512BW", "AVX-512VL"])
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32\nCPU part\t: 0xd0c\n"
    assert harness.cpu_info(arm) == ("?", ["NEON/ASIMD"])
    assert harness.cpu_info("") == ("?", [])


def test_latency_summary_keeps_every_block():
    summary = harness.latency_summary([[1000] * 99 + [9000], [2000] * 100])
    assert [b["median_us"] for b in summary["blocks"]] == [1.0, 2.0]
    assert [b["p99_us"] for b in summary["blocks"]] == [1.0, 2.0]
    assert summary["calls"] == 200 and summary["median_us"] == 2.0
