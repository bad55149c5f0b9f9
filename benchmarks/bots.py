"""The computer: the solver on Pons' sets, each level's time per move, and a tournament.

In this process, on one core, pure Python (the reference solver; the fast path and the book
are to come). Usage:

    python benchmarks/bots.py [--games N] [--positions N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from connect4proto.solver import Position, Solver, position_from_moves
from connect4proto.solver.bots import Level, choose
from connect4proto.solver.perfect import PerfectPlayer

_perfect: list[PerfectPlayer] = []


def perfect_player() -> PerfectPlayer:
    if not _perfect:
        _perfect.append(PerfectPlayer.load())
        _perfect[0].warm_up()
    return _perfect[0]

TESTSETS = Path(__file__).resolve().parent.parent.parent / "shared" / "solver-testsets"
#: Pons' published C++ figures, per position (strong solve).
PONS_US = {"end-easy": 4.6, "middle-easy": 37.0}


def solver_set(name: str, limit: int | None = None) -> dict[str, float]:
    """Mean time and nodes per position of the reference solver on one of Pons' sets (each
    position solved afresh, with an empty table, as his figures are)."""
    lines = (TESTSETS / f"{name}.txt").read_text().splitlines()[:limit]
    seconds = nodes = 0.0
    for line in lines:
        moves, score = line.split()
        solver = Solver()
        position = position_from_moves(moves)
        started = time.perf_counter()
        got = solver.solve(position)
        seconds += time.perf_counter() - started
        nodes += solver.nodes
        if got != int(score):
            raise AssertionError(f"{name}: {moves} scored {got}, not {score}")
    count = len(lines)
    return {
        "us_per_position": seconds / count * 1e6,
        "nodes_per_position": nodes / count,
        "nodes_per_s": nodes / seconds,
    }


def play(
    first: Level, second: Level, rng: random.Random, times: dict[Level, list[float]]
) -> Level | None:
    """One game; each level's thinking times go into ``times``. The winner's level, or None."""
    position, previous, levels = Position(), None, (first, second)
    while position.moves < 42:
        level = levels[position.moves % 2]
        started = time.perf_counter()
        if level is Level.PERFECT:
            column = perfect_player().decide(position, rng, previous=previous).column
        else:
            column = choose(position, level, rng)
        times[level].append(time.perf_counter() - started)
        if position.is_winning_move(column):
            return level
        previous, position = position, position.play(column)
    return None


def tournament(
    games: int, seed: int = 2026
) -> tuple[dict[tuple[Level, Level], tuple[int, int, int]], dict[Level, list[float]]]:
    """Every pair of levels, ``games`` games each (each side first in half): wins of the
    first level, of the second, draws; and every move's thinking time by level."""
    rng = random.Random(seed)
    times: dict[Level, list[float]] = {level: [] for level in Level}
    table = {}
    levels = list(Level)
    for i, a in enumerate(levels):
        for b in levels[i + 1 :]:
            wins = {a: 0, b: 0, None: 0}
            for game in range(games):
                first, second = (a, b) if game % 2 == 0 else (b, a)
                wins[play(first, second, rng, times)] += 1
            table[a, b] = (wins[a], wins[b], wins[None])
    return table, times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=10, help="games per pair of levels")
    parser.add_argument("--positions", type=int, default=None, help="of each set (all: 1000)")
    args = parser.parse_args()
    for name in PONS_US:
        result = solver_set(name, args.positions)
        print(
            f"{name}: {result['us_per_position']:.0f} us and {result['nodes_per_position']:.0f}"
            f" nodes per position, {result['nodes_per_s'] / 1000:.0f} k nodes/s"
            f" (Pons' C++: {PONS_US[name]} us)"
        )
    table, times = tournament(args.games)
    for (a, b), (wins_a, wins_b, draws) in table.items():
        print(f"{a.value} vs {b.value}: {wins_a}-{wins_b}, {draws} drawn")
    for level, spent in times.items():
        print(
            f"{level.value}: {len(spent)} moves, p50 {statistics.median(spent) * 1e3:.1f} ms,"
            f" p99 {percentile(spent, 0.99) * 1e3:.1f} ms, max {max(spent) * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
