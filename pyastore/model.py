"""Loading a container and scoring with it: ``pyastore.load(...) -> Model``.

``load`` goes, in order: read the bytes; frame them and check the store key (C core);
check the signature and the signer's trust (refusing unsigned or untrusted containers unless
the caller allows it); decode META; only then open the scoring payload (C core). Each step
raises its own typed error (``pyastore.errors``).

Scoring accepts 2-D numpy arrays (any float dtype, C or Fortran order), pandas DataFrames
(columns matched by name, any order, extra columns ignored), lists of rows, and a dict for one
event. numpy is only imported when the input is a numpy array or DataFrame, so a device can
score lists without it.
"""

from __future__ import annotations

import math
import os
import warnings
from array import array

from pyastore import keys, trust

# The compiled binding, or the cffi backend over a prebuilt libastore.so on devices that cannot
# build the extension (PYASTORE_BACKEND=cffi forces it, for tests).
if os.environ.get("PYASTORE_BACKEND") == "cffi":
    from pyastore import _cffi_core as _core
else:
    try:
        from pyastore import _core
    except ImportError:
        from pyastore import _cffi_core as _core
from pyastore.errors import (
    FormatError,
    InputError,
    PyastoreError,
    SignatureError,
    UntrustedSignerError,
    UsageError,
)

MAX_CONTAINER_BYTES = 1 << 32


class SecurityWarning(UserWarning):
    """Emitted when a container is loaded without a trusted signature, as explicitly allowed."""


