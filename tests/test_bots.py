"""The computer's levels below perfect play: what each must and must not do, and each beating
the one below it clearly (seeded: the same games every run)."""

from __future__ import annotations

import random

import pytest

from connect4proto.solver import Position, position_from_moves
from connect4proto.solver.bots import Level, choose

DRAW = "121212212121343434434343565656656565777777"


def play_out(first: Level, second: Level, rng: random.Random) -> Level | None:
    """One game from the empty board: the winner's level, or None for a draw."""
    position, levels = Position(), (first, second)
    while position.moves < 42:
        level = levels[position.moves % 2]
        column = choose(position, level, rng)
        assert position.can_play(column)
        if position.is_winning_move(column):
            return level
        position = position.play(column)
    return None


@pytest.mark.parametrize(
    ("better", "worse", "least"),
    [(Level.CASUAL, Level.BEGINNER, 16), (Level.STRONG, Level.CASUAL, 12)],
)
def test_each_level_beats_the_one_below_it_clearly(better: Level, worse: Level, least: int) -> None:
    rng = random.Random(2026)
    results = {better: 0, worse: 0, None: 0}
    for game in range(20):  # each moves first in half of them
        first, second = (better, worse) if game % 2 == 0 else (worse, better)
        results[play_out(first, second, rng)] += 1
    assert results[better] >= least, results
    assert results[better] >= 3 * results[worse], results


BELOW_PERFECT = [level for level in Level if level is not Level.PERFECT]


@pytest.mark.parametrize("level", BELOW_PERFECT)
def test_every_level_takes_an_immediate_win(level: Level) -> None:
    position = position_from_moves("121212")  # red wins in column 1
    for seed in range(20):
        assert choose(position, level, random.Random(seed)) == 0


def test_the_perfect_level_is_not_chosen_here() -> None:
    with pytest.raises(ValueError, match=r"perfect\.PerfectPlayer\.decide"):
        choose(Position(), Level.PERFECT, random.Random(1))


@pytest.mark.parametrize("level", [Level.CASUAL, Level.STRONG])
def test_casual_and_strong_always_block_a_threat(level: Level) -> None:
    position = position_from_moves("12131")  # red has three in column 1; yellow to move
    for seed in range(20):
        assert choose(position, level, random.Random(seed)) == 0


def test_a_beginner_blocks_a_threat_only_some_of_the_time() -> None:
    position = position_from_moves("12131")
    blocked = [choose(position, Level.BEGINNER, random.Random(seed)) == 0 for seed in range(40)]
    assert 5 < sum(blocked) < 35


def test_casual_never_plays_below_a_cell_where_the_opponent_wins() -> None:
    # Yellow to move; red would win at column 4, row 1 (bits of 1114 / 2223 ...).
    position = position_from_moves("12233434")
    for seed in range(20):
        column = choose(position, Level.CASUAL, random.Random(seed))
        assert not position.play(column).can_win_next()


def test_a_full_board_has_no_move_to_choose() -> None:
    with pytest.raises(ValueError, match="the board is full"):
        choose(position_from_moves(DRAW), Level.STRONG, random.Random(0))
