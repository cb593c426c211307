"""Containers of the federation: one-tree containers (what agents exchange) and final models.

Both are ordinary signed forest containers (docs/FORMAT.md) that read the raw input columns
(the creator's scaler is folded into the thresholds, :mod:`trainer.federated.trees`):
``aggregation="mean"`` of the trees' leaf values (each leaf the mean 0/1 label of its rows),
identity post-transform, one output ``P_1``, task ``binary`` with labels ``(0, 1)``.

The decision rule of the method is "anomaly when Phi(x) > 0.5", which is exactly a container's
binary rule (the positive label when the score is strictly greater than the cutoff) with the
cutoff 0.5.

* One-tree container: signed by the tree's creator; ``name`` ``tree <creator>/<counter>``;
  META ``provenance.federation = {process, tree: {creator, counter, round}}``. The creation time
  is the process start time, so the same tree always gives the same bytes and store key.
* Final model: signed by the agent; META ``provenance.federation = {process, agent,
  trees: [{creator, counter, store_key}, ...]}`` in forest order, which
  ``pyastore chain provenance`` checks against the log.
"""

from __future__ import annotations

from typing import Any

from pyastore import format as fmt
from pyastore import keys
from pyastore.cli_provenance import frst_tree_digests
from pyastore.ir import Algorithm, Forest, ModelSpec, Output, ScoreRules, Tree, Variable

CUTOFF = 0.5


def _algorithm() -> Algorithm:
    import sklearn

    return Algorithm(family="random_forest", library="scikit-learn",
                     library_version=str(sklearn.__version__),
                     estimator="DecisionTreeRegressor")


def _forest(trees: list[Tree], n_features: int) -> Forest:
    return Forest(n_features=n_features, n_outputs=1, leaf_width=1, trees=tuple(trees),
                  tree_output=(0,) * len(trees), aggregation="mean", base_score=(0.0,),
                  post_transform="identity")


def _spec(name: str, description: str, forest: Forest, feature_names: list[str],
          params: dict[str, Any], federation: dict[str, Any]) -> ModelSpec:
    return ModelSpec(
        name=name,
        algorithm=_algorithm(),
        inputs=tuple(Variable(name=n, type="float", missing="as_missing") for n in feature_names),
        outputs=(Output(name="P_1", type="probability",
                        meaning="mean of the trees' outputs: an anomaly when above 0.5"),),
        rules=ScoreRules(task="binary", class_labels=(0, 1), cutoff=CUTOFF),
        forest=forest,
        description=description,
        training_params=params,
        provenance={"federation": federation},
    )


def tree_digest(tree: Tree, n_features: int) -> str:
    """The tree digest (``pyastore.cli_provenance``) of one IR tree."""
    return frst_tree_digests(fmt.encode_forest(_forest([tree], n_features)))[0]


def one_tree_container(tree: Tree, *, creator: int, counter: int, round_: int, process_id: str,
                       feature_names: list[str], tree_params: dict[str, Any],
                       signing_key: keys.SigningKey, created: str) -> bytes:
    """The creator-signed one-tree container of a freshly fitted tree."""
    spec = _spec(f"tree {creator}/{counter}",
                 f"Regression tree {counter} of agent {creator}, federated round {round_}",
                 _forest([tree], len(feature_names)), feature_names, tree_params,
                 {"process": process_id,
                  "tree": {"creator": creator, "counter": counter, "round": round_}})
    return fmt.write(spec, signing_key, created=created)


def final_container(trees: list, *, agent: int, process_id: str, feature_names: list[str],
                    params: dict[str, Any], signing_key: keys.SigningKey,
                    created: str) -> bytes:
    """The agent's final model over its ensemble (``FedTree`` list) with every tree's origin."""
    origins = [{"creator": t.tree_id.creator, "counter": t.tree_id.counter,
                "store_key": t.store_key} for t in trees]
    spec = _spec(f"agent-{agent:02d}",
                 f"Federated random forest of agent {agent}: {len(trees)} trees from "
                 f"{len({t.tree_id.creator for t in trees})} creators",
                 _forest([t.tree for t in trees], len(feature_names)), feature_names, params,
                 {"process": process_id, "agent": agent, "trees": origins})
    return fmt.write(spec, signing_key, created=created)


def decode_trees(frst: bytes) -> list[Tree]:
    """The IR trees of a FRST section body (leaf width 1), nodes numbered in preorder
    (``pyastore.format.decode_tree``: ``encode_forest`` of the decoded trees gives the same
    bytes, tested). Leaf values are the stored float32."""
    from pyastore.errors import FormatError

    trees = fmt.stored_trees(frst)
    for stored in trees:
        if stored.leaf_width != 1:
            raise FormatError(f"a federated tree has leaf width 1, this forest has "
                              f"{stored.leaf_width}")
    return [fmt.decode_tree(stored) for stored in trees]

