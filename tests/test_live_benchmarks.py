"""The live benchmark machinery, for a fraction of a second against both servers.

Benchmarks are not tests: no timing is asserted. This checks that the load client plays real,
whole games against ``python server.py`` and against the websockets tutorial's server, that it
checks every event (a reordered move is caught), and that the servers stop cleanly; and that
human-paced games are timed with and without bot games beside them (ours only).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import msgspec
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import live

#: Linux only: the live benchmarks pin processes to cores and read /proc.
pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="pins to cores and reads /proc (Linux)"
)

SERVERS = [pytest.param(live.OURS, id="ours"), pytest.param(live.REFERENCE, id="reference")]


@pytest.mark.parametrize("kind", SERVERS)
def test_load_plays_whole_checked_games(kind: live.ServerKind) -> None:
    config = live.LoadConfig(games=3, spectators=2, duration=0.3)
    result = live.measure_load(kind, config)
    assert result.failures == []
    assert result.failure_count == 0
    assert result.server_problems == []
    assert result.games > 0
    # Every game started was played to its end, every move echoed to its player.
    assert result.moves == 42 * result.games
    assert len(result.latencies) == result.moves
    # Every play event reached red, yellow and both spectators (other events come on top).
    assert result.messages >= 42 * 4 * result.games
    assert result.server_cpu > 0
    assert result.peak_rss_kib > 0


@pytest.mark.parametrize("kind", SERVERS)
def test_human_pace_waits_before_each_move_and_times_it_from_the_real_send(
    kind: live.ServerKind,
) -> None:
    config = live.LoadConfig(games=2, spectators=1, duration=0.1, pause=(0.002, 0.004))
    result = live.measure_load(kind, config)
    assert result.failures == []
    assert result.server_problems == []
    assert result.games >= 2
    assert result.moves == 42 * result.games
    # 42 pauses of at least 2 ms a game: a game cannot end sooner.
    assert result.wall >= 42 * 0.002
    assert max(result.latencies) < 42 * 0.002  # the pause is not in the latency


@pytest.mark.parametrize("kind", SERVERS)
def test_fanout_times_each_move_to_the_last_spectator(kind: live.ServerKind) -> None:
    config = live.LoadConfig(games=1, spectators=5, duration=0.05, lockstep=True)
    result = live.measure_load(kind, config)
    assert result.failures == []
    assert result.server_problems == []
    assert result.games >= 1
    # Moves 2 to 42 of each game are timed (move 1 may reach a spectator by replay).
    assert len(result.fanout) == 41 * result.games
    assert result.play_messages == 41 * 7 * result.games
    assert result.play_cpu > 0


@pytest.mark.parametrize("kind", SERVERS)
def test_idle_connections_are_opened_and_measured(kind: live.ServerKind) -> None:
    result = live.measure_idle(kind, 50)
    assert result.failures == []
    assert result.server_problems == []
    assert result.rss_after_kib > 0


def test_the_checker_catches_a_reordered_move() -> None:
    async def feed() -> live.LoadResult:
        load = live.Load("ws://127.0.0.1:1/", live.LoadConfig(), lambda: 0.0)
        game = live.Game(load, spectators=1)
        spectator = live.Conn(load, game, live.SPECTATOR)
        for index in (0, 2, 1):  # the second and third moves swapped
            player, column, row = live.EXPECTED[index]
            event = {"type": "play", "player": player, "column": column, "row": row}
            load.on_text(spectator, msgspec.json.encode(event))
        load.on_text(spectator, b'{"type": "joined", "player": "yellow"}')  # skipped
        live._consume(game.finished)
        live._consume(game.red.reply)
        return load.result

    result = asyncio.run(feed())
    assert result.failure_count == 1
    assert "lost or reordered" in result.failures[0]
    assert result.messages == 4


def test_human_paced_games_are_timed_with_and_without_bot_games_beside_them() -> None:
    config = live.BesideConfig(humans=2, bots=2, level="perfect", seconds=0.5, rounds=2)
    result = live.measure_beside_bots(config)
    assert result.human.failures == []
    assert result.human.failure_count == 0
    assert result.server_problems == []
    without, with_bots = live.WITHOUT, live.WITH
    assert [phase.condition for phase in result.phases] == [without, with_bots] * 2
    # The human games' moves were checked and timed in both conditions; those that straddle
    # a change of phase are left out of both.
    assert result.latencies(without)
    assert result.latencies(with_bots)
    timed = len(result.latencies(without)) + len(result.latencies(with_bots))
    assert timed <= result.human.moves == len(result.human.latencies)
    # At a person's pace: a game moves at most once per 100 ms (each move waits for its pause).
    for phase in result.phases:
        assert len(phase.latencies) <= config.humans * (phase.seconds / 0.1 + 1)
    # The computer answered the bot games in every phase with them, and in none without them.
    assert all(phase.bot_moves > 0 for phase in result.of(with_bots))
    assert all(phase.bot_moves == 0 for phase in result.of(without))
    assert result.bot_moves_per_s() > 0
    assert result.bot_games > 0  # bot games were played to their end, and new ones begun
    assert result.ok
