"""The micro-batcher: batch bounds, the delay on a quiet stream, odd lines, constant memory."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import tracemalloc

import pytest

from pyastore.stream import MicroBatcher


def _pipe_with(data: bytes, *, close: bool = True) -> int:
    read_end, write_end = os.pipe()

    def feed() -> None:
        _write_all(write_end, data)
        if close:
            os.close(write_end)

    threading.Thread(target=feed, daemon=True).start()
    return read_end


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def test_batches_are_bounded_by_max_batch():
    fd = _pipe_with(b"".join(b"line %d\n" % n for n in range(1000)))
    batches = list(MicroBatcher(fd, max_batch=64, max_delay_ms=1000).batches())
    assert all(len(b) <= 64 for b in batches)
    lines = [line for batch in batches for line in batch]
    assert [line.data for line in lines] == [b"line %d" % n for n in range(1000)]
    assert [line.number for line in lines] == list(range(1, 1001))
    os.close(fd)


def test_a_quiet_stream_flushes_after_the_delay():
    read_end, write_end = os.pipe()
    batcher = MicroBatcher(read_end, max_batch=512, max_delay_ms=20)
    batches = batcher.batches()
    os.write(write_end, b"one\ntwo\n")
    started = time.monotonic()
    first = next(batches)  # the writer is still open: only the delay can end this batch
    waited = time.monotonic() - started
    assert [line.data for line in first] == [b"one", b"two"]
    assert 0.015 <= waited < 2.0
    os.write(write_end, b"three")  # no newline: a line only at end of input
    os.close(write_end)
    assert [line.data for line in next(batches)] == [b"three"]
    with pytest.raises(StopIteration):
        next(batches)
    os.close(read_end)


def test_crlf_blank_and_overlong_lines():
    long_line = b"x" * 5000
    fd = _pipe_with(b"a\r\n\n  \n" + long_line + b"\nb\n")
    lines = [line for batch in MicroBatcher(fd, max_batch=8, max_delay_ms=5,
                                            max_line_bytes=1000).batches() for line in batch]
    assert [(line.number, line.data, line.overlong) for line in lines] == [
        (1, b"a", 0), (4, b"", 5000), (5, b"b", 0)]
    assert lines[1].digest == hashlib.sha256(long_line).digest()
    os.close(fd)


def _peak_bytes(count: int) -> int:
    line = b'{"id": "tx-000000", "amount": 12.5, "velocity": 3.0, "age_days": 100.0}\n'
    read_end, write_end = os.pipe()

    def feed() -> None:
        block = line * 1000
        for _ in range(count // 1000):
            _write_all(write_end, block)
        os.close(write_end)

    threading.Thread(target=feed, daemon=True).start()
    seen = 0
    tracemalloc.start()
    try:
        for batch in MicroBatcher(read_end, max_batch=512, max_delay_ms=5).batches():
            seen += len(batch)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        os.close(read_end)
    assert seen == count
    return peak


def test_memory_does_not_grow_with_the_stream():
    small, large = _peak_bytes(20_000), _peak_bytes(200_000)
    assert large < 2 * 1024 * 1024, large  # a batch, a read and a line, whatever the length
    assert large < small * 1.5 + 65536, (small, large)


def test_lines_are_the_same_however_the_bytes_arrive():
    # Chunks within the line limit are split in one call, others byte run by byte run: both
    # must give the same lines (numbers, \r dropped, blank lines counted but not handed over,
    # over-long lines by length and digest), wherever the reads cut the input.
    import random

    rng = random.Random(7)
    pieces = [b"a", b"bb", b"", b" ", b"\t", b"\r", b"x" * 40, b"y" * 70, b"{\"id\": 1}"]
    data = b"".join(rng.choice(pieces) + rng.choice([b"\n", b"\r\n", b""])
                    for _ in range(3000))

    def expected_lines() -> list[tuple[int, bytes, int, bytes | None]]:
        result = []
        parts = data.split(b"\n")
        if parts[-1] == b"":
            parts.pop()
        for number, part in enumerate(parts, 1):
            if len(part) > 64:
                result.append((number, b"", len(part), hashlib.sha256(part).digest()))
                continue
            if part.endswith(b"\r"):
                part = part[:-1]
            if part.strip():
                result.append((number, part, 0, None))
        return result

    short_paths = 0
    for run in range(20):
        cuts = sorted(rng.sample(range(1, len(data)), 400 if run % 2 else 12000))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        batcher = MicroBatcher(0, max_batch=100, max_delay_ms=1000, max_line_bytes=64)
        take_short = batcher._take_short_lines
        calls = [0]

        def counted(*args, take_short=take_short, calls=calls):
            calls[0] += 1
            take_short(*args)

        batcher._take_short_lines = counted
        pending: list = []
        for chunk in chunks:  # what batches() does with each read, then at end of input
            batcher._take_lines(chunk, 0, pending)
        if batcher._buffer or batcher._overlong is not None:
            batcher._end_line(0, pending)
        got = [(line.number, line.data, line.overlong, line.digest) for line in pending]
        assert got == expected_lines()
        assert batcher.lines_read == len(got)
        short_paths += calls[0] > 0 and calls[0] < len(chunks)
    assert short_paths > 0  # both ways of splitting were used within one run


def test_a_readable_ready_fd_yields_an_empty_batch_at_once():
    read_end, write_end = os.pipe()
    ready_read, ready_write = os.pipe()
    batcher = MicroBatcher(read_end, max_batch=512, max_delay_ms=60_000)
    batcher.ready_fd = ready_read
    batches = batcher.batches()
    os.write(write_end, b"one\n")
    os.write(ready_write, b"!")  # the helper answered: hand control back at once
    started = time.monotonic()
    assert next(batches) == []
    assert time.monotonic() - started < 30  # not the minute's delay of the pending line
    os.read(ready_read, 1)
    os.close(write_end)
    assert [line.data for line in next(batches)] == [b"one"]  # the line is still there
    with pytest.raises(StopIteration):
        next(batches)
    for fd in (read_end, ready_read, ready_write):
        os.close(fd)


def test_without_a_ready_fd_no_batch_is_empty():
    fd = _pipe_with(b"".join(b"%d\n" % n for n in range(3000)))
    assert all(MicroBatcher(fd, max_batch=7, max_delay_ms=0).batches())
    os.close(fd)
