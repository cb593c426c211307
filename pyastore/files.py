"""Files in and out, with one set of error messages: every path pyastore reads or writes.

* :func:`read_bytes` and :func:`open_text` open a file for reading or raise a
  :class:`~pyastore.errors.UsageError` (or the subclass the caller names, such as
  ``KeyFileError``) that says what is wrong with the path: missing, a directory, not
  readable.
* :func:`atomic_output` writes a file so that it appears whole or not at all: the bytes go
  to a temporary file in the same folder, are flushed to disk (``fsync``) and renamed over
  the target only when the caller's block ends without an exception (or a signal turned
  into one, see :mod:`pyastore.commandline`); otherwise the temporary file is removed and
  the target is left as it was. A target that is a device or a FIFO (``/dev/null``, a named
  pipe) is written to directly: there is no file to replace. :func:`write_atomic` is the
  one-call form for bytes already in memory.
"""

from __future__ import annotations

import contextlib
import os
import stat

from pyastore.errors import UsageError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the device ~3 ms
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import IO, Any


def _open_error(path: str, exc: OSError, what: str, error: type[UsageError]) -> UsageError:
    if isinstance(exc, FileNotFoundError):
        return error(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return error(f"{path}: is a directory, not a {what}")
    if isinstance(exc, PermissionError):
        return error(f"{path}: permission denied")
    return error(f"{path}: cannot read: {exc.strerror}")


def read_bytes(path: str | os.PathLike[str], *, what: str = "file",
               error: type[UsageError] = UsageError, limit: int | None = None) -> bytes:
    """The whole file, or ``error`` naming the path. Only a regular file is read: a FIFO, a
    device such as /dev/zero or a socket is refused before reading (it could block forever or
    never end). With ``limit``, at most ``limit + 1`` bytes are read, so the caller can tell
    a file that is too large without reading it all."""
    name = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO nobody writes must not block; it is refused just below.
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise _open_error(name, exc, what, error) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise error(f"{name}: is a directory, not a {what}")
        raise error(f"{name}: not a regular file (a FIFO, device or socket), so not a {what}")
    with os.fdopen(fd, "rb") as handle:
        try:
            return handle.read() if limit is None else handle.read(limit + 1)
        except OSError as exc:
            raise _open_error(name, exc, what, error) from None


def open_text(path: str | os.PathLike[str], *, what: str = "file",
              encoding: str = "utf-8-sig") -> IO[str]:
    """A text handle for reading (universal newlines off, as csv wants), or a UsageError."""
    name = os.fspath(path)
    try:
        return open(name, encoding=encoding, newline="")
    except OSError as exc:
        raise _open_error(name, exc, what, UsageError) from None


def temporary_path(path: str) -> str:
    """The temporary file :func:`atomic_output` writes before renaming it to ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, binary: bool = False,
                  open_file: bool = True) -> Iterator[tuple[str, IO[Any] | None]]:
    """Yield ``(temporary path, handle)``; on success, fsync and rename it to ``path``.

    With ``open_file=False`` the handle is None and the caller writes the temporary path
    itself (e.g. a Parquet writer that opens its own file); it must have closed it when the
    block ends. Raises :class:`UsageError` when the folder does not exist or is not writable.
    """
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise UsageError(f"{target}: no such directory {folder}")
    try:
        mode: int | None = os.stat(target).st_mode
    except OSError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"{target}: is a directory")
    if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        # A device or a FIFO (/dev/null, a named pipe): write to it as it is -- renaming a
        # file over it would replace the node and its reader would get nothing.
        yield from _write_through(target, binary, open_file)
        return
    temporary = temporary_path(target)
    handle: IO[Any] | None = None
    try:
        if open_file:
            handle = (open(temporary, "wb") if binary
                      else open(temporary, "w", encoding="utf-8", newline=""))
        yield temporary, handle
        if handle is not None:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            handle = None
        else:
            with open(temporary, "rb") as written:
                os.fsync(written.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    finally:
        if handle is not None:
            handle.close()
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def _write_through(target: str, binary: bool, open_file: bool
                   ) -> Iterator[tuple[str, IO[Any] | None]]:
    handle: IO[Any] | None = None
    try:
        if open_file:
            handle = open(target, "wb") if binary else open(target, "w", encoding="utf-8",
                                                               newline="")
        yield target, handle
        if handle is not None:
            handle.flush()
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    finally:
        if handle is not None:
            handle.close()


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (see :func:`atomic_output`)."""
    with atomic_output(path, binary=True) as (_, handle):
        assert handle is not None
        handle.write(data)
