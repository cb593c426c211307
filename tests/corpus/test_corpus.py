"""The container corpus (tests/corpus/generate.py): every case fails as recorded, in Python
and through the CLI; every truncation and every bit flip of the golden container fails."""

from __future__ import annotations

import subprocess
import sys

import pytest

import generate  # tests/corpus/generate.py, beside this file
import pyastore
from conftest import CORPUS_DIR


def manifest_rows():
    rows = []
    for line in (CORPUS_DIR / "manifest.tsv").read_text().splitlines():
        if line.startswith("#"):
            continue
        name, c_container, c_model, error, code = line.split("\t")
        rows.append((name, error, int(code)))
    return rows


def test_committed_corpus_equals_generator_output(tmp_path, update_goldens):
    """With ``--update-goldens`` the committed corpus is rewritten first."""
    if update_goldens:
        generate.generate(CORPUS_DIR)
    fresh = generate.generate(tmp_path)
    committed = sorted(p.name for p in CORPUS_DIR.glob("*.astore"))
    assert committed == sorted(f"{name}.astore" for name in fresh)
    for name, data in fresh.items():
        assert (CORPUS_DIR / f"{name}.astore").read_bytes() == data, name
    assert (tmp_path / "manifest.tsv").read_text() == (CORPUS_DIR / "manifest.tsv").read_text()


def test_corpus_walk_finds_every_case():
    assert len(manifest_rows()) == len(list(CORPUS_DIR.glob("*.astore"))) >= 40


@pytest.mark.parametrize("name, error, code", manifest_rows(), ids=[r[0] for r in manifest_rows()])
def test_corpus_case_in_python(name, error, code, golden_pub, isolated_trust):
    path = CORPUS_DIR / name
    if error == "OK":
        model = pyastore.load(path, trusted_keys=[golden_pub])
        row = [0.0 if c is None else c.categories[0] for c in model.categorical]
        assert model.score_one(row)
        return
    with pytest.raises(pyastore.PyastoreError) as caught:
        pyastore.load(path, trusted_keys=[golden_pub])
    assert type(caught.value).__name__ == error
    assert caught.value.exit_code == code
    assert str(path) in str(caught.value)


def test_corpus_exit_codes_through_the_cli(golden_pub, isolated_trust):
    """One process walks the corpus through cli.main, as `pyastore verify` would."""
    code = (
        "import sys; from pyastore.cli import main\n"
        "for name in sys.argv[2:]:\n"
        "    print(name, main(['verify', name, '--trust', sys.argv[1]]), flush=True)\n"
    )
    rows = manifest_rows()
    result = subprocess.run(
        [sys.executable, "-c", code, str(golden_pub), *[str(CORPUS_DIR / n) for n, _, _ in rows]],
        capture_output=True, text=True)
    assert "Traceback" not in result.stderr
    got = dict(
        line.rsplit(" ", 1)
        for line in result.stdout.splitlines()
        if line.endswith(tuple("01234567"))
    )
    for name, _, expected in rows:
        assert int(got[str(CORPUS_DIR / name)]) == expected, name


def test_every_truncation_fails(golden_path, golden_pub):
    data = golden_path.read_bytes()
    for cut in range(len(data)):
        with pytest.raises(pyastore.FormatError):
            pyastore.load(data[:cut], trusted_keys=[golden_pub])


def test_every_bit_flip_fails(golden_path, golden_pub):
    data = golden_path.read_bytes()
    accepted = []
    for i in range(len(data)):
        for bit in range(8):
            mutated = bytearray(data)
            mutated[i] ^= 1 << bit
            try:
                pyastore.load(bytes(mutated), trusted_keys=[golden_pub])
            except pyastore.PyastoreError:
                continue
            accepted.append((i, bit))
    assert accepted == []
