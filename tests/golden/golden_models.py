"""The golden containers: small hand-built models whose bytes and store keys are pinned.

Regenerate with ``pytest tests/golden/test_golden.py --update-goldens`` (or
``python tests/golden/golden_models.py``) after a deliberate format change; the test then
compares every byte again. The signing key is a TEST key derived from a public seed: never
trust it anywhere else.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pyastore import format as fmt
from pyastore.encoding import Categorical
from pyastore.ir import (
    Algorithm,
    ColumnTransform,
    Dense,
    Forest,
    Mlp,
    ModelSpec,
    Output,
    ScoreRules,
    Transforms,
    Tree,
    Variable,
)
from pyastore.keys import SigningKey

HERE = Path(__file__).resolve().parent
CREATED = "2026-01-01T00:00:00Z"
TEST_SEED = hashlib.sha256(b"pyastore golden test key - public, never trust it").digest()

# Inputs with NaN, infinities and values exactly on thresholds.
NAN = float("nan")
INF = float("inf")
GOLDEN_ROWS = [
    [0.0, 0.0, 0.0], [1.0, 0.0, 5.0], [1.0, 2.0, -1.0], [NAN, 3.0, 0.25], [0.5, 1.5, NAN],
    [-2.0, 1.0, 2.0], [INF, -INF, 1.0], [-INF, INF, -INF], [0.25, 2.0, 0.5], [NAN, NAN, NAN],
]


def golden_key() -> SigningKey:
    return SigningKey(TEST_SEED)


def tiny_forest_spec() -> ModelSpec:
    """Two boosted trees over three inputs, binary with a logistic link (a fraud-like toy)."""
    t1 = Tree(feature=(0, -1, 1, -1, -1), threshold=(0.5, 0.0, 1.5, 0.0, 0.0),
              left=(1, -1, 3, -1, -1), right=(2, -1, 4, -1, -1),
              default_left=(True, False, False, False, False),
              value=((), (-1.25,), (), (0.5,), (2.0,)))
    t2 = Tree(feature=(1, 2, -1, 0, -1, -1, -1),
              threshold=(2.0, 0.25, 0.0, -1.0, 0.0, 0.0, 0.0),
              left=(1, 3, -1, 5, -1, -1, -1), right=(2, 4, -1, 6, -1, -1, -1),
              default_left=(False, True, False, False, False, False, False),
              value=((), (), (0.75,), (), (-0.5,), (1.5,), (-2.0,)))
    forest = Forest(n_features=3, n_outputs=1, leaf_width=1, trees=(t1, t2), tree_output=(0, 0),
                    aggregation="sum", base_score=(-0.25,), post_transform="logistic")
    return ModelSpec(
        name="golden-tiny-forest",
        description="Two hand-built trees; the golden container of format 1.0",
        algorithm=Algorithm("gradient_boosted_trees", "hand-built", "1", "Forest"),
        inputs=(
            Variable("amount"),
            Variable("velocity"),
            Variable("age_days", missing="as_missing"),
        ),
        outputs=(Output("P_fraud", "probability", "probability that the event is fraud"),),
        rules=ScoreRules("binary", class_labels=(0, 1), cutoff=0.5),
        forest=forest,
        training_params={"max_depth": 3, "n_estimators": 2},
        provenance={"training_data_sha256": "0" * 64, "trainer_version": "golden"},
    )


def tiny_mlp_spec() -> ModelSpec:
    """A hand-built network of format 1.1: feature transforms (imputation, standardization,
    affine scaling, reordering) and six dense layers using every activation, multiclass.
    Every weight is a short binary fraction, so the layers read as written."""
    transforms = Transforms(n_inputs=3, columns=(
        ColumnTransform(source=2, impute=1.0, scaling="standardize", a=0.5, b=2.0),  # age_days
        ColumnTransform(source=0, impute=0.0, scaling="affine", a=0.25, b=-0.5),  # amount
        ColumnTransform(source=1, impute=-1.0),  # velocity
    ))
    layers = (
        Dense(weights=((1.0, -0.5, 0.25), (0.5, 0.5, -1.0), (-0.75, 1.0, 0.5), (0.25, -0.25, 2.0)),
              bias=(0.125, -0.25, 0.0, 0.5), activation="relu"),
        Dense(weights=((1.0, 0.0, -1.0, 0.5), (-0.5, 1.0, 0.25, 0.0), (0.0, -2.0, 1.0, 1.0),
                       (0.5, 0.5, 0.5, -0.5)),
              bias=(-0.5, 0.25, 0.0, 0.125), activation="leaky_relu", alpha=0.125),
        Dense(weights=((0.5, -1.0, 0.25, 1.0), (1.5, 0.5, -0.5, 0.0), (-0.25, 0.75, 1.0, -1.0)),
              bias=(0.0, -0.125, 0.25), activation="tanh"),
        Dense(weights=((2.0, -1.0, 0.5), (-1.5, 0.5, 1.0), (0.25, 0.25, -2.0)),
              bias=(0.5, 0.0, -0.25), activation="sigmoid"),
        Dense(weights=((3.0, -1.0, 0.0), (0.0, 2.0, -1.0), (-1.0, 0.5, 2.5)),
              bias=(0.0, 0.5, -1.0), activation="identity"),
        Dense(weights=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.5, 0.5, 1.0)),
              bias=(0.25, 0.0, -0.25), activation="softmax"),
    )
    labels = ("low", "mid", "high")
    return ModelSpec(
        name="golden-tiny-mlp",
        description="A hand-built network with feature transforms; "
        "a golden container of format 1.1",
        algorithm=Algorithm("mlp", "hand-built", "1", "Mlp"),
        inputs=(
            Variable("amount", missing="impute"),
            Variable("velocity", missing="impute"),
            Variable("age_days", missing="impute"),
        ),
        outputs=tuple(
            Output(f"P_{label}", "probability", f"probability that the risk is {label}")
            for label in labels
        ),
        rules=ScoreRules("multiclass", class_labels=labels),
        mlp=Mlp(layers),
        transforms=transforms,
        training_params={"hidden_layer_sizes": [4, 4, 3, 3, 3]},
        provenance={"training_data_sha256": "0" * 64, "trainer_version": "golden"},
    )


MERCHANTS = tuple(f"m{k:02d}" for k in range(40))
CHANNELS = ("app", "pos", "web")


def tiny_categorical_spec() -> ModelSpec:
    """Two hand-built trees with categorical splits (format 1.2: FRST and CATS) over a
    40-category input (its sets span two 32-bit words), a number and a 3-category input;
    a regression whose leaves are powers of two, so every score is exact."""
    t1 = Tree(feature=(0, -1, 1, -1, -1), threshold=(0.0, 0.0, 100.0, 0.0, 0.0),
              left=(1, -1, 3, -1, -1), right=(2, -1, 4, -1, -1),
              default_left=(False, False, True, False, False),
              value=((), (1.0,), (), (0.25,), (0.5,)),
              categories=((1, 3, 35), (), (), (), ()))
    t2 = Tree(feature=(2, 0, -1, -1, -1), threshold=(0.0, 0.0, 0.0, 0.0, 0.0),
              left=(1, 2, -1, -1, -1), right=(4, 3, -1, -1, -1),
              default_left=(True, False, False, False, False),
              value=((), (), (4.0,), (2.0,), (8.0,)),
              categories=((0, 2), (34,), (), (), ()))
    forest = Forest(n_features=3, n_outputs=1, leaf_width=1, trees=(t1, t2), tree_output=(0, 0))
    return ModelSpec(
        name="golden-tiny-categorical",
        description="Two hand-built trees with categorical splits; a golden container of "
        "format 1.2",
        algorithm=Algorithm("gradient_boosted_trees", "hand-built", "1", "Forest"),
        inputs=(
            Variable("merchant", type="categorical", missing="categorical",
                     categorical=Categorical(MERCHANTS, missing="as_missing", unseen="missing")),
            Variable("amount"),
            Variable("channel", type="categorical", missing="categorical",
                     categorical=Categorical(CHANNELS, missing="as_missing", unseen="missing")),
        ),
        outputs=(Output("risk", "value", "a risk score"),),
        rules=ScoreRules("regression"),
        forest=forest,
        training_params={"max_depth": 2, "n_estimators": 2},
        provenance={"training_data_sha256": "0" * 64, "trainer_version": "golden"},
    )


GOLDEN = {
    "tiny_categorical": (tiny_categorical_spec, True),
    "tiny_forest": (tiny_forest_spec, True),
    "tiny_forest_unsigned": (tiny_forest_spec, False),
    "tiny_mlp": (tiny_mlp_spec, True),
}


def build(name: str) -> bytes:
    make_spec, signed = GOLDEN[name]
    return fmt.write(make_spec(), golden_key() if signed else None, created=CREATED)


def write_all(folder: Path = HERE) -> None:
    """Write every golden container, the test key's public half and the manifest."""
    manifest = {}
    for name in GOLDEN:
        data = build(name)
        (folder / f"{name}.astore").write_bytes(data)
        manifest[name] = {"bytes": len(data), "store_key": hashlib.sha256(
            data[: len(data) - fmt.SIGNATURE_SECTION_LENGTH]).hexdigest()}
    (folder / "golden_test_key.pub").write_text(
        "ed25519-public:" + golden_key().public_key.hex() + "\n")
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_all()
