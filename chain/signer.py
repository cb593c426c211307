"""A helper process that signs chains of records, so that signing overlaps other work.

An Ed25519 signature costs about 20 µs and each record's signature covers the hash of the
one before (its ``prev_hash``), so the signatures of a batch are made one after another and
cannot be spread over threads within a batch. :class:`SignerProcess` moves them to a child
process (``python -m chain.signer``): while it signs batch *k*, the caller (the transaction
gate, through :class:`chain.pipeline.TxPipeline`) parses and scores batch *k + 1* and commits
batch *k - 1*. The child runs :meth:`chain.records.Record.sign_chain`, so its records are
exactly those the log would make itself.

Protocol, on the child's stdin and stdout: frames of a 4-byte big-endian length and a
MessagePack value. The first frame to the child is the 32-byte seed of the signing key (a
pipe, never the command line or the environment). Then each request is
``[kind, start, time, drafts]`` -- ``start`` is ``[index, prev_hash]`` to begin a chain there,
or nil to continue after the last record signed; ``drafts`` is a list of ``[subject, name,
description, reason]`` -- and each answer ``["ok", [[signature, body, record_hash], ...]]`` or
``["error", message]`` (a draft the records refuse; the chain then does not move). The child
reads requests on a thread of its own, so a caller writing its next request never waits for
the child to finish writing an answer (no deadlock on full pipes), and it ignores SIGINT,
SIGTERM and SIGHUP: the caller decides when to stop and closes the pipe; end of input (also
when the caller was killed) ends the child.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from queue import Queue

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

import msgpack

from chain.records import Record, RecordError
from pyastore import keys
from pyastore.errors import LogError

_LENGTH = struct.Struct(">I")
MAX_FRAME = 64 << 20


def _read_exactly(fd: int, size: int) -> bytes | None:
    """``size`` bytes from ``fd``; None at end of input before the first byte."""
    parts: list[bytes] = []
    wanted = size
    while wanted:
        part = os.read(fd, min(wanted, 1 << 20))
        if not part:
            if parts:
                raise EOFError(f"the pipe ended inside a frame ({size - wanted} of {size} bytes)")
            return None
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)


def read_frame(fd: int) -> object | None:
    """One frame's value, or None at end of input."""
    head = _read_exactly(fd, _LENGTH.size)
    if head is None:
        return None
    (size,) = _LENGTH.unpack(head)
    if size > MAX_FRAME:
        raise EOFError(f"a frame of {size} bytes is over the limit")
    body = _read_exactly(fd, size)
    if body is None:
        raise EOFError("the pipe ended before a frame's body")
    value: object = msgpack.unpackb(body, raw=False, use_list=True)
    return value


def write_frame(fd: int, value: object) -> None:
    body = msgpack.packb(value, use_bin_type=True)
    data = memoryview(_LENGTH.pack(len(body)) + body)
    while data:
        data = data[os.write(fd, data):]


PIPE_BYTES = 1 << 20


def _widen(fd: int) -> None:
    """Let a pipe hold a whole batch's request or answer (Linux; elsewhere, or when the
    system's limit is lower, the pipe keeps its size and writes wait for the reader)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    try:
        fcntl.fcntl(fd, set_size, PIPE_BYTES)
    except OSError:
        pass


class SignerProcess:
    """The parent's side: start the child, send requests, read answers in order."""

    def __init__(self, signing_key: keys.SigningKey):
        self.public_key_hex = keys.public_key_hex(signing_key.public_key)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "chain.signer"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, bufsize=0, close_fds=True)
        assert self._process.stdin is not None and self._process.stdout is not None
        self._to_child = self._process.stdin.fileno()
        self._from_child = self._process.stdout.fileno()
        for fd in (self._to_child, self._from_child):
            _widen(fd)
        try:
            write_frame(self._to_child, signing_key.seed)
        except OSError as exc:
            self.close()
            raise LogError(f"the signing process did not start: {exc}") from None

    def fileno(self) -> int:
        """The descriptor answers arrive on (for ``poll``)."""
        return self._from_child

    def answer_waiting(self) -> bool:
        """True when (the start of) an answer can be read without waiting."""
        readable, _, _ = select.select([self._from_child], [], [], 0)
        return bool(readable)

    def request(self, kind: str, start: tuple[int, str] | None, time: str,
                drafts: Sequence[tuple[str, str, str, str]]) -> None:
        try:
            write_frame(self._to_child, [kind, None if start is None else list(start), time,
                                         [list(d) for d in drafts]])
        except OSError as exc:
            raise self._stopped(exc) from None

    def answer(self) -> list[tuple[str, bytes, bytes]]:
        """The next answer: ``(signature, body, record_hash)`` per draft of its request.
        A draft the records refuse raises :class:`RecordError`."""
        try:
            value = read_frame(self._from_child)
        except (OSError, EOFError, ValueError) as exc:
            raise self._stopped(exc) from None
        if value is None:
            raise self._stopped(None)
        if not isinstance(value, list) or len(value) != 2:
            raise LogError("the signing process gave an answer that is not one")
        status, payload = value
        if status == "error":
            raise RecordError(str(payload))
        return [(str(s), bytes(b), bytes(h)) for s, b, h in payload]

    def _stopped(self, cause: BaseException | None) -> LogError:
        try:  # its end of the pipe closes a moment before its exit status is there
            code: int | None = self._process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            code = None
        how = "is running but broke the pipe" if code is None else f"exited with code {code}"
        detail = f" ({cause})" if cause is not None else ""
        return LogError(f"the signing process stopped: it {how}{detail}; nothing of the "
                        "unanswered batches was appended by it")

    def close(self) -> None:
        """End the child (end of its input) and wait for it."""
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _serve(read_fd: int, write_fd: int) -> int:
    """The child: sign what is asked, in order, until end of input."""
    seed = read_frame(read_fd)
    if not isinstance(seed, bytes) or len(seed) != 32:
        return 2
    signing_key = keys.SigningKey(seed)
    requests: Queue[object] = Queue()

    def read_requests() -> None:
        try:
            while True:
                value = read_frame(read_fd)
                requests.put(value)
                if value is None:
                    return
        except (OSError, EOFError, ValueError):
            requests.put(None)

    threading.Thread(target=read_requests, daemon=True).start()
    index, prev_hash = 0, ""
    while True:
        request = requests.get()
        if request is None:
            return 0
        if not isinstance(request, list) or len(request) != 4:
            write_frame(write_fd, ["error", "a request that is not one"])
            continue
        kind, start, time, drafts = request
        if start is not None:
            index, prev_hash = int(start[0]), str(start[1])
        try:
            records = Record.sign_chain(
                str(kind), [(str(a), str(b), str(c), str(d)) for a, b, c, d in drafts],
                index=index, prev_hash=prev_hash, time=str(time), signing_key=signing_key)
        except RecordError as exc:
            write_frame(write_fd, ["error", str(exc)])
            continue
        if records:
            index, prev_hash = index + len(records), records[-1].record_hash().hex()
        write_frame(write_fd, ["ok", [[r.signature, r.encode(), r.record_hash()]
                                      for r in records]])


def main() -> int:
    for number in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if number is not None:
            signal.signal(number, signal.SIG_IGN)
    try:
        return _serve(sys.stdin.fileno(), sys.stdout.fileno())
    except (BrokenPipeError, KeyboardInterrupt):
        return 0


if __name__ == "__main__":
    sys.exit(main())
