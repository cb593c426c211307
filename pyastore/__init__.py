"""pyastore: signed, content-addressed model containers and a fast C inference core.

    import pyastore
    model = pyastore.load("fraud.astore", trusted_keys=["publisher.pub"])
    model.store_key                 # SHA-256 of the container, 64 lowercase hex
    model.describe()                # metadata, inputs, outputs, signature status
    model.score(rows)               # numpy array, DataFrame (by column name), list of rows
    model.score_one([0.1, 2.0, ...])  # one event, the low-overhead path
    model.predict(rows)             # labels with the model's cutoff

Writing containers (``pyastore.format.write``) and exporting models (``trainer.export``)
happen on the server. See docs/FORMAT.md for the byte layout.
"""

from pyastore.errors import (
    FormatError,
    InputError,
    IntegrityError,
    KeyFileError,
    LogError,
    PyastoreError,
    SignatureError,
    UnsupportedModelError,
    UnsupportedVersionError,
    UntrustedSignerError,
    UsageError,
)
from pyastore.model import Model, SecurityWarning, load

__version__ = "0.1.0"

__all__ = [
    "FormatError",
    "InputError",
    "IntegrityError",
    "KeyFileError",
    "LogError",
    "Model",
    "PyastoreError",
    "SecurityWarning",
    "SignatureError",
    "UnsupportedModelError",
    "UnsupportedVersionError",
    "UntrustedSignerError",
    "UsageError",
    "load",
    "__version__",
]
