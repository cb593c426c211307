"""A data party: trains on its own columns, sends representations, answers requests.

``run_party`` does the party's whole round, in order:

1. read its columns, the customer IDs and the labels (``trainer.vertical.data``) and replace
   every ID by its pseudonym (``trainer.vertical.ids``); the raw IDs stay in memory here;
2. split train/test exactly as every other party does (``data.split``);
3. standardise with the training rows' statistics and fit its ``n - n - 2n - n - 1`` network
   (``trainer.vertical.nets``);
4. export, signed with its key, its encoder (the first three layers with the scaling) and its
   whole network (the "party alone" model) as containers in its output folder;
5. compute the third hidden layer of every training row *with the encoder container* (the C
   core: the same bits the composed container computes) and send it, with the pseudonyms and
   labels, sealed to the host;
6. serve: for every prediction request of the host (pseudonyms only), look its own rows up,
   compute their representations the same way and return them sealed to the host; stop at
   the host's ``close``, or fail with ``ExchangeTimeoutError`` when the host stays silent
   longer than the timeout.

Only pseudonyms, labels and representations leave the party, always sealed to the host; the
raw column values and raw IDs never do. Its own test metrics (the party alone) stay in its
folder (``metrics.json``).
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.vertical import compose, nets
from trainer.vertical.crypto import key_id
from trainer.vertical.data import PartyData, read_party, split
from trainer.vertical.errors import ExchangeTimeoutError, MessageError
from trainer.vertical.exchange import Exchange
from trainer.vertical.ids import IdKey
from trainer.vertical.messages import Message, new_request_id
from trainer.vertical.metrics import classification_metrics


def seed_for(seed: int, name: str) -> int:
    """A participant's own seed: different participants, different initial weights."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (1 << 31)


@dataclass(frozen=True)
class PartyConfig:
    name: str
    columns: tuple[str, ...]
    id_column: str
    target: str
    seed: int = 0
    round: int = 0
    test_size: float = 0.3
    train: nets.TrainConfig = field(default_factory=nets.TrainConfig)
    timeout: float = 600.0  # longest silence of the host while serving, seconds
    serve: bool = True


@dataclass(frozen=True)
class PartyResult:
    name: str
    encoder_path: str
    model_path: str
    n_train: int
    n_test: int
    metrics: dict[str, float]
    requests_served: int
    bytes_sent: int
    records_sent: int
    seconds: float


