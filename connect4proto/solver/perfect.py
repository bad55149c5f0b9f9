"""The perfect player: it never lets a won or drawn position slip.

In every position it plays a move that keeps the exact score: when winning, a fastest win;
when losing, a longest resistance; among equal moves it picks at random, so games differ.
The moves come from a search (``fast.FastSolver``, or any solver with the same
``best_moves``) that stops at the book of 12-stone positions (``book``), so that the early
positions, which would take minutes, take milliseconds; its transposition table is kept from
one request to the next. What is known saves more: in a position of 12 stones the score is
in the book; after the opponent's move, the score is at least what it was before it (minus
the book's score of the position the opponent moved from, or the score the player kept with
its own last move), and exactly that when the opponent played its best: the search tries it
first.

Should the search use up its budget (a deadline put as nodes, the same on every machine),
the strong level's move is played instead, and the decision says so.

Pure computation: the randomness comes in as an argument. ``PerfectPlayer.load`` raises
``Unavailable`` where numba or the book is not installed; the levels below perfect play
without them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from . import BestMoves, Position
from .book import BOOK_STONES, Book, BookMissing
from .bots import Chance, Level, choose

__all__ = ["DEFAULT_BUDGET", "Decision", "PerfectPlayer", "Source", "Unavailable"]

#: Nodes a search may visit before the strong level's move is played instead: about 2 s at
#: the compiled search's speed on a slow machine, far above what positions take (see
#: ``benchmarks/bots.py``), so that the fallback is for the pathological.
DEFAULT_BUDGET = 10_000_000
#: Scores kept by recent moves remembered (about 100 bytes each), to be emptied beyond.
_KEPT = 100_000
#: Columns of a game near its end, with nothing left to search.
_NEAR_THE_END = tuple(int(c) - 1 for c in "12121221212134343443434356565665")


class Unavailable(Exception):
    """The perfect player cannot run here: why, and what to install."""


class Searcher(Protocol):
    def best_moves(
        self,
        position: Position,
        budget: int | None = None,
        *,
        score: int | None = None,
        at_least: int | None = None,
        first_of: Sequence[int] | None = None,
    ) -> BestMoves | None: ...


class Source(enum.Enum):
    SEARCH = "search"
    FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class Decision:
    """The column played, where it came from, and the position's score when known."""

    column: int
    source: Source
    score: int | None = None


class PerfectPlayer:
    """Plays perfectly with a ``searcher`` whose search stops at ``book``, one position at a
    time (a searcher is not to be shared between threads)."""

    def __init__(self, book: Book, searcher: Searcher) -> None:
        self.book = book
        self.searcher = searcher
        # The score kept by each of its recent moves, by the position it left: its score at
        # its next turn is at least that, whatever the opponent plays in between.
        self._kept: dict[int, int] = {}

    @classmethod
    def load(cls) -> PerfectPlayer:
        """The compiled search with the book (0.5 s: numba's import, and 21 MiB read)."""
        try:
            from .fast import FastSolver
        except ImportError as exc:
            raise Unavailable(
                f"the perfect level needs numba ({exc}): pip install 'connect4proto[perfect]'"
            ) from exc
        try:
            book = Book.load()
        except BookMissing as exc:
            raise Unavailable(str(exc)) from exc
        return cls(book, FastSolver(book=book))

    def warm_up(self) -> None:
        """Compile the search (numba does it on first use) by solving a position near the
        end of a game."""
        position = Position()
        for column in _NEAR_THE_END:
            position = position.play(column)
        self.searcher.best_moves(position)

    def decide(
        self,
        position: Position,
        rng: Chance,
        budget: int = DEFAULT_BUDGET,
        previous: Position | None = None,
    ) -> Decision:
        """A move that keeps the score of ``position`` (which must have a move left);
        ``previous``: the position before the opponent's last move, if there was one."""
        score = at_least = None
        if position.moves == BOOK_STONES:
            score = self.book.score(position)
        elif previous is not None:
            bounds = [self._kept.get(previous.key)]
            if previous.moves == BOOK_STONES:
                known = self.book.score(previous)
                bounds.append(None if known is None else -known)
            at_least = max((bound for bound in bounds if bound is not None), default=None)
        # Any of the best moves, with equal chances: the first that keeps the score in a
        # shuffled order (the search stops there).
        order = list(range(7))
        rng.shuffle(order)
        best = self.searcher.best_moves(
            position, budget, score=score, at_least=at_least, first_of=order
        )
        if best is not None:
            column = best.columns[0]
            if len(self._kept) >= _KEPT:
                self._kept.clear()
            self._kept[position.play(column).key] = best.score
            return Decision(column, Source.SEARCH, best.score)
        return Decision(choose(position, Level.STRONG, rng), Source.FALLBACK)
