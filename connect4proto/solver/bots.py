"""The computer's levels below perfect play: what each would play in a position.

(The level names include ``perfect``, which plays through ``perfect.PerfectPlayer``.)

Pure computation: the randomness comes in as an argument (a ``random.Random`` the caller
seeds), so a game against the computer can be replayed exactly in a test.

- ``beginner`` plays plausible moves (the centre more often) and makes real mistakes: it takes
  an immediate win, but blocks an immediate threat only half of the time.
- ``casual`` always takes a win and blocks a threat, never plays right below a cell where the
  opponent would win, and otherwise weighs each move by the reply to it (one move ahead).
- ``strong`` searches six moves ahead (negamax with alpha-beta) and judges the positions it
  reaches by their threats: the empty cells that would complete a four, an odd-row threat
  being worth more to the first player and an even-row one to the second (they decide the
  end of a full board).
Among moves it judges equal, each level picks at random, so that games differ.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from . import _COLUMNS, _H1, ORDER, SIZE, Position, _possible, _winning_cells

__all__ = ["Chance", "Level", "choose"]

T = TypeVar("T")


class Chance(Protocol):
    """Where the randomness comes from (``random.Random`` is one; seed it to replay)."""

    def random(self) -> float: ...

    def choice(self, seq: Sequence[T]) -> T: ...

    def choices(self, population: Sequence[T], weights: Sequence[float]) -> list[T]: ...

    def shuffle(self, seq: list[Any]) -> None: ...


class Level(enum.Enum):
    BEGINNER = "beginner"
    CASUAL = "casual"
    STRONG = "strong"
    #: Plays perfectly (``perfect.PerfectPlayer``): it needs numba and the book.
    PERFECT = "perfect"

    __hash__ = object.__hash__


#: How often a beginner sees the opponent's immediate threat.
_BEGINNER_BLOCKS = 0.5
#: The centre columns take part in the most fours: a beginner plays them more often.
_CENTRE_WEIGHTS = (1, 2, 3, 4, 3, 2, 1)
_STRONG_DEPTH = 6
_WIN = 1_000_000
#: Rows 1, 3 and 5 counted from 1 at the bottom (bits 0, 2, 4 of each column).
_ODD_ROWS = sum(0b10101 << (c * _H1) for c in range(7))


def choose(position: Position, level: Level, rng: Chance) -> int:
    """The column the computer plays at ``level``, below perfect (the position must have a
    move left)."""
    if level is Level.PERFECT:
        raise ValueError("the perfect level plays through perfect.PerfectPlayer.decide")
    playable = [c for c in range(7) if position.can_play(c)]
    if not playable:
        raise ValueError("the board is full: there is no move to choose")
    wins = [c for c in playable if position.is_winning_move(c)]
    if wins:
        return rng.choice(wins)
    threats = _threatened(position)
    if level is Level.BEGINNER:
        if threats and rng.random() < _BEGINNER_BLOCKS:
            return rng.choice(threats)
        weights = [_CENTRE_WEIGHTS[c] for c in playable]
        return rng.choices(playable, weights)[0]
    if threats:
        return rng.choice(threats)  # a second threat loses anyway
    safe = [c for c in playable if not _gives_a_win(position, c)] or playable
    depth = 2 if level is Level.CASUAL else _STRONG_DEPTH
    scores = {c: -_negamax(position.play(c), depth - 1, -_WIN - 1, _WIN + 1) for c in safe}
    best = max(scores.values())
    return rng.choice([c for c in safe if scores[c] == best])


def _threatened(position: Position) -> list[int]:
    """The columns where the opponent would win with its next stone."""
    opponent = position.current ^ position.mask
    cells = _winning_cells(opponent, position.mask) & _possible(position.mask)
    return [c for c in range(7) if cells & _COLUMNS[c]]


def _gives_a_win(position: Position, column: int) -> bool:
    """Whether playing ``column`` lets the opponent win at once on top of it."""
    after = position.play(column)
    return after.can_win_next()


def _negamax(position: Position, depth: int, alpha: int, beta: int) -> int:
    """The position's value for the side to move, ``depth`` moves ahead."""
    if position.moves == SIZE:
        return 0
    if position.can_win_next():
        return _WIN - position.moves  # sooner is better
    if depth == 0:
        return _judge(position)
    value = -_WIN - 1
    for column in ORDER:
        if position.can_play(column):
            value = max(value, -_negamax(position.play(column), depth - 1, -beta, -alpha))
            alpha = max(alpha, value)
            if alpha >= beta:
                break
    return value


def _judge(position: Position) -> int:
    """Threats, for the side to move against the other: an odd-row threat is worth more to
    the first player, an even-row one to the second."""
    mask = position.mask
    mine = _winning_cells(position.current, mask)
    theirs = _winning_cells(position.current ^ mask, mask)
    first = position.moves % 2 == 0  # the side to move moved first
    good_rows_mine = _ODD_ROWS if first else ~_ODD_ROWS
    good_rows_theirs = ~_ODD_ROWS if first else _ODD_ROWS
    return (
        2 * (mine & good_rows_mine).bit_count()
        + (mine & ~good_rows_mine).bit_count()
        - 2 * (theirs & good_rows_theirs).bit_count()
        - (theirs & ~good_rows_theirs).bit_count()
    )
