"""Ingest a scikit-learn ``MLPClassifier`` or ``MLPRegressor`` into the pyastore MLP IR.

Layer ``k`` of the network is ``coefs_[k]`` (shaped ``[in][out]``, transposed here to the IR's
``[out][in]``) and ``intercepts_[k]``; hidden layers use the estimator's ``activation``
(``identity``, ``logistic`` -> ``sigmoid``, ``tanh``, ``relu``), the last layer its
``out_activation_``:

* binary classifier: one ``logistic`` unit, the probability of ``classes_[1]`` -- exactly
  the output convention of ``trainer.export`` (``P_<positive>``);
* multiclass classifier: ``softmax`` over one unit per class, in ``classes_`` order;
* regressor: one ``identity`` unit (multi-output regressors and multi-label classifiers are
  refused).

``encoder_layers=k`` exports the first ``k`` layers only (``task="embedding"``), e.g. a
party's hidden representation in vertically partitioned training.

scikit-learn computes in float64 (or float32 when fitted on float32); the container computes
in float32 with float32 weights, so probabilities agree to about 1e-6 on standardized inputs
(the differential tests require 1e-5). scikit-learn refuses NaN input, so the inputs are
exported with ``missing="error"`` (a pipeline's imputer changes that, see
``trainer.export.sklearn_pipeline``).
"""

from __future__ import annotations

from typing import Any

from pyastore.errors import UnsupportedModelError
from pyastore.ir import Algorithm, Mlp, ModelSpec
from trainer.export import ExportOptions, make_spec, require_exact_class
from trainer.export.mlp_common import dense_layer, encoder_cut

SUPPORTED_CLASSES = ("MLPClassifier", "MLPRegressor")

_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                "softmax": "softmax"}


def export(model: Any, options: ExportOptions, *, encoder_layers: int | None = None) -> ModelSpec:
    """Convert a fitted ``MLPClassifier`` / ``MLPRegressor`` to a ``ModelSpec``."""
    import sklearn
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    class_name = require_exact_class(model, "sklearn", SUPPORTED_CLASSES)
    try:
        check_is_fitted(model)
    except NotFittedError as error:
        raise UnsupportedModelError(f"{class_name} is not fitted") from error
    hidden = _activation(model.activation, "activation")
    last = _activation(model.out_activation_, "out_activation_")
    n_layers = len(model.coefs_)
    layers = [dense_layer(weights.T, bias, last if k == n_layers - 1 else hidden)
              for k, (weights, bias) in enumerate(zip(model.coefs_, model.intercepts_))]
    if encoder_layers is not None:
        layers = list(encoder_cut(layers, encoder_layers))
        task, labels = "embedding", ()
    elif class_name == "MLPClassifier":
        labels = tuple(model.classes_)
        if model.out_activation_ == "logistic" and model.n_outputs_ == 1 and len(labels) == 2:
            task = "binary"
        elif model.out_activation_ == "softmax":
            task = "multiclass"
        else:
            raise UnsupportedModelError(
                f"MLPClassifier with {model.n_outputs_} {model.out_activation_} outputs "
                "(multi-label) is not supported: one binary or multiclass target only")
    else:
        if model.n_outputs_ != 1:
            raise UnsupportedModelError(f"MLPRegressor with {model.n_outputs_} outputs is not "
                                        "supported: single-output only")
        task, labels = "regression", ()
    algorithm = Algorithm(family="mlp", library="scikit-learn",
                          library_version=str(sklearn.__version__), estimator=class_name)
    names = getattr(model, "feature_names_in_", None)
    return make_spec(mlp=Mlp(tuple(layers)), task=task, class_labels=labels, algorithm=algorithm,
                     model_feature_names=None if names is None else list(names),
                     missing="error", options=options,
                     training_params=model.get_params(deep=False))


def _activation(name: str, attribute: str) -> str:
    if name not in _ACTIVATIONS:
        raise UnsupportedModelError(f"MLP {attribute} {name!r} is not supported "
                                    f"({', '.join(_ACTIVATIONS)})")
    return _ACTIVATIONS[name]
