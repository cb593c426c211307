"""The benchmark harness keeps working: ``python -m bench --quick`` on tiny models.

It must report a row for every contender engine, with a reason for each one that is missing
(the optional contenders -- onnxruntime, treelite/tl2cgen, m2cgen, lleaves, YDF -- need not be
installed), and score with pyastore, its C API and the original libraries. Every table it
prints starts with the CPU line; single events come in blocks, each with its median and p99.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import contenders, harness

ROOT = Path(__file__).resolve().parents[3]
ENGINES = ("pyastore", "pyastore-c", "xgboost-inplace", "xgboost-dmatrix", "sklearn",
           "onnxruntime", "tl2cgen", "m2cgen", "lleaves", "ydf", "ydf-benchmark")
ALWAYS_AVAILABLE = ("pyastore", "pyastore-c", "xgboost-inplace", "xgboost-dmatrix", "sklearn")
TREE_MODELS = ("M1", "M2", "M3", "M5")
QUICK_BLOCKS = 2  # bench.models.QUICK.latency_blocks


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("quick_bench")
    out = tmp_path / "results.json"
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", "--cache", str(tmp_path),
                             "--json", str(out)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, json.loads(out.read_text())


def test_quick_bench_reports_every_contender(quick_run):
    stdout, results = quick_run
    rows = results["rows"]
    table = [line for line in stdout.splitlines() if line.startswith("| ")][1:]
    assert len(table) == len(rows) + len([c for c in results["cold_start"]
                                          if (c["model"], c["engine"]) not in
                                          {(r["model"], r["engine"]) for r in rows}])

    assert {row["engine"] for row in rows} >= set(ENGINES)
    for row, line in zip(rows, table):
        assert line.startswith(f"| {row['model']} | {row['name']} |")
        if row["status"] == "ok":
            assert row["batch"]["1"]["ns_per_row"] > 0
            if row["engine"] == "ydf-benchmark":  # YDF's own mean per event, no per-call times
                assert "batch_size=1" in row["single"]["note"], row
            else:
                assert row["single"]["median_us"] > 0
            if row["engine"] in ("ydf", "ydf-benchmark"):  # its own trees: nothing to agree with
                assert row["max_abs_diff"] is None and "| n/a (own model) |" in line, row
                assert "not the same trees" in line
            else:
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


def test_quick_bench_scores_the_ydf_twins(quick_run):
    stdout, results = quick_run
    rows = {(r["model"], r["engine"]): r for r in results["rows"]}
    for key in ("M1", "M2"):
        for engine in ("ydf", "ydf-benchmark"):
            row = rows[(f"{key}-ydf", engine)]
            assert row["status"] == "ok", row
            assert row["reference_model"] == key and row["ratio_batch"]["1"] > 0
            assert row["n_trees"] == rows[(key, "pyastore")]["n_trees"]
        assert "nodes visited per row" in " ".join(rows[(f"{key}-ydf", "ydf")]["notes"])
        assert f"{key} pyastore (Python API) ÷ YDF predict 1T " in stdout
        assert "÷ xgboost inplace_predict 1T " in stdout


def test_every_table_starts_with_the_cpu_line(quick_run):
    stdout, results = quick_run
    machine = results["machine"]
    assert machine["cpu"] and isinstance(machine["isa"], list) and machine["arch"]
    lines = stdout.splitlines()
    cpu = harness.cpu_line(machine)
    assert cpu.startswith("CPU: ")
    header = next(i for i, line in enumerate(lines) if line.startswith("| model |"))
    assert lines[header - 2] == cpu  # the Markdown table
    summary = next(i for i, line in enumerate(lines) if line.startswith("load average at start"))
    assert lines[summary - 1] == cpu  # the summary


def test_single_events_come_in_blocks(quick_run):
    stdout, results = quick_run
    for row in results["rows"]:
        if row["status"] != "ok" or row["engine"] == "ydf-benchmark":
            continue
        blocks = row["single"]["blocks"]
        assert len(blocks) == QUICK_BLOCKS, row
        assert sum(b["calls"] for b in blocks) == row["single"]["calls"]
        assert min(b["median_us"] for b in blocks) <= row["single"]["p99_us"]
    assert any(" · " in line for line in stdout.splitlines() if line.startswith("| M1 |"))


def test_cpu_info_reads_x86_and_aarch64():
    x86 = ("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"
           "flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni gfni\n")
    assert harness.cpu_info(x86) == ("AMD EPYC 7B13", ["SSE4.2", "AVX", "AVX2", "FMA",
                                                       "AVX-512F", "AVX-512BW", "AVX-512VL",
                                                       "GFNI"])
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32\nCPU part\t: 0xd0c\n"
    assert harness.cpu_info(arm) == ("?", ["NEON/ASIMD"])
    assert harness.cpu_info("") == ("?", [])


def test_latency_summary_keeps_every_block():
    summary = harness.latency_summary([[1000] * 99 + [9000], [2000] * 100])
    assert [b["median_us"] for b in summary["blocks"]] == [1.0, 2.0]
    assert [b["p99_us"] for b in summary["blocks"]] == [1.0, 2.0]
    assert summary["calls"] == 200 and summary["median_us"] == 2.0


def test_ydf_benchmark_report_is_read():
    report = ("Single-thread inference time per example: 0.031 us (microseconds)\n"
              "Details: 16760000 predictions in 0.000 seconds\n\n"
              "Multi-thread inference time per example: 0.059 us (microseconds)\n"
              "Details: 6033000 predictions in 0.000 seconds using 2 threads\n")
    assert contenders.parse_ydf_benchmark(report) == {"single": 0.031, "multi": 0.059,
                                                      "multi_threads": 2.0}
    with pytest.raises(contenders.Missing):
        contenders.parse_ydf_benchmark("nothing here")


def test_lleaves_is_compared_with_pyastore_on_the_same_lightgbm_model(quick_run):
    """pyastore exports and scores the LightGBM twin itself, so lleaves' ratio divides
    pyastore's time on the same trees, and both agree with LightGBM."""
    _, results = quick_run
    rows = {(r["model"], r["engine"]): r for r in results["rows"]}
    ours, theirs = rows[("M1-lgbm", "pyastore")], rows[("M1-lgbm", "lleaves")]
    assert ours["status"] == "ok" and ours["max_abs_diff"] < 1e-6, ours
    assert theirs["reference_model"] == "M1-lgbm"
    assert theirs["ratio_batch"]["1"] == pytest.approx(
        ours["batch"]["1"]["ns_per_row"] / theirs["batch"]["1"]["ns_per_row"])
