"""pyastore._cffi_core: libastore through cffi in ABI mode, a drop-in for ``pyastore._core``.

For devices that cannot build (or install) the pybind11 extension: this module opens a
prebuilt ``libastore.so`` with ``ffi.dlopen`` -- no compiler needed, only cffi, which
pyastore's dependency PyNaCl already requires. It offers what ``pyastore/_core.pyi``
declares, with the same behaviour: the classes ``Container`` and ``Model``, the same
properties and methods, the constants ``LIBRARY_VERSION``, ``FORMAT_VERSION`` and
``STATUS_NAMES``, and the same ``pyastore.errors`` exception, message, byte offset, row and
column for every failed call: like ``csrc/bindings.cpp``, it passes the status's C name
(``astore_status_name``) to ``pyastore.errors.error_from_status``, the one status ->
exception table (``tests/cross/test_cffi_backend.py`` checks that both backends give the
same bits and the same errors).

The library is looked for, in order:

1. ``$PYASTORE_LIBASTORE`` (a path), and only there when it is set;
2. ``libastore.so`` next to this file (inside the installed package);
3. ``libastore.so`` on the system library path (``LD_LIBRARY_PATH``, ``ldconfig``), then
   whatever ``ctypes.util.find_library("astore")`` finds (cffi's own fallback).

Importing raises ``ImportError`` when cffi or the library is missing, so a caller can fall
back (or report) cleanly. Calls into the library release the GIL (cffi does so for every
ABI-mode call); containers and models are immutable and safe to share between threads.

Ownership mirrors the C API (``csrc/astore.h``): a ``Container`` keeps its ``bytes`` alive
for as long as the C container borrows them, and a ``Model`` keeps its container open until
the model is closed (the model's finaliser holds a reference to the container's handle).
"""

from __future__ import annotations

import math
import operator
import os
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from pyastore.errors import PyastoreError

try:
    import cffi
except ImportError as exc:  # pragma: no cover - depends on the device
    raise ImportError(f"pyastore._cffi_core needs cffi ({exc})") from None

# The declarations of csrc/astore.h that the binding uses, verbatim in meaning (a test compares
# the struct layouts with a C compiler's and the function list with the header's).
CDEF = """
typedef enum astore_status {
    ASTORE_OK = 0,
    ASTORE_ERR_ARGUMENT = 1,
    ASTORE_ERR_TRUNCATED = 2,
    ASTORE_ERR_FORMAT = 3,
    ASTORE_ERR_VERSION = 4,
    ASTORE_ERR_INTEGRITY = 5,
    ASTORE_ERR_UNSUPPORTED = 6,
    ASTORE_ERR_NOMEM = 7,
    ASTORE_ERR_INPUT = 8
} astore_status;

typedef struct astore_error {
    astore_status status;
    uint64_t offset;
    uint64_t row;
    uint32_t column;
    char message[256];
} astore_error;

typedef struct astore_container astore_container;
typedef struct astore_model astore_model;

typedef struct astore_section_info {
    char type[5];
    uint32_t flags;
    uint64_t offset;
    uint64_t length;
    const uint8_t *data;
} astore_section_info;

const char *astore_status_name(astore_status status);
const char *astore_version(void);
void astore_format_version(uint16_t *major, uint16_t *minor);

astore_status astore_container_open(const uint8_t *data, size_t length, astore_container **out,
                                    astore_error *err);
void astore_container_close(astore_container *container);
void astore_container_version(const astore_container *container, uint16_t *major,
                              uint16_t *minor);
void astore_container_store_key(const astore_container *container, uint8_t key[32]);
void astore_container_signature(const astore_container *container, uint32_t *algorithm,
                                uint8_t public_key[32], uint8_t signature[64]);
size_t astore_container_signed_message(const astore_container *container, uint8_t *buffer,
                                       size_t capacity);
size_t astore_container_section_count(const astore_container *container);
astore_status astore_container_section(const astore_container *container, size_t index,
                                       astore_section_info *info, astore_error *err);
astore_status astore_container_find(const astore_container *container, const char *type,
                                    astore_section_info *info, astore_error *err);

astore_status astore_model_open(const astore_container *container, astore_model **out,
                                astore_error *err);
void astore_model_close(astore_model *model);
size_t astore_model_n_inputs(const astore_model *model);
size_t astore_model_n_outputs(const astore_model *model);
const char *astore_model_tree_walk(const astore_model *model);
size_t astore_model_walk_bytes(const astore_model *model);

typedef enum astore_missing_policy {
    ASTORE_MISSING_AS_MISSING = 0,
    ASTORE_MISSING_IMPUTE = 1,
    ASTORE_MISSING_ERROR = 2
} astore_missing_policy;

typedef struct astore_input_info {
    const char *name;
    size_t name_length;
    astore_missing_policy missing_policy;
    int accepts_missing;
} astore_input_info;

astore_status astore_model_input(const astore_model *model, size_t index,
                                 astore_input_info *info);
astore_status astore_model_check_rows(const astore_model *model, const float *x, size_t n_rows,
                                      size_t n_cols, size_t *first_invalid, astore_error *err);
astore_status astore_model_score(const astore_model *model, const float *x, size_t n_rows,
                                 size_t n_cols, double *out, size_t out_len, unsigned n_threads,
                                 astore_error *err);
"""

