"""Export: the party encoders and the host network as signed containers, and the composed
container that scores the whole model in one call.

* ``encoder_spec``: a party's first three layers (``trainer.export``'s torch exporter with
  ``encoder_layers=3``) behind an XFRM section that standardises the party's raw columns with
  the statistics of its training rows; outputs ``h0 .. h{n-1}``, the representation.
* ``host_spec``: the host network on the joined representations, inputs named
  ``<party>.h<k>`` in roster order; one output, the probability of class 1.
* ``composed_spec``: built from the *verified containers* (not from the training objects), so
  anyone holding the signed parts can compose them. Encoders act on disjoint columns, so
  "every encoder side by side, then the host" is one MLP: an XFRM that selects and
  standardises every party's columns, three block-diagonal layers (a party's weights on its
  own columns, exact zeros elsewhere), then the host's layers.

Why the composed container gives the same bits as the distributed path (parties score their
encoder containers, the host scores its container on the joined representations): the C core
computes a unit as ``bias + w[0] x[0] + w[1] x[1] + ...`` in input order, in float32, without
FMA. In a block-diagonal layer a unit of party ``p`` adds, besides its own terms in its own
order, products ``0 * x`` = +-0 for the other parties' inputs. Inputs are finite (a NaN or
infinite input is refused: inputs have ``missing="error"``, standardised values of finite
inputs are finite and so are ReLU outputs), so each such product is a zero, and adding a zero
to a float32 sum changes nothing except, at most, the sign of an exact zero sum. A zero of
either sign gives the same result in every later operation here (ReLU maps both to a zero,
``w * (+-0)`` is a zero, the sigmoid of +-0 is 1/2). The host part is the host's own layers,
so its sums run in the same order. ``tests/unit/vertical`` checks the claim bit for bit.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pyastore.errors import UnsupportedModelError
from pyastore.ir import (
    ACTIVATIONS,
    SCALINGS,
    Algorithm,
    ColumnTransform,
    Dense,
    Mlp,
    ModelSpec,
    Output,
    ScoreRules,
    Transforms,
    Variable,
)

XFRM_IMPUTE = 0x100


def standardisation(x_train: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and standard deviation of each column of the training rows, as the container
    computes them: on the float32-rounded inputs (the C core reads float32 rows), in float64.
    A constant column gets scale 1 (nothing to scale)."""
    import numpy as np

    values = np.asarray(x_train, dtype=np.float32).astype(np.float64)
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def standardise(x: Any, mean: Sequence[float], std: Sequence[float]) -> Any:
    """What the container's XFRM makes of raw rows ``x``: float32 in, float64 arithmetic,
    float32 out (so training sees exactly what scoring sees)."""
    import numpy as np

    values = np.asarray(x, dtype=np.float32).astype(np.float64)
    return ((values - np.asarray(mean)) / np.asarray(std)).astype(np.float32)


def encoder_spec(net: Any, columns: Sequence[str], mean: Sequence[float], std: Sequence[float],
                 *, name: str, description: str, provenance: dict[str, Any],
                 training_params: dict[str, Any]) -> ModelSpec:
    from trainer.export import export_model
    from trainer.vertical.nets import ENCODER_LAYERS

    spec = export_model(net, feature_names=list(columns), encoder_layers=ENCODER_LAYERS,
                        name=name, description=description, provenance=provenance,
                        training_params=training_params)
    return replace(spec, transforms=_standardising_transforms(len(columns), mean, std))


def party_model_spec(net: Any, columns: Sequence[str], mean: Sequence[float],
                     std: Sequence[float], *, name: str, description: str,
                     provenance: dict[str, Any], training_params: dict[str, Any]) -> ModelSpec:
    """A party's whole network (its model on its own columns alone), with its scaling."""
    from trainer.export import export_model

    spec = export_model(net, feature_names=list(columns), task="binary", name=name,
                        description=description, provenance=provenance,
                        training_params=training_params)
    return replace(spec, transforms=_standardising_transforms(len(columns), mean, std))


def host_spec(net: Any, input_names: Sequence[str], *, name: str, description: str,
              provenance: dict[str, Any], training_params: dict[str, Any]) -> ModelSpec:
    from trainer.export import export_model

    return export_model(net, feature_names=list(input_names), task="binary", name=name,
                        description=description, provenance=provenance,
                        training_params=training_params)


def _standardising_transforms(n: int, mean: Sequence[float], std: Sequence[float]) -> Transforms:
    return Transforms(n_inputs=n, columns=tuple(
        ColumnTransform(source=i, scaling="standardize", a=float(mean[i]), b=float(std[i]))
        for i in range(n)))


# ---- reading the payload back from a verified container ------------------------------------


def _section(model: Any, kind: str) -> bytes:
    data = model.container_bytes
    for section_type, _flags, offset, length in model.sections():
        if section_type == kind:
            return data[offset:offset + length]
    raise UnsupportedModelError(f"{model.source}: no {kind} section")


