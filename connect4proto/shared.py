"""Games shared with other processes: what this process asks of a store outside it, and the
replica it keeps of the games it holds.

When several processes serve the same games (through Redis), the store outside holds the truth
and the core cannot wait for it: it decides on its replica, emits an *intent* (``Append``:
these events at this version, with these secrets, all or nothing), holds back everything the
decision would send, and is told the outcome later (``GameServer.appended``, ``conflicted``,
``store_unavailable``). It follows the games it holds (``Follow``) and is given what the other
processes append (``GameServer.remote``); it asks for a secret it has not seen (``Lookup``)
and is given the game it leads to, with its log (``GameServer.looked_up``).

``SharedStore`` is the lobby's ``GameStore`` then: it answers from the replica, and records
what a decision writes (``take``) instead of writing it, so that the lobby's rules are the same
code whether one process or many serve a game. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import msgspec

from .errors import LocalProtocolError
from .events import GameId
from .log import GameEvent, Logged
from .store import Conflict, Credential, MemoryStore

__all__ = [
    "Append",
    "Follow",
    "Found",
    "Lookup",
    "SharedStore",
    "StoreIntent",
    "Unfollow",
    "Writes",
]


class Append(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Append ``events`` (versions ``expected + 1`` on) to ``game``'s log if it is still at
    ``expected``, and add ``secrets`` (the secrets first: one that leads to a game whose
    events did not make it in leads to nothing anyone was given).

    ``intent`` is unique in this process: a retry of the same intent (after a timeout) must
    not append twice. ``keys``: a new game's join and watch keys, which the creator's page
    is given again when it comes back (on any process).
    """

    intent: int
    game: GameId
    expected: int
    events: tuple[Logged, ...]
    secrets: tuple[tuple[bytes, Credential], ...] = ()
    keys: tuple[str, str] | None = None


class Follow(msgspec.Struct, frozen=True, gc=False):
    """Give this process what others append to ``game`` after ``version``."""

    game: GameId
    version: int


class Unfollow(msgspec.Struct, frozen=True, gc=False):
    """This process holds ``game`` no more."""

    game: GameId


class Lookup(msgspec.Struct, frozen=True, gc=False):
    """Which game, if any, the secret of this digest leads to (with the game's log)."""

    digest: bytes


StoreIntent: TypeAlias = Append | Follow | Unfollow | Lookup


class Found(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a ``Lookup`` found: the game and what the secret opens in it, the whole log of
    the game, and its keys."""

    game: GameId
    credential: Credential
    events: tuple[Logged, ...]
    keys: tuple[str, str] | None = None


@dataclass(slots=True)
class Writes:
    """What one decision wrote to one game, to be carried out elsewhere."""

    game: GameId
    expected: int
    events: list[Logged] = field(default_factory=list)
    secrets: list[tuple[bytes, Credential]] = field(default_factory=list)
    created: bool = False

    def intent(self, intent: int, keys: tuple[str, str] | None) -> Append:
        return Append(
            intent=intent,
            game=self.game,
            expected=self.expected,
            events=tuple(self.events),
            secrets=tuple(self.secrets),
            keys=keys if self.created else None,
        )


class SharedStore:
    """The lobby's store when the games are shared: a replica of the games held here.

    Reads come from the replica (what was appended and is known here). Writes are recorded,
    per game, until ``take`` hands them over; ``commit`` puts them in the replica once the
    store outside took them, and ``discard`` forgets them if it did not. ``find`` answers
    only for the secrets seen here: None is "not known here" (ask with ``Lookup``).
    """

    def __init__(self, *, max_events: int) -> None:
        self._replica = MemoryStore(max_events=max_events)
        self._writes: dict[GameId, Writes] = {}
        self._versions: dict[GameId, int] = {}

    # -- the lobby's GameStore ----------------------------------------------------------

    def create(self, game: GameId) -> None:
        self._replica.create(game)
        self._versions[game] = 0
        self._writing(game).created = True

    def append(self, game: GameId, expected: int, event: GameEvent, at: float) -> Logged | Conflict:
        writes = self._writing(game)
        version = self._versions[game] + len(writes.events)
        assert expected == version  # one decision at a time: the lobby's version is this one
        logged = Logged(version + 1, event, at)
        writes.events.append(logged)
        return logged

    def since(self, game: GameId, version: int) -> Sequence[Logged] | None:
        return self._replica.since(game, version)

    def add_secret(self, digest: bytes, game: GameId, credential: Credential) -> None:
        self._writing(game).secrets.append((digest, credential))

    def find(self, digest: bytes) -> tuple[GameId, Credential] | None:
        return self._replica.find(digest)

    def drop(self, game: GameId) -> None:
        self._writes.pop(game, None)
        self._replica.drop(game)
        del self._versions[game]

    # -- between the lobby and the store outside -----------------------------------------

    def take(self, game: GameId) -> Writes:
        """What was written to ``game`` since the last ``take``."""
        return self._writes.pop(game)

    def written(self) -> list[GameId]:
        """The games written to since their last ``take``."""
        return list(self._writes)

    def commit(self, writes: Writes) -> None:
        """The store outside took ``writes``: the replica has them now."""
        game = writes.game
        for logged in writes.events:
            self.remember(game, logged)
        for digest, credential in writes.secrets:
            self.learn_secret(digest, game, credential)

    def discard(self, writes: Writes) -> None:
        """The store outside did not take ``writes``: a game they created is no more."""
        if writes.created:
            self.drop(writes.game)

    def install(self, game: GameId) -> None:
        """``game``, held elsewhere until now: its log is remembered next."""
        self._replica.create(game)
        self._versions[game] = 0

    def remember(self, game: GameId, logged: Logged) -> None:
        """``logged`` is in the store outside (appended here, or by another process)."""
        version = self._versions[game]
        if logged.version != version + 1:
            raise LocalProtocolError(f"game {game}: version {logged.version} after {version}")
        self._replica.append(game, version, logged.event, logged.at)
        self._versions[game] = logged.version

    def learn_secret(self, digest: bytes, game: GameId, credential: Credential) -> None:
        """``digest`` leads to ``game`` as ``credential`` (as the store outside said)."""
        self._replica.add_secret(digest, game, credential)

    def _writing(self, game: GameId) -> Writes:
        writes = self._writes.get(game)
        if writes is None:
            writes = self._writes[game] = Writes(game, self._versions[game])
        return writes
