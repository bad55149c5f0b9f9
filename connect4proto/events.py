"""What happened inside the core that the driver may want to log or count.

These are not wire messages (see ``messages``): they never reach a client. Join and watch keys
are never part of them, so logging them cannot leak a key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NewType, TypeAlias

from .game import Ending, Player

__all__ = [
    "ComputeMove",
    "ConnectionEnded",
    "ConnectionId",
    "Event",
    "Fault",
    "GameClosed",
    "GameCreated",
    "GameEnded",
    "GameId",
    "PlayerJoined",
    "PlayerLeft",
    "PlayerReturned",
    "RematchBegun",
    "SeatReplaced",
    "SpectatorJoined",
]

#: A connection, as numbered by the core when it is opened.
ConnectionId = NewType("ConnectionId", int)
#: A game, as numbered by the core when it is created (not a secret: keys are).
GameId = NewType("GameId", int)


@dataclass(frozen=True, slots=True, kw_only=True)
class GameCreated:
    game: GameId
    connection: ConnectionId


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayerJoined:
    game: GameId
    player: Player
    connection: ConnectionId


@dataclass(frozen=True, slots=True, kw_only=True)
class SpectatorJoined:
    game: GameId
    connection: ConnectionId


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayerLeft:
    """A player's connection ended: the seat waits for its token (see ``Config.seat_grace``)."""

    game: GameId
    player: Player
    connection: ConnectionId


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayerReturned:
    """A player took their seat back with its token (after a drop, or from another tab)."""

    game: GameId
    player: Player
    connection: ConnectionId


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatReplaced:
    """``connection`` no longer acts for its seat: a newer connection took it over."""

    game: GameId
    player: Player
    connection: ConnectionId


@dataclass(frozen=True, slots=True, kw_only=True)
class GameEnded:
    """A win (``winner`` set) or a draw (``winner`` None) after ``moves`` moves."""

    game: GameId
    winner: Player | None
    moves: int
    reason: Ending


@dataclass(frozen=True, slots=True, kw_only=True)
class RematchBegun:
    """The players of ``game`` agreed to a rematch: its game number ``round`` begins."""

    game: GameId
    round: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ComputeMove:
    """An intent, not an event: game ``game`` at version ``version`` needs the computer's
    move at ``level`` (``solver.bots.Level``'s value), in the position ``record`` (the
    columns played, digits 1-7). Compute it off the event loop and give the column to
    ``GameServer.computed``; an answer for a game that moved on meanwhile is dropped."""

    game: GameId
    version: int
    level: str
    record: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GameClosed:
    """Nobody is connected to the game, and nobody can come back to it any more: it, its
    keys and its tokens are forgotten."""

    game: GameId


class Fault(enum.Enum):
    """Why a connection ended without a normal close."""

    #: It broke HTTP, WebSocket or the game's limits (a bad request, frame or message).
    PEER = "peer"
    #: It did not send in time: a request head, the answer to a ping, our close frame.
    TIMEOUT = "timeout"
    #: Its transport ended without a close frame (a reset, a closed lid, a lost network).
    VANISHED = "vanished"
    #: It read slower than its game moved, and its backlog outgrew the output limit.
    TOO_SLOW = "too slow"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionEnded:
    """A connection ended without a normal close: ``fault`` says how, ``reason`` in words."""

    connection: ConnectionId
    reason: str
    fault: Fault


Event: TypeAlias = (
    GameCreated
    | PlayerJoined
    | SpectatorJoined
    | PlayerLeft
    | PlayerReturned
    | SeatReplaced
    | GameEnded
    | RematchBegun
    | GameClosed
    | ConnectionEnded
)
