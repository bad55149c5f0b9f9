"""Instructions per move through the core in memory, and through the bare-wsproto floor.

The machine this runs on is shared and noisy: the same timed benchmark (``core.py``) swings
by 15-40% from one run to the next, more than most single changes to the hot path are worth.
valgrind's callgrind counts the instructions the interpreter executes instead, which are the
same from one run to the next for the same code and input, whatever else the machine does.
So an A/B of a change to the hot path is told by this, to the instruction; what it costs in
time (caches, branch predictors) is still ``core.py``'s to say.

One caveat, measured: a change away from the hot path (an unused function added to
``core.py``) moved the count by about 900 instructions a move (0.6%), through where objects
land in memory (identity hashes, dict probes). A cut smaller than that is not told apart.

Each count is the difference between a process that sets up 100 games and plays them (the
draw sequence, 4,200 moves) and one that only sets them up, so the start-up cancels out.
Usage (needs ``valgrind``, Debian's package of that name):

    python benchmarks/instructions.py [--tree PATH]   # PATH: another checkout to measure
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

GAMES = 100
MOVES = 42 * GAMES
#: What each child process does after the set-up (``none``: nothing, the baseline).
MODES = ("none", "core", "floor", "frame_layer")


def child(mode: str) -> int:
    """Set up ``GAMES`` games in a core, then do what ``mode`` says; the moves the core
    played (none but in mode ``core``)."""
    import core  # benchmarks/core.py, beside this file (the script's folder is on sys.path)

    server, pairs = core.set_up(GAMES, 0)
    if mode == "core":
        core.play(server, pairs)
    elif mode == "floor":
        core.floor_run(GAMES, 0)
    elif mode == "frame_layer":
        core.frame_layer_floor_run(GAMES)
    return server.statistics.moves


def count(tree: Path, mode: str) -> int:
    """Instructions a child process of ``tree`` executes in ``mode``, start to end."""
    # The package is ``tree``'s; the harness (this file, ``core.py``) is this checkout's, so
    # that an older commit is measured by the same moves.
    environment = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0")
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, __file__, "--child", mode],
        env=environment, capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def per_move(tree: Path) -> dict[str, float]:
    """Instructions per move of each mode of ``tree``, the set-up taken away."""
    baseline = count(tree, "none")
    return {mode: (count(tree, mode) - baseline) / MOVES for mode in MODES[1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt install valgrind)")
    figures = per_move(args.tree.resolve())
    print(f"{args.tree}: instructions per move, {GAMES} games, {MOVES} moves")
    print(f"  core                         {figures['core']:9.0f}")
    print(f"  floor (wsproto Connection)   {figures['floor']:9.0f}")
    print(f"  wsproto's frame layer alone  {figures['frame_layer']:9.0f}")
    print(f"  ratio core / floor: {figures['core'] / figures['floor']:.3f}")


if __name__ == "__main__":
    main()