def mlp_of(model: Any) -> Mlp:
    """The MLP_ payload of a loaded container as IR layers (float32 values, exactly)."""
    body = _section(model, "MLP_")
    n_layers, _n_features, _n_outputs, table_offset, _flags = struct.unpack_from("<5I", body, 0)
    layers = []
    for k in range(n_layers):
        n_in, n_out, activation, alpha, w_at, b_at, _r0, _r1 = struct.unpack_from(
            "<3If4I", body, table_offset + 32 * k)
        flat = struct.unpack_from(f"<{n_in * n_out}f", body, w_at)
        bias = struct.unpack_from(f"<{n_out}f", body, b_at)
        layers.append(Dense(weights=tuple(tuple(flat[j * n_in:(j + 1) * n_in])
                                          for j in range(n_out)),
                            bias=tuple(bias), activation=ACTIVATIONS[activation],
                            alpha=float(alpha)))
    return Mlp(tuple(layers))


def transforms_of(model: Any) -> Transforms:
    """The XFRM section of a loaded container as IR transforms."""
    body = _section(model, "XFRM")
    n_inputs, n_columns, columns_offset, _flags = struct.unpack_from("<4I", body, 0)
    columns = []
    for j in range(n_columns):
        source, op, impute, a, b = struct.unpack_from("<2I3d", body, columns_offset + 32 * j)
        columns.append(ColumnTransform(source=source,
                                       impute=impute if op & XFRM_IMPUTE else None,
                                       scaling=SCALINGS[op & 0xFF], a=a, b=b))
    return Transforms(n_inputs=n_inputs, columns=tuple(columns))


def composed_spec(encoders: Sequence[Any], host: Any, *, name: str = "vertical-composed",
                  description: str = "") -> ModelSpec:
    """One container for every encoder side by side, then the host (module docstring).

    ``encoders`` and ``host`` are loaded, verified ``pyastore.Model`` containers, the
    encoders in the order of the host's inputs.
    """
    for model in encoders:
        if model.meta["score_rules"]["task"] != "embedding":
            raise UnsupportedModelError(f"{model.source}: not an encoder (task embedding)")
    parts = [(model, mlp_of(model), transforms_of(model)) for model in encoders]
    host_mlp = mlp_of(host)
    depth = {len(mlp.layers) for _, mlp, _ in parts}
    if len(depth) != 1:
        raise UnsupportedModelError(f"encoders of different depths {sorted(depth)} cannot be "
                                    "laid side by side")
    widths = [mlp.n_outputs for _, mlp, _ in parts]
    if host_mlp.n_features != sum(widths):
        raise UnsupportedModelError(f"the host reads {host_mlp.n_features} values but the "
                                    f"encoders give {sum(widths)} ({widths})")
    if host.meta["score_rules"]["task"] != "binary":
        raise UnsupportedModelError("the host container is not a binary classifier")
    names: list[str] = []
    for model, _, _ in parts:
        overlap = set(names) & set(model.input_names)
        if overlap:
            raise UnsupportedModelError(f"encoders share input column(s) {sorted(overlap)}: "
                                        "parties hold disjoint columns")
        names += model.input_names
    columns: list[ColumnTransform] = []
    offset = 0
    for model, _, transforms in parts:
        for column in transforms.columns:
            columns.append(replace(column, source=offset + column.source))
        offset += len(model.input_names)
    layers = [_block_diagonal([mlp.layers[k] for _, mlp, _ in parts], k)
              for k in range(depth.pop())]
    layers += list(host_mlp.layers)
    inputs = []
    for model, _, _ in parts:
        by_name = {v["name"]: v for v in model.meta["inputs"]}
        inputs += [Variable(name=n, type=by_name[n]["type"], missing=by_name[n]["missing"])
                   for n in model.input_names]
    rules = host.meta["score_rules"]
    outputs = tuple(Output(name=o["name"], type=o["type"], meaning=o["meaning"])
                    for o in host.meta["outputs"])
    return ModelSpec(
        name=name, description=description,
        algorithm=Algorithm(family="mlp", library="pyastore-vertical",
                            library_version="1", estimator="composed"),
        inputs=tuple(inputs), outputs=outputs,
        rules=ScoreRules(task="binary", class_labels=tuple(rules.get("class_labels", (0, 1))),
                         cutoff=rules.get("cutoff")),
        mlp=Mlp(tuple(layers)), transforms=Transforms(n_inputs=len(inputs), columns=tuple(columns)),
        training_params={"composed_of": [m.store_key for m in encoders] + [host.store_key]},
        provenance={"encoders": [{"name": m.name, "store_key": m.store_key, "signer": m.signer}
                                 for m in encoders],
                    "host": {"name": host.name, "store_key": host.store_key,
                             "signer": host.signer}})


def _block_diagonal(blocks: Sequence[Dense], k: int) -> Dense:
    activations = {(b.activation, b.alpha) for b in blocks}
    if len(activations) != 1:
        raise UnsupportedModelError(f"encoder layer {k}: the parties use different activations "
                                    f"{sorted(activations)}; a layer has one")
    n_in = sum(b.n_in for b in blocks)
    weights: list[tuple[float, ...]] = []
    bias: list[float] = []
    before = 0
    for block in blocks:
        after = n_in - before - block.n_in
        for row in block.weights:
            weights.append((0.0,) * before + tuple(row) + (0.0,) * after)
        bias += block.bias
        before += block.n_in
    activation, alpha = activations.pop()
    return Dense(weights=tuple(weights), bias=tuple(bias), activation=activation, alpha=alpha)
