"""One agent of a federation: FIT, SHARE, GET, CROP and its final signed model.

An agent holds its private training rows, its signing key (a consortium member), a counter
for the trees it creates, and its ensemble ``Phi`` (a list; ADD appends, so later is more
recent). With the federation's parameters ``n_new``, ``n_max``, ``n_share``:

* ``fit(round)``: train ``n_new`` trees on the local rows (:func:`trees.fit_tree`), write each
  as a one-tree container signed by this agent, append a ``fit`` record, ADD, CROP to
  ``n_max``. Only FIT creates trees.
* ``share(round, neighbours)``: ``GET_TOP(Phi, n_share)`` goes into each neighbour's slot for
  this agent, **overwriting** it; one ``share`` record per tree and neighbour.
* ``get(round)``: read every slot addressed to this agent, accept what passes the registry's
  rules (:mod:`trainer.federated.registry`), ADD (a tree id already held is kept once), CROP
  to ``n_max``. Refusals are reported in the ``get`` status record and kept in
  ``self.refusals``.
* ``final_model()``: the ensemble as one signed container with each tree's origin in META,
  published in the log (``model`` record).

``n_max=None`` never crops and ``ranking="none"`` then makes SHARE send the newest trees:
the pool-everything baseline.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pyastore import keys
from pyastore.errors import UsageError
from trainer.federated import containers, logbook
from trainer.federated.kernel import gram, kernel_tree
from trainer.federated.ranking import RANKINGS, RESTS, rank_kernel, rank_linreg, rank_none
from trainer.federated.registry import Refusal, Registry, Verified, check_anchored, verify_container
from trainer.federated.trees import FedTree, Scaler, TreeId, fit_tree, predict_matrix


@dataclass(frozen=True)
class FederationParams:
    """The federation's global parameters (recorded in the process record)."""

    n_new: int = 10
    n_max: int | None = 50  # None: never crop (pool everything)
    n_share: int = 10
    rounds: int = 4
    topology: str = "ring"
    ranking: str = "kernel"
    schedule: str = "sync"
    seed: int = 0
    kernel_normalized: bool = False
    kernel_decay: float = 1.0
    pgreedy_rest: str = "recent"
    pgreedy_tolerance: float = 1e-10
    linreg_bootstraps: int = 10
    max_features: str = "sqrt"
    max_depth: int | None = None

    def check(self) -> None:
        if self.n_new < 1 or self.n_share < 0 or self.rounds < 1:
            raise UsageError("--n-new and --rounds must be >= 1, --n-share >= 0")
        if self.n_max is not None and self.n_max < 1:
            raise UsageError("--n-max must be >= 1 (0 on the command line: unbounded)")
        if self.ranking not in RANKINGS:
            raise UsageError(f"--ranking must be one of {', '.join(RANKINGS)}")
        if self.pgreedy_rest not in RESTS:
            raise UsageError(f"the P-greedy rest rule must be one of {', '.join(RESTS)}")
        if not 0.0 < self.kernel_decay <= 1.0:
            raise UsageError("the kernel decay must be in (0, 1]")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AgentData:
    """An agent's private training rows (float32 features, 0/1 labels) and column names."""

    x: np.ndarray
    y: np.ndarray
    feature_names: list[str]

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=np.float32)
        self.y = np.asarray(self.y, dtype=np.int64)


@dataclass
class AgentStats:
    fit_seconds: float = 0.0
    rank_seconds: float = 0.0
    bytes_shared: int = 0
    trees_shared: int = 0
    trees_received: int = 0


