"""Where games are kept: their logs and the secrets that lead to them.

One small interface, so that a shared store (Redis, for many processes) can stand in for the
in-memory one without touching the rules: append at an expected version (a conflict is an
answer, not a crash), read since a version, and find a game by the digest of a secret (a join
or watch key, or a seat token). Secrets are only ever handed over as SHA-256 digests: the store
never holds a key or token it could leak.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .errors import LocalProtocolError
from .events import GameId
from .log import GameEvent, Logged

__all__ = ["Conflict", "Credential", "GameStore", "MemoryStore"]


class Credential(enum.Enum):
    """What a secret opens."""

    JOIN = "join"  # the yellow seat while it is vacant; watching once it is taken
    WATCH = "watch"
    #: A seat token: the creator's, or that of whoever took the seat by the join link. A
    #: token stays with its person, whose colour swaps at each rematch: a token leads to a
    #: person's seat, and the game says which colour that is now (nothing is rewritten).
    CREATOR = "creator"
    JOINER = "joiner"

    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True)
class Conflict:
    """Somebody appended first: the log is at ``version`` now (reread, then decide again)."""

    version: int


class GameStore(Protocol):
    """The games' logs and secrets."""

    def create(self, game: GameId) -> None:
        """Start an empty log for a new ``game``."""

    def append(self, game: GameId, expected: int, event: GameEvent, at: float) -> Logged | Conflict:
        """Append ``event``, decided at ``at``, if the log is at version ``expected`` (it is
        then one more)."""

    def since(self, game: GameId, version: int) -> Sequence[Logged] | None:
        """The events after ``version``, in order; None if they cannot all be given (the
        version is ahead of the log, or older than what the store keeps): send a snapshot."""

    def add_secret(self, digest: bytes, game: GameId, credential: Credential) -> None:
        """Let ``digest`` lead to ``game`` as ``credential``."""

    def find(self, digest: bytes) -> tuple[GameId, Credential] | None:
        """The game and credential a secret's digest leads to."""

    def drop(self, game: GameId) -> None:
        """Forget ``game``: its log and every secret that led to it."""


class MemoryStore:
    """The embedded default: everything in this process's memory (a restart forgets it).

    Each log keeps at most ``max_events`` events: a game's board is folded as it goes, so an
    older event is only needed by a client that fell that far behind, and a snapshot serves it.
    """

    def __init__(self, *, max_events: int) -> None:
        self._max_events = max_events
        self._logs: dict[GameId, _Log] = {}
        self._secrets: dict[bytes, tuple[GameId, Credential]] = {}
        self._secrets_of: dict[GameId, list[bytes]] = {}

    def create(self, game: GameId) -> None:
        if game in self._logs:
            raise LocalProtocolError(f"game {game} exists already")
        self._logs[game] = _Log()
        self._secrets_of[game] = []

    def append(self, game: GameId, expected: int, event: GameEvent, at: float) -> Logged | Conflict:
        log = self._logs[game]
        events = log.events
        version = log.first + len(events) - 1
        if version != expected:
            return Conflict(version)
        logged = Logged(version + 1, event, at)
        events.append(logged)
        if len(events) > self._max_events:
            del events[0]
            log.first += 1
        return logged

    def since(self, game: GameId, version: int) -> Sequence[Logged] | None:
        log = self._logs[game]
        start = version + 1 - log.first  # index of the first event wanted
        if start < 0 or start > len(log.events):
            return None
        return log.events[start:]

    def add_secret(self, digest: bytes, game: GameId, credential: Credential) -> None:
        if digest in self._secrets:
            raise LocalProtocolError("the key factory returned a key that is already in use")
        self._secrets[digest] = (game, credential)
        self._secrets_of[game].append(digest)

    def find(self, digest: bytes) -> tuple[GameId, Credential] | None:
        return self._secrets.get(digest)

    def drop(self, game: GameId) -> None:
        del self._logs[game]
        for digest in self._secrets_of.pop(game):
            del self._secrets[digest]

    @property
    def game_count(self) -> int:
        return len(self._logs)

    @property
    def secret_count(self) -> int:
        return len(self._secrets)


class _Log:
    __slots__ = ("events", "first")

    def __init__(self) -> None:
        self.events: list[Logged] = []
        self.first = 1  # the version of ``events[0]``