class Party:
    """One party's state through a round (module docstring); ``run_party`` drives it."""

    def __init__(self, config: PartyConfig, data: PartyData, id_key: IdKey):
        self.config = config
        self.data = data
        self.pseudonyms = [id_key.pseudonym(i) for i in data.ids]
        self.row_of = {p: r for r, p in enumerate(self.pseudonyms)}
        self.test = split(self.pseudonyms, config.seed, config.test_size)
        self.encoder: Any = None

    def fit_and_export(self, out_dir: Path, signing_key: Any) -> tuple[Path, Path, dict]:
        from pyastore import format as fmt
        from pyastore import load

        config, data = self.config, self.data
        train = ~self.test
        mean, std = compose.standardisation(data.x[train])
        x_train = compose.standardise(data.x[train], mean, std)
        seed = seed_for(config.seed, config.name)
        net = nets.network(len(data.columns), seed)
        curve = nets.fit(net, x_train, data.labels[train], config.train, seed)
        params = {"seed": config.seed, "round": config.round, "epochs": config.train.epochs,
                  "batch_size": config.train.batch_size,
                  "learning_rate": config.train.learning_rate, "optimizer": "adam",
                  "loss": "binary_cross_entropy", "train_rows": int(train.sum())}
        provenance = {"party": config.name, "method": "vertically partitioned training"}
        encoder = compose.encoder_spec(
            net, data.columns, mean, std, name=f"{config.name}-encoder",
            description=f"party {config.name}: encoder (third hidden layer)",
            provenance=provenance, training_params=params)
        whole = compose.party_model_spec(
            net, data.columns, mean, std, name=f"{config.name}-alone",
            description=f"party {config.name}: its network on its own columns alone",
            provenance=provenance, training_params=params)
        out_dir.mkdir(parents=True, exist_ok=True)
        encoder_path = out_dir / f"{config.name}.encoder.astore"
        model_path = out_dir / f"{config.name}.alone.astore"
        fmt.write_file(encoder_path, fmt.write(encoder, signing_key))
        fmt.write_file(model_path, fmt.write(whole, signing_key))
        trusted = [signing_key.public_key]
        self.encoder = load(encoder_path, trusted_keys=trusted, use_default_trust=False)
        alone = load(model_path, trusted_keys=trusted, use_default_trust=False)
        scores = alone.score(data.x[self.test])[:, 0]
        metrics = classification_metrics(data.labels[self.test], scores)
        report = {"party": config.name, "columns": list(data.columns),
                  "n_train": int(train.sum()), "n_test": int(self.test.sum()),
                  "test_class_counts": [int((data.labels[self.test] == c).sum()) for c in (0, 1)],
                  "metrics": metrics, "curve": asdict(curve),
                  "encoder_store_key": self.encoder.store_key,
                  "alone_store_key": alone.store_key}
        (out_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        return encoder_path, model_path, metrics

    def representations(self, rows: np.ndarray) -> bytes:
        """Third-hidden-layer values of ``rows`` from the encoder container, float32 bytes."""
        values = self.encoder.score(self.data.x[rows]).astype("<f4")
        return values.tobytes()

    def training_message(self, recipient: str) -> Message:
        rows = np.flatnonzero(~self.test)
        return Message(kind="representations", sender=self.config.name, recipient=recipient,
                       round=self.config.round, request_id=new_request_id(),
                       ids=b"".join(self.pseudonyms[r] for r in rows),
                       width=len(self.encoder.output_names),
                       values=self.representations(rows),
                       labels=bytes(int(v) for v in self.data.labels[rows]))

    def answer(self, request: Message, recipient: str) -> Message:
        """The representations of the requested customers this party holds, in request
        order (customers it does not hold are left out: the host sees who is missing)."""
        rows = [self.row_of[p] for p in request.pseudonyms() if p in self.row_of]
        index = np.asarray(rows, dtype=np.int64)
        return Message(kind="predict-response", sender=self.config.name,
                       recipient=recipient,
                       round=request.round, request_id=new_request_id(),
                       reply_to=request.request_id,
                       ids=b"".join(self.pseudonyms[r] for r in rows),
                       width=len(self.encoder.output_names),
                       values=self.representations(index) if rows else b"")


def run_party(config: PartyConfig, data_path: str | Path, exchange: Exchange, id_key: IdKey,
              out_dir: str | Path) -> PartyResult:
    """The party's whole round (module docstring)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    data = read_party(data_path, config.id_column, config.target, config.columns)
    party = Party(config, data, id_key)
    encoder_path, model_path, metrics = party.fit_and_export(out_dir, exchange.signing_key)
    host = exchange.roster.host
    host_key = key_id(host.box_key)
    exchange.send(party.training_message(host_key))
    served = 0
    if config.serve:
        served = _serve(party, exchange, host.name, host_key, config)
    result = PartyResult(config.name, str(encoder_path), str(model_path),
                         int((~party.test).sum()), int(party.test.sum()), metrics, served,
                         exchange.bytes_sent, exchange.records_sent,
                         round(time.perf_counter() - started, 3))
    (out_dir / "result.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result


def _serve(party: Party, exchange: Exchange, host_name: str, host_key: str,
           config: PartyConfig) -> int:
    """Answer the host's requests of this round until it closes the round."""
    served = 0
    last_heard = time.monotonic()
    while True:
        for received in exchange.inbox():
            message = received.message
            if message.sender != host_name:
                raise MessageError(f"log record {received.index}: {message.kind} from "
                                   f"{message.sender}; a party takes requests from the host only")
            if message.round != config.round:
                continue  # another round's traffic
            last_heard = time.monotonic()
            if message.kind == "close":
                return served
            if message.kind != "predict-request":
                raise MessageError(f"log record {received.index}: a party does not accept "
                                   f"{message.kind} messages")
            exchange.send(party.answer(message, host_key))
            served += 1
        if time.monotonic() - last_heard > config.timeout:
            raise ExchangeTimeoutError(
                f"{config.name}: timed out after {config.timeout:g} s without a request or "
                f"close from the host {host_name!r} (round {config.round})")
        time.sleep(exchange.poll_interval)

