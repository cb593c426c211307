"""Micro-batches of lines from a file descriptor, for the gate and streaming scoring.

:class:`MicroBatcher` reads a byte stream (a pipe, a socket, stdin, a file) and yields lists
of lines. A batch is handed over as soon as it holds ``max_batch`` lines, or when
``max_delay_ms`` have passed since its first line was read, whichever comes first: the
descriptor is watched with ``poll`` (``select`` where there is no ``poll``), so a quiet stream
still flushes its last lines on time instead of waiting for more input. At end of input the
rest is handed over; a last line without its newline counts as a line.

Lines are delimited by ``\\n`` (a ``\\r`` before it is dropped); blank lines are skipped.
Memory is constant on endless input: at most ``max_batch`` lines are held, plus one read
(64 KiB) and one line of at most ``max_line_bytes``. A longer line is not held: it is handed
over as a :class:`Line` with ``data`` empty, ``overlong`` set to its length and ``digest`` the
SHA-256 of all its bytes, so the caller can reject it by content without having stored it.

Shutdown: with ``wakeup_fd`` (the read end of the pipe a :class:`ShutdownSignals` writes to
when SIGTERM, SIGINT or SIGHUP arrives), the batcher stops reading at the signal and hands over
every complete line already read; a partial line (bytes after the last newline) is not a
line, and ``partial_bytes`` says how many such bytes were dropped.

Work done beside the reading: a caller may set ``ready_fd`` (e.g. the pipe a helper process
answers on); whenever it is readable the batcher yields an empty batch at once, even in the
middle of a batch's delay, so the caller can finish that work before reading on. Without
``ready_fd`` no batch is ever empty.

:func:`score_stream` is ``pyastore score --stream``: each micro-batch is scored in one call
(:class:`pyastore.batch.BatchScorer`) and its output lines written and flushed before the
next batch is read.
"""

from __future__ import annotations

import hashlib
import os
import select
import signal
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the device ~3 ms
if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType
    from typing import Any

    from pyastore.batch import BatchScorer

READ_SIZE = 65536
DEFAULT_MAX_LINE_BYTES = 1 << 20


class Line:
    """One input line without its terminator. ``number`` is its line number in the input,
    from 1, blank lines counted (as an editor numbers them); ``read_ns`` is ``time.monotonic_ns()``
    when its last byte was read. An over-long line has ``data == b""``, ``overlong`` its
    length in bytes and ``digest`` the SHA-256 of its bytes. (A class with slots, not a
    dataclass: the gate makes one per transaction.)"""

    __slots__ = ("number", "data", "read_ns", "overlong", "digest")

    def __init__(self, number: int, data: bytes, read_ns: int, overlong: int = 0,
                 digest: bytes | None = None) -> None:
        self.number = number
        self.data = data
        self.read_ns = read_ns
        self.overlong = overlong
        self.digest = digest

    def __repr__(self) -> str:
        return (f"Line(number={self.number}, data={self.data!r}, read_ns={self.read_ns}, "
                f"overlong={self.overlong}, digest={self.digest!r})")


class ShutdownSignals:
    """SIGTERM, SIGINT and SIGHUP handlers that only note the signal and wake a poll: use as
    a context manager in the main thread; ``fd`` is the descriptor to watch, ``received`` the
    first signal that arrived (or None). The previous handlers are restored on exit, so
    outside the loop a signal does what the command line makes of it."""

    SIGNALS = tuple(s for s in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None))
                    if s is not None)

    def __init__(self) -> None:
        self.received: int | None = None
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        os.set_blocking(self._read_fd, False)
        self._previous: dict[int, object] = {}
        self._previous_wakeup = -1

    @property
    def fd(self) -> int:
        return self._read_fd

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = number

    def __enter__(self) -> ShutdownSignals:
        for number in self.SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.set_wakeup_fd(self._previous_wakeup)
        for number, handler in self._previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        os.close(self._read_fd)
        os.close(self._write_fd)


