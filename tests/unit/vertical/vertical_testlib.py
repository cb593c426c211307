"""Helpers shared by the vertical training tests: a small data set, keys, roster, log, store.

A uniquely named module rather than a ``conftest.py`` (the test folders have no
``__init__.py``). The data set is synthetic on purpose: its IDs are 12-digit numbers and its
cells have seven or more significant digits, so that finding one of them in the store or the
log can only mean a leak, never a coincidence (a 0/1 column's values occur everywhere).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chain.log import Log
from pyastore import keys
from trainer.vertical import crypto
from trainer.vertical.exchange import Exchange
from trainer.vertical.ids import IdKey
from trainer.vertical.roster import Participant, Roster
from trainer.vertical.store import DirectoryStore

REPO_ROOT = Path(__file__).resolve().parents[3]
PYTHON = sys.executable
PARTIES = {"personal": ("income", "spend", "age", "savings"),
           "bank": ("balance", "tenure", "products")}


def seeded_key(label: str) -> keys.SigningKey:
    return keys.SigningKey(hashlib.sha256(label.encode()).digest())


def seeded_box_key(label: str) -> crypto.BoxKey:
    return crypto.BoxKey(hashlib.sha256(b"box " + label.encode()).digest())


def write_data(path: Path, n_rows: int = 240, seed: int = 7) -> dict[str, np.ndarray]:
    """A CSV with an ``id`` column, a ``label`` and the columns of ``PARTIES``."""
    rng = np.random.default_rng(seed)
    ids = np.unique(rng.integers(10**11, 10**12, size=2 * n_rows))[:n_rows]
    rng.shuffle(ids)
    columns = {
        "income": np.round(rng.lognormal(4.0, 0.5, n_rows) * 1000 + 0.123457, 6),
        "spend": np.round(rng.gamma(2.0, 900.0, n_rows) + 0.765431, 6),
        "age": np.round(rng.uniform(21.0, 70.0, n_rows) * 1000 + 0.314159, 6),
        "balance": np.round(rng.normal(50000.0, 9000.0, n_rows) + 0.271828, 6),
        "tenure": np.round(rng.uniform(100.0, 9000.0, n_rows) + 0.577216, 6),
        "savings": np.round(rng.exponential(20000.0, n_rows) + 0.693147, 6),
        "products": np.round(rng.uniform(1.0, 9.0, n_rows) * 1000 + 0.915966, 6),
    }
    z = ((columns["income"] - columns["income"].mean()) / columns["income"].std()
         + (columns["balance"] - 50000.0) / 9000.0
         - (columns["spend"] - columns["spend"].mean()) / columns["spend"].std())
    label = (z + rng.normal(0, 0.3, n_rows) > 0.8).astype(int)
    names = ["id", *columns, "label"]
    lines = [",".join(names)]
    for r in range(n_rows):
        cells = [str(int(ids[r]))] + [repr(float(columns[c][r])) for c in columns]
        lines.append(",".join(cells + [str(label[r])]))
    path.write_text("\n".join(lines) + "\n")
    return {"id": ids, "label": label, **columns}


@dataclass
class Federation:
    """Everything a round needs, made in one folder: keys, roster, ID key, log, store."""

    root: Path
    roster: Roster
    signing: dict[str, keys.SigningKey]
    boxes: dict[str, crypto.BoxKey]
    id_key: IdKey
    log_path: Path
    store: DirectoryStore

    def exchange(self, name: str, **kwargs) -> Exchange:
        return Exchange(self.log_path, self.store, self.roster, name, self.signing[name],
                        self.boxes[name], poll_interval=0.02, **kwargs)


def make_federation(root: Path, parties=tuple(PARTIES)) -> Federation:
    names = [*parties, "host"]
    signing = {n: seeded_key(n) for n in names}
    boxes = {n: seeded_box_key(n) for n in names}
    roster = Roster(tuple(Participant(n, "host" if n == "host" else "party",
                                      signing[n].public_key, boxes[n].public) for n in names))
    log_path = root / "exchange.log"
    Log.init(log_path, seeded_key("log"), origin="example.com/vertical").close()
    store = DirectoryStore(root / "store")
    return Federation(root, roster, signing, boxes, IdKey(hashlib.sha256(b"ids").digest()),
                      log_path, store)


def run_in_threads(targets: dict[str, object]) -> dict[str, object]:
    """Run each callable in its own thread; return results, re-raise the first failure."""
    results: dict[str, object] = {}
    errors: dict[str, BaseException] = {}

    def wrap(name, target):
        try:
            results[name] = target()
        except BaseException as exc:  # handed to the caller below
            errors[name] = exc

    threads = [threading.Thread(target=wrap, args=(n, t), daemon=True) for n, t in targets.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    if errors:
        raise next(iter(errors.values()))
    return results


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def write_key_files(fed: Federation, folder: Path) -> dict[str, Path]:
    """The federation's keys as the files the command line takes, and its roster."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, key in fed.signing.items():
        secret = folder / f"{name}.key"
        secret.write_text(keys.SECRET_PREFIX + key.seed.hex() + "\n")
        secret.chmod(0o600)
        (folder / f"{name}.pub").write_text(keys.public_key_line(key.public_key) + "\n")
        box = folder / f"{name}.box.key"
        box.write_text(crypto.BOX_SECRET_PREFIX + fed.boxes[name].secret.hex() + "\n")
        box.chmod(0o600)
        (folder / f"{name}.box.pub").write_text(
            crypto.BOX_PUBLIC_PREFIX + fed.boxes[name].public.hex() + "\n")
        paths[name] = secret
    fed.id_key.write(folder / "ids.key")
    paths["ids"] = folder / "ids.key"
    paths["roster"] = folder / "roster.json"
    paths["roster"].write_text(fed.roster.to_json())
    return paths


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "trainer.cli", *args], capture_output=True, text=True,
                          env=child_env(), timeout=timeout, stdin=subprocess.DEVNULL)
