"""Ingest a PyTorch ``nn.Sequential`` network into the pyastore MLP IR.

Supported modules, in the order the network applies them (nested ``nn.Sequential`` are
flattened):

* ``nn.Linear`` starts a dense layer (weights ``[out][in]``, bias or zeros);
* ``nn.BatchNorm1d`` right after a ``Linear`` (with only ``Dropout``/``Identity`` between) is
  folded into it with eval semantics: ``s = weight / sqrt(running_var + eps)``,
  ``W' = s * W``, ``b' = s * (b - running_mean) + bias`` (computed in float64, rounded once);
  it needs running statistics (``track_running_stats=True``);
* ``nn.ReLU``, ``nn.LeakyReLU`` (its ``negative_slope``), ``nn.Tanh``, ``nn.Sigmoid``,
  ``nn.Softmax`` over the features (``dim`` 1, -1 or None) become the layer's activation:
  one activation per layer, after its ``Linear``;
* ``nn.Identity`` and ``nn.Dropout`` are dropped (eval semantics, whatever ``model.training``
  says).

Anything else -- another module class, a subclass of one of these, a ``Sequential`` subclass
(it may override ``forward``), a batch norm or activation that does not follow a ``Linear`` --
raises ``UnsupportedModelError`` naming the module and its position.

A network records neither what its outputs mean nor class labels, so the caller says so with
``task`` (and optionally ``class_labels``); without ``task`` it is inferred from the last
layer: one sigmoid unit or two softmax units -> ``"binary"``, more softmax units ->
``"multiclass"``, one other unit -> ``"regression"``. Outputs follow ``trainer.export``:

* ``binary``: one output ``P_<positive>``. A final sigmoid unit is that probability; a final
  two-unit softmax is folded into one sigmoid unit, ``sigmoid((w1 - w0) . x + (b1 - b0))``,
  which equals ``softmax(z)[1]`` (the weight differences are rounded to float32 once); a final
  identity unit is a logit, exported as the margin output ``score_<positive>`` with the cutoff
  carried into logit space. ``class_labels`` default ``(0, 1)``.
* ``multiclass``: a final softmax, one output ``P_<label>`` per unit; ``class_labels`` default
  ``0 .. n-1``.
* ``regression``: one output ``prediction``.
* ``embedding``, or ``encoder_layers=k``: the first ``k`` dense layers with their activations
  (a party's encoder in vertically partitioned training); outputs ``h0 .. h{n-1}``.

Inputs are named by ``feature_names`` (else ``x0 .. x{n-1}``) and exported with
``missing="error"``: a network has no notion of a missing value (NaN would give NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyastore.errors import UnsupportedModelError, UsageError
from pyastore.ir import Algorithm, Dense, Mlp, ModelSpec
from trainer.export import ExportOptions, json_safe, make_spec
from trainer.export.mlp_common import dense_layer, encoder_cut

_ACTIVATION_CLASSES = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "Tanh": "tanh",
                       "Sigmoid": "sigmoid", "Softmax": "softmax"}
_DROPPED_CLASSES = ("Identity", "Dropout")


def export(model: Any, options: ExportOptions, *, task: str | None = None,
           class_labels: Sequence[Any] | None = None,
           encoder_layers: int | None = None) -> ModelSpec:
    """Convert an ``nn.Sequential`` to a ``ModelSpec`` (module docstring)."""
    import torch

    if type(model) is not torch.nn.Sequential:
        raise UnsupportedModelError(
            f"cannot export {type(model).__module__}.{type(model).__qualname__}: only "
            "torch.nn.Sequential networks are supported (a subclass may change forward)")
    modules = _flatten(model, "")
    layers, described = _layers(modules)
    if not layers:
        raise UnsupportedModelError("the network has no nn.Linear layer")
    if encoder_layers is not None:
        if task not in (None, "embedding"):
            raise UsageError(f"encoder_layers exports an embedding, not task={task!r}")
        task = "embedding"
    layers = list(encoder_cut(layers, encoder_layers))
    task = task if task is not None else _infer_task(layers)
    layers, labels, margin_output = _output_head(layers, task, class_labels)
    algorithm = Algorithm(family="mlp", library="torch", library_version=str(torch.__version__),
                          estimator="Sequential")
    return make_spec(mlp=Mlp(tuple(layers)), task=task, class_labels=labels, algorithm=algorithm,
                     model_feature_names=None, missing="error", options=options,
                     training_params={"modules": json_safe(described)},
                     margin_output=margin_output)


def _flatten(module: Any, prefix: str) -> list[tuple[str, Any]]:
    import torch

    flat = []
    for name, child in module.named_children():
        where = f"{prefix}{name}"
        if type(child) is torch.nn.Sequential:
            flat.extend(_flatten(child, where + "."))
        else:
            flat.append((where, child))
    return flat


def _tensor(value: Any):
    return value.detach().to("cpu").double().numpy()


def _layers(modules: list[tuple[str, Any]]) -> tuple[list[Dense], list[dict[str, Any]]]:
    """Dense layers and a description of every module, refusing what cannot be exported."""
    import numpy as np
    import torch

    layers: list[Dense] = []
    described: list[dict[str, Any]] = []
    weights = bias = None  # the open layer, before its activation
    foldable = False  # a batch norm may still fold into the open layer
    for where, module in modules:
        cls = type(module)
        name = cls.__name__
        where_text = f"module {where} ({cls.__module__}.{cls.__qualname__})"
        if name == "Linear" and cls is torch.nn.Linear:
            if weights is not None:
                layers.append(dense_layer(weights, bias, "identity"))
            weights = _tensor(module.weight)
            bias = _tensor(module.bias) if module.bias is not None else np.zeros(weights.shape[0])
            foldable = True
            described.append({"module": name, "in_features": module.in_features,
                              "out_features": module.out_features,
                              "bias": module.bias is not None})
        elif name == "BatchNorm1d" and cls is torch.nn.BatchNorm1d:
            if weights is None or not foldable:
                raise UnsupportedModelError(
                    f"cannot export {where_text}: a batch norm folds only into the nn.Linear "
                    "right before it")
            if not module.track_running_stats or module.running_mean is None:
                raise UnsupportedModelError(f"cannot export {where_text}: it has no running "
                                            "statistics (track_running_stats=False)")
            scale = 1.0 / np.sqrt(_tensor(module.running_var) + float(module.eps))
            if module.affine:
                scale = scale * _tensor(module.weight)
                shift = _tensor(module.bias)
            else:
                shift = np.zeros_like(scale)
            if scale.shape != (weights.shape[0],):
                raise UnsupportedModelError(f"cannot export {where_text}: {scale.shape[0]} "
                                            f"features after a layer of {weights.shape[0]} units")
            weights = scale[:, None] * weights
            bias = scale * (bias - _tensor(module.running_mean)) + shift
            described.append({"module": name, "folded": True, "eps": float(module.eps)})
        elif name in _ACTIVATION_CLASSES and cls is getattr(torch.nn, name):
            if weights is None:
                raise UnsupportedModelError(f"cannot export {where_text}: an activation must "
                                            "follow an nn.Linear (one activation per layer)")
            alpha = 0.0
            if name == "LeakyReLU":
                alpha = float(module.negative_slope)
            if name == "Softmax" and module.dim not in (None, 1, -1):
                raise UnsupportedModelError(f"cannot export {where_text}: softmax over dim "
                                            f"{module.dim}; only over the features (dim=1)")
            layers.append(dense_layer(weights, bias, _ACTIVATION_CLASSES[name], alpha))
            weights = bias = None
            foldable = False
            described.append({"module": name} | ({"negative_slope": alpha} if alpha else {}))
        elif name in _DROPPED_CLASSES and cls is getattr(torch.nn, name):
            described.append({"module": name, "dropped": True})
        else:
            raise UnsupportedModelError(
                f"cannot export {where_text}: supported modules are Linear, BatchNorm1d, "
                f"{', '.join(_ACTIVATION_CLASSES)}, Identity and Dropout")
    if weights is not None:
        layers.append(dense_layer(weights, bias, "identity"))
    return layers, described


def _infer_task(layers: list[Dense]) -> str:
    last = layers[-1]
    if last.activation == "sigmoid" and last.n_out == 1:
        return "binary"
    if last.activation == "softmax" and last.n_out == 2:
        return "binary"
    if last.activation == "softmax":
        return "multiclass"
    if last.n_out == 1:
        return "regression"
    raise UsageError(f"the network ends in {last.n_out} {last.activation} units: say what they "
                     "mean with task= (binary, multiclass, regression or embedding)")


def _output_head(layers: list[Dense], task: str, class_labels: Sequence[Any] | None
                 ) -> tuple[list[Dense], tuple[Any, ...], bool]:
    """The layers, class labels and margin flag for ``task`` (module docstring)."""
    last = layers[-1]
    if task == "embedding":
        if class_labels is not None:
            raise UsageError("an embedding has no class labels")
        return layers, (), False
    if task == "regression":
        if last.n_out != 1 or class_labels is not None:
            raise UnsupportedModelError(f"a regression network has one output unit and no class "
                                        f"labels; this one ends in {last.n_out} units")
        return layers, (), False
    if task == "binary":
        labels = tuple(class_labels) if class_labels is not None else (0, 1)
        if len(labels) != 2:
            raise UsageError(f"a binary network needs 2 class labels, got {len(labels)}")
        if last.n_out == 1 and last.activation in ("sigmoid", "identity"):
            return layers, labels, last.activation == "identity"
        if last.n_out == 2 and last.activation == "softmax":
            import numpy as np

            weights = np.asarray(last.weights, dtype=np.float64)
            bias = np.asarray(last.bias, dtype=np.float64)
            folded = dense_layer(weights[1:2] - weights[0:1], bias[1:2] - bias[0:1], "sigmoid")
            return layers[:-1] + [folded], labels, False
        raise UnsupportedModelError(
            f"a binary network ends in one sigmoid (or identity: a logit) unit or two softmax "
            f"units; this one ends in {last.n_out} {last.activation} units")
    if task == "multiclass":
        if last.activation != "softmax" or last.n_out < 2:
            raise UnsupportedModelError(
                f"a multiclass network ends in a softmax over the classes; this one ends in "
                f"{last.n_out} {last.activation} units (append nn.Softmax(dim=1))")
        labels = tuple(class_labels) if class_labels is not None else tuple(range(last.n_out))
        if len(labels) != last.n_out:
            raise UsageError(f"{len(labels)} class labels for {last.n_out} output units")
        return layers, labels, False
    raise UsageError(f"unknown task {task!r}: binary, multiclass, regression or embedding")
