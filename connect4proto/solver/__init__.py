"""Connect Four solved: the exact game-theoretic score of a position, by search.

Scores follow Pascal Pons' convention (and ``solver-testsets``): 0 is a draw; positive if the
side to move wins, negative if it loses; a player who wins with their k-th stone scores
22 - k, so the empty board is +1 (the first player wins with their last stone at the latest)
and the fastest possible win, on one's fourth stone, scores 18.

The search is the textbook one, written here from its description: bitboards, negamax with
alpha-beta pruning, every search a null window ("is the score above this?") and the
window narrowed from both ends, a transposition table of both bounds (a search that fails
low leaves an upper bound, one that fails high a lower bound; a child's upper bound can cut
before the child is searched), no move that hands the
opponent an immediate win, and moves ordered by how many winning cells they make (centre
columns first among equals). This is the pure-Python reference: ``fast.FastSolver`` runs the
same search compiled, and the tests hold it to this one.

Pure computation: no I/O, no threads, no clock. ``python -m connect4proto.solver`` reads
positions from standard input (``__main__``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .book import Book

__all__ = ["BestMoves", "InvalidPosition", "Position", "Solver", "position_from_moves"]

WIDTH = 7
HEIGHT = 6
SIZE = WIDTH * HEIGHT
_H1 = HEIGHT + 1  # a sentinel bit above each column: shifted lines never wrap
_BOTTOM = sum(1 << (c * _H1) for c in range(WIDTH))
_BOARD = _BOTTOM * ((1 << HEIGHT) - 1)
_COLUMNS = tuple(((1 << HEIGHT) - 1) << (c * _H1) for c in range(WIDTH))
_TOPS = tuple(1 << (HEIGHT - 1 + c * _H1) for c in range(WIDTH))
#: Centre columns first: they take part in the most lines.
ORDER = (3, 2, 4, 1, 5, 0, 6)
#: The lowest and highest scores: losing on the opponent's 4th stone, winning on one's own.
MIN_SCORE = -(SIZE // 2) + 3
MAX_SCORE = (SIZE + 1) // 2 - 3


class InvalidPosition(ValueError):
    """A sequence of moves that is not a position to solve: why, in words."""


@dataclass(frozen=True, slots=True)
class BestMoves:
    """A position's exact ``score`` and every column whose move keeps it: when winning, the
    fastest wins; when losing, the longest resistance."""

    score: int
    columns: tuple[int, ...]

    @classmethod
    def unpack(cls, packed: int) -> BestMoves:
        """From ``score * 128 + bits`` (bit ``c`` for column ``c``), the compiled form."""
        bits = packed & 127
        return cls(packed >> 7, tuple(c for c in range(WIDTH) if bits >> c & 1))


#: The opening book's positions have this many stones (``book.BOOK_STONES``).
_BOOK_STONES = 12
#: The children's table entries are looked at (enhanced transposition cutoffs) in positions
#: of fewer stones than this: far from the end, where a cut saves a large subtree (closer,
#: the lookups cost more than they save).
_ETC_BEFORE = 30
#: No budget: more nodes than any search visits.
_NO_LIMIT = 1 << 62


class _OutOfBudget(Exception):
    """The search used up its budget of nodes."""


@dataclass(frozen=True, slots=True)
class Position:
    """A position: ``current``, the stones of the side to move; ``mask``, all stones;
    ``moves``, how many were played. Column ``c``, row ``r`` is bit ``c * 7 + r``."""

    current: int = 0
    mask: int = 0
    moves: int = 0

    def can_play(self, column: int) -> bool:
        return not self.mask & _TOPS[column]

    def play(self, column: int) -> Position:
        """The position after the side to move drops a stone in ``column``."""
        move = (self.mask + (1 << (column * _H1))) & _COLUMNS[column]
        return Position(self.current ^ self.mask, self.mask | move, self.moves + 1)

    def is_winning_move(self, column: int) -> bool:
        move = (self.mask + (1 << (column * _H1))) & _COLUMNS[column]
        return bool(_winning_cells(self.current, self.mask) & move)

    def can_win_next(self) -> bool:
        return bool(_winning_cells(self.current, self.mask) & _possible(self.mask))

    @property
    def key(self) -> int:
        """Unique per position: the stones of the side to move, plus one bit per column
        above its top stone."""
        return self.current + self.mask


def position_from_moves(moves: str) -> Position:
    """The position after ``moves`` (the columns played from the first move, digits 1-7).

    Raises ``InvalidPosition`` for a character that is not a column, a move in a full
    column, or a move after the game was won (there is nothing left to solve).
    """
    position = Position()
    for index, char in enumerate(moves, start=1):
        if char not in "1234567":
            raise InvalidPosition(f"move {index}: {char!r} is not a column (digits 1-7)")
        column = int(char) - 1
        if not position.can_play(column):
            raise InvalidPosition(f"move {index}: column {char} is full")
        if position.is_winning_move(column):
            raise InvalidPosition(f"move {index}: column {char} wins the game: nothing to solve")
        position = position.play(column)
    return position


def _possible(mask: int) -> int:
    """The cell each column would take next (none in a full column)."""
    return (mask + _BOTTOM) & _BOARD


def _winning_cells(stones: int, mask: int) -> int:
    """The empty cells that would give ``stones`` four in a row (playable now or not)."""
    # Vertical: three stones right below.
    cells = (stones << 1) & (stones << 2) & (stones << 3)
    for shift in (_H1, _H1 - 1, _H1 + 1):  # horizontal, and both diagonals
        pair = (stones << shift) & (stones << 2 * shift)
        cells |= pair & (stones << 3 * shift)  # three to one side
        cells |= pair & (stones >> shift)  # two to one side, one to the other
        pair = (stones >> shift) & (stones >> 2 * shift)
        cells |= pair & (stones << shift)
        cells |= pair & (stones >> 3 * shift)
    return cells & (_BOARD ^ mask)


class Solver:
    """Solves positions, keeping what it learnt (a transposition table) between them.

    ``table_size``: the most entries kept for each bound; a table is emptied when it is full
    (so that a long-lived solver does not grow without limit). ``book``: where the search
    stops 12 stones in (``book.Book``). ``nodes``: positions searched so far, for benchmarks.
    """

    def __init__(self, table_size: int = 1 << 22, book: Book | None = None) -> None:
        self._book = book
        self._upper: dict[int, int] = {}
        self._lower: dict[int, int] = {}
        self._table_size = table_size
        self._limit = _NO_LIMIT
        self.nodes = 0

    def solve(self, position: Position) -> int:
        """The exact score of ``position`` (see the module's docstring)."""
        self._limit = _NO_LIMIT
        return self._solve(position, None)

    def best_moves(
        self,
        position: Position,
        budget: int | None = None,
        *,
        score: int | None = None,
        at_least: int | None = None,
        first_of: Sequence[int] | None = None,
    ) -> BestMoves | None:
        """The score of ``position`` and every column that keeps it, or ``None`` when more
        than ``budget`` nodes would be searched (a deadline put as work: the same on every
        machine). The position must have a move left.

        What is known saves work: its ``score`` (from the book), or a score it has
        ``at_least`` (after a move of the opponent's from a position of known score: minus
        that score, exactly so when the move was the opponent's best), which is tried first.
        With ``first_of`` (an order of the columns), only the first column in that order that
        keeps the score is given, and the others are not looked at: the costly part is
        proving that a move keeps the score, and a player needs only one (shuffled, it is
        any of the best with equal chances).
        """
        self._limit = _NO_LIMIT if budget is None else self.nodes + budget
        try:
            return self._best_moves(position, score, at_least, first_of)
        except _OutOfBudget:
            return None

    def _best_moves(
        self,
        position: Position,
        score: int | None,
        at_least: int | None,
        first_of: Sequence[int] | None,
    ) -> BestMoves:
        playable = [c for c in range(WIDTH) if position.can_play(c)]
        wins = tuple(c for c in playable if position.is_winning_move(c))
        if wins:
            return BestMoves((SIZE + 1 - position.moves) // 2, wins)
        if score is None:
            score = self._solve(position, at_least)
        # A column keeps the score when the opponent's score after it is at most -score
        # (it cannot be lower: score is the best of all): one null window each.
        best = []
        for column in range(WIDTH) if first_of is None else first_of:
            if not position.can_play(column):
                continue
            child = position.play(column)
            if child.can_win_next():
                reply = (SIZE - position.moves) // 2
            else:
                reply = self._negamax(child.current, child.mask, child.moves, -score)
            if reply <= -score:
                best.append(column)
                if first_of is not None:
                    break
        return BestMoves(score, tuple(best))

    def _solve(self, position: Position, at_least: int | None) -> int:
        if position.can_win_next():
            return (SIZE + 1 - position.moves) // 2
        low = -((SIZE - position.moves) // 2)
        high = (SIZE + 1 - position.moves) // 2
        first = at_least is not None
        if at_least is not None:
            low = max(low, at_least)
        # Narrow [low, high] with null-window searches: first whether the score is exactly
        # the bound known, if one is; then near 0 (most positions are close to a draw), then
        # halfway towards the bounds.
        while low < high:
            middle = low + (high - low) // 2
            if first:
                middle = low
            elif middle <= 0 and _half(low) < middle:
                middle = _half(low)
            elif middle >= 0 and _half(high) > middle:
                middle = _half(high)
            first = False
            result = self._negamax(position.current, position.mask, position.moves, middle)
            if result <= middle:
                high = result
            else:
                low = result
        return low

    def _negamax(self, current: int, mask: int, moves: int, alpha: int) -> int:
        """Whether the score is above ``alpha`` (a null window): a score above ``alpha``,
        which is then a lower bound, or one at or below it, then an upper bound. The side to
        move cannot win at once (the caller checked)."""
        self.nodes += 1
        if self.nodes > self._limit:
            raise _OutOfBudget
        opponent = current ^ mask
        threats = _winning_cells(opponent, mask)
        possible = _possible(mask)
        forced = possible & threats
        if forced:
            if forced & (forced - 1):
                return -((SIZE - moves) // 2)  # two threats to block at once: lost
            possible = forced
        # Never play right below a cell where the opponent would then win.
        candidates = possible & ~(threats >> 1)
        if not candidates:
            return -((SIZE - moves) // 2)
        if moves == _BOOK_STONES and self._book is not None:
            known = self._book.score(Position(current, mask, moves))
            if known is not None:
                return known
        if moves >= SIZE - 2:
            return 0  # the last two stones cannot make a four that the opponent did not stop
        lowest = -((SIZE - 2 - moves) // 2)  # the opponent cannot win on its next stone
        if lowest > alpha:
            return lowest
        key = current + mask
        known = self._lower.get(key)
        if known is not None and known > alpha:
            return known
        highest = (SIZE - 1 - moves) // 2  # we cannot win on this stone
        known = self._upper.get(key)
        if known is not None and known < highest:
            highest = known
        if highest <= alpha:
            return highest
        if moves < _ETC_BEFORE:
            # A child whose upper bound is known may already prove a move beats alpha.
            for column in range(WIDTH):
                move = candidates & _COLUMNS[column]
                if move:
                    known = self._upper.get(opponent + (mask | move))
                    if known is not None and -known > alpha:
                        return -known
        # The moves that make the most winning cells first; the centre first among equals.
        scored: list[tuple[int, int, int]] = []
        for column in ORDER:
            move = candidates & _COLUMNS[column]
            if move:
                made = _winning_cells(current | move, mask | move).bit_count()
                scored.append((-made, len(scored), move))
        scored.sort()
        for _, _, move in scored:
            score = -self._negamax(opponent, mask | move, moves + 1, -alpha - 1)
            if score > alpha:
                self._store(self._lower, key, score)  # a move beats alpha: a lower bound
                return score
        self._store(self._upper, key, alpha)  # no move beats alpha: an upper bound
        return alpha

    def _store(self, table: dict[int, int], key: int, bound: int) -> None:
        if len(table) >= self._table_size:
            table.clear()
        table[key] = bound


def _half(score: int) -> int:
    """``score`` halved towards zero (as C's integer division does)."""
    return -((-score) // 2) if score < 0 else score // 2