ASTORE_STATUS_COUNT = 9
NO_OFFSET = (1 << 64) - 1
NO_ROW = (1 << 64) - 1  # ASTORE_NO_ROW
NO_COLUMN = (1 << 32) - 1  # ASTORE_NO_COLUMN

ffi = cffi.FFI()
ffi.cdef(CDEF)


def _library_candidates() -> list[str]:
    explicit = os.environ.get("PYASTORE_LIBASTORE")
    if explicit:
        return [explicit]
    here = os.path.dirname(os.path.abspath(__file__))
    # a bare name is looked up by dlopen, then by cffi with ctypes.util.find_library
    return [os.path.join(here, "libastore.so"), "libastore.so", "astore"]


def _open_library() -> tuple[Any, str]:
    tried = []
    for candidate in _library_candidates():
        try:
            return ffi.dlopen(candidate), candidate
        except OSError as exc:
            tried.append(f"{candidate}: {str(exc).split('.  ')[0]}")
    raise ImportError("pyastore._cffi_core cannot load libastore (" + "; ".join(tried) +
                      "); set PYASTORE_LIBASTORE to the path of libastore.so")


lib, LIBRARY_PATH = _open_library()
BACKEND = "cffi"

LIBRARY_VERSION: str = ffi.string(lib.astore_version()).decode("ascii")


def _format_version() -> tuple[int, int]:
    major, minor = ffi.new("uint16_t *"), ffi.new("uint16_t *")
    lib.astore_format_version(major, minor)
    return (int(major[0]), int(minor[0]))


FORMAT_VERSION: tuple[int, int] = _format_version()
STATUS_NAMES: tuple[str, ...] = tuple(
    ffi.string(lib.astore_status_name(s)).decode("ascii") for s in range(ASTORE_STATUS_COUNT))


def _error(status: int, message: str, offset: int = NO_OFFSET, row: int = NO_ROW,
           column: int = NO_COLUMN) -> PyastoreError:
    """The pyastore.errors exception for a failed call, exactly as bindings.cpp builds it."""
    from pyastore import errors

    return errors.error_from_status(
        ffi.string(lib.astore_status_name(status)).decode("ascii"), message,
        offset=None if offset == NO_OFFSET else int(offset),
        row=None if row == NO_ROW else int(row),
        column=None if column == NO_COLUMN else int(column))


def _raise(err: Any, row_shift: int = 0) -> NoReturn:
    row = int(err.row)
    raise _error(int(err.status), ffi.string(err.message).decode("utf-8"), int(err.offset),
                 row if row == NO_ROW else row + row_shift, int(err.column))


def _check(status: int, err: Any) -> None:
    if status != lib.ASTORE_OK:
        _raise(err)


