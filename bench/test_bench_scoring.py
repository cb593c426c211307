"""pytest-benchmark suites: ``pytest bench/ --benchmark-only``.

Every in-process engine of ``bench.contenders`` on the standard M1 (XGBoost 100 trees depth 6)
and M3 (random forest 100 trees depth 12) models (built and cached under ``bench/.cache/full``
on first use, about a minute; M1's LightGBM twin for lleaves, its YDF twin for YDF): a
100,000-row float32 batch on one thread, one event from a Python list, and loading the model
file. The engines that time themselves -- the C driver (out of process) and YDF's
``model.benchmark`` -- are measured by ``python -m bench`` only. An engine that is not
installed or cannot take the model is skipped with the reason. For the side-by-side table use
``python -m bench``.
"""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("pytest_benchmark")

from bench import contenders  # noqa: E402
from bench.models import FULL, MissingTwin, build_models  # noqa: E402

ROWS = 100_000
MODELS = ("M1", "M3")
SELF_TIMED = (contenders.CDriverEngine, contenders.YdfBenchmarkEngine)
IN_PROCESS = [cls for cls in contenders.ENGINES if cls not in SELF_TIMED]


def _log(message: str) -> None:
    print(message, file=sys.stderr)


@pytest.fixture(scope="session")
def standard_models():
    """By (model key, family): the standard models and their twins (M1's LightGBM and YDF
    twins, possibly ``MissingTwin``)."""
    models, twins = build_models(FULL, only=MODELS, log=_log)
    by_family: dict[tuple[str, str], object] = {(m.key, m.family): m for m in models}
    for key, listed in twins.items():
        for twin in listed:
            by_family[(key, twin.family)] = twin
    return by_family


@pytest.fixture(scope="session")
def loaded(standard_models):
    """(model, engine, artifact, scorer) per pair, made once; skips with the engine's reason."""
    cache: dict[tuple[str, str], object] = {}

    def get(model_key: str, engine_cls):
        engine = engine_cls()
        model = next((standard_models[(model_key, family)] for family in engine.families
                      if (model_key, family) in standard_models), None)
        if isinstance(model, MissingTwin):
            pytest.skip(model.reason)
        if model is None or not engine.applies_to(model):
            pytest.skip(f"{engine.name} does not take {model_key}")
        key = (model.key, engine.key)
        if key not in cache:
            try:
                engine.version()
                workdir = model.directory / engine.key
                workdir.mkdir(parents=True, exist_ok=True)
                artifact = engine.prepare(model, workdir)
                cache[key] = (model, engine, artifact, engine.load(artifact, model))
            except contenders.Missing as exc:
                cache[key] = str(exc)
        if isinstance(cache[key], str):
            pytest.skip(cache[key])
        return cache[key]

    return get


def _id(cls) -> str:
    return cls.key


@pytest.mark.parametrize("engine_cls", IN_PROCESS, ids=_id)
@pytest.mark.parametrize("model_key", MODELS)
def test_batch_100k_rows_one_thread(benchmark, loaded, model_key, engine_cls):
    model, _, _, scorer = loaded(model_key, engine_cls)
    x = model.batch.x[:ROWS]
    scorer.predict_batch(x[:1000], 1)
    benchmark.extra_info["rows"] = ROWS
    scores = benchmark(scorer.predict_batch, x, 1)
    assert scores.shape == (ROWS,)


@pytest.mark.parametrize("engine_cls", IN_PROCESS, ids=_id)
@pytest.mark.parametrize("model_key", MODELS)
def test_one_event_from_a_list(benchmark, loaded, model_key, engine_cls):
    model, _, _, scorer = loaded(model_key, engine_cls)
    row = model.batch.x[0].tolist()
    score = benchmark(scorer.predict_one, row)
    assert 0.0 <= score <= 1.0


@pytest.mark.parametrize("engine_cls", IN_PROCESS, ids=_id)
@pytest.mark.parametrize("model_key", MODELS)
def test_load_model_file(benchmark, loaded, model_key, engine_cls):
    model, engine, artifact, _ = loaded(model_key, engine_cls)
    if engine.loads_shared_library:
        pytest.skip("dlopen caches a shared library by path: python -m bench times fresh copies")
    benchmark(engine.load, artifact, model)
