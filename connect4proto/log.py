"""What a game remembers: an ordered log of domain events, each numbered by its version.

These are facts about one game, not wire messages: no connection numbers, no keys, no tokens,
no JSON. The board, the seats and the result are all a fold of the log (``Game`` keeps the
board folded already), and what a client sees is a projection of it (``projection``): live
play, replay, resume and snapshots are the same events seen again.

They are frozen msgspec ``Struct``s rather than frozen dataclasses for the same reason as
``game.Move``: two are made on every move, each in a tenth of a dataclass's time.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from .game import Ending, Move, Player

__all__ = [
    "GameEvent",
    "GameOver",
    "Logged",
    "MovePlayed",
    "SeatAway",
    "SeatBack",
    "SeatTaken",
]


class SeatTaken(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``player``'s seat got its owner: the creator (red), or the first to open the join link."""

    player: Player


class SeatAway(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``player``'s connection dropped at ``since``; the seat is kept for its token holder."""

    player: Player
    since: float


class SeatBack(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``player`` came back with the seat's token."""

    player: Player


#: A checker that landed: the rules' own ``Move`` is the logged event, so that a move costs one
#: object, not two (``Game``'s list of moves is where this log began).
MovePlayed = Move


class GameOver(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The result: ``winner`` None is a draw; ``cells`` the winning line(s), if on the board."""

    winner: Player | None
    ending: Ending
    cells: tuple[tuple[int, int], ...] = ()


GameEvent: TypeAlias = SeatTaken | SeatAway | SeatBack | MovePlayed | GameOver


class Logged(msgspec.Struct, frozen=True, gc=False):
    """An event at its place in its game's log: ``version`` 1 is the first event."""

    version: int
    event: GameEvent
