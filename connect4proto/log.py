"""What a game remembers: an ordered log of domain events, each numbered by its version.

These are facts about one game, not wire messages: no connection numbers, no keys, no tokens,
no JSON. The board, the seats and the result are all a fold of the log (``Game`` keeps the
board folded already), and what a client sees is a projection of it (``projection``): live
play, replay, resume and snapshots are the same events seen again.

They are frozen msgspec ``Struct``s rather than frozen dataclasses for the same reason as
``game.Move``: two are made on every move, each in a tenth of a dataclass's time.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

import msgspec

from .clock import Clocks, TimeControl
from .game import Ending, Move, Player

__all__ = [
    "GameEvent",
    "GameOver",
    "Logged",
    "MovePlayed",
    "OfferDeclined",
    "OfferKind",
    "OfferMade",
    "OfferWithdrawn",
    "RematchStarted",
    "SeatAway",
    "SeatBack",
    "SeatTaken",
    "TimedMove",
]


class OfferKind(enum.Enum):
    """What a player may offer the other; the value is ``offer`` on the wire."""

    DRAW = "draw"
    REMATCH = "rematch"

    __hash__ = object.__hash__


class SeatTaken(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``player``'s seat got its owner: the creator (red), or the first to open the join link.

    In a timed game, yellow's arrival starts the clocks: ``clock`` says how they stand.
    ``bot``: the level of the computer, if it took the seat. ``control``: the game's time
    control, on the first seat taken (a process that folds the log learns it there).
    ``process``: processes sharing games, the one whose connection holds the seat (if it
    dies, another logs the seat away).
    """

    player: Player
    clock: Clocks | None = None
    bot: str | None = None
    control: TimeControl | None = None
    process: str | None = None


class SeatAway(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``player``'s connection dropped at ``since``; the seat is kept for its token holder."""

    player: Player
    since: float


class SeatBack(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``player`` came back with the seat's token (``process``: on which one, as for
    ``SeatTaken``)."""

    player: Player
    process: str | None = None


#: A checker that landed: the rules' own ``Move`` is the logged event, so that a move costs one
#: object, not two (``Game``'s list of moves is where this log began).
MovePlayed = Move


class TimedMove(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A move of a timed game, with the clocks as they stand after it (an untimed game logs
    the bare ``Move``: what it does not need, it does not pay for)."""

    player: Player
    column: int
    row: int
    clock: Clocks


class GameOver(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The result: ``winner`` None is a draw (or no result, if ``ABORTED``); ``cells`` the
    winning line(s), if on the board; ``record`` the columns played, as digits 1-7; ``by``
    who ended it off the board (resigned, accepted the draw, claimed, aborted, ran out of
    time); ``clock`` the final clocks of a timed game."""

    winner: Player | None
    ending: Ending
    cells: tuple[tuple[int, int], ...] = ()
    record: str = ""
    by: Player | None = None
    clock: Clocks | None = None


class OfferMade(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``player`` offered a draw (during the game) or a rematch (after it)."""

    offer: OfferKind
    player: Player


class OfferDeclined(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``player`` declined the other's offer (a move declines a draw offer, too)."""

    offer: OfferKind
    player: Player


class OfferWithdrawn(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``player``'s offer lapsed: they went away before it was answered."""

    offer: OfferKind
    player: Player


class RematchStarted(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The rematch was accepted: game number ``round`` of this match begins on an empty board,
    the colours swapped (last game's yellow is red and moves first), each seat with a new
    token. ``clock``: the new game's clocks, under the same time control."""

    round: int
    clock: Clocks | None = None


GameEvent: TypeAlias = (
    SeatTaken
    | SeatAway
    | SeatBack
    | MovePlayed
    | TimedMove
    | GameOver
    | OfferMade
    | OfferDeclined
    | OfferWithdrawn
    | RematchStarted
)


class Logged(msgspec.Struct, frozen=True, gc=False):
    """An event at its place in its game's log: ``version`` 1 is the first event; ``at``
    when it was decided, in the core's time (what a process that folds the log needs to
    know when a clock started running or an offer was made)."""

    version: int
    event: GameEvent
    at: float = 0.0
