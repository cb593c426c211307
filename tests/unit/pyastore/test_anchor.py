"""Device-side anchoring: `pyastore verify --log-key` and `pyastore score --require-anchored`."""

from __future__ import annotations

import shutil

import pytest

from pyastore import keys
from pyastore.cli import main


@pytest.fixture()
def anchored(tmp_path, golden_path):
    """A copy of the golden container, published in a fresh log, with its proof bundle."""
    from chain.log import Log

    log_key, log_pub = keys.keygen(tmp_path / "logkey")
    model = tmp_path / "model.astore"
    shutil.copy(golden_path, model)
    import golden_models
    import pyastore

    store_key = pyastore.load(model, allow_untrusted=True).store_key
    with Log.init(str(tmp_path / "log.db"), str(log_key)) as log:
        log.append_model(store_key, "golden", "", golden_models.golden_key())
        (tmp_path / "model.astore.proof").write_bytes(log.prove(store_key).to_bytes())
    return {"model": model, "log": tmp_path / "log.db", "log_pub": log_pub, "log_key": log_key,
            "store_key": store_key, "tmp": tmp_path}


def test_verify_with_proof(anchored, golden_pub, capsys):
    args = [
        "verify",
        str(anchored["model"]),
        "--trust",
        str(golden_pub),
        "--log-key",
        str(anchored["log_pub"]),
    ]
    assert main(args) == 0
    assert "is anchored in log" in capsys.readouterr().out
    assert main(args + ["--log", str(anchored["log"])]) == 0
    assert "online check" in capsys.readouterr().out


def test_revocation_is_seen_online_not_in_a_stale_offline_proof(anchored, golden_pub, capsys):
    import golden_models
    from chain.log import Log

    with Log.open(str(anchored["log"])) as log:
        log.revoke(anchored["store_key"], "key compromise", golden_models.golden_key())
    args = [
        "verify",
        str(anchored["model"]),
        "--trust",
        str(golden_pub),
        "--log-key",
        str(anchored["log_pub"]),
    ]
    assert main(args) == 0  # the old bundle only speaks for its own tree size
    capsys.readouterr()
    assert main(args + ["--log", str(anchored["log"])]) == 7
    assert "revoked" in capsys.readouterr().out


def test_wrong_log_key_missing_or_foreign_proof(anchored, golden_pub, capsys):
    base = ["verify", str(anchored["model"]), "--trust", str(golden_pub)]
    assert main(base + ["--log-key", str(golden_pub)]) == 7
    assert "not signed by the trusted log key" in capsys.readouterr().out
    assert (
        main(
            base + ["--log-key", str(anchored["log_pub"]), "--proof", str(anchored["tmp"] / "none")]
        )
        == 7
    )
    assert "no proof bundle" in capsys.readouterr().out
    (anchored["tmp"] / "bad.proof").write_bytes(b"{not a bundle")
    assert (
        main(
            base
            + ["--log-key", str(anchored["log_pub"]), "--proof", str(anchored["tmp"] / "bad.proof")]
        )
        == 7
    )
    assert main(base + ["--proof", "x"]) == 2


def test_score_require_anchored(anchored, golden_pub, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_text("amount,velocity,age_days\n0,0,0\n")
    base = ["score", str(anchored["model"]), str(rows), "--trust", str(golden_pub)]
    assert main(base + ["--require-anchored"]) == 2
    assert main(base + ["--require-anchored", "--log-key", str(anchored["log_pub"])]) == 0
    assert "P_fraud" in capsys.readouterr().out
    (anchored["tmp"] / "model.astore.proof").unlink()
    assert main(base + ["--require-anchored", "--log-key", str(anchored["log_pub"])]) == 7
    assert "no proof bundle" in capsys.readouterr().err