class MicroBatcher:
    """Batches of :class:`Line` from ``fd``; see the module docstring."""

    def __init__(self, fd: int, *, max_batch: int, max_delay_ms: float,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                 wakeup_fd: int | None = None, stop: ShutdownSignals | None = None):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if not max_delay_ms >= 0:
            raise ValueError("max_delay_ms must be >= 0")
        self.fd = fd
        self.max_batch = max_batch
        self.max_delay_ns = int(max_delay_ms * 1_000_000)
        self.max_line_bytes = max_line_bytes
        self.stop = stop
        self.wakeup_fd = wakeup_fd if wakeup_fd is not None else (
            stop.fd if stop is not None else None)
        self.lines_read = 0
        self.partial_bytes = 0
        self.stopped = False  # by a signal, not by end of input
        self.ready_fd: int | None = None  # readable: yield an empty batch (module docstring)
        self._number = 0
        self._buffer = bytearray()
        self._overlong: tuple[int, hashlib._Hash] | None = None  # (bytes so far, hasher)

    # -- line splitting ----------------------------------------------------------------------

    def _take_lines(self, chunk: bytes, now_ns: int, pending: list[Line]) -> None:
        if self._overlong is None and len(self._buffer) + len(chunk) <= self.max_line_bytes:
            self._take_short_lines(chunk, now_ns, pending)
            return
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                self._keep(chunk[start:])
                return
            self._keep(chunk[start:end])
            self._end_line(now_ns, pending)
            start = end + 1

    def _take_short_lines(self, chunk: bytes, now_ns: int, pending: list[Line]) -> None:
        """:meth:`_take_lines` when no line can be over-long: the buffer and the chunk
        together are within the limit. The same lines, split in one call."""
        parts = chunk.split(b"\n")
        rest = parts.pop()  # the bytes after the last newline
        if parts:
            if self._buffer:
                parts[0] = bytes(self._buffer) + parts[0]
                self._buffer = bytearray()
            number, before = self._number, len(pending)
            for data in parts:
                number += 1
                if data.endswith(b"\r"):
                    data = data[:-1]
                if data and not data.isspace():  # blank lines are numbered, not handed over
                    pending.append(Line(number, data, now_ns))
            self.lines_read += len(pending) - before
            self._number = number
        if rest:
            self._buffer += rest

    def _keep(self, piece: bytes) -> None:
        if not piece:
            return
        if self._overlong is not None:
            length, hasher = self._overlong
            hasher.update(piece)
            self._overlong = (length + len(piece), hasher)
            return
        self._buffer += piece
        if len(self._buffer) > self.max_line_bytes:
            hasher = hashlib.sha256(self._buffer)
            self._overlong = (len(self._buffer), hasher)
            self._buffer = bytearray()

    def _end_line(self, now_ns: int, pending: list[Line]) -> None:
        self._number += 1
        if self._overlong is not None:
            length, hasher = self._overlong
            self._overlong = None
            if self._buffer:  # cannot happen: bytes go to the hasher while overlong
                hasher.update(self._buffer)
                self._buffer = bytearray()
            self.lines_read += 1
            pending.append(Line(self._number, b"", now_ns, length, hasher.digest()))
            return
        data = bytes(self._buffer)
        self._buffer = bytearray()
        if data.endswith(b"\r"):
            data = data[:-1]
        if not data.strip():
            return
        self.lines_read += 1
        pending.append(Line(self._number, data, now_ns))

    # -- the loop ----------------------------------------------------------------------------

    def _waiter(self) -> _Waiter:
        return _Waiter(self.fd, self.wakeup_fd, self.ready_fd)

    def batches(self) -> Iterator[list[Line]]:
        """Yield batches until end of input or a shutdown signal."""
        waiter = self._waiter()
        pending: list[Line] = []
        first_ns = 0
        eof = False
        while True:
            while len(pending) >= self.max_batch:
                batch, pending = pending[:self.max_batch], pending[self.max_batch:]
                yield batch
                first_ns = pending[0].read_ns if pending else 0
            if eof or self.stopped:
                break
            now = time.monotonic_ns()
            if pending and now - first_ns >= self.max_delay_ns:
                yield pending
                pending = []
                continue
            timeout_ns = None if not pending else first_ns + self.max_delay_ns - now
            data_ready, woken, answered = waiter.wait(timeout_ns)
            if answered:
                yield []
            if woken:
                waiter.drain_wakeup()
                if self.stop is not None and self.stop.received is not None:
                    self.stopped = True
                    continue
            if not data_ready:
                continue
            chunk = os.read(self.fd, READ_SIZE)
            now = time.monotonic_ns()
            if not chunk:
                eof = True
                if self._buffer or self._overlong is not None:
                    self._end_line(now, pending)
                continue
            had = len(pending)
            self._take_lines(chunk, now, pending)
            if not had and pending:
                first_ns = now
        if self.stopped:
            self.partial_bytes = len(self._buffer) + (
                self._overlong[0] if self._overlong is not None else 0)
        while pending:
            batch, pending = pending[:self.max_batch], pending[self.max_batch:]
            yield batch


