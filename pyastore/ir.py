"""The intermediate representation (IR) between exporters and the container writer.

Exporters (``trainer.export``) turn an xgboost / scikit-learn / torch model into a
``ModelSpec``; ``pyastore.format.write`` turns a ``ModelSpec`` into container bytes. The IR is
plain frozen dataclasses of tuples (no numpy), so the runtime can build and compare it without
optional dependencies.

Tree semantics (one rule for every library, the exporter converts to it):

* a node with ``feature[i] >= 0`` is a split: a row goes to ``left[i]`` when
  ``x[feature[i]] < threshold[i]`` (compared in float32: ``threshold[i]`` must be exactly
  representable as a float32), to ``right[i]`` otherwise, and to the ``default_left[i]`` side
  when the value is NaN. ``+inf``/``-inf`` compare as ordinary floats.
  (scikit-learn's ``x <= t`` on float32 inputs becomes ``x < next_float32_above(floor32(t))``.)
* a split with ``categories`` (a tree whose ``categories`` is not empty has one entry per node)
  and a non-empty ``categories[i]`` is a **categorical split**: its ``threshold[i]`` is
  ``0.0`` and unused; a row goes left when ``x`` is one of the codes in ``categories[i]``
  (sorted, distinct integers ``0 <= k < 2**24``), right for every other value -- another
  code, a fraction, a negative, ``±inf`` --, and to the ``default_left[i]`` side when NaN.
  ``category_in_set`` is the rule. Other nodes of such a tree have ``()``.
* a node with ``feature[i] == -1`` is a leaf; ``value[i]`` is its leaf vector of
  ``Forest.leaf_width`` floats (empty tuple for split nodes).
* node 0 is the root; children ids index the same tree; every node is reachable once.

Forest scoring: ``raw[k] = base_score[k] + A_k`` where ``A_k`` sums (``aggregation="sum"``) or
averages over all trees (``"mean"``) the leaf contributions to output ``k``: a tree with
``leaf_width == 1`` adds its leaf value to output ``tree_output[t]``; with
``leaf_width == n_outputs`` it adds its whole leaf vector. Then ``post_transform`` maps ``raw``
to the outputs: ``identity``, ``logistic`` (1/(1+exp(-r)) per output) or ``softmax``
(over all outputs).

MLP scoring (``Mlp``): layer ``k`` maps its input vector ``x`` (``n_in`` values) to
``activation(z)`` with ``z[j] = bias[j] + sum_i weights[j][i] * x[i]``; the first layer reads the
model columns, the last layer's outputs are the model outputs. Weights and biases are stored
as float32 (the writer rounds them) and the C core computes in float32 (docs/FORMAT.md).
Activations: ``identity``, ``relu``, ``leaky_relu`` (``x < 0 ? alpha * x : x``), ``tanh``,
``sigmoid``, ``softmax`` (over the layer's units).

Transforms (``Transforms``): raw input rows (``n_inputs`` columns, the ``ModelSpec.inputs``)
become model rows (one value per ``ColumnTransform``, what the payload reads). Model column
``j`` takes raw column ``source``; a NaN becomes ``impute`` (when not None); then ``scaling``:
``"none"``, ``"standardize"`` ``(v - a) / b`` or ``"affine"`` ``v * a + b``, in float64;
then the value is rounded to float32.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

from pyastore.encoding import Categorical

POST_TRANSFORMS = ("identity", "logistic", "softmax")
AGGREGATIONS = ("sum", "mean")
TASKS = ("binary", "multiclass", "regression", "embedding")
VARIABLE_TYPES = ("float", "int", "bool", "categorical")
MISSING_POLICIES = ("as_missing", "error", "impute", "categorical")
ACTIVATIONS = ("identity", "relu", "leaky_relu", "tanh", "sigmoid", "softmax")
SCALINGS = ("none", "standardize", "affine")
MAX_CATEGORY_CODE = 1 << 24  # category codes are below it: exact in float32


def is_float32(value: float) -> bool:
    """True when ``value`` survives a round trip through float32 unchanged (NaN excluded)."""
    if math.isnan(value):
        return False
    return bool(struct.unpack("<f", struct.pack("<f", value))[0] == value)


def category_in_set(x: float, codes: tuple[int, ...] | frozenset[int]) -> bool:
    """Whether a categorical split sends the non-NaN value ``x`` left: ``x`` is exactly one
    of the integer ``codes``."""
    return math.isfinite(x) and x == int(x) and int(x) in codes


@dataclass(frozen=True)
class Tree:
    """One decision tree, nodes as parallel tuples (see the module docstring).

    ``categories`` is empty for a tree of numeric splits only; otherwise it has one entry per
    node, the codes that go left at a categorical split and ``()`` elsewhere."""

    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    default_left: tuple[bool, ...]
    value: tuple[tuple[float, ...], ...]
    categories: tuple[tuple[int, ...], ...] = ()

    @property
    def n_nodes(self) -> int:
        return len(self.feature)

    def category_set(self, node: int) -> tuple[int, ...]:
        """The codes a categorical split at ``node`` sends left; ``()`` for any other node."""
        return self.categories[node] if self.categories else ()


@dataclass(frozen=True)
class Forest:
    """A tree ensemble and how its leaves combine into outputs (see the module docstring)."""

    n_features: int
    n_outputs: int
    leaf_width: int
    trees: tuple[Tree, ...]
    tree_output: tuple[int, ...]
    aggregation: str = "sum"
    base_score: tuple[float, ...] = ()
    post_transform: str = "identity"


@dataclass(frozen=True)
class Dense:
    """One dense layer: ``weights[j][i]`` from input ``i`` to unit ``j`` (``n_out`` rows of
    ``n_in`` floats), ``bias[j]``, and the activation applied to the unit values."""

    weights: tuple[tuple[float, ...], ...]
    bias: tuple[float, ...]
    activation: str = "identity"
    alpha: float = 0.0  # slope below zero, for "leaky_relu" only

    @property
    def n_in(self) -> int:
        return len(self.weights[0]) if self.weights else 0

    @property
    def n_out(self) -> int:
        return len(self.weights)


@dataclass(frozen=True)
class Mlp:
    """A feed-forward network of dense layers, applied in order (see the module docstring)."""

    layers: tuple[Dense, ...]

    @property
    def n_features(self) -> int:
        return self.layers[0].n_in if self.layers else 0

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out if self.layers else 0


@dataclass(frozen=True)
class ColumnTransform:
    """How one model column is made from the raw input row (see the module docstring).

    ``source``: the raw input column read; ``impute``: the value that replaces NaN (None:
    NaN stays NaN); ``scaling``: ``"none"`` (``a`` and ``b`` 0), ``"standardize"``
    (``(v - a) / b``) or ``"affine"`` (``v * a + b``).
    """

    source: int
    impute: float | None = None
    scaling: str = "none"
    a: float = 0.0
    b: float = 0.0


@dataclass(frozen=True)
class Transforms:
    """Feature transforms before the model: ``n_inputs`` raw columns in, one model column per
    entry of ``columns`` out (selection and reordering by ``ColumnTransform.source``)."""

    n_inputs: int
    columns: tuple[ColumnTransform, ...]


@dataclass(frozen=True)
class Variable:
    """An input variable: its name, type and what a missing (NaN) value means.

    A categorical input (``type="categorical"``, ``missing="categorical"``) has its
    vocabulary and rules in ``categorical``; the payload reads its codes
    (``pyastore.encoding``). Other inputs have ``categorical=None``.
    """

    name: str
    type: str = "float"
    missing: str = "as_missing"
    description: str = ""
    categorical: Categorical | None = None


@dataclass(frozen=True)
class Output:
    """An output column: its name, type (``probability``, ``score``, ``value``) and meaning."""

    name: str
    type: str = "probability"
    meaning: str = ""


@dataclass(frozen=True)
class Algorithm:
    family: str  # e.g. "gradient_boosted_trees", "random_forest", "mlp"
    library: str  # e.g. "xgboost"
    library_version: str
    estimator: str = ""  # e.g. "XGBClassifier"


@dataclass(frozen=True)
class ScoreRules:
    """How outputs become decisions.

    ``class_labels`` lists the labels in output order (multiclass) or ``(negative, positive)``
    (binary: one output, the probability of the positive label). ``cutoff`` is the decision
    threshold on that probability for binary models. ``task="embedding"``: the outputs are a
    representation (e.g. a network's hidden layer), values with no decision attached.
    """

    task: str
    class_labels: tuple[Any, ...] = ()
    cutoff: float | None = None


@dataclass(frozen=True)
class ModelSpec:
    """Everything the writer needs to produce a container.

    Exactly one payload, ``forest`` or ``mlp``. ``inputs`` are the raw input columns; with
    ``transforms`` the payload reads ``len(transforms.columns)`` transformed columns, without
    it the inputs themselves.
    """

    name: str
    algorithm: Algorithm
    inputs: tuple[Variable, ...]
    outputs: tuple[Output, ...]
    rules: ScoreRules
    forest: Forest | None = None
    description: str = ""
    training_params: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    mlp: Mlp | None = None
    transforms: Transforms | None = None
