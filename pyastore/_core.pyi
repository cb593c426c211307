"""Type stubs of pyastore._core, the pybind11 binding of libastore (csrc/bindings.cpp)."""

from collections.abc import Sequence
from typing import Any

LIBRARY_VERSION: str
FORMAT_VERSION: tuple[int, int]
STATUS_NAMES: tuple[str, ...]

class Container:
    """A framed container: header, sections and store key checked. Borrows ``data``."""

    def __init__(self, data: bytes) -> None: ...
    @property
    def store_key(self) -> str: ...
    @property
    def format_version(self) -> tuple[int, int]: ...
    @property
    def signature_algorithm(self) -> int: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def signature(self) -> bytes: ...
    @property
    def signed_message(self) -> bytes: ...
    @property
    def data(self) -> bytes: ...
    def sections(self) -> list[tuple[str, int, int, int]]: ...
    def section(self, type: str) -> bytes | None: ...

class Model:
    """The scoring payload of a container, validated. Immutable; thread-safe."""

    def __init__(self, container: Container) -> None: ...
    @property
    def n_inputs(self) -> int: ...
    @property
    def n_outputs(self) -> int: ...
    @property
    def input_names(self) -> tuple[str, ...]:
        """META's input names, in row order (checked by the C core against the payload)."""
    @property
    def accepts_missing(self) -> tuple[bool, ...]:
        """Per input: False when its META missing-value policy is ``error``."""
    def score_one(self, row: Sequence[float | None]) -> list[float]: ...
    def score_into(self, x: Any, out: Any, n_threads: int = 1) -> None: ...
    def check_rows(self, x: Any, start: int = 0) -> None:
        """Rows of ``x`` (a float32 buffer, as for score_into) from row ``start`` on, checked
        against the missing-value policies: raises the InputError of the first refused row,
        with ``row`` an index into ``x`` and ``column`` the input; None when all are valid.
        score_into and score_one make the same check and score nothing when it fails."""
