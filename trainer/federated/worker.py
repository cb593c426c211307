"""One agent as its own OS process, and the ``async`` schedule built from such processes.

``run_agent`` is the Python API behind ``pyastore-train federated-agent``: the agent opens the
shared log, finds the process record of its consortium (the newest whose member keys are
exactly ``consortium``, in order, unless a process id is given), checks that its key is member
``agent_id``, and runs the process's rounds at its own pace:

* it appends a ``join`` status record, then per round FIT, SHARE to the neighbours that are
  *present* (the process graph's neighbours that have joined and not yet left, read from the
  log's status records at that moment: the graph varies as agents come and go), GET whatever
  its slots hold;
* at the end it writes, publishes and verifies its final model, appends ``done`` and
  ``leave``, and (optionally) a JSON outcome for the parent.

``run_async`` is the ``async`` schedule of :func:`trainer.federated.simulation.simulate`:
the parent writes each agent's rows to its own CSV, starts one ``federated-agent`` process per
agent (staggered by ``stagger`` seconds, so agents join while others already run), and waits.
The processes share nothing but the log file and the registry directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chain.records import KIND_STATUS
from pyastore import keys
from pyastore.errors import LogError, UsageError
from trainer.federated import logbook
from trainer.federated.agent import Agent, AgentData, AgentStats, FederationParams
from trainer.federated.registry import Refusal, Registry
from trainer.federated.trees import TreeId

_PARAM_FIELDS = set(FederationParams.__dataclass_fields__)


def params_of(process: logbook.Process) -> FederationParams:
    return FederationParams(**{k: v for k, v in process.params.items() if k in _PARAM_FIELDS})


class Presence:
    """Who has joined and not left, from the process's status records (read incrementally)."""

    def __init__(self, process: logbook.Process):
        self.process = process
        self.cursor = process.index + 1
        self.joined: set[int] = set()
        self.left: set[int] = set()

    def update(self, log) -> set[int]:
        for stored in log.storage.iterate(self.cursor):
            self.cursor = stored.index + 1
            if stored.kind != KIND_STATUS:
                continue
            record = stored.record()
            body = logbook.parse_description(record)
            agent = body.get("agent")
            if body.get("process") != self.process.process_id or not isinstance(agent, int):
                continue
            if not 0 <= agent < len(self.process.members) or \
                    record.submitter != self.process.members[agent].hex():
                continue
            if body.get("phase") == "join":
                self.joined.add(agent)
            elif body.get("phase") == "leave":
                self.left.add(agent)
        return self.joined - self.left


def run_agent(agent_id: int, data: AgentData, signing_key: keys.SigningKey,
              consortium: list[bytes], *, registry_dir: str | os.PathLike[str],
              log_path: str | os.PathLike[str], out: str | os.PathLike[str],
              process_id: str | None = None, outcome_path: str | os.PathLike[str] | None = None,
              pause: float = 0.0) -> Path:
    """Run one agent to the end (module docstring); returns the path of its final model."""
    from chain.log import Log
    from pyastore import format as fmt

    with Log.open(log_path) as log:
        if process_id is not None:
            process = logbook.find_process(log, process_id)
            if list(process.members) != [bytes(m) for m in consortium]:
                raise UsageError(f"process {process_id}'s consortium differs from --consortium")
        else:
            process = logbook.latest_process_for(log, consortium)
            if process is None:
                raise LogError(f"{log_path}: no process record for this consortium of "
                               f"{len(consortium)} keys; open the federation first")
        params = params_of(process)
        graph = {int(k): v for k, v in process.params.get("graph", {}).items()}
        if agent_id not in graph and graph:
            raise UsageError(f"agent {agent_id} is not in the process graph")
        registry = Registry(registry_dir, params.n_share if params.n_max is not None else None)
        agent = Agent(agent_id, data, signing_key, process, params, log, registry,
                      created=process.manifest["started"])
        presence = Presence(process)
        logbook.append_status(log, process, signing_key, agent=agent_id, round_=0,
                              phase="join", trees=0)
        for round_ in range(1, params.rounds + 1):
            agent.fit(round_)
            present = presence.update(log)
            neighbours = [j for j in graph.get(agent_id, []) if j in present]
            agent.share(round_, neighbours)
            if pause:
                time.sleep(pause)
            if graph.get(agent_id):
                agent.get(round_)
        logbook.append_status(log, process, signing_key, agent=agent_id, round_=params.rounds,
                              phase="done", trees=len(agent.ensemble))
        model = agent.final_model(publish=True)
        path = Path(out)
        fmt.write_file(path, model)
        logbook.append_status(log, process, signing_key, agent=agent_id, round_=params.rounds,
                              phase="leave", trees=len(agent.ensemble))
    if outcome_path is not None:
        outcome = {"agent": agent_id, "stats": agent.stats.__dict__,
                   "trees": [t.tree_id.text for t in agent.ensemble],
                   "refusals": [[r, refusal.to_json()] for r, refusal in agent.refusals]}
        Path(outcome_path).write_text(json.dumps(outcome))
    return path


