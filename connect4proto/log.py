"""What a game remembers: an ordered log of domain events, each numbered by its version.

These are facts about one game, not wire messages: no connection numbers, no keys, no tokens,
no JSON. The board, the seats and the result are all a fold of the log (``Game`` keeps the
board folded already), and what a client sees is a projection of it (``projection``): live
play, replay, resume and snapshots are the same events seen again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from .game import Ending, Player

__all__ = [
    "GameEvent",
    "GameOver",
    "Logged",
    "MovePlayed",
    "SeatAway",
    "SeatBack",
    "SeatTaken",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatTaken:
    """``player``'s seat got its owner: the creator (red), or the first to open the join link."""

    player: Player


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatAway:
    """``player``'s connection dropped at ``since``; the seat is kept for its token holder."""

    player: Player
    since: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatBack:
    """``player`` came back with the seat's token."""

    player: Player


@dataclass(frozen=True, slots=True, kw_only=True)
class MovePlayed:
    player: Player
    column: int
    row: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GameOver:
    """The result: ``winner`` None is a draw; ``cells`` the winning line(s), if on the board."""

    winner: Player | None
    ending: Ending
    cells: tuple[tuple[int, int], ...] = ()


GameEvent: TypeAlias = SeatTaken | SeatAway | SeatBack | MovePlayed | GameOver


@dataclass(frozen=True, slots=True)
class Logged:
    """An event at its place in its game's log: ``version`` 1 is the first event."""

    version: int
    event: GameEvent
