"""The side-by-side run: every engine on every standard model, one Markdown table.

Every table printed (the summary and the Markdown) starts with the CPU line: the model and the
instruction-set extensions from ``/proc/cpuinfo`` (``cpu_line``; also in ``results.json``
under ``machine``), since which kernels run depends on them.

Per model, each engine that applies (``bench.contenders``) is set up in turn:

1. ``prepare``: convert / compile into the engine's files (cached; the time is recorded);
2. load time: the model files into a ready scorer, median of ``load_repeats`` fresh loads
   (shared libraries are copied to a new path before each load, since ``dlopen`` caches by
   path);
3. agreement: max |engine - original library| on the first ``agreement_rows`` scoring rows
   (the library: XGBoost ``Booster.predict`` on a ``DMatrix``, scikit-learn ``predict_proba``,
   LightGBM ``predict``); when it exceeds 1e-4, the same on the rows without NaN, to tell
   missing-value routing from other disagreements. Not applicable to YDF, which scores its
   own equal-shape twin (``n/a (own model)``).

Then, for all of the model's engines together:

4. single events (``measure_single_events``): ``latency_blocks`` blocks of up to
   ``latency_calls`` ``predict_one`` calls on one event as a Python list, each call timed
   with ``perf_counter_ns`` (fewer calls for engines slower than ``latency_budget_s`` per
   block allows), block b of every engine before block b + 1 of any: every block's median and
   p99 and the overall ones, so that the machine switching between two speeds shows up as
   blocks that disagree instead of hiding in one median;
5. batch throughput (``measure_batches``): all scoring rows (1M float32; 250k for M2) with 1
   then 2 threads, in interleaved rounds -- one run per engine per round, each after a
   1,000-row warm-up -- so that a burst of other work on this shared 2-core machine hits every
   engine alike; median over up to ``batch_repeats`` runs (an engine stops once its runs add
   up to ``batch_budget_s``; the count is in the JSON). Engines that time themselves (the C
   driver; YDF's ``model.benchmark``) report their own figures here.

Finally cold start, for M1 only: a fresh process imports the engine, loads M1, scores one row;
wall time and peak RSS (through ``bench/c/run_measured.c``), median of ``cold_repeats`` after
one untimed run; also ``python -c pass``, ``python -c 'import numpy'`` and pyastore scoring a
list without numpy. (The quick profile times pyastore and the baselines only: importing
xgboost alone takes seconds.)

Ratios are ``pyastore / engine`` from the same run: below 1 pyastore is faster (or smaller).
The reference is pyastore's Python API on the same model (on a twin -- M1's LightGBM and YDF
twins, M2's YDF twin -- on the model it copies). The summary also gives, per model, pyastore
÷ YDF (the fastest contender; on its own equal-shape model) and pyastore ÷ xgboost
``inplace_predict`` (``reference_ratios``).
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench import contenders
from bench.models import (
    DEFAULT_CACHE,
    MODEL_KEYS,
    ROOT,
    BenchModel,
    MissingTwin,
    Profile,
    build_models,
)

THREADS = (1, 2)


#: the /proc/cpuinfo flags that decide which scoring kernels can run, as they are shown
ISA_FLAGS = {"sse4_2": "SSE4.2", "avx": "AVX", "avx2": "AVX2", "fma": "FMA",
             "avx512f": "AVX-512F", "avx512bw": "AVX-512BW", "avx512vl": "AVX-512VL",
             "avx512cd": "AVX-512CD", "avx512vbmi": "AVX-512VBMI", "gfni": "GFNI",
             "asimd": "NEON/ASIMD", "neon": "NEON", "sve": "SVE"}


def cpu_info(text: str | None = None) -> tuple[str, list[str]]:
    """The CPU model and its instruction-set extensions (``ISA_FLAGS`` order) from
    ``/proc/cpuinfo`` (or ``text``); ``"?"`` and ``[]`` where it says nothing."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            text = ""
    model, flags = "?", set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if model == "?" and name in ("model name", "hardware", "cpu model"):
            model = value.strip() or "?"
        elif not flags and name in ("flags", "features"):  # x86 "flags", aarch64 "Features"
            flags = set(value.split())
    isa = [label for flag, label in ISA_FLAGS.items() if flag in flags]
    if "NEON/ASIMD" in isa and "NEON" in isa:
        isa.remove("NEON")
    return model, isa


