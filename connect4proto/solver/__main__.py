"""``python -m connect4proto.solver``: the exact score of each position read from stdin.

One position per line, as the columns played from the first move in digits 1-7 (the format of
``solver-testsets``: anything after the first field, such as a score, is ignored, so a test set
can be fed as it is). Each position is printed followed by its score. A line that is not a
position (a character that is not a column, a move in a full column, a move after the game was
won) gets a message on stderr naming the line; the others are still answered, and the exit
status is then 1.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from . import InvalidPosition, Solver, position_from_moves


def main(lines: Iterable[str], out: TextIO, err: TextIO) -> int:
    solver = Solver()
    failed = 0
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        moves = fields[0] if fields else ""
        try:
            position = position_from_moves(moves)
        except InvalidPosition as exc:
            failed += 1
            print(f"line {number}: {moves!r} is not a position: {exc}", file=err)
            continue
        print(moves, solver.solve(position), file=out, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover - run as a program by the tests
    sys.exit(main(sys.stdin, sys.stdout, sys.stderr))
