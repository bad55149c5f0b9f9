"""The solver at native speed: the reference's search, compiled by numba.

The same search as :class:`connect4proto.solver.Solver` (the pure-Python reference the tests
compare this one against): negamax on null windows narrowed from both ends, no move that hands
over a win, moves ordered by the winning cells they make, a transposition table of both
bounds looked at for the children too, and the book 12 stones in (the tests count the same
nodes in both). What differs is how the table is stored: three flat arrays of a prime size
(the slot is the key modulo the size, and the low 32 bits of the key tell two keys of one slot
apart, which is exact because the size times 2**32 exceeds the 49-bit keys). A search stops
by itself after a budget of nodes, a request's deadline put as work, the same on every
machine. It runs at 3-10 M nodes per second (Pons' middle-easy set in 37 us a position, as
his C++ does), 20 to 70 times the reference.

numba compiles these functions once per machine (about 3 s, cached beside the module
afterwards: 0.5 s); ``PerfectPlayer.warm_up`` does it on purpose, before the first request.
Importing this module raises ``ImportError`` where numba is not installed: the computer's
levels below perfect play do not need it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from . import _ETC_BEFORE, _NO_LIMIT, ORDER, BestMoves, Position
from .book import BOOK_STONES, Book

__all__ = ["FastSolver"]

_U = np.uint64
_SIZE = 42
_BOTTOM = _U(sum(1 << (c * 7) for c in range(7)))
_BOARD = _U(sum(1 << (c * 7) for c in range(7)) * 63)
_COLUMNS = np.array([63 << (c * 7) for c in range(7)], dtype=np.uint64)
_ORDER = np.array(ORDER, dtype=np.int64)
_ALL_COLUMNS = np.arange(7, dtype=np.int64)
_ONE, _TWO, _THREE = _U(1), _U(2), _U(3)
_VERTICAL, _DIAGONAL_DOWN, _DIAGONAL_UP = _U(7), _U(6), _U(8)
_LOW32 = _U(0xFFFFFFFF)
#: No bound stored: far outside every score (and every window), so never a cut.
_NO_UPPER = np.int8(127)
_NO_LOWER = np.int8(-128)
#: The counters: nodes searched, the budget, and whether the budget ran out.
_NODES, _BUDGET, _STOPPED = 0, 1, 2
_BOOK_STONES = BOOK_STONES
_NOT_IN_BOOK = 1000
#: No score known, no lower bound known (outside every score).
_UNKNOWN = 1000
_NO_BOUND = -1000
#: The slot (the key modulo an odd size) and the low 32 bits tell every 49-bit key apart when
#: the size exceeds 2**49 / 2**32 (the Chinese remainder theorem).
_SMALLEST_TABLE = 1 << 17
#: A prime: keys spread evenly over the slots. 1 M entries (6 MiB) stay in the caches
#: better than 8 M (48 MiB): the perfect player searches more nodes with them (10.0 M
#: against 9.3 M over 60 games) but faster (6.7 against 4.5 M nodes/s), and its slowest
#: moves take 80 ms instead of 120 (``benchmarks/bots.py``).
DEFAULT_TABLE_SIZE = 1_048_573


@njit(cache=True, nogil=True, inline="always")
def _winning_cells(stones: np.uint64, mask: np.uint64) -> np.uint64:  # pragma: no cover
    cells = (stones << _ONE) & (stones << _TWO) & (stones << _THREE)
    for shift in (_VERTICAL, _DIAGONAL_DOWN, _DIAGONAL_UP):
        pair = (stones << shift) & (stones << (_TWO * shift))
        cells |= pair & (stones << (_THREE * shift))
        cells |= pair & (stones >> shift)
        pair = (stones >> shift) & (stones >> (_TWO * shift))
        cells |= pair & (stones << shift)
        cells |= pair & (stones >> (_THREE * shift))
    return cells & (_BOARD ^ mask)


@njit(cache=True, nogil=True, inline="always")
def _bit_count(x: np.uint64) -> int:  # pragma: no cover
    x = x - ((x >> _ONE) & _U(0x5555555555555555))
    x = (x & _U(0x3333333333333333)) + ((x >> _TWO) & _U(0x3333333333333333))
    x = (x + (x >> _U(4))) & _U(0x0F0F0F0F0F0F0F0F)
    return int((x * _U(0x0101010101010101)) >> _U(56))


@njit(cache=True, nogil=True)
def _book_code(
    current: np.uint64, mask: np.uint64, moves: int, mirror: bool
) -> int:  # pragma: no cover - compiled; the same as book.code
    first = current if moves % 2 == 0 else current ^ mask
    code = np.uint64(0)
    length = 0
    for index in range(7):
        column = 6 - index if mirror else index
        for row in range(6):
            cell = _ONE << _U(column * 7 + row)
            if not mask & cell:
                break
            code = (code << _TWO) | (_U(2) if first & cell else _THREE)
            length += 2
        code <<= _ONE
        length += 1
    code <<= _U(32 - length)  # the last 0 bit
    signed = int(code)
    return signed - (1 << 32) if signed >= 1 << 31 else signed


@njit(cache=True, nogil=True)
def _book_score(
    current: np.uint64, mask: np.uint64, book: np.ndarray, book_scores: np.ndarray
) -> int:  # pragma: no cover - compiled; the same as Book.score
    for mirror in (False, True):
        code = np.int32(_book_code(current, mask, _BOOK_STONES, mirror))
        index = np.searchsorted(book, code)
        if index < book.size and book[index] == code:
            return int(book_scores[index])
    return _NOT_IN_BOOK


@njit(cache=True, nogil=True)
def _negamax(
    current: np.uint64,
    mask: np.uint64,
    moves: int,
    alpha: int,
    keys: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    book: np.ndarray,
    book_scores: np.ndarray,
    counters: np.ndarray,
) -> int:  # pragma: no cover - compiled; compared with the reference by the tests
    counters[_NODES] += 1
    if counters[_NODES] > counters[_BUDGET]:
        counters[_STOPPED] = 1
        return 0
    opponent = current ^ mask
    threats = _winning_cells(opponent, mask)
    possible = (mask + _BOTTOM) & _BOARD
    forced = possible & threats
    if forced:
        if forced & (forced - _ONE):
            return -((_SIZE - moves) // 2)
        possible = forced
    candidates = possible & ~(threats >> _ONE)
    if not candidates:
        return -((_SIZE - moves) // 2)
    if moves == _BOOK_STONES and book.size:
        known = _book_score(current, mask, book, book_scores)
        if known != _NOT_IN_BOOK:
            return known
    if moves >= _SIZE - 2:
        return 0
    lowest = -((_SIZE - 2 - moves) // 2)
    if lowest > alpha:
        return lowest
    key = current + mask
    slot = np.int64(key % _U(keys.size))
    tag = np.uint32(key & _LOW32)
    highest = (_SIZE - 1 - moves) // 2
    if keys[slot] == tag:
        if lower[slot] > alpha:
            return int(lower[slot])
        highest = min(highest, int(upper[slot]))
    if highest <= alpha:
        return highest
    if moves < _ETC_BEFORE:
        for column in range(7):
            move = candidates & _COLUMNS[column]
            if move:
                child = opponent + (mask | move)
                child_slot = np.int64(child % _U(keys.size))
                if keys[child_slot] == np.uint32(child & _LOW32):
                    bound = -int(upper[child_slot])
                    if bound > alpha:
                        return bound
    chosen = np.zeros(7, dtype=np.uint64)
    made = np.zeros(7, dtype=np.int64)
    count = 0
    for index in range(7):
        move = candidates & _COLUMNS[_ORDER[index]]
        if move:
            cells = _bit_count(_winning_cells(current | move, mask | move))
            place = count
            while place > 0 and made[place - 1] < cells:  # stable: the centre first
                chosen[place] = chosen[place - 1]
                made[place] = made[place - 1]
                place -= 1
            chosen[place] = move
            made[place] = cells
            count += 1
    for index in range(count):
        move = chosen[index]
        score = -_negamax(
            opponent,
            mask | move,
            moves + 1,
            -alpha - 1,
            keys,
            upper,
            lower,
            book,
            book_scores,
            counters,
        )
        if counters[_STOPPED]:
            return 0
        if score > alpha:
            if keys[slot] != tag:
                keys[slot] = tag
                upper[slot] = _NO_UPPER
            lower[slot] = np.int8(score)
            return score
    if keys[slot] != tag:
        keys[slot] = tag
        lower[slot] = _NO_LOWER
    upper[slot] = np.int8(alpha)
    return alpha


@njit(cache=True, nogil=True)
def _solve(
    current: np.uint64,
    mask: np.uint64,
    moves: int,
    at_least: int,
    keys: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    book: np.ndarray,
    book_scores: np.ndarray,
    counters: np.ndarray,
) -> int:  # pragma: no cover - compiled; compared with the reference by the tests
    if _winning_cells(current, mask) & ((mask + _BOTTOM) & _BOARD):
        return (_SIZE + 1 - moves) // 2
    low = max(-((_SIZE - moves) // 2), at_least)
    high = (_SIZE + 1 - moves) // 2
    first = at_least > -_SIZE
    while low < high:
        middle = low + (high - low) // 2
        half_low = -((-low) // 2) if low < 0 else low // 2
        half_high = -((-high) // 2) if high < 0 else high // 2
        if first:
            middle = low  # is it exactly the bound?
        elif middle <= 0 and half_low < middle:
            middle = half_low
        elif middle >= 0 and half_high > middle:
            middle = half_high
        first = False
        result = _negamax(
            current, mask, moves, middle, keys, upper, lower, book, book_scores, counters
        )
        if counters[_STOPPED]:
            return 0
        if result <= middle:
            high = result
        else:
            low = result
    return low


@njit(cache=True, nogil=True)
def _best_moves(
    current: np.uint64,
    mask: np.uint64,
    moves: int,
    known: int,
    at_least: int,
    order: np.ndarray,
    first_only: bool,
    keys: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    book: np.ndarray,
    book_scores: np.ndarray,
    counters: np.ndarray,
) -> int:  # pragma: no cover - compiled; compared with the reference by the tests
    """The position's score and the columns that keep it, packed as ``score * 128 + bits``
    (bit ``c`` for column ``c``); 0 when the budget ran out (see ``Solver.best_moves``).
    ``known``: the score if known (else ``_UNKNOWN``); ``at_least``: a lower bound; the
    columns are tried in ``order``, and with ``first_only`` the first that keeps the score
    ends the search."""
    possible = (mask + _BOTTOM) & _BOARD
    wins = _winning_cells(current, mask) & possible
    best = 0
    if wins:
        for column in range(7):
            if wins & _COLUMNS[column]:
                best |= 1 << column
        return ((_SIZE + 1 - moves) // 2) * 128 + best
    if known != _UNKNOWN:
        score = known
    else:
        score = _solve(
            current, mask, moves, at_least, keys, upper, lower, book, book_scores, counters
        )
        if counters[_STOPPED]:
            return 0
    opponent = current ^ mask
    for column in order:
        move = possible & _COLUMNS[column]
        if not move:
            continue
        child_mask = mask | move
        if _winning_cells(opponent, child_mask) & ((child_mask + _BOTTOM) & _BOARD):
            reply = (_SIZE - moves) // 2  # the opponent wins on its next stone
        else:
            reply = _negamax(
                opponent,
                child_mask,
                moves + 1,
                -score,
                keys,
                upper,
                lower,
                book,
                book_scores,
                counters,
            )
            if counters[_STOPPED]:
                return 0
        if reply <= -score:
            best |= 1 << column
            if first_only:
                break
    return score * 128 + best


class FastSolver:
    """The reference :class:`~connect4proto.solver.Solver`'s interface at native speed.

    ``table_size``: the transposition table's entries (6 bytes each), kept between searches;
    odd and above 2**17, so that a slot and 32 bits of a key name one key (a prime spreads
    the keys best). ``book``: where the search stops 12 stones in (``book.Book``).
    """

    def __init__(self, table_size: int = DEFAULT_TABLE_SIZE, book: Book | None = None) -> None:
        if table_size % 2 == 0 or table_size <= _SMALLEST_TABLE:
            raise ValueError(f"table_size must be odd and above 2**17, not {table_size}")
        if book is None:
            self._book = np.zeros(0, dtype=np.int32)
            self._book_scores = np.zeros(0, dtype=np.int8)
        else:
            self._book = np.frombuffer(book.codes, dtype=np.int32)
            self._book_scores = np.frombuffer(book.scores, dtype=np.int8)
        self._keys = np.full(table_size, 0xFFFFFFFF, dtype=np.uint32)
        self._upper = np.full(table_size, _NO_UPPER, dtype=np.int8)
        self._lower = np.full(table_size, _NO_LOWER, dtype=np.int8)
        self._counters = np.zeros(3, dtype=np.int64)
        self.nodes = 0

    def solve(self, position: Position) -> int:
        """The exact score of ``position``."""
        counters = self._start(None)
        score = _solve(
            _U(position.current),
            _U(position.mask),
            position.moves,
            _NO_BOUND,
            self._keys,
            self._upper,
            self._lower,
            self._book,
            self._book_scores,
            counters,
        )
        self.nodes += int(counters[_NODES])
        return int(score)

    def best_moves(
        self,
        position: Position,
        budget: int | None = None,
        *,
        score: int | None = None,
        at_least: int | None = None,
        first_of: Sequence[int] | None = None,
    ) -> BestMoves | None:
        """As ``Solver.best_moves``: the score and every column that keeps it (or the first
        of ``first_of`` that does), or ``None`` when more than ``budget`` nodes would be
        searched."""
        counters = self._start(budget)
        packed = _best_moves(
            _U(position.current),
            _U(position.mask),
            position.moves,
            _UNKNOWN if score is None else score,
            _NO_BOUND if at_least is None else at_least,
            _ALL_COLUMNS if first_of is None else np.array(first_of, dtype=np.int64),
            first_of is not None,
            self._keys,
            self._upper,
            self._lower,
            self._book,
            self._book_scores,
            counters,
        )
        self.nodes += int(counters[_NODES])
        return None if counters[_STOPPED] else BestMoves.unpack(int(packed))

    def clear(self) -> None:
        """Forget what the table holds, and the nodes counted (as a new solver would)."""
        self._keys.fill(0xFFFFFFFF)
        self._upper.fill(_NO_UPPER)
        self._lower.fill(_NO_LOWER)
        self.nodes = 0

    def _start(self, budget: int | None) -> np.ndarray:
        counters = self._counters
        counters[_NODES] = 0
        counters[_BUDGET] = _NO_LIMIT if budget is None else budget
        counters[_STOPPED] = 0
        return counters