def cpu_line(info: dict[str, Any]) -> str:
    """``CPU: AMD EPYC (x86_64, 2 cores), ISA: SSE4.2 AVX AVX2 FMA AVX-512F ...``: the first
    line of every table this harness prints."""
    isa = " ".join(info.get("isa") or []) or "none of " + " ".join(ISA_FLAGS.values())
    return (f"CPU: {info['cpu']} ({info.get('arch', '?')}, {info['cores']} cores), "
            f"ISA: {isa}")


def machine() -> dict[str, Any]:
    cpu, isa = cpu_info()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True,
    ).stdout.strip()
    return {"cpu": cpu, "isa": isa, "arch": platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform(),
            "commit": commit, "working_tree_modified": bool(dirty),
            "loadavg_start": os.getloadavg()}


# ---- one (model, engine) pair -----------------------------------------------------------------


def _staged(artifact: contenders.Artifact, workdir: Path, index: int) -> contenders.Artifact:
    """A copy of the artifact whose main file (a shared library) has a new path."""
    label, path = next(iter(artifact.files.items()))
    stage = workdir / "stage"
    stage.mkdir(exist_ok=True)
    copy = stage / f"{index}_{path.name}"
    shutil.copyfile(path, copy)
    files = {label: copy, **{k: v for k, v in artifact.files.items() if k != label}}
    return contenders.Artifact(files, artifact.prepare_seconds, artifact.cached, artifact.notes,
                               artifact.extra)


def _file_sizes(artifact: contenders.Artifact) -> dict[str, int]:
    return {label: path.stat().st_size for label, path in artifact.files.items() if path.exists()}


def check_agreement(engine: contenders.Engine, model: BenchModel, scorer: contenders.Scorer,
                    profile: Profile, row: dict[str, Any]) -> None:
    """``max_abs_diff`` of the engine against the original library on the first
    ``agreement_rows`` rows (None for an engine scoring its own model: YDF's twins)."""
    x_agree = model.batch.x[:profile.agreement_rows]
    got = scorer.predict_batch(x_agree, 1)
    if got.shape != (len(x_agree),):
        raise contenders.Missing(f"returned shape {got.shape} for {len(x_agree)} rows")
    row["agreement_rows"] = len(x_agree)
    if engine.own_model:
        if not np.all((got >= 0) & (got <= 1)):
            raise contenders.Missing("scores outside [0, 1]")
        row["max_abs_diff"] = None
        row["notes"].append("max abs diff n/a: equal shape, not the same trees")
        return
    reference = model.reference(x_agree)
    row["max_abs_diff"] = float(np.max(np.abs(got - reference)))
    complete = ~np.isnan(x_agree).any(axis=1)
    if row["max_abs_diff"] > 1e-4 and 0 < complete.sum() < len(x_agree):
        clean = float(np.max(np.abs(got[complete] - reference[complete])))
        row["max_abs_diff_rows_without_nan"] = clean
        verdict = ("missing values routed differently" if clean <= 1e-4 else
                   "disagrees on complete rows too")
        row["notes"].append(f"max abs diff {clean:.1e} on the {int(complete.sum())} rows "
                            f"without NaN: {verdict}")


def setup_pair(engine: contenders.Engine, model: BenchModel, profile: Profile,
               log=print) -> tuple[dict[str, Any], contenders.Scorer | None]:
    """Prepare, time the loads and check agreement for one pair; the row so far and the
    loaded scorer (None when the engine is missing or failed)."""
    row: dict[str, Any] = {"model": model.key, "engine": engine.key, "name": engine.name,
                           "status": "ok", "notes": []}
    began = time.perf_counter()
    scorer = None
    try:
        row["version"] = engine.version()
        workdir = model.directory / engine.key
        workdir.mkdir(parents=True, exist_ok=True)
        artifact = engine.prepare(model, workdir)
        row["prepare_seconds"] = round(artifact.prepare_seconds, 2)
        row["notes"] += artifact.notes
        row["files"] = _file_sizes(artifact)
        loads = []
        for index in range(profile.load_repeats):
            staged = _staged(artifact, workdir, index) if engine.loads_shared_library else artifact
            if scorer is not None:
                scorer.close()
            started = time.perf_counter()
            scorer = engine.load(staged, model)
            loads.append(time.perf_counter() - started)
        row["load_ms"] = 1e3 * float(np.median(loads))
        assert scorer is not None
        check_agreement(engine, model, scorer, profile, row)
    except contenders.Missing as exc:
        row.update(status="missing", reason=str(exc))
        scorer = None
    except Exception as exc:  # noqa: BLE001 - a crash is reported as this engine's result
        log(traceback.format_exc())
        row.update(status="failed", reason=f"{type(exc).__name__}: {str(exc)[:300]}")
        scorer = None
    row["seconds"] = round(time.perf_counter() - began, 2)
    log(f"[bench] {model.key} x {engine.name}: {row['status']} in {row['seconds']:.1f} s")
    return row, scorer