class Agent:
    """One agent (module docstring). Not thread-safe; one per process or per simulation slot."""

    def __init__(self, agent_id: int, data: AgentData, signing_key: keys.SigningKey,
                 process: logbook.Process, params: FederationParams, log, registry: Registry,
                 *, created: str):
        if len(data.y) == 0:
            raise UsageError(f"agent {agent_id} has no training rows")
        member = process.member_of(signing_key.public_key)
        if member != agent_id:
            raise UsageError(f"agent {agent_id}'s key is not member {agent_id} of the "
                             f"consortium (it is member {member})")
        self.id = agent_id
        self.data = data
        self.key = signing_key
        self.process = process
        self.params = params
        self.log = log
        self.registry = registry
        self.created = created
        self.scaler = Scaler.fit(data.x)
        self._z = self.scaler.transform(data.x)
        self.rng = np.random.default_rng([params.seed, agent_id])
        self.counter = 0
        self.ensemble: list[FedTree] = []
        self.refusals: list[tuple[int, Refusal]] = []
        self.stats = AgentStats()
        self._verified: dict[bytes, Verified | Refusal] = {}
        self._index = logbook.LogIndex(process)
        self._anchored: set[tuple[str, int]] = set()  # (store key, sender) already proven
        self._outputs: dict[str, np.ndarray] = {}

    # ---- ranking -----------------------------------------------------------------------

    def rank_top(self, k: int | None) -> list[int]:
        """Indices into the ensemble of ``GET_TOP(Phi, k)`` in ranking order."""
        m = len(self.ensemble)
        if k is None or k >= m and self.params.ranking == "none":
            return rank_none(m, m if k is None else k)
        started = time.perf_counter()
        try:
            if self.params.ranking == "kernel":
                trees = [kernel_tree(t.tree, self.scaler) for t in self.ensemble]
                matrix = gram(trees, normalized=self.params.kernel_normalized,
                              lam=self.params.kernel_decay)
                return rank_kernel(matrix, k, rest=self.params.pgreedy_rest,
                                   tolerance=self.params.pgreedy_tolerance)
            if self.params.ranking == "linreg":
                outputs = np.vstack([self._outputs_of(t) for t in self.ensemble])
                return rank_linreg(outputs, self.data.y, k,
                                   bootstraps=self.params.linreg_bootstraps, rng=self.rng)
            return rank_none(m, k)
        finally:
            self.stats.rank_seconds += time.perf_counter() - started

    def _outputs_of(self, tree: FedTree) -> np.ndarray:
        """The tree's outputs on this agent's training rows, computed once per tree (a tree
        and the rows never change)."""
        outputs = self._outputs.get(tree.store_key)
        if outputs is None:
            outputs = predict_matrix([tree.tree], self.data.x)[0]
            self._outputs[tree.store_key] = outputs
        return outputs

    def crop(self) -> None:
        """CROP(Phi, n_max); the kept trees stay in their ensemble (recency) order."""
        if self.params.n_max is None:
            return
        strict = self.params.ranking == "kernel" and self.params.pgreedy_rest == "drop"
        if len(self.ensemble) <= self.params.n_max and not strict:
            return
        keep = set(self.rank_top(self.params.n_max))
        self.ensemble = [t for i, t in enumerate(self.ensemble) if i in keep]

    def _add(self, trees: list[FedTree]) -> int:
        held = {t.tree_id for t in self.ensemble}
        added = 0
        for tree in trees:
            if tree.tree_id not in held:
                self.ensemble.append(tree)
                held.add(tree.tree_id)
                added += 1
        return added

    # ---- the three phases -----------------------------------------------------------------

    def fit(self, round_: int) -> list[FedTree]:
        started = time.perf_counter()
        params = self.params
        tree_params = {"criterion": "squared_error", "bootstrap": True,
                       "max_features": params.max_features, "max_depth": params.max_depth}
        new: list[FedTree] = []
        for _ in range(params.n_new):
            fitted = fit_tree(self._z, self.data.y, self.scaler, self.rng,
                              max_features=params.max_features, max_depth=params.max_depth)
            tree_id = TreeId(self.id, self.counter)
            self.counter += 1
            data = containers.one_tree_container(
                fitted, creator=self.id, counter=tree_id.counter, round_=round_,
                process_id=self.process.process_id, feature_names=self.data.feature_names,
                tree_params=tree_params, signing_key=self.key, created=self.created)
            verified = verify_container(data, self.process, self.id)
            if isinstance(verified, Refusal):  # our own container must verify: a bug if not
                raise RuntimeError(f"own tree {tree_id.text} does not verify: {verified.detail}")
            tree = verified.fed_tree
            logbook.append_fit(self.log, self.process, self.key, creator=self.id,
                               counter=tree_id.counter, round_=round_,
                               store_key=tree.store_key, tree_sha256=tree.digest)
            new.append(tree)
        self._add(new)
        self.stats.fit_seconds += time.perf_counter() - started
        self.crop()
        logbook.append_status(self.log, self.process, self.key, agent=self.id, round_=round_,
                              phase="fit", trees=len(self.ensemble), created=len(new))
        return new

    def share(self, round_: int, neighbours: list[int]) -> int:
        """SHARE to every neighbour; returns the registry bytes written."""
        if not neighbours or self.params.n_share == 0:
            return 0
        top = [self.ensemble[i] for i in self.rank_top(self.params.n_share)]
        written = 0
        for neighbour in neighbours:
            # the share records go first: a receiver reading the slot at any moment finds
            # every tree in it already addressed to it in the log (async schedule)
            for tree in top:
                logbook.append_share(self.log, self.process, self.key, sender=self.id,
                                     receiver=neighbour, round_=round_,
                                     store_key=tree.store_key, tree=tree.tree_id.text)
            written += self.registry.write_slot(self.id, neighbour, round_,
                                                [t.container for t in top])
        self.stats.bytes_shared += written
        self.stats.trees_shared += len(top) * len(neighbours)
        logbook.append_status(self.log, self.process, self.key, agent=self.id, round_=round_,
                              phase="share", trees=len(top), to=sorted(neighbours))
        return written

    def get(self, round_: int) -> int:
        """GET: accept the verified, anchored, addressed trees; returns how many were added."""
        slots, refusals = self.registry.read_slots(self.id)
        self._index.refresh(self.log)
        accepted: list[FedTree] = []
        for slot in slots:
            for data in slot.containers:
                verified = self._verified.get(data)
                if verified is None:
                    verified = verify_container(data, self.process, slot.sender)
                    self._verified[data] = verified
                if isinstance(verified, Refusal):
                    refusals.append(Refusal(slot.sender, verified.reason, verified.detail,
                                            verified.store_key, verified.tree))
                    continue
                proven = (verified.fed_tree.store_key, slot.sender)
                if proven not in self._anchored:  # the log only grows: a proof stays valid
                    refusal = check_anchored(self.log, self._index, self.process, verified,
                                             slot.sender, self.id)
                    if refusal is not None:
                        refusals.append(refusal)
                        continue
                    self._anchored.add(proven)
                accepted.append(verified.fed_tree)
        self.stats.trees_received += len(accepted)
        added = self._add(accepted)
        self.crop()
        self.refusals += [(round_, r) for r in refusals]
        shown = [r.to_json() for r in refusals[:8]]
        logbook.append_status(self.log, self.process, self.key, agent=self.id, round_=round_,
                              phase="get", trees=len(self.ensemble), accepted=len(accepted),
                              added=added, refused=shown, refused_total=len(refusals))
        return added

    # ---- the result ------------------------------------------------------------------------

    def final_model(self, *, publish: bool = True) -> bytes:
        data = containers.final_container(
            self.ensemble, agent=self.id, process_id=self.process.process_id,
            feature_names=self.data.feature_names, params=self.params.to_json(),
            signing_key=self.key, created=self.created)
        if publish:
            import pyastore

            model = pyastore.load(data, trusted_keys=[self.key.public_key],
                                  use_default_trust=False)
            self.log.append_model(model.store_key, f"agent-{self.id:02d}",
                                  logbook.canonical_json({"process": self.process.process_id,
                                                          "agent": self.id}), self.key)
        return data

    def origin_counts(self, n_agents: int) -> np.ndarray:
        counts = np.zeros(n_agents)
        for tree in self.ensemble:
            counts[tree.tree_id.creator] += 1
        return counts

