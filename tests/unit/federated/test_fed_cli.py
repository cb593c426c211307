"""``pyastore-train federated`` / ``federated-agent`` end to end, the async schedule in
separate processes, and clear errors with documented exit codes for bad input."""

from __future__ import annotations

import json

import pytest

import pyastore
from chain.log import Log
from fedlib import FEATURES, fraud_like
from pyastore import cli as pyastore_cli
from pyastore.errors import EXIT_INPUT, EXIT_OK, EXIT_USAGE
from trainer import cli

SMALL = ["--rounds", "2", "--n-new", "3", "--n-max", "6", "--n-share", "2", "--quiet"]


def _csv(path, rows: int = 900, seed: int = 0, with_target: bool = True):
    x, y = fraud_like(rows, seed=seed, fraud_rate=0.08)
    header = FEATURES + (["Class"] if with_target else [])
    lines = [",".join(header)]
    for row, label in zip(x.tolist(), y.tolist()):
        lines.append(",".join(repr(v) for v in row) + (f",{label}" if with_target else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def _models_close(out, log_path, n_agents):
    keys = [(out / "keys" / f"agent-{k:02d}.pub") for k in range(n_agents)]
    for k in range(n_agents):
        model = pyastore.load(out / f"agent-{k:02d}.astore", trusted_keys=[keys[k]],
                              use_default_trust=False)
        assert model.meta["provenance"]["federation"]["agent"] == k
        assert pyastore_cli.main(["chain", "provenance", str(out / f"agent-{k:02d}.astore"),
                                  "--log", str(log_path)]) == EXIT_OK


def test_sync_run_writes_verified_models_and_a_report(tmp_path, capsys):
    data = _csv(tmp_path / "cards.csv")
    out, log_path = tmp_path / "out", tmp_path / "fed.log"
    code = cli.main(["federated", "--data", str(data), "--target", "Class", "--agents", "4",
                     "--topology", "ring", "--chain", str(log_path), "--out", str(out),
                     "--report", str(tmp_path / "report"), "--json", *SMALL])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    summary = json.loads(captured.out)
    assert summary["run"]["trees"] <= 6 and summary["run"]["refusals"] == 0
    assert (tmp_path / "report" / "report.md").exists()
    assert (tmp_path / "report" / "origin_run.png").stat().st_size > 1000
    _models_close(out, log_path, 4)
    # a final model is an ordinary container: the device CLI scores the raw CSV with it
    scores = tmp_path / "scores.csv"
    code = pyastore_cli.main(["score", str(out / "agent-01.astore"), str(data), "-o",
                              str(scores), "--trust", str(out / "keys" / "agent-01.pub")])
    assert code == EXIT_OK, capsys.readouterr().err
    assert len(scores.read_text().splitlines()) == 900 + 1


def test_async_run_of_separate_processes_completes_and_every_model_verifies(tmp_path, capsys):
    data = _csv(tmp_path / "cards.csv", rows=700, seed=1)
    out, log_path = tmp_path / "out", tmp_path / "fed.log"
    code = cli.main(["federated", "--data", str(data), "--target", "Class", "--agents", "3",
                     "--topology", "full", "--schedule", "async", "--chain", str(log_path),
                     "--out", str(out), *SMALL])
    assert code == EXIT_OK, capsys.readouterr().err
    _models_close(out, log_path, 3)
    with Log.open(log_path, readonly=True) as log:
        log.verify()
        statuses = [json.loads(r.description) for r in log.records() if r.kind == "status"]
        fits = sum(1 for r in log.records() if r.kind == "fit")
    phases = {(s["agent"], s["phase"]) for s in statuses}
    for k in range(3):
        assert {(k, "join"), (k, "leave"), (k, "done"), (k, "get")} <= phases
    assert fits == 3 * 2 * 3
    stderr_files = sorted((out / "agents").glob("*.stderr"))
    assert len(stderr_files) == 3  # one process per agent


def test_a_csv_without_the_target_is_a_clear_usage_error(tmp_path, capsys):
    data = _csv(tmp_path / "no_target.csv", with_target=False)
    code = cli.main(["federated", "--data", str(data), "--target", "Class", "--agents", "4",
                     "--chain", str(tmp_path / "f.log"), "--out", str(tmp_path / "o"), *SMALL])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "--target: no column named 'Class' in " in err
    assert "no_target.csv" in err and "compared with surrounding spaces removed" in err
    assert "Traceback" not in err


def test_an_agent_with_no_rows_is_a_clear_error(tmp_path, capsys):
    data = _csv(tmp_path / "tiny.csv", rows=30)
    code = cli.main(["federated", "--data", str(data), "--target", "Class", "--agents", "25",
                     "--chain", str(tmp_path / "f.log"), "--out", str(tmp_path / "o"), *SMALL])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "would get" in err and "too many agents" in err
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(FEATURES + ["Class"]) + "\n")
    key = tmp_path / "k"
    pyastore_cli.main(["keygen", str(key)])
    code = cli.main(["federated-agent", "--id", "0", "--data", str(empty), "--target", "Class",
                     "--registry", str(tmp_path / "r"), "--log", str(tmp_path / "f.log"),
                     "--key", str(tmp_path / "k.key"), "--consortium", str(tmp_path / "k.pub"),
                     "--out", str(tmp_path / "m.astore")])
    err = capsys.readouterr().err
    assert code == EXIT_INPUT and "empty.csv: the agent has no rows" in err


@pytest.mark.parametrize("agents, topology, words", [(2, "ring", "ring of 2 agent(s)"),
                                                     (1, "full", "at least 2 agents")])
def test_a_topology_the_agent_count_cannot_form_is_refused_before_any_work(
        tmp_path, capsys, agents, topology, words):
    data = _csv(tmp_path / "cards.csv", rows=100)
    code = cli.main(["federated", "--data", str(data), "--target", "Class", "--agents",
                     str(agents), "--topology", topology, "--chain", str(tmp_path / "f.log"),
                     "--out", str(tmp_path / "o"), *SMALL])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and words in err
    assert not (tmp_path / "f.log").exists()


def test_federated_agent_refuses_a_key_that_is_not_its_member(tmp_path, capsys):
    data = _csv(tmp_path / "cards.csv", rows=100)
    for name in ("a", "b"):
        pyastore_cli.main(["keygen", str(tmp_path / name)])
    code = cli.main(["federated-agent", "--id", "1", "--data", str(data), "--target", "Class",
                     "--registry", str(tmp_path / "r"), "--log", str(tmp_path / "f.log"),
                     "--key", str(tmp_path / "a.key"), "--consortium", str(tmp_path / "a.pub"),
                     str(tmp_path / "b.pub"), "--out", str(tmp_path / "m.astore")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "is not the key of member 1" in err


def test_compare_runs_every_variant_with_its_own_log_and_reports_gains(tmp_path, capsys):
    data = _csv(tmp_path / "cards.csv", rows=700, seed=2)
    out, log_path, report = tmp_path / "runs", tmp_path / "fed.log", tmp_path / "report"
    code = cli.main(["federated", "--data", str(data), "--target", "Class", "--agents", "3",
                     "--compare", "--seeds", "2", "--chain", str(log_path), "--out", str(out),
                     "--report", str(report), "--rounds", "1", "--n-new", "2", "--n-max", "3",
                     "--n-share", "2", "--quiet"])
    assert code == EXIT_OK, capsys.readouterr().err
    from trainer.federated.experiment import VARIANTS

    summary = json.loads((report / "summary.json").read_text())
    assert set(summary) == set(VARIANTS)
    assert summary["pool"]["trees"] == 3 * 2  # no CROP: every agent holds every tree
    assert summary["full-kernel"]["trees"] <= 3
    for variant in VARIANTS:
        assert summary[variant]["seeds"] == 2
        for seed in (0, 1):
            assert (out / variant / f"seed-{seed}" / "agent-02.astore").exists()
    assert log_path.exists() and (tmp_path / "fed.pool.seed1.log").exists()
    gain = summary["ring-kernel"]["gain_vs_disconnected"]["bacc"]
    assert len(gain["per_agent"]) == 3
    assert gain["verdict"] == "too few seeds to tell from noise"  # 2 seeds: no verdict
    text = (report / "report.md").read_text()
    assert "Within each run" in text and "origin_ring-kernel.png" in text