Pair = tuple[contenders.Engine, BenchModel, dict[str, Any], contenders.Scorer]


def latency_summary(blocks: list[list[int]]) -> dict[str, Any]:
    """Median and p99 in µs of each block of per-call ns and of all of them together."""
    def stats(times: list[int]) -> dict[str, Any]:
        ordered = sorted(times)
        return {"median_us": ordered[len(ordered) // 2] / 1e3,
                "p99_us": ordered[int((len(ordered) - 1) * 0.99)] / 1e3, "calls": len(ordered)}

    summary = stats([t for block in blocks for t in block])
    summary["blocks"] = [stats(block) for block in blocks]
    return summary


def measure_single_events(pairs: list[Pair], profile: Profile, log=print) -> None:
    """Single-event latency of every loaded pair: ``latency_blocks`` blocks each, interleaved.

    Block b runs ``time_single`` (up to ``latency_calls`` calls on the model's first 1,000
    scoring rows as Python lists, the same rows in every block, each call timed alone) for each
    engine in turn, then block b + 1: an engine's blocks are spread over the whole phase, so a
    change of the machine's state between them shows as blocks that differ, and lands on every
    engine alike. ``row["single"]``: overall median and p99, and the same per block.
    """
    samples: dict[int, list[list[int]]] = {id(row): [] for _, _, row, _ in pairs}
    for block in range(profile.latency_blocks):
        for _, model, row, scorer in pairs:
            if row["status"] != "ok" or not scorer.per_call_timings:
                continue
            try:
                samples[id(row)].append(scorer.time_single(model.batch.x[:1000].tolist(),
                                                           profile.latency_calls,
                                                           profile.latency_budget_s))
            except Exception as exc:  # noqa: BLE001
                log(traceback.format_exc())
                row.update(status="failed",
                           reason=f"single events: {type(exc).__name__}: {str(exc)[:300]}")
        log(f"[bench] single events: block {block + 1} of {profile.latency_blocks} done")
    for _, model, row, scorer in pairs:
        if row["status"] != "ok":
            continue
        if scorer.per_call_timings:
            row["single"] = latency_summary(samples[id(row)])
        else:
            row["single"] = scorer.single_event(model.batch.x[:1000].tolist(),
                                                profile.latency_budget_s)
        if scorer.single_event_note:
            row["single"]["note"] = scorer.single_event_note


def measure_batches(pairs: list[Pair], profile: Profile, log=print) -> None:
    """Batch throughput of every loaded (engine, model) pair, in interleaved rounds.

    Round r scores the whole batch once with each engine in turn, so a burst of other work on
    this shared machine lands on every engine alike rather than on whichever ran then. An
    engine stops repeating once its runs add up to ``batch_budget_s``; at most
    ``batch_repeats`` runs each. The 1,000-row warm-up precedes every timed run.
    """
    for threads in THREADS:
        times: dict[int, list[float]] = {id(row): [] for _, _, row, _ in pairs}
        for _ in range(profile.batch_repeats):
            for _, model, row, scorer in pairs:
                spent = times[id(row)]
                if row["status"] != "ok" or (spent and sum(spent) > profile.batch_budget_s):
                    continue
                try:
                    spent += scorer.time_batch(model.batch, threads, 1, float("inf"))
                except Exception as exc:  # noqa: BLE001
                    log(traceback.format_exc())
                    reason = f"batch: {type(exc).__name__}: {str(exc)[:300]}"
                    row.update(status="failed", reason=reason)
        for _, model, row, _ in pairs:
            spent = times[id(row)]
            if row["status"] != "ok" or not spent:
                continue
            median = float(np.median(spent))
            row.setdefault("batch", {})[str(threads)] = {
                "rows": model.batch.n_rows, "runs": len(spent), "median_s": median,
                "all_s": spent, "ns_per_row": 1e9 * median / model.batch.n_rows,
                "ns_per_row_tree": (1e9 * median / model.batch.n_rows / model.n_trees
                                    if model.n_trees else None)}
        log(f"[bench] batches on {threads} thread(s) done")
    for engine, _, row, scorer in pairs:
        own = engine.load_seconds(scorer)
        if own is not None:
            row["load_ms"] = 1e3 * own
            row["notes"].append("load = the driver's read + SHA-256 + parse (no Ed25519 check)")
        scorer.close()
        row["loadavg_after"] = os.getloadavg()[0]


def measure_models(engines: list[contenders.Engine], models: list[BenchModel], profile: Profile,
                   log=print) -> list[dict[str, Any]]:
    """Every engine that applies to each of ``models`` (a model and its twins): set up one by
    one, then single events in interleaved blocks and batches in interleaved rounds across all
    of them."""
    pairs: list[Pair] = []
    rows = []
    for model in models:
        for engine in engines:
            if engine.applies_to(model):
                row, scorer = setup_pair(engine, model, profile, log)
                rows.append(row)
                if scorer is not None:
                    pairs.append((engine, model, row, scorer))
    measure_single_events(pairs, profile, log)
    measure_batches(pairs, profile, log)
    return rows


def container_layout(model: BenchModel) -> dict[str, Any] | None:
    """Bytes per internal node of the container (the size goal: <= 12 plus the leaves)."""
    if model.astore is None or not model.n_internal:
        return None
    import pyastore

    loaded = pyastore.load(model.astore, trusted_keys=[model.public_key], use_default_trust=False)
    sections = {kind: length for kind, _, _, length in loaded.sections()}
    forest = sections.get("FRST")
    leaves = model.n_nodes - model.n_internal
    layout = {"file_bytes": model.astore.stat().st_size, "forest_bytes": forest,
              "internal_nodes": model.n_internal, "leaves": leaves,
              "file_bytes_per_internal_node": model.astore.stat().st_size / model.n_internal}
    if forest is not None:
        leaf_bytes = 4 * leaves
        layout["forest_bytes_per_internal_node_excluding_leaves"] = (
            (forest - leaf_bytes) / model.n_internal
        )
    return layout


# ---- cold start -----------------------------------------------------------------------------


LAUNCHER: Path | None = None


def build_launcher(out_dir: Path) -> Path | None:
    """Compile bench/c/run_measured.c (see its comment for why); None when there is no cc."""
    source = ROOT / "bench" / "c" / "run_measured.c"
    target = out_dir / "run_measured"
    out_dir.mkdir(parents=True, exist_ok=True)
    compiled = subprocess.run([os.environ.get("CC", "cc"), "-std=c99", "-O2",
                               "-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE", str(source),
                               "-o", str(target)], capture_output=True, text=True)
    return target if compiled.returncode == 0 else None


def run_process(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process; raises Missing if it fails.

    Through ``run_measured`` when it built (exact peak RSS); else through ``os.wait4`` from
    this process, whose own size then inflates the child's ``ru_maxrss`` (flagged as NaN).
    """
    with tempfile.TemporaryFile() as errors:
        if LAUNCHER is not None:
            result = subprocess.run([str(LAUNCHER)] + command, stdout=subprocess.PIPE,
                                    stderr=errors, text=True)
            wall_s, rss_kib, code = result.stdout.split()
            wall, rss, code = float(wall_s), int(rss_kib) / 1024.0, int(code)
        else:
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
            _, status, _ = os.wait4(process.pid, 0)
            wall, rss = time.perf_counter() - started, float("nan")
            code = process.returncode = os.waitstatus_to_exitcode(status)
        if code != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip().splitlines()
            raise contenders.Missing(f"exit {code}: {(message or [''])[-1][:200]}")
    return wall, rss


def cold_start(command: list[str], repeats: int, warm: bool = True) -> dict[str, Any]:
    if warm:
        run_process(command)  # untimed: page cache and .pyc files warm
    samples = [run_process(command) for _ in range(repeats)]
    return {"wall_ms": 1e3 * float(np.median([s[0] for s in samples])),
            "peak_rss_mib": float(np.median([s[1] for s in samples])), "runs": repeats}


def measure_cold_starts(engines: list[contenders.Engine], model: BenchModel,
                        twins: list[BenchModel | MissingTwin], profile: Profile,
                        log=print) -> list[dict[str, Any]]:
    """Cold start of every engine on ``model`` (M1), plus the baselines."""
    workdir = model.directory / "cold"
    workdir.mkdir(exist_ok=True)
    row = model.batch.x[0].tolist()
    entries: list[dict[str, Any]] = []

    def add(key: str, name: str, command_or_reason: list[str] | str, model_key: str = model.key):
        entry = {"model": model_key, "engine": key, "name": name}
        if isinstance(command_or_reason, str):
            entry.update(status="missing", reason=command_or_reason)
        else:
            try:
                entry.update(status="ok", **cold_start(command_or_reason, profile.cold_repeats,
                                                         warm=profile.cold_repeats > 1))
            except contenders.Missing as exc:
                entry.update(status="missing", reason=str(exc))
        log(f"[bench] cold start {name}: {entry.get('wall_ms', entry.get('reason'))}")
        entries.append(entry)

    add("python", "python -c pass", [sys.executable, "-c", "pass"], "-")
    add("numpy", "python -c 'import numpy'", [sys.executable, "-c", "import numpy"], "-")
    if not profile.cold_contenders:  # the quick profile: importing xgboost alone takes seconds
        ours = (contenders.PyastoreEngine, contenders.CDriverEngine)
        engines = [e for e in engines if isinstance(e, ours)]
    pairs = [(e, model) for e in engines if e.applies_to(model)]
    for twin in twins:
        if isinstance(twin, BenchModel):
            pairs += [(e, twin) for e in engines if e.applies_to(twin)]
    lead = [e for e in engines if isinstance(e, contenders.PyastoreEngine)]
    if lead:
        extra = contenders.PyastoreNoNumpyEngine()
        pairs.insert(1, (extra, model))
    for engine, target in pairs:
        try:
            engine.version()
            artifact = engine.prepare(target, target.directory / engine.key)
            command = engine.cold_start_command(artifact, target, row, workdir)
        except contenders.Missing as exc:
            add(engine.key, engine.name, str(exc), target.key)
            continue
        if command is not None:
            add(engine.key, engine.name, command, target.key)
    return entries


# ---- the whole run --------------------------------------------------------------------------


def prepare_all(profile: Profile, cache: Path = DEFAULT_CACHE, models: tuple[str, ...] = MODEL_KEYS,
                log=print) -> None:
    """Build every model and every engine's files (conversions, compilations), measure nothing."""
    engines = contenders.make_engines(profile.engine_benchmark_s)
    for engine in engines:
        if isinstance(engine, contenders.CDriverEngine):
            engine.build(Path(cache) / "bin", log)
    built_models, twins = build_models(profile, cache, models, log)
    targets = built_models + [t for listed in twins.values() for t in listed
                              if isinstance(t, BenchModel)]
    for model in targets:
        for engine in engines:
            if not engine.applies_to(model):
                continue
            started = time.perf_counter()
            try:
                engine.version()
                workdir = model.directory / engine.key
                workdir.mkdir(parents=True, exist_ok=True)
                artifact = engine.prepare(model, workdir)
                built = f"built in {time.perf_counter() - started:.1f} s"
                state = "cached" if artifact.cached else built
            except contenders.Missing as exc:
                state = f"missing: {exc}"
            log(f"[bench] prepare {model.key} x {engine.name}: {state}")


def run(profile: Profile, cache: Path = DEFAULT_CACHE, models: tuple[str, ...] = MODEL_KEYS,
        engine_keys: tuple[str, ...] | None = None, cold: bool = True, log=print) -> dict[str, Any]:
    started = time.perf_counter()
    info = machine()
    log(f"[bench] {cpu_line(info)}")
    engines = contenders.make_engines(profile.engine_benchmark_s)
    if engine_keys is not None:
        unknown = set(engine_keys) - {e.key for e in engines}
        if unknown:
            raise SystemExit(f"unknown engine(s): {', '.join(sorted(unknown))}; "
                             f"choose from {', '.join(e.key for e in engines)}")
        engines = [e for e in engines if e.key in engine_keys]
    cache = Path(cache)
    for engine in engines:
        if isinstance(engine, contenders.CDriverEngine):
            engine.build(cache / "bin", log)
    built_models, twins = build_models(profile, cache, models, log)
    rows: list[dict[str, Any]] = []
    layouts: dict[str, Any] = {}
    for model in built_models:
        layouts[model.key] = container_layout(model)
        model_twins = twins.get(model.key, [])
        targets = [model] + [t for t in model_twins if isinstance(t, BenchModel)]
        rows += measure_models(engines, targets, profile, log)
        for twin in model_twins:
            if isinstance(twin, MissingTwin):
                rows += [{"model": twin.key, "engine": engine.key, "name": engine.name,
                          "status": "missing", "reason": twin.reason, "notes": []}
                         for engine in engines if engine.families == (twin.family,)]
        for target in targets:
            # a twin pyastore also scores (the LightGBM one) is compared with pyastore on the
            # same model; a twin pyastore cannot read (YDF's) with pyastore on the original
            scored = any(r["model"] == target.key and r["engine"] == "pyastore"
                         and r["status"] == "ok" for r in rows)
            for row in rows:
                if row["model"] == target.key:
                    row["title"] = target.title
                    row["n_trees"] = target.n_trees
                    row["n_nodes"] = target.n_nodes
                    row["n_params"] = target.n_params
                    row["reference_model"] = target.key if scored else (target.twin_of
                                                                        or target.key)
    add_ratios(rows)
    cold_rows: list[dict[str, Any]] = []
    if cold:
        global LAUNCHER
        LAUNCHER = build_launcher(cache / "bin")
        first = next((m for m in built_models if m.key == "M1"), None)
        if first is not None:
            cold_rows = measure_cold_starts(engines, first, twins.get("M1", []), profile, log)
    info["loadavg_end"] = os.getloadavg()
    return {"profile": profile.__dict__, "machine": info, "rows": rows, "cold_start": cold_rows,
            "container_layout": layouts, "seconds": round(time.perf_counter() - started, 1),
            "command": " ".join(["python -m bench"] + sys.argv[1:])}


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """``pyastore / engine`` per model and thread count, against the pyastore Python row."""
    lead = {r["model"]: r for r in rows if r["engine"] == "pyastore" and r["status"] == "ok"}
    for row in rows:
        if row["status"] != "ok":
            continue
        reference = lead.get(row.get("reference_model", row["model"]))
        if reference is None:
            continue
        row["ratio_batch"] = {t: reference["batch"][t]["ns_per_row"] / row["batch"][t]["ns_per_row"]
                              for t in row["batch"] if t in reference["batch"]}
        mine, theirs = reference["single"].get("median_us"), row["single"].get("median_us")
        row["ratio_single"] = mine / theirs if mine and theirs else None


# ---- the table ---------------------------------------------------------------------------------


def _size(n: int) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.1f} kB"
    return f"{n} B"


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if value != value:
        return "NaN"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if value >= 0.095 else f"{value:.2g}"  # two digits that say something


COLUMNS = ("model", "engine", "version", "ns/row 1T", "ns/row 2T", "ns/(row·tree) 1T",
           "pyastore ÷ this 1T", "pyastore ÷ this 2T", "one event median µs", "p99 µs",
           "event blocks: median / p99 µs", "pyastore ÷ this (event)", "load ms", "files",
           "bytes/node", "max abs diff", "cold start ms / peak MiB", "notes")


def render_markdown(results: dict[str, Any]) -> str:
    """The table, after the CPU line (model and instruction sets)."""
    cold = {(c["model"], c["engine"]): c for c in results.get("cold_start", [])}
    profile = results["profile"]
    planned_calls = profile["latency_blocks"] * profile["latency_calls"]
    lines = [cpu_line(results["machine"]), "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in results["rows"]:
        cells = _cells(row, cold.pop((row["model"], row["engine"]), None), planned_calls)
        lines.append("| " + " | ".join(cells) + " |")
    for entry in cold.values():  # baselines and cold-start-only rows
        cells = [entry["model"], entry["name"]] + [""] * (len(COLUMNS) - 4)
        cells += [_cold(entry), "" if entry["status"] == "ok" else f"missing: {entry['reason']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cold(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return ""
    if entry["status"] != "ok":
        return "missing"
    return f"{entry['wall_ms']:.0f} / {entry['peak_rss_mib']:.1f}"


def _blocks(single: dict[str, Any]) -> str:
    blocks = single.get("blocks") or []
    return " · ".join(f"{_num(b['median_us'], 2)} / {_num(b['p99_us'], 2)}" for b in blocks) or "—"


def _diff(value: float | None) -> str:
    if value is None:
        return "n/a (own model)"
    return f"{value:.1e}" if value == value else "NaN"


def _cells(row: dict[str, Any], cold: dict[str, Any] | None, planned_calls: int) -> list[str]:
    cells = [row["model"], row["name"], row.get("version", "—")]
    if row["status"] != "ok":
        reason = row.get("reason", "").replace("|", "/").replace("\n", " ")
        return cells + ["—"] * (len(COLUMNS) - 5) + [_cold(cold), f"**{row['status']}**: {reason}"]
    batch = row["batch"]
    ratio = row.get("ratio_batch", {})
    files = row.get("files", {})
    main = next(iter(files.values()), None)
    per_node = None
    unit = ""
    if main is not None and row.get("n_nodes"):
        per_node, unit = main / row["n_nodes"], ""
    elif main is not None and row.get("n_params"):
        per_node, unit = main / row["n_params"], " /param"
    notes = "; ".join(row.get("notes", []))
    single = row["single"]
    if single.get("calls", 0) and single["calls"] < planned_calls:
        calls = f"{single['calls']} event calls in {len(single.get('blocks', []))} blocks"
        notes = "; ".join(filter(None, [notes, calls]))
    if single.get("note"):
        notes = "; ".join(filter(None, [notes, f"event: {single['note']}"]))
    if row.get("reference_model", row["model"]) != row["model"]:
        notes = "; ".join(filter(None, [notes, f"ratios vs pyastore on {row['reference_model']}"]))
    return cells + [
        _num(batch["1"]["ns_per_row"]), _num(batch["2"]["ns_per_row"]),
        _num(batch["1"]["ns_per_row_tree"], 2),
        _ratio(ratio.get("1")), _ratio(ratio.get("2")),
        _num(single.get("median_us"), 2), _num(single.get("p99_us"), 2), _blocks(single),
        _ratio(row.get("ratio_single")), _num(row["load_ms"], 2),
        "; ".join(f"{label} {_size(size)}" for label, size in files.items()),
        (_num(per_node) + unit) if per_node is not None else "—",
        _diff(row["max_abs_diff"]), _cold(cold), notes,
    ]


def render_summary(results: dict[str, Any]) -> str:
    """A few lines above the table: the CPU line, load, commit, the ratios against the
    fastest contenders, the speed goals (full profile), container layout."""
    m = results["machine"]
    lines = [cpu_line(m),
             f"load average at start {m['loadavg_start'][0]:.2f}, at end "
             f"{m['loadavg_end'][0]:.2f}; commit {m['commit']}"
             f"{' (working tree modified)' if m['working_tree_modified'] else ''}; "
             f"{results['seconds']:.0f} s",
             "files: the first one listed is the one loaded and counted in bytes/node "
             "(nodes = split nodes + leaves; MLPs: per weight/bias)"]
    lines += reference_ratios(results)
    if results["profile"]["name"] == "full":  # the goals are about the full-size models
        lines += speed_goals(results)
    for key, layout in results.get("container_layout", {}).items():
        if layout and layout.get("forest_bytes") is not None:
            overall = layout["file_bytes_per_internal_node"]
            forest = layout["forest_bytes_per_internal_node_excluding_leaves"]
            lines.append(f"{key} container: {layout['file_bytes']} B, "
                         f"{overall:.1f} B per internal node overall; "
                         f"FRST section {forest:.1f} "
                         f"B per internal node + 4 B per leaf ({layout['internal_nodes']} internal "
                         f"nodes, {layout['leaves']} leaves)")
    return "\n".join(lines) + "\n"


#: the contenders pyastore is compared with in the summary, fastest first
REFERENCES = (("ydf", "YDF predict"), ("ydf-benchmark", "YDF model.benchmark"),
              ("xgboost-inplace", "xgboost inplace_predict"))


def reference_ratios(results: dict[str, Any]) -> list[str]:
    """``pyastore ÷ reference`` per model, for 1 and 2 threads and one event, against YDF (on
    its equal-shape twin: the fastest contender) and xgboost ``inplace_predict``; below 1
    pyastore is faster. One line per pyastore engine and model that has a reference."""
    rows = {(r["model"], r["engine"]): r for r in results["rows"] if r["status"] == "ok"}
    lines = []
    models = dict.fromkeys(r.get("reference_model", r["model"]) for r in results["rows"])
    for key in models:
        for engine in ("pyastore", "pyastore-c"):
            mine = rows.get((key, engine))
            if mine is None:
                continue
            parts = []
            for reference, label in REFERENCES:
                other = rows.get((f"{key}-ydf" if reference.startswith("ydf") else key,
                                  reference))
                if other is None:
                    continue
                figures = []
                for threads in ("1", "2"):
                    if threads in mine["batch"] and threads in other["batch"]:
                        ratio = (mine["batch"][threads]["ns_per_row"]
                                 / other["batch"][threads]["ns_per_row"])
                        figures.append(f"{threads}T {_ratio(ratio)}")
                theirs = other["single"].get("median_us")
                if theirs and mine["single"].get("median_us"):
                    figures.append(f"event {_ratio(mine['single']['median_us'] / theirs)}")
                parts.append(f"÷ {label} {', '.join(figures)}")
            if parts:
                own = ("; YDF on its own equal-shape model"
                       if any(model == f"{key}-ydf" for model, _ in rows) else "")
                lines.append(f"{key} {mine['name']} " + "; ".join(parts)
                             + f" (below 1: pyastore faster{own})")
    return lines


def speed_goals(results: dict[str, Any]) -> list[str]:
    """pyastore's speed goals (docs/PERFORMANCE.md), checked against this run (M1 and M3).

    On M1, one thread: at most a third of xgboost ``inplace_predict``'s batch time, 2 threads
    at least 1.9x as fast as one, and one event through ``score_one`` in at most 2 µs median
    and 3 µs p99. On M3 the share of scikit-learn's time is shown.
    """
    rows = {(r["model"], r["engine"]): r for r in results["rows"] if r["status"] == "ok"}
    lines = []
    for key in ("M1", "M3"):
        library = "xgboost-inplace" if key == "M1" else "sklearn"
        base = rows.get((key, library))
        for engine in ("pyastore", "pyastore-c"):
            mine = rows.get((key, engine))
            if mine is None:
                continue
            one, two = mine["batch"]["1"], mine["batch"]["2"]
            speedup = one["median_s"] / two["median_s"]
            text = (f"goal {key} {engine}: {one['rows']:,} rows in {one['median_s']:.3f} s on 1 "
                    f"thread, {two['median_s']:.3f} s on 2 (x{speedup:.2f}"
                    + (f", goal >= x1.9: {'met' if speedup >= 1.9 else 'missed'})" if key == "M1"
                       else ")"))
            if base is not None:
                share = one["median_s"] / base["batch"]["1"]["median_s"]
                text += (f"; {share:.2f} of {library}'s {base['batch']['1']['median_s']:.3f} s "
                         f"(goal <= 0.33 for M1: {'met' if share <= 1 / 3 else 'missed'})"
                         if key == "M1" else f"; {share:.3f} of {library}'s time")
            lines.append(text)
        if (key, "pyastore") in rows:
            single = rows[(key, "pyastore")]["single"]
            median = single["median_us"]
            met = median <= 2 and single["p99_us"] <= 3
            verdict = (f" (goal median <= 2 µs, p99 <= 3 µs: {'met' if met else 'missed'})"
                       if key == "M1" else "")
            lines.append(f"goal {key} one event through score_one: median {median:.2f} µs, "
                         f"p99 {single['p99_us']:.2f} µs over {single['calls']} calls{verdict}; "
                         f"per block median / p99: {_blocks(single)}")
    return lines


def write_results(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str))
