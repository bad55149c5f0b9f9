"""The rules of Connect Four, through the public ``Game`` API only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connect4proto import Ending, Game, IllegalMove, Move, Player

RED, YELLOW = Player.RED, Player.YELLOW

# A full board with no four in a row anywhere, red first.
DRAW_COLUMNS = [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 2, 3, 2, 3, 2, 3, 3, 2, 3, 2, 3, 2,
                4, 5, 4, 5, 4, 5, 5, 4, 5, 4, 5, 4, 6, 6, 6, 6, 6, 6]  # fmt: skip


def play_all(columns: list[int]) -> Game:
    game = Game()
    for column in columns:
        result = game.play(game.turn, column)
        assert isinstance(result, Move), (columns, column, result)
    return game


def test_red_moves_first_and_players_alternate() -> None:
    game = Game()
    assert game.turn is RED
    assert game.play(RED, 3) == Move(player=RED, column=3, row=0)
    assert game.turn is YELLOW
    assert game.play(YELLOW, 3) == Move(player=YELLOW, column=3, row=1)
    assert game.turn is RED
    assert [m.row for m in game.moves] == [0, 1]


@pytest.mark.parametrize(
    ("columns", "cells"),
    [
        pytest.param([0, 0, 1, 1, 2, 2, 3], [(0, 0), (1, 0), (2, 0), (3, 0)], id="horizontal"),
        pytest.param([0, 1, 0, 1, 0, 1, 0], [(0, 0), (0, 1), (0, 2), (0, 3)], id="vertical"),
        pytest.param(
            [0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3], [(0, 0), (1, 1), (2, 2), (3, 3)], id="diagonal-up"
        ),
        pytest.param(
            [6, 5, 5, 4, 4, 3, 4, 3, 3, 0, 3], [(3, 3), (4, 2), (5, 1), (6, 0)], id="diagonal-down"
        ),
    ],
)
def test_four_in_a_row_wins_in_every_direction(
    columns: list[int], cells: list[tuple[int, int]]
) -> None:
    game = play_all(columns[:-1])
    assert game.winner is None
    assert game.winning_cells == ()
    game = play_all(columns)
    assert game.winner is RED
    assert game.is_over
    assert not game.is_draw
    assert list(game.winning_cells) == cells


def test_yellow_can_win_too() -> None:
    game = play_all([0, 1, 0, 1, 0, 1, 6, 1])
    assert game.winner is YELLOW
    assert list(game.winning_cells) == [(1, 0), (1, 1), (1, 2), (1, 3)]


def test_a_line_longer_than_four_is_highlighted_whole() -> None:
    # Red's last checker fills the gap in 0 1 2 _ 4 5 of the bottom row.
    game = play_all([0, 0, 1, 1, 2, 2, 4, 4, 5, 5, 3])
    assert game.winner is RED
    assert list(game.winning_cells) == [(c, 0) for c in range(6)]


def test_full_board_without_four_is_a_draw() -> None:
    game = play_all(DRAW_COLUMNS)
    assert game.is_draw
    assert game.is_over
    assert game.winner is None
    assert len(game.moves) == 42


@pytest.mark.parametrize("column", [-1, 7, 99, -(2**70), 2**70])
def test_column_outside_the_board_is_refused(column: int) -> None:
    game = Game()
    assert game.play(RED, column) == IllegalMove(
        code="bad_column", reason="Column must be between 0 and 6."
    )
    assert game.moves == ()


@pytest.mark.parametrize("column", [True, False, 2.5, 3.0, "3", None, [3]])
def test_column_that_is_not_an_integer_is_refused(column: object) -> None:
    game = Game()
    assert game.play(RED, column) == IllegalMove(
        code="bad_column", reason="Column must be an integer."
    )
    assert game.moves == ()


def test_playing_out_of_turn_is_refused() -> None:
    game = Game()
    assert game.play(YELLOW, 0) == IllegalMove(code="not_your_turn", reason="It isn't your turn.")
    game.play(RED, 0)
    assert game.play(RED, 0) == IllegalMove(code="not_your_turn", reason="It isn't your turn.")
    assert len(game.moves) == 1


def test_full_column_is_refused() -> None:
    game = play_all([2, 2, 2, 2, 2, 2])
    assert game.play(RED, 2) == IllegalMove(code="column_full", reason="This slot is full.")
    assert len(game.moves) == 6
    assert game.turn is RED


@pytest.mark.parametrize("columns", [[0, 1, 0, 1, 0, 1, 0], DRAW_COLUMNS])
def test_no_move_after_the_game_ended(columns: list[int]) -> None:
    game = play_all(columns)
    before = game.moves
    for player in (RED, YELLOW):
        assert game.play(player, 4) == IllegalMove(code="game_over", reason="The game is over.")
    assert game.moves == before


# A naive reference: scan a 2D grid for lines of four, to cross-check the bitboard.
def reference_fours(grid: dict[tuple[int, int], Player], player: Player) -> set[tuple[int, int]]:
    cells: set[tuple[int, int]] = set()
    for c in range(7):
        for r in range(6):
            for dc, dr in ((1, 0), (0, 1), (1, 1), (1, -1)):
                line = [(c + i * dc, r + i * dr) for i in range(4)]
                if all(grid.get(cell) is player for cell in line):
                    cells.update(line)
    return cells


@given(st.lists(st.integers(min_value=0, max_value=6), max_size=60))
def test_bitboard_agrees_with_a_naive_grid_scan(columns: list[int]) -> None:
    game = Game()
    grid: dict[tuple[int, int], Player] = {}
    heights = [0] * 7
    for column in columns:
        player = game.turn
        result = game.play(player, column)
        over = bool(reference_fours(grid, RED) or reference_fours(grid, YELLOW)) or len(grid) == 42
        if over:
            assert result == IllegalMove(code="game_over", reason="The game is over.")
        elif heights[column] == 6:
            assert result == IllegalMove(code="column_full", reason="This slot is full.")
        else:
            assert result == Move(player=player, column=column, row=heights[column])
            grid[(column, heights[column])] = player
            heights[column] += 1
    red, yellow = reference_fours(grid, RED), reference_fours(grid, YELLOW)
    assert not (red and yellow)
    expected_winner = RED if red else YELLOW if yellow else None
    assert game.winner is expected_winner
    assert set(game.winning_cells) == (red or yellow)
    assert game.is_draw == (expected_winner is None and len(grid) == 42)


def test_a_game_ended_off_the_board_refuses_moves_and_a_second_ending() -> None:
    game = Game()
    game.play(RED, 3)
    game.end(YELLOW, Ending.CLAIM)
    assert (game.winner, game.ending, game.is_over, game.is_draw) == (
        YELLOW,
        Ending.CLAIM,
        True,
        False,
    )
    assert game.winning_cells == ()
    assert game.play(YELLOW, 0) == IllegalMove(code="game_over", reason="The game is over.")
    with pytest.raises(ValueError, match="over already"):
        game.end(RED, Ending.CLAIM)
    with pytest.raises(ValueError, match="decided by the board"):
        Game().end(RED, Ending.FOUR_IN_A_ROW)