class Container:
    """A framed container: header, sections and store key checked. Borrows ``data``."""

    __slots__ = ("_data", "_buffer", "_handle", "__weakref__")

    def __init__(self, data: bytes) -> None:
        if not isinstance(data, bytes):
            raise TypeError("__init__(): incompatible constructor arguments. The following "
                            "argument types are supported:\n    1. Container(data: bytes)\n")
        self._data = data
        self._buffer = ffi.from_buffer(data)  # the bytes object's own storage, not a copy
        out = ffi.new("astore_container **")
        err = ffi.new("astore_error *")
        _check(lib.astore_container_open(ffi.cast("const uint8_t *", self._buffer), len(data),
                                         out, err), err)
        self._handle = ffi.gc(out[0], lib.astore_container_close)

    @property
    def store_key(self) -> str:
        key = ffi.new("uint8_t[32]")
        lib.astore_container_store_key(self._handle, key)
        return bytes(ffi.buffer(key)).hex()

    @property
    def format_version(self) -> tuple[int, int]:
        major, minor = ffi.new("uint16_t *"), ffi.new("uint16_t *")
        lib.astore_container_version(self._handle, major, minor)
        return (int(major[0]), int(minor[0]))

    @property
    def signature_algorithm(self) -> int:
        algorithm = ffi.new("uint32_t *")
        lib.astore_container_signature(self._handle, algorithm, ffi.NULL, ffi.NULL)
        return int(algorithm[0])

    @property
    def public_key(self) -> bytes:
        key = ffi.new("uint8_t[32]")
        lib.astore_container_signature(self._handle, ffi.NULL, key, ffi.NULL)
        return bytes(ffi.buffer(key))

    @property
    def signature(self) -> bytes:
        signature = ffi.new("uint8_t[64]")
        lib.astore_container_signature(self._handle, ffi.NULL, ffi.NULL, signature)
        return bytes(ffi.buffer(signature))

    @property
    def signed_message(self) -> bytes:
        length = lib.astore_container_signed_message(self._handle, ffi.NULL, 0)
        message = ffi.new("uint8_t[]", max(length, 1))
        lib.astore_container_signed_message(self._handle, message, length)
        return bytes(ffi.buffer(message, length))

    @property
    def data(self) -> bytes:
        return self._data

    def sections(self) -> list[tuple[str, int, int, int]]:
        result = []
        info = ffi.new("astore_section_info *")
        err = ffi.new("astore_error *")
        for index in range(lib.astore_container_section_count(self._handle)):
            _check(lib.astore_container_section(self._handle, index, info, err), err)
            result.append((ffi.string(info.type).decode("utf-8"), int(info.flags),
                           int(info.offset), int(info.length)))
        return result

    def section(self, type: str) -> bytes | None:  # noqa: A002 - the binding's keyword
        if not isinstance(type, str):
            raise TypeError("section(): incompatible function arguments (type: str)")
        info = ffi.new("astore_section_info *")
        err = ffi.new("astore_error *")
        status = lib.astore_container_find(self._handle, type.encode("utf-8"), info, err)
        if status != lib.ASTORE_OK:
            return None
        return bytes(ffi.buffer(info.data, info.length))


def _as_double(item: Any) -> float:
    """PyFloat_AsDouble's conversion: floats, and objects with __float__ or __index__."""
    if isinstance(item, (str, bytes, bytearray)):
        raise TypeError("must be real number")
    return float(item)


