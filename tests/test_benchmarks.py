"""The benchmarks run for a moment so that they cannot rot (no timing is asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import core as core_benchmark


def test_core_benchmark_plays_whole_games_to_every_participant() -> None:
    seconds, writes = core_benchmark.core_run(games=2, spectators=1)
    assert seconds > 0
    # 42 moves, each written to red, yellow and the spectator of its game.
    assert writes == 42 * 2 * 3
    assert core_benchmark.floor_run(games=2, spectators=1) > 0
