"""Connect Four solved: the exact game-theoretic score of a position, by search.

Scores follow Pascal Pons' convention (and ``solver-testsets``): 0 is a draw; positive if the
side to move wins, negative if it loses; a player who wins with their k-th stone scores
22 - k, so the empty board is +1 (the first player wins with their last stone at the latest)
and the fastest possible win, on one's fourth stone, scores 18.

The search is the textbook one, written here from its description: bitboards, negamax with
alpha-beta pruning, every search a null window ("is the score above this?") and the
window narrowed from both ends, a transposition table of upper
bounds, no move that hands the opponent an immediate win, and moves ordered by how many
winning cells they make (centre columns first among equals). This is the pure-Python
reference: a faster implementation must agree with it.

Pure computation: no I/O, no threads, no clock. ``python -m connect4proto.solver`` reads
positions from standard input (``__main__``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InvalidPosition", "Position", "Solver", "position_from_moves"]

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

    ``table_size``: the most entries kept; the table is emptied when it is full (a bound, so
    that a long-lived solver does not grow without limit). ``nodes``: positions searched so
    far, for benchmarks.
    """

    def __init__(self, table_size: int = 1 << 22) -> None:
        self._table: dict[int, int] = {}
        self._table_size = table_size
        self.nodes = 0

    def solve(self, position: Position) -> int:
        """The exact score of ``position`` (see the module's docstring)."""
        if position.can_win_next():
            return (SIZE + 1 - position.moves) // 2
        low = -((SIZE - position.moves) // 2)
        high = (SIZE + 1 - position.moves) // 2
        # Narrow [low, high] with null-window searches, probing near 0 first (most
        # positions are close to a draw), then halfway towards the bounds.
        while low < high:
            middle = low + (high - low) // 2
            if middle <= 0 and _half(low) < middle:
                middle = _half(low)
            elif middle >= 0 and _half(high) > middle:
                middle = _half(high)
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
        if moves >= SIZE - 2:
            return 0  # the last two stones cannot make a four that the opponent did not stop
        lowest = -((SIZE - 2 - moves) // 2)  # the opponent cannot win on its next stone
        if lowest > alpha:
            return lowest
        key = current + mask
        highest = self._table.get(key)
        if highest is None:
            highest = (SIZE - 1 - moves) // 2  # we cannot win on this stone
        if highest <= alpha:
            return highest
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
                return score
        table = self._table
        if len(table) >= self._table_size:
            table.clear()
        table[key] = alpha  # no move beats alpha: an upper bound
        return alpha


def _half(score: int) -> int:
    """``score`` halved towards zero (as C's integer division does)."""
    return -((-score) // 2) if score < 0 else score // 2
