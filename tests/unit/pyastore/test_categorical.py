"""Categorical inputs: the vocabulary in META, text cells to codes on every input path, the
unseen and missing rules, describe, and the refusal by readers that predate them."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyastore
from pyastore import format as fmt
from pyastore import ir
from pyastore.batch import run as batch_run
from pyastore.cli import main
from pyastore.encoding import MISSING_TOKENS, Categorical, CategoryError, category_text
from pyastore.errors import FormatError, InputError, UnsupportedModelError
from pyastore.keys import SigningKey

ROOT = Path(__file__).resolve().parents[3]
# The last commit whose C core predates the 'categorical' policy: an older reader.
READER_BEFORE_CATEGORICAL = "2d2975c"
MAKES = ("Audi", "BMW", "Honda", "Škoda")
KEY = SigningKey(bytes(range(32)))


def _leaf(value: float) -> tuple[float, ...]:
    return (value,)


def make_spec(categorical: Categorical | None = None) -> ir.ModelSpec:
    """Inputs make (codes 0..3) and amount; the leaf says where a row went: code < 0.5
    (Audi) -> 1; else code < 2.5 (BMW, Honda) -> amount < 100 ? 2 : 3; else (Škoda) -> 4. A NaN
    code (missing, unseen) goes right at both code nodes: 4 (``NAN_LEAF``)."""
    tree = ir.Tree(
        feature=(0, -1, 0, 1, -1, -1, -1),
        threshold=(0.5, 0.0, 2.5, 100.0, 0.0, 0.0, 0.0),
        left=(1, -1, 3, 4, -1, -1, -1),
        right=(2, -1, 6, 5, -1, -1, -1),
        default_left=(False, False, False, False, False, False, False),
        value=((), _leaf(1.0), (), (), _leaf(2.0), _leaf(3.0), _leaf(4.0)),
    )
    forest = ir.Forest(n_features=2, n_outputs=1, leaf_width=1, trees=(tree,), tree_output=(0,))
    categorical = categorical or Categorical(MAKES)
    return ir.ModelSpec(
        name="claims", algorithm=ir.Algorithm("gradient_boosted_trees", "test", "1"),
        inputs=(ir.Variable("make", "categorical", "categorical", categorical=categorical),
                ir.Variable("amount")),
        outputs=(ir.Output("value", "value"),), rules=ir.ScoreRules("regression"),
        forest=forest)


NAN_LEAF = 4.0  # a NaN code goes right at both code nodes


def load(spec: ir.ModelSpec) -> pyastore.Model:
    data = fmt.write(spec, KEY, created="2026-01-01T00:00:00Z")
    return pyastore.load(data, trusted_keys=[KEY.public_key], use_default_trust=False)


@pytest.fixture(scope="module")
def model() -> pyastore.Model:
    return load(make_spec())


def expected(make: object, amount: float) -> float:
    code = {"Audi": 0, "BMW": 1, "Honda": 2, "Škoda": 3}.get(make)  # type: ignore[call-overload]
    if code is None:
        return NAN_LEAF
    if code < 0.5:
        return 1.0
    if code < 2.5:
        return 2.0 if amount < 100 else 3.0
    return 4.0


ROWS = [["Audi", 50], ["BMW", 50], ["Honda", 500], ["Škoda", 1], [" BMW\t", 99],
        ["Tesla", 1], [None, 1], ["NA", 1], ["", 1]]
WANTED = [1.0, 2.0, 3.0, 4.0, 2.0, NAN_LEAF, NAN_LEAF, NAN_LEAF, NAN_LEAF]


# ---- the value type ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=8).map(category_text)
                .filter(lambda t: t and t not in MISSING_TOKENS), unique=True, max_size=12),
       st.sampled_from(["as_missing", "error", 0]), st.sampled_from(["missing", "error", 0]))
def test_meta_round_trip(categories, missing, unseen):
    if not categories and (missing == 0 or unseen == 0):
        return
    value = Categorical(tuple(categories), missing, unseen)
    assert Categorical.from_meta(value.to_meta()) == value
    for position, text in enumerate(categories):
        assert value.code(text) == position
        assert value.code(f" {text}\n") == position


@pytest.mark.parametrize("categories, missing, unseen, problem", [
    (("a", "a"), "as_missing", "missing", "categories[0] and categories[1] are both 'a'"),
    ((" a",), "as_missing", "missing", "whitespace at an end"),
    (("NA",), "as_missing", "missing", "missing-value word"),
    ((1,), "as_missing", "missing", "is not text"),
    (("a",), "impute", "missing", "missing: 'impute' is not one of as_missing, error"),
    (("a",), "as_missing", 1, "unseen: code 1 is not one of the 1 categories' codes"),
    (("a",), "as_missing", True, "unseen: True is neither"),
])
def test_invalid_vocabularies_are_refused(categories, missing, unseen, problem):
    with pytest.raises(FormatError, match=re.escape(problem)):
        Categorical(categories, missing, unseen)


def test_cells_to_codes():
    value = Categorical(("415", "a", "é"))
    assert value.code("415") == 0 and value.code(415) == 0  # an int by its decimal text
    assert value.code("\u00e9") == 2
    assert math.isnan(value.code("e\u0301"))  # no Unicode normalisation: unseen
    assert math.isnan(value.code("A"))  # case counts
    assert math.isnan(value.code(float("nan"))) and math.isnan(value.code(None))
    for refused in (415.0, True, b"a", 1.5):
        with pytest.raises(CategoryError, match="is not text"):
            value.code(refused)
    np = pytest.importorskip("numpy")
    assert value.code(np.str_("a")) == 1 and value.code(np.int64(415)) == 0
    assert math.isnan(value.code(np.float64("nan")))
    pd = pytest.importorskip("pandas")
    assert math.isnan(value.code(pd.NA))


def test_rules():
    strict = Categorical(("a", "b"), missing="error", unseen="error")
    with pytest.raises(CategoryError, match="'c' is not one of the 2 known categories"):
        strict.code("c")
    with pytest.raises(CategoryError, match="a missing value, which this input refuses"):
        strict.code(None)
    with pytest.raises(CategoryError, match="'NA' is a missing value"):
        strict.code("NA")
    counted = Categorical(("a", "b"), missing="error", unseen="missing")
    with pytest.raises(CategoryError, match="unseen categories count as missing"):
        counted.code("c")
    coded = Categorical(("a", "b"), missing=1, unseen=0)
    assert coded.code("c") == 0 and coded.code(None) == 1 and coded.code("") == 1


# ---- the container -------------------------------------------------------------------------


def test_meta_holds_the_vocabulary_and_stays_format_1_0(model):
    entry = model.meta["inputs"][0]
    assert entry["type"] == entry["missing"] == "categorical"
    assert entry["categorical"] == {"categories": list(MAKES), "missing": "as_missing",
                                    "unseen": "missing"}
    assert "categorical" not in model.meta["inputs"][1]
    assert model.format_version == (1, 0)
    assert model.categorical == (Categorical(MAKES), None)
    data = fmt.write(make_spec(), KEY, created="2026-01-01T00:00:00Z")
    assert data == fmt.write(make_spec(), KEY, created="2026-01-01T00:00:00Z")


@pytest.mark.parametrize("variable", [
    ir.Variable("make", "categorical", "as_missing", categorical=Categorical(("a",))),
    ir.Variable("make", "float", "categorical"),
    ir.Variable("make", "categorical", "categorical"),
])
def test_writer_refuses_half_categorical_inputs(variable):
    spec = make_spec()
    spec = ir.ModelSpec(**{**spec.__dict__, "inputs": (variable, spec.inputs[1])})
    with pytest.raises(UnsupportedModelError, match="a categorical input has type and missing"):
        fmt.write(spec, KEY)


def _with_meta(meta: dict) -> bytes:
    """A signed container of the test forest with this META (canonical msgpack)."""
    sections = [(b"META", fmt.encode_meta(meta), True),
                (b"FRST", fmt.encode_forest(make_spec().forest), True)]
    return fmt.assemble(sections, KEY)


@pytest.mark.parametrize("change, problem", [
    (lambda e: e.pop("categorical"), "has only some"),
    (lambda e: e.update(type="float"), "has only some"),
    (lambda e: e["categorical"].update(categories=["a", "a"]), r"\[1\] are both 'a'"),
    (lambda e: e["categorical"].update(unseen=7), "code 7"),
    (lambda e: e.update(categorical=["a"]), "must be a map"),
])
def test_reader_refuses_malformed_categorical_meta(change, problem):
    meta = fmt.meta_dict(make_spec(), "2026-01-01T00:00:00Z")
    change(meta["inputs"][0])
    with pytest.raises(FormatError, match=problem):
        pyastore.load(_with_meta(meta), trusted_keys=[KEY.public_key], use_default_trust=False)


def _older_library(tmp_path_factory) -> Path:
    if shutil.which("cc") is None or shutil.which("git") is None:
        pytest.skip("needs cc and git")
    listing = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e",
                              f"{READER_BEFORE_CATEGORICAL}^{{commit}}"], capture_output=True)
    if listing.returncode != 0:
        pytest.skip(f"commit {READER_BEFORE_CATEGORICAL} is not in this clone")
    folder = tmp_path_factory.mktemp("older-reader")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", READER_BEFORE_CATEGORICAL,
                              "csrc"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    subprocess.run(["make", "-s", "-C", str(folder / "csrc"), "build/libastore.so"],
                   check=True, capture_output=True)
    return folder / "csrc" / "build" / "libastore.so"


def test_a_reader_that_predates_categorical_inputs_refuses_them(tmp_path, tmp_path_factory):
    """The C core as it was before the 'categorical' policy, loaded through the cffi backend
    (what a device with that pyastore runs): it refuses the container as malformed, instead
    of scoring text it cannot read or codes it cannot know (exit 3 from the CLI)."""
    pytest.importorskip("cffi")
    library = _older_library(tmp_path_factory)
    container = tmp_path / "claims.astore"
    container.write_bytes(fmt.write(make_spec(), KEY, created="2026-01-01T00:00:00Z"))
    numeric = tmp_path / "numeric.astore"
    spec = make_spec()
    numeric.write_bytes(fmt.write(
        ir.ModelSpec(**{**spec.__dict__, "inputs": (ir.Variable("make"), spec.inputs[1])}),
        KEY, created="2026-01-01T00:00:00Z"))
    program = (
        "import sys, pyastore\n"
        "from pyastore.errors import FormatError\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        pyastore.load(path, allow_untrusted=True, use_default_trust=False)\n"
        "        print(path, 'loaded')\n"
        "    except FormatError as exc:\n"
        "        print(path, 'refused', exc)\n")
    env = {**os.environ, "PYASTORE_BACKEND": "cffi", "PYASTORE_LIBASTORE": str(library)}
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", program, str(numeric),
                             str(container)], capture_output=True, text=True, env=env,
                            check=True)
    lines = result.stdout.splitlines()
    assert lines[0] == f"{numeric} loaded"
    assert lines[1].startswith(f"{container} refused")
    assert "inputs[0] ('make') has no missing-value policy 'as_missing', 'impute' or 'error'" \
        in lines[1]
    env["PYASTORE_LIBASTORE"] = str(library)
    cli = subprocess.run([sys.executable, "-W", "ignore", "-m", "pyastore", "describe",
                          str(container)], capture_output=True, text=True, env=env)
    assert cli.returncode == 3 and "no missing-value policy" in cli.stderr


# ---- every input path ------------------------------------------------------------------------


def test_lists_dicts_and_single_events(model):
    assert [row[0] for row in model.score(ROWS)] == WANTED
    for row, wanted in zip(ROWS, WANTED):
        assert model.score_one(row) == [wanted]
        assert model.score({"amount": row[1], "make": row[0]}) == {"value": wanted}
    assert model.score_one([3, 1]) == [NAN_LEAF]  # 3 is the text '3': unseen
    with pytest.raises(InputError, match="input 'make': 1.5 is not text"):
        model.score_one([1.5, 1])
    with pytest.raises(InputError, match="row 2, column 'make': 2.0 is not text") as caught:
        model.score([["Audi", 1], [2.0, 1]])
    assert caught.value.row == 1 and caught.value.column == 0
    with pytest.raises(InputError, match="row 1, column 'amount': 'BMW' is not a number"):
        model.score([["Audi", "BMW"]])


def test_numpy_object_arrays_and_refused_numeric_arrays(model):
    np = pytest.importorskip("numpy")
    scores = model.score(np.array(ROWS, dtype=object))
    assert scores[:, 0].tolist() == WANTED
    with pytest.raises(InputError, match="'make' are categorical"):
        model.score(np.zeros((2, 2)))
    codes = np.array([[0, 50], [1, 50], [np.nan, 1]], dtype=np.float32)
    out = np.empty((3, 1))
    model.score_into(codes, out)  # the codes themselves: the low-level entry
    assert out[:, 0].tolist() == [1.0, 2.0, NAN_LEAF]


def test_dataframes_object_category_and_integer_columns(model):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"amount": [r[1] for r in ROWS], "make": [r[0] for r in ROWS]})
    assert model.score(frame)[:, 0].tolist() == WANTED
    frame["make"] = frame["make"].astype("category")
    assert model.score(frame)[:, 0].tolist() == WANTED
    frame["make"] = frame["make"].astype("string")
    assert model.score(frame)[:, 0].tolist() == WANTED
    strict = load(make_spec(Categorical(MAKES, unseen="error")))
    frame["make"] = frame["make"].astype("category")
    with pytest.raises(InputError, match="row 6, column 'make': 'Tesla' is not one of the 4"):
        strict.score(frame)
    ints = load(make_spec(Categorical(("415", "510"))))
    scores = ints.score(pd.DataFrame({"make": [415, 510, 999], "amount": [1, 1, 1]}))
    assert scores[:, 0].tolist() == [1.0, 2.0, NAN_LEAF]
    with pytest.raises(InputError, match="row 1, column 'make': 415.5 is not text"):
        ints.score(pd.DataFrame({"make": [415.5], "amount": [1]}))


def test_missing_and_unseen_rules_on_the_device():
    refusing = load(make_spec(Categorical(MAKES, missing="error", unseen="missing")))
    assert refusing.score_one(["BMW", 1]) == [2.0]
    with pytest.raises(InputError, match="'Tesla' is not one of the 4 known categories "
                                         r"\(unseen categories count as missing"):
        refusing.score_one(["Tesla", 1])
    with pytest.raises(InputError, match="row 1, column 'make': a missing value"):
        refusing.score([[None, 1]])
    bucket = load(make_spec(Categorical(MAKES, missing=0, unseen=3)))
    assert bucket.score([["Tesla", 1], [None, 1], ["NA", 500]]) == [[4.0], [1.0], [1.0]]


# ---- pyastore score: CSV, NDJSON, Parquet ----------------------------------------------------


CSV_ROWS = [["id", "make", "amount"]] + [[str(i), "" if r[0] is None else r[0], str(r[1])]
                                          for i, r in enumerate(ROWS)]


def _scores(path: Path) -> list[float]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".ndjson":
        return [json.loads(line)["value"] for line in lines]
    return [float(line.split(",")[1]) for line in lines[1:]]


@pytest.fixture()
def container(tmp_path, model) -> Path:
    path = tmp_path / "claims.astore"
    path.write_bytes(model.container_bytes)
    (tmp_path / "k.pub").write_text(f"ed25519-public:{KEY.public_key.hex()}\n")
    return path


def _score(container: Path, source: Path, output: Path, *extra: str) -> int:
    return main(["score", str(container), str(source), "-o", str(output), "--keep", "id",
                 "--trust", str(container.parent / "k.pub"), *extra])


def test_csv_and_ndjson(container, tmp_path):
    source = tmp_path / "claims.csv"
    source.write_text("\n".join(",".join(f'"{c}"' if " " in c else c for c in row)
                                for row in CSV_ROWS) + "\n", encoding="utf-8")
    assert _score(container, source, tmp_path / "out.csv") == 0
    assert _scores(tmp_path / "out.csv") == WANTED
    events = tmp_path / "claims.ndjson"
    events.write_text("".join(json.dumps({"id": i, "make": r[0], "amount": r[1]}) + "\n"
                              for i, r in enumerate(ROWS)), encoding="utf-8")
    assert _score(container, events, tmp_path / "out.ndjson") == 0
    assert _scores(tmp_path / "out.ndjson") == WANTED


def test_numbers_and_text_in_the_wrong_inputs_are_bad_rows(container, tmp_path, capsys):
    events = tmp_path / "bad.ndjson"
    events.write_text('{"id": 1, "make": 2.5, "amount": 1}\n'
                      '{"id": 2, "make": "BMW", "amount": "BMW"}\n'
                      '{"id": 3, "make": "BMW", "amount": 1}\n', encoding="utf-8")
    assert _score(container, events, tmp_path / "out.ndjson", "--on-error", "null") == 0
    err = capsys.readouterr().err
    assert "bad row 1: row 1, column 'make': 2.5 is not text" in err
    assert "bad row 2: row 2, column 'amount': 'BMW' is not a number" in err
    assert _score(container, events, tmp_path / "out2.ndjson") == 5


@pytest.mark.parametrize("kind", ["string", "large_string", "dictionary", "mixed chunks"])
def test_parquet_text_and_dictionary_columns(container, tmp_path, kind, model):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    makes = [r[0] for r in ROWS]
    if kind == "dictionary":
        column = pa.array(makes, type=pa.string()).dictionary_encode()
    else:
        column = pa.array(makes, type=pa.large_string() if kind == "large_string"
                          else pa.string())
    table = pa.table({"id": list(range(len(ROWS))), "make": column,
                      "amount": [float(r[1]) for r in ROWS]})
    source = tmp_path / "claims.parquet"
    pq.write_table(table, source, row_group_size=4 if kind == "mixed chunks" else None)
    assert _score(container, source, tmp_path / "out.csv", "--chunk-rows", "3") == 0
    assert _scores(tmp_path / "out.csv") == WANTED


def test_parquet_refused_cells_are_named(container, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    strict = load(make_spec(Categorical(MAKES, unseen="error")))
    source = tmp_path / "claims.parquet"
    pq.write_table(pa.table({"make": pa.array(["BMW", "Tesla"]).dictionary_encode(),
                             "amount": [1.0, 2.0]}), source)
    with pytest.raises(InputError, match="row 2, column 'make': 'Tesla' is not one of"):
        batch_run(strict, str(source), str(tmp_path / "out.csv"))


# ---- describe --------------------------------------------------------------------------------


def test_describe_text_and_json(container, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["describe", str(container)]) == 0
        text = capsys.readouterr().out
        assert main(["describe", str(container), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
    line = next(line for line in text.splitlines() if " make " in line)
    assert line.split() == ["0", "make", "categorical", "categorical", "4", "(missing:",
                            "as_missing,", "unseen:", "missing)"]
    assert info["inputs"][0] == {"name": "make", "type": "categorical",
                                 "missing": "categorical", "categories": 4,
                                 "on_missing": "as_missing", "unseen": "missing"}
    assert info["inputs"][1] == {"name": "amount", "type": "float", "missing": "as_missing"}
    assert info["meta"]["inputs"][0]["categorical"]["categories"] == list(MAKES)


def test_meta_is_canonical_msgpack(model):
    raw = model._container.section("META")
    value = msgpack.unpackb(raw, raw=False)
    assert fmt.encode_meta(value) == bytes(raw)