def read_container_bytes(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> tuple[bytes, str]:
    """The bytes of a container given as a path or as bytes, and a name for messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    path = os.fspath(source)
    try:
        size = os.stat(path).st_size
        if size > MAX_CONTAINER_BYTES:
            raise FormatError(f"{path}: {size} bytes is larger than any container (4 GiB limit)")
        with open(path, "rb") as handle:
            return handle.read(), path
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a container") from None
    except PermissionError:
        raise UsageError(f"{path}: permission denied") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None


def _decode_meta(raw: bytes | None, name: str) -> dict[str, Any]:
    import msgpack

    if raw is None:
        raise FormatError(f"{name}: the container has no META section")
    try:
        meta = msgpack.unpackb(raw, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise FormatError(f"{name}: META is not valid msgpack{detail}") from None
    if not isinstance(meta, dict):
        raise FormatError(f"{name}: META is not a map")
    required = {"name": str, "created": str, "algorithm": dict, "inputs": list,
                "outputs": list, "score_rules": dict}
    for key, kind in required.items():
        if not isinstance(meta.get(key), kind):
            raise FormatError(f"{name}: META field {key!r} is missing or not a {kind.__name__}")
    for field in ("inputs", "outputs"):
        for i, variable in enumerate(meta[field]):
            if not isinstance(variable, dict) or not isinstance(variable.get("name"), str):
                raise FormatError(f"{name}: META {field}[{i}] has no name")
    if not isinstance(meta["score_rules"].get("task"), str):
        raise FormatError(f"{name}: META score_rules has no task")
    return meta


class Model:
    """A loaded, verified container ready to score. Immutable and safe to share across threads.

    Attributes: ``store_key`` (64 lowercase hex), ``signer`` (hex public key or None),
    ``signature_status`` (``trusted``, ``untrusted`` or ``unsigned``), ``meta`` (the META
    dict), ``input_names``, ``output_names``, ``format_version``.
    """

    def __init__(self, container: "_core.Container", meta: dict[str, Any], signature_status: str,
                 source: str):
        self._container = container
        self.meta = meta
        self.signature_status = signature_status
        self.source = source
        self.store_key: str = container.store_key
        self.format_version: tuple[int, int] = tuple(container.format_version)
        self.signer: str | None = (
            container.public_key.hex() if container.signature_algorithm else None
        )
        self.input_names: tuple[str, ...] = tuple(v["name"] for v in meta["inputs"])
        self.output_names: tuple[str, ...] = tuple(v["name"] for v in meta["outputs"])
        self._core = _core.Model(container)
        if self._core.n_inputs != len(self.input_names):
            raise FormatError(f"{source}: META lists {len(self.input_names)} inputs, "
                              f"the payload reads {self._core.n_inputs}")
        if self._core.n_outputs != len(self.output_names):
            raise FormatError(f"{source}: META lists {len(self.output_names)} outputs, "
                              f"the payload writes {self._core.n_outputs}")
        self._input_index = {name: i for i, name in enumerate(self.input_names)}
        self._reject_missing = tuple(
            v.get("missing") == "error" for v in meta["inputs"]
        )
        self._reject_columns = tuple(c for c, reject in enumerate(self._reject_missing) if reject)

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def container_bytes(self) -> bytes:
        return self._container.data

    def sections(self) -> list[tuple[str, int, int, int]]:
        """``(type, flags, offset, length)`` of every section, in file order."""
        return [tuple(s) for s in self._container.sections()]

    def describe(self) -> dict[str, Any]:
        """Everything about the container as a JSON-ready dict (``pyastore describe --json``)."""
        return {
            "file": self.source,
            "store_key": self.store_key,
            "format_version": f"{self.format_version[0]}.{self.format_version[1]}",
            "size_bytes": len(self._container.data),
            "signature": {
                "algorithm": "ed25519" if self.signer else "none",
                "signer": self.signer,
                "status": self.signature_status,
            },
            "sections": [
                {"type": t, "critical": bool(flags & 1), "offset": offset, "length": length}
                for t, flags, offset, length in self.sections()
            ],
            "meta": self.meta,
        }

    # ---- scoring ------------------------------------------------------------------------

    def _row_from_mapping(self, event: dict[str, Any]) -> list[Any]:
        missing = [name for name in self.input_names if name not in event]
        if missing:
            raise InputError(f"the event lacks input(s): {', '.join(missing)}")
        return [event[name] for name in self.input_names]

    def score_one(self, row: Sequence[float] | dict[str, Any]) -> list[float]:
        """Score one event (values in input order, or a dict by input name): the fast path."""
        if isinstance(row, dict):
            row = self._row_from_mapping(row)
        if self._reject_columns and len(row) == len(self._reject_missing):
            for c in self._reject_columns:
                value = row[c]
                if value is None or value != value:
                    self._check_missing_list([row], 0)
        return self._core.score_one(row)

    def _check_missing_list(self, rows: Sequence[Sequence[Any]], first_row: int) -> None:
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if self._reject_missing[c] and (value is None or (isinstance(value, float) and math.isnan(value))):
                    raise InputError(f"row {first_row + r}, column {self.input_names[c]!r}: "
                                     "missing value, and this input does not accept missing values")

    def score(self, data: Any, *, n_threads: int = 1) -> Any:
        """Score many rows. Returns a float64 array (numpy/DataFrame input), a list of lists
        (list input) or, for a dict (one event), a dict of output name -> value."""
        if isinstance(data, dict):
            return dict(zip(self.output_names, self.score_one(data)))
        module = type(data).__module__.split(".")[0]
        if module == "pandas":
            return self._score_dataframe(data, n_threads)
        if module == "numpy":
            return self._score_array(data, n_threads)
        return self._score_rows(data, n_threads)

    def predict(self, data: Any, *, n_threads: int = 1) -> list[Any]:
        """Labels: the positive label when its probability >= cutoff (binary), the most
        probable label (multi-class), the value (regression). An embedding has no label."""
        if self.meta["score_rules"]["task"] == "embedding":
            raise UsageError("this model outputs an embedding (a representation), not a "
                             "decision: use score()")
        scores = self.score(data, n_threads=n_threads)
        if isinstance(scores, dict):
            scores = [list(scores.values())]
        rules = self.meta["score_rules"]
        task = rules["task"]
        rows = scores.tolist() if hasattr(scores, "tolist") else scores
        if task == "regression":
            return [row[0] for row in rows]
        labels = rules.get("class_labels") or []
        if task == "binary":
            cutoff = rules.get("cutoff", 0.5)
            negative, positive = (labels + [0, 1])[:2] if len(labels) < 2 else labels[:2]
            return [positive if row[0] >= cutoff else negative for row in rows]
        return [labels[max(range(len(row)), key=row.__getitem__)] if labels else
                max(range(len(row)), key=row.__getitem__) for row in rows]

    def _score_rows(self, rows: Iterable[Sequence[Any]], n_threads: int) -> list[list[float]]:
        n_in = len(self.input_names)
        flat = array("f")
        count = 0
        for r, row in enumerate(rows):
            if isinstance(row, dict):
                row = self._row_from_mapping(row)
            if len(row) != n_in:
                raise InputError(f"row {r} has {len(row)} values, the model takes {n_in}")
            for c, value in enumerate(row):
                if value is None:
                    value = math.nan
                try:
                    flat.append(float(value))
                except (TypeError, ValueError):
                    raise InputError(f"row {r}, column {self.input_names[c]!r}: "
                                     f"{value!r} is not a number") from None
                if self._reject_missing[c] and flat[-1] != flat[-1]:
                    raise InputError(f"row {r}, column {self.input_names[c]!r}: missing value, "
                                     "and this input does not accept missing values")
            count += 1
        n_out = len(self.output_names)
        out = array("d", bytes(8 * n_out * count))
        if count:
            self._core.score_into(flat, out, n_threads)
        return [out[i * n_out:(i + 1) * n_out].tolist() for i in range(count)]

    def _score_array(self, data: Any, n_threads: int):
        import numpy as np

        if data.ndim == 1 and data.shape[0] == len(self.input_names):
            data = data.reshape(1, -1)
        if data.ndim != 2:
            raise InputError(f"expected a 2-D array of rows, got {data.ndim} dimensions")
        if data.shape[1] != len(self.input_names):
            raise InputError(f"rows have {data.shape[1]} columns, the model takes "
                             f"{len(self.input_names)} ({', '.join(self.input_names)})")
        if data.dtype.kind not in "fiub":
            raise InputError(f"array of dtype {data.dtype} is not numeric")
        x = np.ascontiguousarray(data, dtype=np.float32)
        if any(self._reject_missing):
            bad = np.isnan(x[:, list(self._reject_missing)])
            if bad.any():
                r, c = np.argwhere(bad)[0]
                name = [n for n, rej in zip(self.input_names, self._reject_missing) if rej][c]
                raise InputError(f"row {r}, column {name!r}: missing value, and this input "
                                 "does not accept missing values")
        out = np.empty((x.shape[0], len(self.output_names)), dtype=np.float64)
        if x.shape[0]:
            self._core.score_into(x, out, n_threads)
        return out

    def _score_dataframe(self, frame: Any, n_threads: int):
        import numpy as np

        columns = [str(c) for c in frame.columns]
        missing = [name for name in self.input_names if name not in columns]
        if missing:
            raise InputError(f"input column(s) missing: {', '.join(missing)}")
        x = np.empty((len(frame), len(self.input_names)), dtype=np.float32)
        for c, name in enumerate(self.input_names):
            column = frame[name]
            try:
                x[:, c] = column.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):
                values = column.tolist()
                for r, value in enumerate(values):
                    try:
                        float(value)
                    except (TypeError, ValueError):
                        raise InputError(f"row {r}, column {name!r}: {value!r} is not a number") from None
                raise InputError(f"column {name!r} is not numeric") from None
        return self._score_array(x, n_threads)


def load(source: str | os.PathLike[str] | bytes, *, trusted_keys: Iterable[Any] | None = None,
         allow_untrusted: bool = False, allow_unsigned: bool = False,
         use_default_trust: bool = True) -> Model:
    """Load, verify and open a container.

    ``trusted_keys``: public keys to trust (raw bytes, hex, or ``.pub`` paths), added to
    ``PYASTORE_TRUSTED_KEYS`` and the config directory (``pyastore.trust``) unless
    ``use_default_trust=False``. An unsigned container raises ``SignatureError`` unless
    ``allow_unsigned``; a valid signature by an untrusted key raises ``UntrustedSignerError``
    unless ``allow_untrusted``. Either allowance emits a ``SecurityWarning``. An invalid
    signature is always refused.
    """
    data, name = read_container_bytes(source)
    try:
        container = _core.Container(data)
    except PyastoreError as exc:
        exc.message = f"{name}: {exc.message}"
        raise
    algorithm = container.signature_algorithm
    if algorithm == 0:
        if not allow_unsigned:
            raise SignatureError(f"{name}: the container is unsigned (store key "
                                 f"{container.store_key}); refusing it without --allow-unsigned")
        warnings.warn(f"{name}: loading an UNSIGNED container", SecurityWarning, stacklevel=2)
        status = "unsigned"
    else:
        public_key = container.public_key
        if not keys.verify(public_key, container.signed_message, container.signature):
            raise SignatureError(f"{name}: the Ed25519 signature does not verify for signer "
                                 f"{public_key.hex()}: the signature was altered or forged")
        if public_key in trust.resolve(trusted_keys, use_defaults=use_default_trust):
            status = "trusted"
        elif allow_untrusted:
            warnings.warn(f"{name}: signer {public_key.hex()} is NOT trusted", SecurityWarning,
                          stacklevel=2)
            status = "untrusted"
        else:
            raise UntrustedSignerError(
                f"{name}: signed by {public_key.hex()}, which is not a trusted key "
                "(add it with --trust FILE.pub, PYASTORE_TRUSTED_KEYS or the config directory)"
            )
    meta = _decode_meta(container.section("META"), name)
    try:
        return Model(container, meta, status, name)
    except PyastoreError as exc:
        if not exc.message.startswith(name):
            exc.message = f"{name}: {exc.message}"
        raise
