"""Topologies and schedules: who shares with whom, and in which order the phases run.

Topologies (undirected graphs on agents ``0..N-1``):

* ``none``: no edges (the disconnected baseline: only FIT);
* ``ring``: agent ``k`` neighbours ``k-1`` and ``k+1`` (mod N); every agent has exactly two
  distinct neighbours, so a ring needs ``N >= 3``;
* ``full``: every pair of agents (``N >= 2``).

Schedules:

* ``sync`` (as the published simulation): each round runs FIT on every agent, then SHARE on
  every agent, then GET on every agent; no agent starts a phase before all finished the last.
* ``async``: agents are separate OS processes (:mod:`trainer.federated.worker`) sharing only
  the log and the registry directory; each runs its rounds at its own pace, shares with the
  neighbours that have joined and not yet left (from the log's ``join``/``leave`` status
  records: a time-varying graph) and reads whatever its slots hold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pyastore.errors import UsageError

TOPOLOGIES = ("none", "ring", "full")
SCHEDULES = ("sync", "async")


def neighbours(topology: str, n_agents: int) -> dict[int, list[int]]:
    """Each agent's neighbours; ``UsageError`` when ``n_agents`` cannot form ``topology``."""
    if topology not in TOPOLOGIES:
        raise UsageError(f"--topology must be one of {', '.join(TOPOLOGIES)}, got {topology!r}")
    if n_agents < 1:
        raise UsageError(f"a federation needs at least one agent, got {n_agents}")
    if topology == "none":
        return {k: [] for k in range(n_agents)}
    if topology == "ring":
        if n_agents < 3:
            raise UsageError(f"a ring of {n_agents} agent(s) cannot be formed: each agent needs "
                             "exactly two distinct neighbours (at least 3 agents)")
        return {k: sorted({(k - 1) % n_agents, (k + 1) % n_agents}) for k in range(n_agents)}
    if n_agents < 2:
        raise UsageError("a fully connected federation needs at least 2 agents")
    return {k: [j for j in range(n_agents) if j != k] for k in range(n_agents)}


@dataclass
class RoundLog:
    """Wall time of one round and of each phase in it (seconds)."""

    round: int
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)


def run_sync(agents: list, topology: str, rounds: int, *, progress: bool = False) -> list[RoundLog]:
    """Run ``rounds`` rounds of (FIT, SHARE, GET) in lock step; returns the timings.

    ``progress`` shows one bar per round (on stderr), advancing per agent and phase.
    """
    graph = neighbours(topology, len(agents))
    connected = any(graph.values())
    phases = ("fit", "share", "get") if connected else ("fit",)
    timings = []
    for round_ in range(1, rounds + 1):
        timing = RoundLog(round_)
        started = time.perf_counter()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(agents) * len(phases), unit="step", leave=True,
                       dynamic_ncols=True, desc=f"round {round_}/{rounds}")
        try:
            for phase in phases:
                phase_started = time.perf_counter()
                if bar is not None:
                    bar.set_postfix_str(phase)
                for agent in agents:
                    if phase == "fit":
                        agent.fit(round_)
                    elif phase == "share":
                        agent.share(round_, graph[agent.id])
                    else:
                        agent.get(round_)
                    if bar is not None:
                        bar.update(1)
                timing.phases[phase] = time.perf_counter() - phase_started
        finally:
            if bar is not None:
                bar.close()
        timing.seconds = time.perf_counter() - started
        timings.append(timing)
    return timings
