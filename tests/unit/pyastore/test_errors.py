"""The one status table: every astore_status, by name, to its exception and exit code.

Written out by hand here, independently of ``pyastore.errors.STATUS_ERRORS``, so that moving
an entry of the table (or of the C name table) to another status fails this test.
"""

from __future__ import annotations

import pytest

from pyastore import _core, errors

EXPECTED = {
    "ASTORE_ERR_ARGUMENT": (errors.InternalError, 1),
    "ASTORE_ERR_TRUNCATED": (errors.FormatError, 3),
    "ASTORE_ERR_FORMAT": (errors.FormatError, 3),
    "ASTORE_ERR_VERSION": (errors.UnsupportedVersionError, 3),
    "ASTORE_ERR_INTEGRITY": (errors.IntegrityError, 4),
    "ASTORE_ERR_UNSUPPORTED": (errors.UnsupportedModelError, 6),
    "ASTORE_ERR_NOMEM": (errors.OutOfMemoryError, 1),
    "ASTORE_ERR_INPUT": (errors.InputError, 5),
}


def test_the_c_core_names_every_status_in_enum_order():
    assert _core.STATUS_NAMES == ("ASTORE_OK", *EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_status_name_to_exception_to_exit_code(name):
    cls, exit_code = EXPECTED[name]
    assert errors.STATUS_ERRORS[name] is cls
    exc = errors.error_from_status(name, "what went wrong", offset=12, row=None, column=None)
    assert type(exc) is cls
    assert exc.exit_code == exit_code
    assert str(exc) == "what went wrong (at byte 12)"


def test_the_table_has_exactly_the_failure_statuses():
    assert set(errors.STATUS_ERRORS) == set(EXPECTED)


def test_input_errors_carry_row_and_column():
    exc = errors.error_from_status("ASTORE_ERR_INPUT", "column 'x': missing value", row=4,
                                   column=2)
    assert isinstance(exc, errors.InputError)
    assert (exc.row, exc.column, exc.offset) == (4, 2, None)


def test_an_unknown_status_is_an_internal_error():
    exc = errors.error_from_status("ASTORE_ERR_FROM_THE_FUTURE", "something")
    assert type(exc) is errors.InternalError
    assert "ASTORE_ERR_FROM_THE_FUTURE" in str(exc)


def test_exit_codes_of_the_other_errors():
    assert errors.UsageError.exit_code == errors.KeyFileError.exit_code == 2
    assert errors.SignatureError.exit_code == errors.UntrustedSignerError.exit_code == 4
    assert errors.LogError.exit_code == 7
    assert errors.PeerTimeoutError.exit_code == errors.EXIT_TIMEOUT == 8
    assert errors.EXIT_INTERRUPTED == 130