@dataclass
class AgentOutcome:
    """What a finished agent process reported (the parent's view of an async agent)."""

    id: int
    stats: AgentStats
    ensemble: list[TreeId]
    refusals: list[tuple[int, Refusal]] = field(default_factory=list)

    def origin_counts(self, n_agents: int) -> np.ndarray:
        counts = np.zeros(n_agents)
        for tree_id in self.ensemble:
            counts[tree_id.creator] += 1
        return counts


def write_agent_csv(path: Path, data: AgentData, target: str) -> None:
    """The agent's rows as CSV, values written exactly (float32 -> shortest float64 text)."""
    with open(path, "w", encoding="ascii") as handle:
        handle.write(",".join(list(data.feature_names) + [target]) + "\n")
        for row, label in zip(data.x.astype(np.float64).tolist(), data.y.tolist()):
            handle.write(",".join(repr(v) for v in row) + f",{int(label)}\n")


def run_async(parts: list[AgentData], params: FederationParams, process: logbook.Process,
              agent_keys: list[keys.SigningKey], *, out: Path, log_path: Path,
              registry: Registry, created: str, progress: bool, started: float,
              stagger: float = 0.2):
    """Start one process per agent and wait for all (module docstring)."""
    from trainer.federated.simulation import SimulationResult

    del created
    folder = out / "agents"
    folder.mkdir(parents=True, exist_ok=True)
    pubs = [out / "keys" / f"agent-{k:02d}.pub" for k in range(len(parts))]
    env = dict(os.environ)
    import trainer

    root = str(Path(trainer.__file__).parent.parent)  # children import this same tree
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    children = []
    for k, part in enumerate(parts):
        csv = folder / f"agent-{k:02d}.csv"
        write_agent_csv(csv, part, "label")
        command = [sys.executable, "-m", "trainer.cli", "federated-agent", "--id", str(k),
                   "--data", str(csv), "--target", "label", "--registry", str(registry.root),
                   "--log", str(log_path), "--key", str(out / "keys" / f"agent-{k:02d}.key"),
                   "--process", process.process_id,
                   "--out", str(out / f"agent-{k:02d}.astore"),
                   "--outcome", str(folder / f"agent-{k:02d}.json"), "--consortium",
                   *[str(p) for p in pubs]]
        log_file = open(folder / f"agent-{k:02d}.stderr", "wb")
        children.append((k, subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                             stderr=log_file, env=env), log_file))
        if stagger:
            time.sleep(stagger)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(children), unit="agent", desc="agents finished", leave=True)
    failures = []
    for k, child, log_file in children:
        code = child.wait()
        log_file.close()
        if bar is not None:
            bar.update(1)
        if code != 0:
            message = (folder / f"agent-{k:02d}.stderr").read_text(errors="replace").strip()
            failures.append(f"agent {k} exited {code}: {message.splitlines()[-1:] or ''}")
    if bar is not None:
        bar.close()
    if failures:
        raise UsageError("async federation failed: " + "; ".join(failures))
    outcomes = []
    for k in range(len(parts)):
        value = json.loads((folder / f"agent-{k:02d}.json").read_text())
        refusals = [(r, Refusal(body["from"], body["reason"], body["detail"], body["store_key"],
                                body["tree"])) for r, body in value["refusals"]]
        outcomes.append(AgentOutcome(k, AgentStats(**value["stats"]),
                                     [TreeId.parse(t) for t in value["trees"]], refusals))
    from chain.log import Log

    with Log.open(log_path) as log:
        log.checkpoint()
    return SimulationResult(process, outcomes, [out / f"agent-{k:02d}.astore"
                                                for k in range(len(parts))], [], log_path,
                            registry, time.perf_counter() - started,
                            [k.public_key for k in agent_keys])


def load_agent_csv(path: str | os.PathLike[str], target: str, drop: tuple[str, ...] = ()
                   ) -> AgentData:
    """One agent's labelled rows. Unlike ``trainer.data.load_csv`` one class is enough (an
    agent may hold no frauds at all); errors name the file, the column and the row."""
    import pandas as pd

    from pyastore.errors import InputError
    from trainer.data import find_column, read_table

    path = Path(path)
    frame, _ = read_table(path)
    header = list(frame.columns)
    target = find_column(header, target, "--target", str(path))
    drop = tuple(dict.fromkeys(find_column(header, name, "--drop", str(path)) for name in drop))
    if target in drop:
        raise UsageError(f"--drop cannot drop the target column {target!r}")
    frame = frame.drop(columns=list(drop))
    if len(frame) == 0:
        raise InputError(f"{path}: the agent has no rows")
    labels = pd.to_numeric(frame.pop(target), errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise InputError(f"{path}: target column {target!r}, data row {row}: not 0 or 1")
    values = frame.apply(pd.to_numeric, errors="coerce")
    broken = values.isna() & frame.notna()
    if broken.to_numpy().any():
        row, column = (int(v[0]) for v in np.nonzero(broken.to_numpy()))
        raise InputError(f"{path}: column {frame.columns[column]!r}, data row {row + 1}: "
                         f"{frame.iat[row, column]!r} is not a number")
    if values.shape[1] == 0:
        raise InputError(f"{path}: no feature columns besides the target")
    return AgentData(values.to_numpy(dtype=np.float64), labels.to_numpy().astype(np.int64),
                     list(values.columns))
