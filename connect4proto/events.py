"""What happened inside the core that the driver may want to log or count.

These are not wire messages (see ``messages``): they never reach a client. Join and watch keys
are never part of them, so logging them cannot leak a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType, TypeAlias

from .game import Player

__all__ = [
    "ConnectionId",
    "ConnectionRefused",
    "Event",
    "GameClosed",
    "GameCreated",
    "GameEnded",
    "GameId",
    "PlayerJoined",
    "PlayerLeft",
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
    game: GameId
    player: Player
    connection: ConnectionId


@dataclass(frozen=True, slots=True, kw_only=True)
class GameEnded:
    """A win (``winner`` set) or a draw (``winner`` None) after ``moves`` moves."""

    game: GameId
    winner: Player | None
    moves: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GameClosed:
    """Nobody is connected to the game any more: it and its keys are forgotten."""

    game: GameId


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionRefused:
    """The peer broke HTTP or WebSocket rules and the connection is being closed for it."""

    connection: ConnectionId
    reason: str


Event: TypeAlias = (
    GameCreated
    | PlayerJoined
    | SpectatorJoined
    | PlayerLeft
    | GameEnded
    | GameClosed
    | ConnectionRefused
)
