"""What the MLP exporters (``sklearn_mlp``, ``torch_mlp``) share: dense layers in the IR from
float64 arrays, and the encoder cut (the first ``k`` layers of a network).

The IR stores weights as Python floats; the writer rounds them to float32, the precision the
C core computes in (docs/FORMAT.md, "MLP_"). Exporters hand over float64 values computed
exactly from the library's parameters (float64 in scikit-learn, float32 in torch), so any
folding (batch norm, a two-unit softmax) is rounded once, at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyastore.errors import UnsupportedModelError, UsageError
from pyastore.ir import Dense

__all__ = ["dense_layer", "encoder_cut"]


def dense_layer(weights: Any, bias: Any, activation: str, alpha: float = 0.0) -> Dense:
    """An IR layer from ``weights`` shaped ``[out][in]`` and ``bias`` shaped ``[out]``."""
    import numpy as np

    weights = np.asarray(weights, dtype=np.float64)
    bias = np.asarray(bias, dtype=np.float64)
    if weights.ndim != 2 or bias.shape != (weights.shape[0],):
        raise UnsupportedModelError(f"a dense layer needs [out][in] weights and [out] biases, got "
                                    f"shapes {weights.shape} and {bias.shape}")
    if not (np.isfinite(weights).all() and np.isfinite(bias).all()):
        raise UnsupportedModelError("a weight or bias is NaN or infinite")
    return Dense(weights=tuple(tuple(row) for row in weights.tolist()),
                 bias=tuple(bias.tolist()), activation=activation, alpha=float(alpha))


def encoder_cut(layers: Sequence[Dense], encoder_layers: int | None) -> tuple[Dense, ...]:
    """The first ``encoder_layers`` layers (all when None), each with its own activation."""
    layers = tuple(layers)
    if encoder_layers is None:
        return layers
    if isinstance(encoder_layers, bool) or not isinstance(encoder_layers, int) \
            or not 1 <= encoder_layers <= len(layers):
        raise UsageError(f"encoder_layers must be a layer count from 1 to {len(layers)} "
                         f"(the network's dense layers), got {encoder_layers!r}")
    return layers[:encoder_layers]
