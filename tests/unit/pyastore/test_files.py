"""pyastore.files: one set of messages for unreadable paths, and outputs that appear whole
or not at all."""

from __future__ import annotations

import os

import pytest

from pyastore import files
from pyastore.errors import KeyFileError, UsageError


def test_read_bytes_names_what_is_wrong(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    assert files.read_bytes(tmp_path / "a.bin") == b"abc"
    with pytest.raises(UsageError, match="missing.bin: no such file"):
        files.read_bytes(tmp_path / "missing.bin")
    with pytest.raises(UsageError, match="is a directory, not a container"):
        files.read_bytes(tmp_path, what="container")
    with pytest.raises(KeyFileError):
        files.read_bytes(tmp_path / "missing.key", what="key file", error=KeyFileError)
    assert files.read_bytes(tmp_path / "a.bin", limit=1) == b"ab"  # limit + 1: "too large"


def test_atomic_output_appears_only_on_success(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with files.atomic_output(target) as (temporary, handle):
            handle.write("half a file")
            assert os.path.exists(temporary)
            raise RuntimeError("the scorer failed")
    assert target.read_text() == "old\n"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temporary left
    with files.atomic_output(target) as (_, handle):
        handle.write("new\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_atomic_output_for_writers_that_open_their_own_file(tmp_path):
    target = tmp_path / "out.parquet"
    with files.atomic_output(target, open_file=False) as (temporary, handle):
        assert handle is None
        with open(temporary, "wb") as own:
            own.write(b"PAR1")
    assert target.read_bytes() == b"PAR1"


def test_write_atomic_and_missing_folders(tmp_path):
    files.write_atomic(tmp_path / "k.bin", b"\x00\x01")
    assert (tmp_path / "k.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(UsageError, match="no such directory"):
        files.write_atomic(tmp_path / "nowhere" / "k.bin", b"x")
