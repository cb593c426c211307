"""Column names: ``--target`` and ``--drop`` match header names as the CSV reader keeps them
(``trainer.data``), and a name not found says how names are compared and what is near."""

from __future__ import annotations

import pytest

from pyastore.errors import EXIT_USAGE, InputError, UsageError
from trainer import data

MATCHING = "(header names are compared with surrounding spaces removed)"

SPACED = (b'\xef\xbb\xbf"id", ERC20 most sent token type , "Class" ,amount\n'
          b"1,2,0,3.5\n2,3,1,4.5\n3,4,0,5.5\n")


def test_names_are_matched_as_the_reader_keeps_them(tmp_path):
    path = tmp_path / "spaced.csv"
    path.write_bytes(SPACED)
    dataset = data.load_csv(path, "Class", drop=["ERC20 most sent token type"])
    assert dataset.feature_names == ("id", "amount") and dataset.target == "Class"
    # a name from the command line is normalised the same way: spaces, a BOM, CSV quotes
    for target, drop in [("  Class ", " id\t"), ("\ufeffClass", '"id"'), ('" Class "', "id ")]:
        dataset = data.load_csv(path, target, drop=[drop, "ERC20 most sent token type "])
        assert dataset.feature_names == ("amount",) and dataset.target == "Class"


def test_a_name_not_found_says_how_names_match_and_what_is_near(tmp_path):
    path = tmp_path / "spaced.csv"
    path.write_bytes(SPACED)
    with pytest.raises(UsageError) as caught:
        data.load_csv(path, "Class", drop=["ERC20 most sent token typ"])
    assert str(caught.value) == (
        f"--drop: no column named 'ERC20 most sent token typ' in {path} {MATCHING}; "
        "did you mean 'ERC20 most sent token type'?")
    with pytest.raises(UsageError, match=r"--target: no column named 'class' .*did you mean "
                                         r"'Class'\?$"):
        data.load_csv(path, "class")
    with pytest.raises(UsageError, match=r"did you mean 'amount'\?$"):
        data.load_csv(path, "Class", drop=["amout"])
    two = tmp_path / "two.csv"
    two.write_text("amount_usd,amount_eur,label\n1,2,0\n3,4,1\n")
    with pytest.raises(UsageError, match=r"did you mean 'amount_usd' or 'amount_eur'\?$"):
        data.load_csv(two, "label", drop=["amount"])
    with pytest.raises(UsageError) as caught:
        data.load_csv(path, "label")
    assert str(caught.value).endswith(
        "; the columns are 'id', 'ERC20 most sent token type', 'Class', 'amount'")


def test_two_header_cells_of_one_name_are_refused(tmp_path):
    path = tmp_path / "twice.csv"
    for header in ("a,label,a \n", "a,label,a\n"):  # the second: pandas would say 'a.1'
        path.write_text(header + "1,0,2\n3,1,4\n")
        with pytest.raises(InputError) as caught:
            data.load_csv(path, "label")
        assert str(caught.value) == (f"{path}: header columns 1 and 3 are both named 'a' "
                                     f"{MATCHING}")


def test_an_empty_header_cell_keeps_pandas_name(tmp_path):
    path = tmp_path / "unnamed.csv"
    path.write_text("a, ,label\n1,5,0\n2,6,1\n")
    assert data.load_csv(path, "label", drop=["Unnamed: 1"]).feature_names == ("a",)


def test_cli_a_misspelt_column_is_a_usage_error(tmp_path, capsys):
    from trainer.cli import main

    path = tmp_path / "spaced.csv"
    path.write_bytes(SPACED)
    code = main(["fraud", "--data", str(path), "--target", "Class", "--compare",
                 "--drop", "ERC20 most sent token typ"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err == (f"pyastore-train: error: --drop: no column named 'ERC20 most sent token typ' "
                   f"in {path} {MATCHING}; did you mean 'ERC20 most sent token type'?\n")
    assert main(["fraud", "--compare", "--drop", "hours"]) == EXIT_USAGE  # bundled data too
    assert "did you mean 'hour'?" in capsys.readouterr().err
