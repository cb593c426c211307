"""The roster: who takes part in one vertically partitioned training, and with which keys.

Every participant holds the same roster file and trusts nothing outside it: a ``blob`` record
counts only when its Ed25519 signer is a participant's signing key, and a message is sealed
only to a participant's X25519 box key. The roster is JSON::

    {"format": "pyastore-vertical-roster-v1",
     "participants": [
       {"name": "personal", "role": "party", "sign_key": "<64 hex>", "box_key": "<64 hex>"},
       {"name": "bank",     "role": "party", "sign_key": "<64 hex>", "box_key": "<64 hex>"},
       {"name": "host",     "role": "host",  "sign_key": "<64 hex>", "box_key": "<64 hex>"}]}

Exactly one host, at least one party, names ``[a-z][a-z0-9_-]{0,31}`` and unique, no key used
twice. Round-trip law: ``Roster.parse(r.to_json()) == r``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pyastore.errors import UsageError

ROSTER_FORMAT = "pyastore-vertical-roster-v1"
ROLES = ("party", "host")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def check_name(name: object) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError(f"participant name {name!r} must match [a-z][a-z0-9_-]{{0,31}}")


@dataclass(frozen=True)
class Participant:
    name: str
    role: str
    sign_key: bytes  # Ed25519 public key: signs this participant's blob records
    box_key: bytes  # X25519 public key: what messages to this participant are sealed to


@dataclass(frozen=True)
class Roster:
    participants: tuple[Participant, ...]

    def __post_init__(self) -> None:
        names = [p.name for p in self.participants]
        for p in self.participants:
            check_name(p.name)
            if p.role not in ROLES:
                raise UsageError(f"roster: participant {p.name!r} has role {p.role!r}; "
                                 f"expected one of {', '.join(ROLES)}")
        if len(set(names)) != len(names):
            raise UsageError(f"roster: duplicate participant names in {names}")
        keys = [p.sign_key for p in self.participants] + [p.box_key for p in self.participants]
        if len(set(keys)) != len(keys):
            raise UsageError("roster: a key is listed twice (every participant needs its own "
                             "signing and box keys)")
        hosts = [p for p in self.participants if p.role == "host"]
        if len(hosts) != 1 or len(hosts) == len(self.participants):
            raise UsageError(f"roster: needs exactly one host and at least one party, has "
                             f"{len(hosts)} host(s) among {len(self.participants)} participants")

    @property
    def host(self) -> Participant:
        return next(p for p in self.participants if p.role == "host")

    @property
    def parties(self) -> tuple[Participant, ...]:
        return tuple(p for p in self.participants if p.role == "party")

    def get(self, name: str) -> Participant:
        for p in self.participants:
            if p.name == name:
                return p
        raise UsageError(f"roster: no participant named {name!r} (participants: "
                         f"{', '.join(p.name for p in self.participants)})")

    def by_sign_key(self, public_key_hex: str) -> Participant | None:
        for p in self.participants:
            if p.sign_key.hex() == public_key_hex:
                return p
        return None

    def to_json(self) -> str:
        return json.dumps({"format": ROSTER_FORMAT, "participants": [
            {"name": p.name, "role": p.role, "sign_key": p.sign_key.hex(),
             "box_key": p.box_key.hex()} for p in self.participants]}, indent=2) + "\n"

    @classmethod
    def parse(cls, text: str, source: str = "roster") -> Roster:
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{source}: not JSON ({exc})") from None
        if not isinstance(value, dict) or value.get("format") != ROSTER_FORMAT:
            raise UsageError(f"{source}: not a roster (expected \"format\": \"{ROSTER_FORMAT}\")")
        entries = value.get("participants")
        if not isinstance(entries, list):
            raise UsageError(f"{source}: \"participants\" must be a list")
        participants = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise UsageError(f"{source}: participants[{i}] is not an object")
            for field in ("sign_key", "box_key"):
                if not isinstance(entry.get(field), str) or not _HEX64.fullmatch(entry[field]):
                    raise UsageError(f"{source}: participants[{i}].{field} must be 64 "
                                     "lowercase hex")
            participants.append(Participant(str(entry.get("name")), str(entry.get("role")),
                                            bytes.fromhex(entry["sign_key"]),
                                            bytes.fromhex(entry["box_key"])))
        try:
            return cls(tuple(participants))
        except UsageError as exc:
            raise UsageError(f"{source}: {exc.message}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Roster:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"{path}: roster file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read the roster: {exc}") from None
        return cls.parse(text, str(path))
