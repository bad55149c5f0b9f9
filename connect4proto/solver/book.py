"""The opening book: the exact score of every position of 12 stones, looked up, not searched.

A search from an early position takes minutes (the empty board takes billions of nodes);
with the book it stops 12 stones in, where every position is known. The book is the 12-ply
database of ``bitbully-databases`` (MIT-licensed, by Markus Thill): 4,200,899 positions, one of
each mirror pair, each with its exact distance to the end. It holds every position of 12
stones in which the side to move (the first player) cannot win at once, which is every one
the search asks about (it looks for a win at once before anything else).

Each entry is 5 bytes: the position's code (4 bytes, big-endian, signed; see ``code``) and
its value (1 byte, signed): 0 a draw, 69 + 2 s for a win of score s, -68 + 2 s for a loss (so
a win on the first player's 8th stone, score 14, is 97). The values become scores once, as
the book is read (``score_of``, through a table of the 256 bytes); both searches look them up
as they are. The tests check the book against the search on positions of its own.

Pure Python (``array`` and ``bisect``), so that the reference solver can use it as well as
the fast one.
"""

from __future__ import annotations

import bisect
import sys
from array import array
from importlib import resources

from . import _BOOK_STONES, Position

__all__ = ["BOOK_STONES", "Book", "BookMissing", "code", "mirror", "score_of"]

#: The book knows positions of this many stones.
BOOK_STONES = _BOOK_STONES
_RECORD = 5
_COLUMN = (1 << 7) - 1
_ASSET = "assets/book_12ply_distances.dat"


class BookMissing(LookupError):
    """The book's package (``bitbully-databases``) is not installed."""


class Book:
    """``codes``: the positions' codes in ascending order (signed 32-bit); ``scores``: their
    scores (signed bytes)."""

    def __init__(self, codes: array[int], scores: array[int]) -> None:
        self.codes = codes
        self.scores = scores

    @classmethod
    def from_bytes(cls, data: bytes) -> Book:
        """From the database's file: 5-byte records, ascending by code."""
        if len(data) % _RECORD:
            raise ValueError(f"a book is made of {_RECORD}-byte records: {len(data)} bytes")
        # Split the records in C (slices with a step), then into native byte order.
        count = len(data) // _RECORD
        big_endian = bytearray(4 * count)
        for byte in range(4):
            big_endian[byte::4] = data[byte::_RECORD]
        codes = array("i")
        codes.frombytes(bytes(big_endian))
        if sys.byteorder == "little":
            codes.byteswap()
        scores = array("b")
        scores.frombytes(data[4::_RECORD].translate(_SCORE_OF_BYTE))
        return cls(codes, scores)

    @classmethod
    def load(cls) -> Book:
        """The book from the installed ``bitbully-databases`` (about 0.2 s, 21 MiB)."""
        try:
            asset = resources.files("bitbully_databases").joinpath(_ASSET)
        except ModuleNotFoundError as exc:
            raise BookMissing(
                "the opening book comes with bitbully-databases: "
                "pip install 'connect4proto[perfect]'"
            ) from exc
        return cls.from_bytes(asset.read_bytes())

    def __len__(self) -> int:
        return len(self.codes)

    def score(self, position: Position) -> int | None:
        """The exact score of ``position`` (of ``BOOK_STONES`` stones), or ``None`` when the
        book does not hold it (the side to move can win at once)."""
        codes = self.codes
        for mirror in (False, True):
            wanted = code(position, mirror)
            index = bisect.bisect_left(codes, wanted)
            if index < len(codes) and codes[index] == wanted:
                return self.scores[index]
        return None


def score_of(value: int) -> int:
    """A stored value as a score (see the module's docstring)."""
    if value > 0:
        return (value - 69) // 2
    if value < 0:
        return (value + 68) // 2
    return 0


#: ``score_of`` for every stored byte (read as signed), as a table for ``bytes.translate``.
_SCORE_OF_BYTE = bytes(score_of(byte - 256 if byte > 127 else byte) & 0xFF for byte in range(256))


def code(position: Position, mirror: bool = False) -> int:
    """The book's name for ``position``: column by column from the left (from the right for
    its mirror image), each stone bottom up as two bits (10 the first player's, 11 the
    second's), each column ended by a 0 bit, then one more 0 bit, left-aligned in 32 bits
    and read as a signed number (12 stones take exactly 32 bits; fewer are padded)."""
    mask = position.mask
    first = position.current if position.moves % 2 == 0 else position.current ^ mask
    value = 0
    length = 0
    for index in range(7):
        column = 6 - index if mirror else index
        for row in range(6):
            cell = 1 << (column * 7 + row)
            if not mask & cell:
                break
            value = value << 2 | (2 if first & cell else 3)
            length += 2
        value <<= 1
        length += 1
    value <<= 32 - length  # the last 0 bit, and the padding
    return value - (1 << 32) if value >= 1 << 31 else value


def mirror(position: Position) -> Position:
    """``position`` seen in a mirror: column c becomes column 6 - c (the same score)."""

    def flip(bits: int) -> int:
        return sum(((bits >> (c * 7)) & _COLUMN) << ((6 - c) * 7) for c in range(7))

    return Position(flip(position.current), flip(position.mask), position.moves)
