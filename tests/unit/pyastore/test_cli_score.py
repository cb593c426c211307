"""`pyastore score` end to end: formats, name matching, streaming, bad input, no partial output."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

import golden_models
import pyastore
from pyastore.cli import main


@pytest.fixture()
def trust(golden_pub):
    return ["--trust", str(golden_pub)]


@pytest.fixture(scope="module")
def model(golden_path, golden_pub):
    return pyastore.load(golden_path, trusted_keys=[golden_pub])


def write_csv(path, header, rows, bom=False):
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_csv_columns_matched_by_name_with_keep_and_label(
    tmp_path, golden_path, trust, model, capsys
):
    rows = [["tx1", 2.0, 0.0, 0.0, "x"], ["tx2", 0.0, 1.0, 5.0, "y"], ["tx3", 3.0, "", 0.25, "z"]]
    write_csv(tmp_path / "in.csv", ["id", "velocity", "amount", "age_days", "note"], rows, bom=True)
    code = main(
        [
            "score",
            str(golden_path),
            str(tmp_path / "in.csv"),
            "-o",
            str(tmp_path / "out.csv"),
            "--keep",
            "id",
            "--label",
            *trust,
        ]
    )
    assert code == 0
    out = read_csv(tmp_path / "out.csv")
    assert out[0] == ["id", "P_fraud", "label"]
    for (ident, velocity, amount, age, _), line in zip(rows, out[1:]):
        want = model.score_one([None if amount == "" else amount, velocity, age])[0]
        assert line[0] == ident and float(line[1]) == want
        assert line[2] == ("1" if want >= 0.5 else "0")
    assert "scored 3 row(s)" in capsys.readouterr().err


def test_chunking_does_not_change_results(tmp_path, golden_path, trust):
    rows = [[i * 0.37 % 3, (i * 1.3) % 4 - 1, (i * 0.11) % 1] for i in range(1000)]
    write_csv(tmp_path / "in.csv", ["amount", "velocity", "age_days"], rows)
    assert (
        main(
            [
                "score",
                str(golden_path),
                str(tmp_path / "in.csv"),
                "-o",
                str(tmp_path / "a.csv"),
                *trust,
            ]
        )
        == 0
    )
    assert main(["score", str(golden_path), str(tmp_path / "in.csv"), "-o", str(tmp_path / "b.csv"),
                 "--chunk-rows", "7", "--threads", "2", *trust]) == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert len(read_csv(tmp_path / "a.csv")) == 1001


def test_empty_input_gives_header_only(tmp_path, golden_path, trust):
    write_csv(tmp_path / "in.csv", ["amount", "velocity", "age_days"], [])
    assert (
        main(
            [
                "score",
                str(golden_path),
                str(tmp_path / "in.csv"),
                "-o",
                str(tmp_path / "out.csv"),
                *trust,
            ]
        )
        == 0
    )
    assert (tmp_path / "out.csv").read_text() == "P_fraud\n"


def test_totally_empty_file_is_an_input_error(tmp_path, golden_path, trust, capsys):
    (tmp_path / "in.csv").write_text("")
    assert main(["score", str(golden_path), str(tmp_path / "in.csv"), *trust]) == 5
    assert "no header" in capsys.readouterr().err


def test_missing_column_names_it(tmp_path, golden_path, trust, capsys):
    write_csv(tmp_path / "in.csv", ["amount", "age_days"], [[1, 2]])
    assert (
        main(
            [
                "score",
                str(golden_path),
                str(tmp_path / "in.csv"),
                "-o",
                str(tmp_path / "o.csv"),
                *trust,
            ]
        )
        == 5
    )
    err = capsys.readouterr().err
    assert "input column(s) missing: velocity" in err and "no output file was written" in err
    assert not (tmp_path / "o.csv").exists()


def test_non_numeric_cell_fails_without_partial_file(tmp_path, golden_path, trust, capsys):
    rows = [[1, 2, 3]] * 10 + [[1, "oops", 3]]
    write_csv(tmp_path / "in.csv", ["amount", "velocity", "age_days"], rows)
    out = tmp_path / "o.csv"
    assert main(["score", str(golden_path), str(tmp_path / "in.csv"), "-o", str(out),
                 "--chunk-rows", "2", *trust]) == 5
    err = capsys.readouterr().err
    assert "row 11, column 'velocity': 'oops' is not a number" in err
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_on_error_skip_and_null_report_every_bad_row(tmp_path, golden_path, trust, capsys):
    rows = [[1, 2, 3], [1, "bad", 3], [0, 0, 0], [1, 2]]
    write_csv(tmp_path / "in.csv", ["amount", "velocity", "age_days"], rows)
    assert main(["score", str(golden_path), str(tmp_path / "in.csv"), "-o", str(tmp_path / "s.csv"),
                 "--on-error", "skip", *trust]) == 0
    err = capsys.readouterr().err
    assert "bad row 2" in err and "bad row 4" in err and "2 fields, the header has 3" in err
    assert len(read_csv(tmp_path / "s.csv")) == 1 + 2
    assert main(["score", str(golden_path), str(tmp_path / "in.csv"), "-o", str(tmp_path / "n.csv"),
                 "--on-error", "null", "--errors", str(tmp_path / "errors.csv"), *trust]) == 0
    nulls = read_csv(tmp_path / "n.csv")
    assert nulls[2] == [""] and nulls[4] == [""] and len(nulls) == 1 + 4
    errors = read_csv(tmp_path / "errors.csv")
    assert errors[0] == ["row", "error"] and [r[0] for r in errors[1:]] == ["2", "4"]


def test_wrong_field_count_fails(tmp_path, golden_path, trust, capsys):
    write_csv(tmp_path / "in.csv", ["amount", "velocity", "age_days"], [[1, 2, 3], [1, 2]])
    assert main(["score", str(golden_path), str(tmp_path / "in.csv"), *trust]) == 5
    assert "row 2: 2 fields, the header has 3" in capsys.readouterr().err


def test_untrusted_model_is_refused(tmp_path, golden_path, isolated_trust, capsys):
    write_csv(tmp_path / "in.csv", ["amount", "velocity", "age_days"], [[1, 2, 3]])
    assert main(["score", str(golden_path), str(tmp_path / "in.csv")]) == 4


def test_ndjson_streams_one_flushed_line_per_input_line(golden_path, golden_pub, model):
    env = {k: v for k, v in os.environ.items() if k != "PYASTORE_TRUSTED_KEYS"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pyastore",
            "score",
            str(golden_path),
            "-",
            "--input-format",
            "ndjson",
            "--trust",
            str(golden_pub),
            "--keep",
            "id",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for i, row in enumerate(golden_models.GOLDEN_ROWS[:4]):
            event = {"id": i, "amount": row[0], "velocity": row[1], "age_days": row[2]}
            event = {k: (None if isinstance(v, float) and v != v else v) for k, v in event.items()}
            process.stdin.write(json.dumps(event) + "\n")
            process.stdin.flush()
            line = process.stdout.readline()  # blocks until the scorer flushed this event
            record = json.loads(line)
            assert record == {
                "id": i,
                "P_fraud": model.score_one([v if v == v else None for v in row])[0],
            }
    finally:
        process.stdin.close()
        process.wait(timeout=30)
    assert process.returncode == 0


def test_ndjson_bad_lines(tmp_path, golden_path, trust, capsys):
    (tmp_path / "in.ndjson").write_text(
        '{"amount": 1, "velocity": 2, "age_days": 3}\nnot json\n[1]\n{"amount": 1}\n'
    )
    assert main(["score", str(golden_path), str(tmp_path / "in.ndjson"), *trust]) == 5
    assert "line 2: not JSON" in capsys.readouterr().err
    assert (
        main(["score", str(golden_path), str(tmp_path / "in.ndjson"), "--on-error", "skip", *trust])
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1
    assert (
        "line 3: expected a JSON object" in captured.err
        and "missing field(s): velocity" in captured.err
    )


def test_parquet_round_trip(tmp_path, golden_path, trust, model):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = golden_models.GOLDEN_ROWS
    table = pa.table({"id": list(range(len(rows))), "velocity": [r[1] for r in rows],
                      "amount": [r[0] for r in rows], "age_days": [r[2] for r in rows]})
    pq.write_table(table, tmp_path / "in.parquet")
    assert (
        main(
            [
                "score",
                str(golden_path),
                str(tmp_path / "in.parquet"),
                "-o",
                str(tmp_path / "out.parquet"),
                "--keep",
                "id",
                "--chunk-rows",
                "3",
                *trust,
            ]
        )
        == 0
    )
    out = pq.read_table(tmp_path / "out.parquet").to_pydict()
    assert out["id"] == list(range(len(rows)))
    assert out["P_fraud"] == [model.score_one(r)[0] for r in rows]


def test_parquet_without_pyarrow_says_so(tmp_path, golden_path, trust, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    (tmp_path / "in.parquet").write_bytes(b"PAR1")
    assert main(["score", str(golden_path), str(tmp_path / "in.parquet"), *trust]) == 2
    assert "Parquet needs pyarrow" in capsys.readouterr().err


def test_stdin_csv_to_stdout(golden_path, golden_pub, model):
    env = {k: v for k, v in os.environ.items() if k != "PYASTORE_TRUSTED_KEYS"}
    result = subprocess.run(
        [sys.executable, "-m", "pyastore", "score", str(golden_path), "--trust", str(golden_pub)],
        input="amount,velocity,age_days\n0,0,0\ninf,-inf,1\n",
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "P_fraud"
    assert float(lines[1]) == model.score_one([0, 0, 0])[0]
    assert float(lines[2]) == model.score_one([float("inf"), float("-inf"), 1])[0]


def test_input_file_problems(tmp_path, golden_path, trust, capsys):
    assert main(["score", str(golden_path), str(tmp_path / "nope.csv"), *trust]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["score", str(golden_path), str(tmp_path), *trust]) == 2
    assert "is a directory" in capsys.readouterr().err
    write_csv(tmp_path / "in.csv", ["amount", "velocity", "age_days"], [[1, 2, 3]])
    assert (
        main(
            [
                "score",
                str(golden_path),
                str(tmp_path / "in.csv"),
                "-o",
                str(tmp_path / "no" / "o.csv"),
                *trust,
            ]
        )
        == 2
    )
    assert (
        main(["score", str(golden_path), str(tmp_path / "in.csv"), "--chunk-rows", "0", *trust])
        == 2
    )


def nan_scoring_container(tmp_path):
    """A binary MLP whose score is NaN when both inputs are +inf (inf - inf), signed by the
    golden key: a model that cannot score such a row must not decide "negative" for it."""
    from pyastore import format as fmt
    from pyastore.ir import Algorithm, Dense, Mlp, ModelSpec, Output, ScoreRules, Variable

    spec = ModelSpec(
        name="difference", algorithm=Algorithm("mlp", "test", "1"),
        inputs=(Variable("a", missing="error"), Variable("b", missing="error")),
        outputs=(Output("P_fraud", "probability"),),
        rules=ScoreRules("binary", (0, 1), 0.5),
        mlp=Mlp((Dense(((1.0, -1.0),), (0.0,), "sigmoid"),)))
    path = tmp_path / "difference.astore"
    fmt.write_file(path, fmt.write(spec, golden_models.golden_key(), created=golden_models.CREATED))
    return path


@pytest.mark.parametrize("on_error, code", [("fail", 5), ("skip", 0), ("null", 0)])
def test_label_never_decides_a_nan_score(tmp_path, trust, capsys, on_error, code):
    path = nan_scoring_container(tmp_path)
    write_csv(tmp_path / "in.csv", ["id", "a", "b"], [["t1", 2, 1], ["t2", "inf", "inf"]])
    out = tmp_path / "out.csv"
    argv = ["score", str(path), str(tmp_path / "in.csv"), "-o", str(out), "--keep", "id",
            "--label", "--on-error", on_error, *trust]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "row 2: the outputs (nan) include NaN: no decision" in err
    if on_error == "fail":
        assert not out.exists()
        return
    rows = read_csv(out)
    assert rows[1][0] == "t1" and rows[1][2] == "1"
    assert rows[2:] == ([] if on_error == "skip" else [["t2", "", ""]])


def test_numeric_parquet_columns_score_exactly_as_their_text(tmp_path, golden_path, trust):
    """Numeric Parquet batches go to the C core as one float32 matrix; the result is the
    same, bit for bit, as reading the same values cell by cell (a CSV), nulls included."""
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(3)
    amount = [rng.uniform(-1e6, 1e6) for _ in range(3000)]
    velocity = [rng.randrange(-50, 50) for _ in range(3000)]
    age = [None if i % 7 == 0 else rng.gauss(0, 3) for i in range(3000)]
    pq.write_table(pa.table({"amount": amount, "velocity": velocity, "age_days": age}),
                   tmp_path / "in.parquet")
    write_csv(tmp_path / "in.csv", ["amount", "velocity", "age_days"],
              [[repr(a), v, "" if g is None else repr(g)]
               for a, v, g in zip(amount, velocity, age)])
    assert main(["score", str(golden_path), str(tmp_path / "in.parquet"), "-o",
                 str(tmp_path / "p.csv"), "--chunk-rows", "1000", *trust]) == 0
    assert main(["score", str(golden_path), str(tmp_path / "in.csv"), "-o",
                 str(tmp_path / "c.csv"), *trust]) == 0
    assert read_csv(tmp_path / "p.csv") == read_csv(tmp_path / "c.csv")
