"""The host: joins the parties' representations, trains on them, predicts by request.

``train_host`` waits (at most the timeout) for one ``representations`` message from every
party of the roster for this round, checks that the parties sent the same customers with the
same labels, joins the representations on the pseudonyms (roster order: party 1's ``n``
values, then party 2's, ...), fits the ``m - m - 2m - m - 1`` network
(``trainer.vertical.nets``) and exports it, signed, as ``host.astore``.

``predict`` sends each party a ``predict-request`` naming only pseudonyms, waits for every
party's ``predict-response``, checks that each answers exactly the customers asked for, joins
the representations and scores them with the host container (the C core, as on a device).

``close_round`` tells every party that the round is over. The host never sees a raw column
value or a raw customer ID.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyastore.errors import InputError
from trainer.vertical import compose, nets
from trainer.vertical.crypto import key_id
from trainer.vertical.errors import ExchangeTimeoutError, MessageError
from trainer.vertical.exchange import Exchange
from trainer.vertical.messages import PSEUDONYM_BYTES, Message, new_request_id
from trainer.vertical.party import seed_for


@dataclass(frozen=True)
class HostConfig:
    name: str = "host"
    seed: int = 0
    round: int = 0
    train: nets.TrainConfig = field(default_factory=nets.TrainConfig)
    timeout: float = 600.0  # longest wait for any party, seconds


@dataclass(frozen=True)
class HostResult:
    model_path: str
    input_names: tuple[str, ...]
    n_train: int
    curve: nets.Curve
    seconds: float


def _representations(message: Message) -> np.ndarray:
    return np.frombuffer(message.values, dtype="<f4").reshape(message.n_rows, message.width)


class Host:
    """The host's end of a round (module docstring)."""

    def __init__(self, config: HostConfig, exchange: Exchange):
        self.config = config
        self.exchange = exchange
        self.parties = exchange.roster.parties
        self.model: Any = None

    def _collect(self, kind: str, wanted: dict[str, str], what: str) -> dict[str, Message]:
        """Wait for one ``kind`` message of this round from each party in ``wanted`` (party
        name -> the request id it must answer, or "")."""
        got: dict[str, Message] = {}
        asked = set(wanted.values())

        def poll() -> dict[str, Message] | None:
            for received in self.exchange.inbox():
                message = received.message
                if message.round != self.config.round or message.kind != kind:
                    continue  # another round's traffic, or not what is waited for now
                if kind == "predict-response" and message.reply_to not in asked:
                    continue  # the answer to an earlier request (a host reads the whole log)
                if message.sender not in wanted:
                    raise MessageError(f"log record {received.index}: unexpected {kind} from "
                                       f"{message.sender}")
                if message.reply_to != wanted[message.sender]:
                    raise MessageError(f"log record {received.index}: {message.sender} answers "
                                       f"request {message.reply_to or '(none)'}, expected "
                                       f"{wanted[message.sender] or '(none)'}")
                if message.sender in got:
                    raise MessageError(f"log record {received.index}: a second {kind} from "
                                       f"{message.sender} in round {self.config.round}")
                got[message.sender] = message
            return got if len(got) == len(wanted) else None

        try:
            return self.exchange.wait(poll, self.config.timeout, what)
        except ExchangeTimeoutError as exc:
            missing = ", ".join(sorted(set(wanted) - set(got)))
            raise ExchangeTimeoutError(f"{exc.message}; nothing from: {missing}") from None

    def train(self, out_dir: Path, signing_key: Any) -> HostResult:
        from pyastore import format as fmt
        from pyastore import load

        started = time.perf_counter()
        wanted = {p.name: "" for p in self.parties}
        messages = self._collect("representations", wanted,
                                 f"representations of round {self.config.round} from every party")
        first = messages[self.parties[0].name]
        ids = first.pseudonyms()
        order = {p: r for r, p in enumerate(ids)}
        blocks, names = [], []
        for party in self.parties:
            message = messages[party.name]
            theirs = message.pseudonyms()
            if len(theirs) != len(ids) or set(theirs) != set(ids):
                raise InputError(f"{party.name} sent representations of {len(theirs)} customers, "
                                 f"{self.parties[0].name} of {len(ids)}, and not the same "
                                 "customers: the parties must hold the same customers and use "
                                 "the same ID key and seed")
            at = np.asarray([order[p] for p in theirs])
            aligned = np.empty((len(ids), message.width), dtype=np.float32)
            aligned[at] = _representations(message)
            labels = np.empty(len(ids), dtype=np.int64)
            labels[at] = np.frombuffer(message.labels, dtype=np.uint8)
            if party is self.parties[0]:
                y = labels
            elif not np.array_equal(labels, y):
                bad = int(np.sum(labels != y))
                raise InputError(f"{party.name} and {self.parties[0].name} disagree on the label "
                                 f"of {bad} customers")
            blocks.append(aligned)
            names += [f"{party.name}.h{k}" for k in range(message.width)]
        x = np.hstack(blocks)
        config = self.config
        seed = seed_for(config.seed, config.name)
        net = nets.network(x.shape[1], seed)
        curve = nets.fit(net, x, y, config.train, seed)
        params = {"seed": config.seed, "round": config.round, "epochs": config.train.epochs,
                  "batch_size": config.train.batch_size,
                  "learning_rate": config.train.learning_rate, "optimizer": "adam",
                  "loss": "binary_cross_entropy", "train_rows": int(len(y)),
                  "parties": [p.name for p in self.parties]}
        spec = compose.host_spec(net, names, name=f"{config.name}-network",
                                 description="host network on the parties' representations",
                                 provenance={"representations_from": {
                                     n: messages[n].request_id for n in messages}},
                                 training_params=params)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "host.astore"
        fmt.write_file(path, fmt.write(spec, signing_key))
        self.model = load(path, trusted_keys=[signing_key.public_key], use_default_trust=False)
        result = HostResult(str(path), tuple(names), int(len(y)), curve,
                            round(time.perf_counter() - started, 3))
        (out_dir / "curve.json").write_text(json.dumps(asdict(curve), indent=2) + "\n")
        return result

    def use_model(self, path: str | Path) -> None:
        """Predict with a host container trained earlier (signed by this host's key) instead
        of training now: the parties of its round must still be serving."""
        from pyastore import load

        model = load(path, trusted_keys=[self.exchange.me.sign_key], use_default_trust=False)
        widths = {p.name: sum(1 for n in model.input_names if n.startswith(f"{p.name}."))
                  for p in self.parties}
        if sum(widths.values()) != len(model.input_names) or not all(widths.values()):
            raise InputError(f"{path}: its inputs {', '.join(model.input_names)} are not the "
                             f"representations of this roster's parties "
                             f"({', '.join(widths)})")
        self.model = model

    def predict(self, pseudonyms: Sequence[bytes]) -> np.ndarray:
        """P(class 1) for each customer named, by the request-only flow (module docstring)."""
        if self.model is None:
            raise InputError("the host has no model yet: train first")
        ids = b"".join(pseudonyms)
        if any(len(p) != PSEUDONYM_BYTES for p in pseudonyms):
            raise InputError(f"a pseudonym is {PSEUDONYM_BYTES} bytes")
        wanted = {}
        for party in self.parties:
            request = Message(kind="predict-request", sender=self.config.name,
                              recipient=key_id(party.box_key), round=self.config.round,
                              request_id=new_request_id(), ids=ids)
            self.exchange.send(request)
            wanted[party.name] = request.request_id
        answers = self._collect("predict-response", wanted,
                                f"answers to the prediction request of round "
                                f"{self.config.round} from every party")
        blocks = []
        for party in self.parties:
            answer = answers[party.name]
            if answer.ids != ids:
                known = set(answer.pseudonyms())
                missing = sum(1 for p in pseudonyms if p not in known)
                raise InputError(f"{party.name} does not hold {missing} of the "
                                 f"{len(pseudonyms)} customers asked for")
            blocks.append(_representations(answer))
        x = np.hstack(blocks) if blocks else np.empty((0, 0), dtype=np.float32)
        return self.model.score(x)[:, 0]

    def close_round(self) -> None:
        for party in self.parties:
            self.exchange.send(Message(kind="close", sender=self.config.name,
                                       recipient=key_id(party.box_key),
                                       round=self.config.round, request_id=new_request_id()))
