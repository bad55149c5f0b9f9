"""The solver's exact scores against Pascal Pons' benchmark sets, and its command line."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from connect4proto.solver import InvalidPosition, Position, Solver, position_from_moves
from connect4proto.solver.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
TESTSETS = ROOT.parent / "shared" / "solver-testsets"
#: 42 moves that fill the board with no four in a row (from ``test_game``).
DRAW = "121212212121343434434343565656656565777777"


def pons_set(name: str) -> list[tuple[str, int]]:
    lines = (TESTSETS / f"{name}.txt").read_text().splitlines()
    return [(moves, int(score)) for moves, score in (line.split() for line in lines)]


@pytest.mark.parametrize("name", ["end-easy", "middle-easy"])
def test_every_position_of_pons_sets_gets_its_exact_score(name: str) -> None:
    solver = Solver()
    positions = pons_set(name)
    assert len(positions) == 1000
    wrong = [
        (moves, score, got)
        for moves, score in positions
        if (got := solver.solve(position_from_moves(moves))) != score
    ]
    assert wrong == []


def test_scores_count_the_winners_stones() -> None:
    solver = Solver()
    # Red to move with three in column 1 (its 4th stone wins): 22 - 4.
    assert solver.solve(position_from_moves("121212")) == 18
    # Yellow to move, red threatening a four it cannot block both ways: yellow loses to
    # red's 5th stone.
    assert solver.solve(position_from_moves("4455331")) == -(22 - 5)
    assert solver.solve(position_from_moves(DRAW)) == 0  # a full board
    assert solver.solve(position_from_moves(DRAW[:-1])) == 0  # one cell left, no four


def test_a_small_table_gives_the_same_scores() -> None:
    solver = Solver(table_size=64)  # emptied again and again
    for moves, score in pons_set("end-easy")[:200]:
        assert solver.solve(position_from_moves(moves)) == score


@pytest.mark.parametrize(
    ("moves", "reason"),
    [
        ("448", "move 3: '8' is not a column (digits 1-7)"),
        ("40", "move 2: '0' is not a column (digits 1-7)"),
        ("1111111", "move 7: column 1 is full"),
        ("1212121", "move 7: column 1 wins the game: nothing to solve"),
        ("12121213", "move 7: column 1 wins the game: nothing to solve"),
    ],
)
def test_what_is_not_a_position_says_why(moves: str, reason: str) -> None:
    with pytest.raises(InvalidPosition, match=f"^{re.escape(reason)}$"):
        position_from_moves(moves)


def test_a_position_knows_its_moves() -> None:
    position = position_from_moves("4453")
    assert position.moves == 4
    assert position == Position().play(3).play(3).play(4).play(2)
    assert position.key == Position().play(3).play(3).play(4).play(2).key


def test_the_command_line_answers_every_good_line_and_names_the_bad_ones() -> None:
    good = pons_set("end-easy")[:3]
    lines = [f"{good[0][0]} {good[0][1]}\n", "1111111\n", f"{good[1][0]}\n", "4x\n", good[2][0]]
    out, err = io.StringIO(), io.StringIO()
    assert main(lines, out, err) == 1
    assert out.getvalue().splitlines() == [f"{moves} {score}" for moves, score in good]
    assert err.getvalue().splitlines() == [
        "line 2: '1111111' is not a position: move 7: column 1 is full",
        "line 4: '4x' is not a position: move 2: 'x' is not a column (digits 1-7)",
    ]
    out = io.StringIO()
    assert main([f"{good[0][0]}\n"], out, io.StringIO()) == 0


def test_python_m_connect4proto_solver_reads_stdin() -> None:
    moves, score = pons_set("middle-easy")[0]
    done = subprocess.run(
        [sys.executable, "-m", "connect4proto.solver"],
        input=f"{moves}\n1212121\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert done.stdout == f"{moves} {score}\n"
    assert "line 2: '1212121' is not a position" in done.stderr
