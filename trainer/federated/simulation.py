"""A whole federation on one machine: keys, log, process record, registry, agents, models.

``simulate`` is the Python API behind ``pyastore-train federated``: given each agent's private
training rows it creates (or reuses) the members' keys, opens the log (creating it with a new
log key when the file does not exist), appends the process record, runs the schedule, then
writes, publishes and verifies every agent's final signed container::

    OUT/keys/agent-<k>.key|.pub   member keys (and log.key/.pub when the log was created)
    OUT/registry/                  the registry directory (bounded slots)
    OUT/agent-<k>.astore           each agent's final model

With ``schedule="async"`` each agent runs in its own OS process (``trainer.federated.worker``)
and the parent only opens the federation and collects the results.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyastore import format as fmt
from pyastore import keys
from pyastore.errors import UsageError
from trainer.federated import logbook
from trainer.federated.agent import Agent, AgentData, FederationParams
from trainer.federated.registry import Registry
from trainer.federated.schedules import RoundLog, neighbours, run_sync


@dataclass
class SimulationResult:
    """A finished federation. ``agents`` are the :class:`Agent` objects (``sync``) or the
    outcomes the agent processes reported (``async``: ``worker.AgentOutcome``)."""

    process: logbook.Process
    agents: list[Any]
    model_paths: list[Path]
    timings: list[RoundLog]
    log_path: Path
    registry: Registry
    seconds: float
    members: list[bytes] = field(default_factory=list)

    @property
    def log_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.log_path.parent.glob(self.log_path.name + "*"))


def _write_key(path: Path, key: keys.SigningKey) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path.with_suffix(".key"), flags, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(keys.SECRET_PREFIX + key.seed.hex() + "\n")
    path.with_suffix(".pub").write_text(keys.public_key_line(key.public_key) + "\n")


def member_keys(n_agents: int, key_dir: Path, seed_material: bytes | None = None
                ) -> list[keys.SigningKey]:
    """Load ``agent-<k>.key`` from ``key_dir`` or create them (random, or derived from
    ``seed_material`` for reproducible tests: never for real deployments)."""
    import hashlib

    key_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n_agents):
        path = key_dir / f"agent-{k:02d}.key"
        if path.exists():
            out.append(keys.SigningKey.load(path))
            continue
        if seed_material is None:
            key = keys.SigningKey.generate()
        else:
            key = keys.SigningKey(hashlib.sha256(seed_material + f"/agent/{k}".encode()).digest())
        _write_key(path, key)
        out.append(key)
    return out


def open_log(log_path: Path, key_dir: Path):
    """Open the log, or create it with ``key_dir/log.key`` when it does not exist."""
    from chain.log import Log

    if log_path.exists():
        return Log.open(log_path)
    log_key_path = key_dir / "log.key"
    if not log_key_path.exists():
        _write_key(log_key_path, keys.SigningKey.generate())
    return Log.init(log_path, log_key_path)


def utc_now() -> str:
    from chain.log import utc_now as now

    return now()


def single_blas_thread():
    """A context that keeps BLAS to one thread: the matrices here are small (a few hundred
    trees), and on a busy machine two BLAS threads make a least-squares solve 40x slower."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def simulate(parts: list[AgentData], params: FederationParams, *, out_dir: str | os.PathLike[str],
             log_path: str | os.PathLike[str], progress: bool = False,
             key_seed: bytes | None = None, publish: bool = True) -> SimulationResult:
    """Run one federation (module docstring) and return its agents and outputs."""
    with single_blas_thread():
        return _simulate(parts, params, out_dir=out_dir, log_path=log_path, progress=progress,
                         key_seed=key_seed, publish=publish)


def _simulate(parts: list[AgentData], params: FederationParams, *,
              out_dir: str | os.PathLike[str], log_path: str | os.PathLike[str], progress: bool,
              key_seed: bytes | None, publish: bool) -> SimulationResult:
    params.check()
    n_agents = len(parts)
    graph = neighbours(params.topology, n_agents)  # refuses impossible topologies first
    for k, part in enumerate(parts):
        if len(part.y) == 0:
            raise UsageError(f"agent {k} has no training rows")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key_dir = out / "keys"
    agent_keys = member_keys(n_agents, key_dir, key_seed)
    members = [k.public_key for k in agent_keys]
    started = time.perf_counter()
    log = open_log(Path(log_path), key_dir)
    try:
        coordinator = log.signing_key()
        created = utc_now()
        process = logbook.open_process(
            log, coordinator, {**params.to_json(), "agents": n_agents,
                               "graph": {str(k): v for k, v in graph.items()}},
            members, started=created)
        registry = Registry(out / "registry", params.n_share if params.n_max is not None else None)
        if params.schedule == "async":
            from trainer.federated.worker import run_async

            log.close()
            log = None
            return run_async(parts, params, process, agent_keys, out=out,
                             log_path=Path(log_path), registry=registry, created=created,
                             progress=progress, started=started)
        agents = [Agent(k, part, agent_keys[k], process, params, log, registry, created=created)
                  for k, part in enumerate(parts)]
        timings = run_sync(agents, params.topology, params.rounds, progress=progress)
        paths = []
        for agent in agents:
            logbook.append_status(log, process, agent.key, agent=agent.id, round_=params.rounds,
                                  phase="done", trees=len(agent.ensemble))
            data = agent.final_model(publish=publish)
            path = out / f"agent-{agent.id:02d}.astore"
            fmt.write_file(path, data)
            paths.append(path)
        log.checkpoint()
    finally:
        if log is not None:
            log.close()
    return SimulationResult(process, agents, paths, timings, Path(log_path), registry,
                            time.perf_counter() - started, members)


def summary_json(result: SimulationResult) -> dict:
    """Costs and refusals of a run, JSON-ready."""
    return {
        "process": result.process.process_id,
        "seconds": round(result.seconds, 3),
        "rounds": [{"round": t.round, "seconds": round(t.seconds, 3),
                    "phases": {k: round(v, 3) for k, v in t.phases.items()}}
                   for t in result.timings],
        "log_bytes": result.log_bytes,
        "registry_bytes": result.registry.total_bytes(),
        "bytes_shared": int(sum(a.stats.bytes_shared for a in result.agents)),
        "trees_shared": int(sum(a.stats.trees_shared for a in result.agents)),
        "rank_seconds": round(sum(a.stats.rank_seconds for a in result.agents), 3),
        "fit_seconds": round(sum(a.stats.fit_seconds for a in result.agents), 3),
        "ensemble_sizes": [len(a.ensemble) for a in result.agents],
        "model_bytes": [p.stat().st_size for p in result.model_paths],
        "refusals": [{"agent": a.id, "round": r, **refusal.to_json()}
                     for a in result.agents for r, refusal in a.refusals],
        "origins": np.asarray([a.origin_counts(len(result.agents)) for a in result.agents]
                              ).astype(int).tolist(),
    }


def dumps(value) -> str:
    return json.dumps(value, indent=1, sort_keys=True)