class _Waiter:
    """Wait until ``fd`` is readable (or at end of input), ``wakeup_fd`` has a byte, or
    ``ready_fd`` is readable."""

    def __init__(self, fd: int, wakeup_fd: int | None, ready_fd: int | None = None):
        self.fd = fd
        self.wakeup_fd = wakeup_fd
        self.ready_fd = ready_fd
        self._watched = [f for f in (fd, wakeup_fd, ready_fd) if f is not None]
        self._poll = select.poll() if hasattr(select, "poll") else None
        if self._poll is not None:
            mask = select.POLLIN | select.POLLPRI
            for watched in self._watched:
                self._poll.register(watched, mask)

    def wait(self, timeout_ns: int | None) -> tuple[bool, bool, bool]:
        """(input readable, woken by a signal, ``ready_fd`` readable)."""
        if self._poll is not None:
            timeout_ms = None if timeout_ns is None else max(0, -(-timeout_ns // 1_000_000))
            events = self._poll.poll(timeout_ms)
            ready = {fd for fd, _ in events}
        else:
            timeout = None if timeout_ns is None else max(0.0, timeout_ns / 1e9)
            readable, _, _ = select.select(self._watched, [], [], timeout)
            ready = set(readable)
        return (self.fd in ready, self.wakeup_fd is not None and self.wakeup_fd in ready,
                self.ready_fd is not None and self.ready_fd in ready)

    def drain_wakeup(self) -> None:
        if self.wakeup_fd is None:
            return
        try:
            while os.read(self.wakeup_fd, 512):
                pass
        except BlockingIOError:
            pass


# -- streaming scoring (``pyastore score --stream``) ------------------------------------------


def _kept(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    import json

    return json.dumps(value)


class LineRows:
    """Lines of NDJSON objects or CSV rows (under a header line) as the rows
    :meth:`pyastore.batch.BatchScorer.score_chunk` takes; a line that cannot be read becomes
    a row with the reader's error (the scorer applies ``--on-error`` to it)."""

    def __init__(self, scorer: BatchScorer, input_format: str, where: str):
        self.scorer = scorer
        self.input_format = input_format
        self.where = where
        self.width = 0
        self.positions: list[int] | None = None
        self.keep_positions: list[int] = []

    def header(self, line: Line) -> None:
        import csv

        from pyastore.errors import InputError

        try:
            names = next(csv.reader([line.data.decode("utf-8-sig")]))
        except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
            raise InputError(f"{self.where}: line {line.number}: not a CSV header ({exc})"
                             ) from None
        names = [name.strip() for name in names]
        self.positions = self.scorer.check_columns(names, self.where)
        self.keep_positions = [names.index(name) for name in self.scorer.keep]
        self.width = len(names)

    def row(self, line: Line) -> tuple[int, list[Any] | None, list[Any], str | None]:
        """One row; numbered as ``pyastore score`` numbers rows (CSV: the header is not
        counted), messages name the input line."""
        where = f"{self.where}: line {line.number}"
        keep = self.scorer.keep
        number = line.number - 1 if self.input_format == "csv" else line.number
        line = Line(number, line.data, line.read_ns, line.overlong, line.digest)
        if line.overlong:
            return (line.number, None, [None] * len(keep),
                    f"{where}: {line.overlong} bytes, over the line limit")
        try:
            text = line.data.decode("utf-8")
        except UnicodeDecodeError:
            return line.number, None, [None] * len(keep), f"{where}: not UTF-8"
        if self.input_format == "csv":
            import csv

            assert self.positions is not None
            try:
                cells = next(csv.reader([text]))
            except (csv.Error, StopIteration) as exc:
                return line.number, None, [None] * len(keep), f"{where}: {exc}"
            kept = [cells[p] if p < len(cells) else "" for p in self.keep_positions]
            if len(cells) != self.width:
                return (line.number, None, kept,
                        f"{where}: {len(cells)} fields, the header has {self.width}")
            return line.number, [cells[p] for p in self.positions], kept, None
        import json

        try:
            event = json.loads(text)
        except (ValueError, RecursionError) as exc:
            return line.number, None, [None] * len(keep), f"{where}: not JSON ({exc})"
        if not isinstance(event, dict):
            return line.number, None, [None] * len(keep), f"{where}: expected a JSON object"
        kept = [_kept(event.get(name)) for name in keep]
        names = self.scorer.model.input_names
        missing = [name for name in (*names, *keep) if name not in event]
        if missing:
            return line.number, None, kept, f"{where}: missing field(s): {', '.join(missing)}"
        return line.number, [event[name] for name in names], kept, None


def score_stream(scorer: BatchScorer, batcher: MicroBatcher, writer: Any, *,
                 input_format: str, where: str) -> None:
    """Score micro-batches as they come: each batch is scored in one call and its output
    lines written and flushed before the next batch is read (``pyastore score --stream``).
    With ``on_error=fail`` the first bad row stops the stream with its InputError; the
    lines already written stay written."""
    rows = LineRows(scorer, input_format, where)
    for lines in batcher.batches():
        if input_format == "csv" and rows.positions is None:
            rows.header(lines[0])
            lines = lines[1:]
            if not lines:
                continue
        chunk = [rows.row(line) for line in lines]
        if scorer.on_error == "fail":
            for row in chunk:
                if row[3] is not None:
                    from pyastore.errors import InputError

                    raise InputError(row[3], row=row[0] - 1)
        out = scorer.score_chunk(chunk)
        writer.write(out, flush=True)
        scorer.report.rows_out += len(out)
