"""The computer: the solver on Pons' sets, the perfect player's time per move, each level's,
and a tournament.

In this process, on one core: the reference solver (pure Python) and the fast one (compiled
by numba) on Pons' sets, each position solved afresh as his figures are; the perfect player
over whole games from both seats against the levels below it (its time per move by stones
on the board: the search ends at the book 12 stones in, so the positions just past it cost
the most); every pair of levels. Usage:

    python benchmarks/bots.py [--games N] [--positions N] [--perfect-games N]
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import time
from pathlib import Path

from connect4proto.solver import Position, Solver, position_from_moves
from connect4proto.solver.bots import Level, choose
from connect4proto.solver.fast import FastSolver
from connect4proto.solver.perfect import PerfectPlayer


@functools.cache
def perfect_player() -> PerfectPlayer:
    """Loaded and compiled once, before any move is timed."""
    player = PerfectPlayer.load()
    player.warm_up()
    return player


TESTSETS = Path(__file__).resolve().parent.parent.parent / "shared" / "solver-testsets"
#: Pons' published C++ figures, per position (strong solve).
PONS_US = {"end-easy": 4.6, "middle-easy": 37.0}


def solver_set(name: str, limit: int | None = None, fast: bool = False) -> dict[str, float]:
    """Mean time and nodes per position of the reference solver (or the fast one) on one of
    Pons' sets (each position solved afresh, with an empty table, as his figures are; the
    fast one's table is only cleared, not allocated again, between positions)."""
    lines = (TESTSETS / f"{name}.txt").read_text().splitlines()[:limit]
    seconds = nodes = 0.0
    for line in lines:
        moves, score = line.split()
        solver: Solver | FastSolver = _fresh_fast() if fast else Solver()
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


@functools.cache
def _fast_solver() -> FastSolver:
    """One fast solver, compiled before any position is timed."""
    solver = FastSolver(1_048_573)
    solver.solve(position_from_moves("12121221212134343443434356565665"))
    return solver


def _fresh_fast() -> FastSolver:
    """The fast solver with an empty table (cleared, not allocated again: the allocation
    would be what is measured)."""
    solver = _fast_solver()
    solver.clear()
    return solver


#: The perfect player's opponents, in turn.
OPPONENTS = (Level.STRONG, Level.CASUAL, Level.BEGINNER)


def perfect_times(games: int, seed: int = 2026) -> tuple[dict[int, list[float]], list[int]]:
    """The perfect player's time per move over ``games`` whole games (half of them as red),
    against the levels below it in turn: by stones on the board when it moved; and its
    results (wins, losses, draws)."""
    player = perfect_player()
    rng = random.Random(seed)
    times: dict[int, list[float]] = {}
    results = [0, 0, 0]
    for game in range(games):
        opponent = OPPONENTS[game // 2 % len(OPPONENTS)]
        mine = game % 2
        position, previous = Position(), None
        while True:
            if position.moves == 42:
                results[2] += 1
                break
            if position.moves % 2 == mine:
                started = time.perf_counter()
                column = player.decide(position, rng, previous=previous).column
                times.setdefault(position.moves, []).append(time.perf_counter() - started)
            else:
                column = choose(position, opponent, rng)
            if position.is_winning_move(column):
                results[0 if position.moves % 2 == mine else 1] += 1
                break
            previous, position = position, position.play(column)
    return times, results


#: Stones on the board, grouped: in the book's reach, just past it, and later.
STONE_GROUPS = ((0, 11), (12, 13), (14, 15), (16, 42))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=10, help="games per pair of levels")
    parser.add_argument("--positions", type=int, default=None, help="of each set (all: 1000)")
    parser.add_argument("--perfect-games", type=int, default=200, help="the perfect player's")
    args = parser.parse_args()
    for name in PONS_US:
        for fast in (False, True):
            result = solver_set(name, args.positions, fast)
            print(
                f"{name}, {'fast' if fast else 'reference'}: {result['us_per_position']:.1f} us"
                f" and {result['nodes_per_position']:.0f} nodes per position,"
                f" {result['nodes_per_s'] / 1000:.0f} k nodes/s (Pons' C++: {PONS_US[name]} us)"
            )
    times, results = perfect_times(args.perfect_games)
    every = [t for spent in times.values() for t in spent]
    print(
        f"perfect, {args.perfect_games} games (won {results[0]}, lost {results[1]}, drawn"
        f" {results[2]}): {len(every)} moves, p50 {statistics.median(every) * 1e3:.2f} ms,"
        f" p99 {percentile(every, 0.99) * 1e3:.1f} ms, max {max(every) * 1e3:.1f} ms"
    )
    for low, high in STONE_GROUPS:
        spent = [t for stones in range(low, high + 1) for t in times.get(stones, [])]
        print(
            f"  {low}-{high} stones: {len(spent)} moves, p50 {statistics.median(spent) * 1e3:.2f}"
            f" ms, p99 {percentile(spent, 0.99) * 1e3:.1f} ms, max {max(spent) * 1e3:.1f} ms"
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