class Model:
    """The scoring payload of a container, validated. Immutable; thread-safe."""

    __slots__ = ("_container", "_handle", "_n_inputs", "_n_outputs", "_input_names",
                 "_accepts_missing", "__weakref__")

    def __init__(self, container: Container) -> None:
        if not isinstance(container, Container):
            raise TypeError("Model(container): container must be a pyastore._cffi_core.Container")
        self._container = container
        out = ffi.new("astore_model **")
        err = ffi.new("astore_error *")
        _check(lib.astore_model_open(container._handle, out, err), err)
        container_handle = container._handle

        def close(model: Any, _container_handle: Any = container_handle) -> None:
            # _container_handle keeps the container open until the model is closed
            lib.astore_model_close(model)

        self._handle = ffi.gc(out[0], close)
        self._n_inputs = int(lib.astore_model_n_inputs(self._handle))
        self._n_outputs = int(lib.astore_model_n_outputs(self._handle))
        names, accepts = [], []
        info = ffi.new("astore_input_info *")
        for index in range(self._n_inputs):
            if lib.astore_model_input(self._handle, index, info) != lib.ASTORE_OK:
                raise RuntimeError("astore_model_input failed for an input in range")
            names.append(ffi.unpack(info.name, info.name_length).decode("utf-8"))
            accepts.append(info.accepts_missing != 0)
        self._input_names = tuple(names)
        self._accepts_missing = tuple(accepts)

    @property
    def n_inputs(self) -> int:
        return self._n_inputs

    @property
    def n_outputs(self) -> int:
        return self._n_outputs

    @property
    def tree_walk(self) -> str | None:
        name = lib.astore_model_tree_walk(self._handle)
        return None if name == ffi.NULL else ffi.string(name).decode("ascii")

    @property
    def walk_bytes(self) -> int:
        return int(lib.astore_model_walk_bytes(self._handle))

    @property
    def input_names(self) -> tuple[str, ...]:
        return self._input_names

    @property
    def accepts_missing(self) -> tuple[bool, ...]:
        return self._accepts_missing

    def score_one(self, row: Any) -> list[float]:
        """One event: a sequence of numbers (None = missing)."""
        if not isinstance(row, (list, tuple)):
            try:
                row = list(row)
            except TypeError:
                raise TypeError("a row must be a sequence of numbers") from None
        if len(row) != self._n_inputs:
            raise _error(lib.ASTORE_ERR_INPUT,
                         f"the row has {len(row)} values, the model takes {self._n_inputs}")
        x = ffi.new("float[]", max(self._n_inputs, 1))
        for i, item in enumerate(row):
            if item is None:
                x[i] = math.nan
                continue
            try:
                x[i] = _as_double(item)  # cffi rounds like C's (float) cast: overflow -> inf
            except Exception:
                shown = repr(item)
                if len(shown) > 80:
                    shown = shown[:77] + "..."
                raise _error(lib.ASTORE_ERR_INPUT,
                             f"column {self.input_names[i]!r}: {shown} is not a number",
                             column=i) from None
        out = ffi.new("double[]", max(self._n_outputs, 1))
        err = ffi.new("astore_error *")
        _check(lib.astore_model_score(self._handle, x, 1, self._n_inputs, out, self._n_outputs,
                                      1, err), err)
        return [out[k] for k in range(self._n_outputs)]

    @staticmethod
    def _check_rows_buffer(x_view: memoryview, method: str) -> None:
        if x_view.itemsize != 4 or x_view.format != "f":
            raise TypeError(f"{method}: x must be a float32 buffer")
        if not x_view.c_contiguous:
            raise TypeError(f"{method}: buffers must be C-contiguous")

    def _rows(self, x_view: memoryview) -> int:
        """Whole rows of n_inputs values in ``x_view``."""
        x_count = x_view.nbytes // 4
        if self._n_inputs == 0 or x_count % self._n_inputs != 0:
            raise _error(lib.ASTORE_ERR_INPUT, f"{x_count} values do not make whole rows of "
                         f"{self._n_inputs} columns")
        return x_count // self._n_inputs

    def score_into(self, x: Any, out: Any, n_threads: int = 1) -> None:
        """Batch: ``x`` a C-contiguous float32 buffer of n_rows * n_inputs values, ``out`` a
        writable C-contiguous float64 buffer of n_rows * n_outputs values."""
        try:
            n_threads = operator.index(n_threads)
            x_view, out_view = memoryview(x), memoryview(out)
        except TypeError:
            raise TypeError("score_into(): incompatible function arguments (x: Buffer, "
                            "out: Buffer, n_threads: int = 1)") from None
        if not 0 <= n_threads <= 0xFFFFFFFF:
            raise TypeError("score_into(): incompatible function arguments (n_threads must be "
                            "an unsigned 32-bit integer)")
        if out_view.readonly:
            raise BufferError("Object is not writable.")
        self._check_rows_buffer(x_view, "score_into")
        if out_view.itemsize != 8 or out_view.format != "d":
            raise TypeError("score_into: out must be a float64 buffer")
        if not out_view.c_contiguous:
            raise TypeError("score_into: buffers must be C-contiguous")
        n_rows = self._rows(x_view)
        out_len = out_view.nbytes // 8
        x_pointer = ffi.from_buffer("float[]", x_view)
        out_pointer = ffi.from_buffer("double[]", out_view, require_writable=True)
        err = ffi.new("astore_error *")
        status = lib.astore_model_score(self._handle, x_pointer, n_rows, self._n_inputs,
                                        out_pointer, out_len, n_threads, err)
        _check(status, err)

    def check_rows(self, x: Any, start: int = 0) -> None:
        """The rows of ``x`` (as for score_into) from ``start`` on, checked against the
        inputs' missing-value policies: raises the InputError of the first refused row (its
        ``row`` indexes ``x``); returns None when every row may be scored."""
        try:
            start = operator.index(start)
            x_view = memoryview(x)
        except TypeError:
            raise TypeError("check_rows(): incompatible function arguments (x: Buffer, "
                            "start: int = 0)") from None
        if start < 0:
            raise TypeError("check_rows(): incompatible function arguments (start must be a "
                            "non-negative integer)")
        self._check_rows_buffer(x_view, "check_rows")
        n_rows = self._rows(x_view)
        if start > n_rows:
            raise ValueError(f"check_rows: start {start} is past the {n_rows} rows")
        x_pointer = ffi.from_buffer("float[]", x_view)
        first_invalid = ffi.new("size_t *")
        err = ffi.new("astore_error *")
        status = lib.astore_model_check_rows(self._handle, x_pointer + start * self._n_inputs,
                                             n_rows - start, self._n_inputs, first_invalid, err)
        if status != lib.ASTORE_OK:
            _raise(err, row_shift=start)
