"""The benchmarks run for a moment so that they cannot rot (no timing is asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import core as core_benchmark
import instructions as instructions_benchmark
from redis_servers import needs_redis


def test_core_benchmark_plays_whole_games_to_every_participant() -> None:
    seconds, writes = core_benchmark.core_run(games=2, spectators=1)
    assert seconds > 0
    # 42 moves, each written to red, yellow and the spectator of its game.
    assert writes == 42 * 2 * 3
    assert core_benchmark.floor_run(games=2, spectators=1) > 0


def test_the_instruction_count_plays_every_move_of_its_games_only_when_asked() -> None:
    assert instructions_benchmark.child("core") == instructions_benchmark.MOVES
    assert instructions_benchmark.child("none") == 0
    assert core_benchmark.frame_layer_floor_run(games=2) > 0


def test_the_handshake_table_times_each_way_to_answer_an_upgrade() -> None:
    timings = core_benchmark.handshakes(repeat=5)
    assert len(timings) == 4
    assert all(microseconds > 0 for microseconds in timings.values())


def test_core_grid_runs_the_small_cells_and_counts_messages_out() -> None:
    cells = core_benchmark.grid(rounds=1, largest=30)
    assert [(cell["games"], cell["spectators"]) for cell in cells] == [(1, 0), (1, 10)]
    for cell in cells:
        members = 2 + cell["spectators"]
        # 42 plays and the draw reach every member; one play comes in per move.
        assert cell["messages_out_per_s"] == pytest.approx(
            cell["messages_in_per_s"] * members * 43 / 42
        )


def test_the_computers_benchmark_scores_positions_and_plays_a_tournament() -> None:
    import bots as bots_benchmark

    result = bots_benchmark.solver_set("end-easy", limit=5)
    assert result["nodes_per_position"] > 0
    table, times = bots_benchmark.tournament(games=1)
    assert len(table) == 6  # every pair of the four levels
    assert all(sum(outcome) == 1 for outcome in table.values())
    assert all(times.values())


@needs_redis
def test_the_redis_client_benchmark_measures_ours_and_the_floor() -> None:
    import redis_client

    figures = redis_client.measure(rounds=1, sequential=20, appends=100)
    assert set(figures) == {
        "get", "pipelined", "append", "append_concurrent", "floor_get", "floor_pipelined",
    }  # fmt: skip
    assert all(value > 0 for value in figures.values())
