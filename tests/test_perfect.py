"""The perfect level: the compiled search held to the pure-Python reference, the book of
12-stone positions held to the search, the openings, and the perfect player in whole games,
each of its moves checked to keep the position's value."""

from __future__ import annotations

import random

import pytest
from peers import perfect_player
from test_solver import DRAW, pons_set

from connect4proto.solver import (
    BestMoves,
    Position,
    Solver,
    _possible,
    _winning_cells,
    position_from_moves,
)
from connect4proto.solver.book import Book, code, mirror, score_of
from connect4proto.solver.bots import Level, choose
from connect4proto.solver.fast import FastSolver
from connect4proto.solver.perfect import Decision, Source

#: A prime above 2**20: a table of 6 MiB.
TABLE = 1_048_573


@pytest.fixture(scope="module")
def book() -> Book:
    return Book.load()


def random_position(rng: random.Random, stones: int) -> Position:
    """A position of ``stones`` stones reached by random moves that do not end the game."""
    while True:
        position = Position()
        for _ in range(stones):
            columns = [
                c for c in range(7) if position.can_play(c) and not position.is_winning_move(c)
            ]
            if not columns:
                break
            position = position.play(rng.choice(columns))
        else:
            if any(position.can_play(c) for c in range(7)):
                return position


# -- the compiled search against the reference ----------------------------------------------


def test_the_fast_search_agrees_with_the_reference_on_two_thousand_random_positions() -> None:
    # Mostly past the middle of a game, where the reference takes milliseconds (from 16
    # stones a position can take it a second).
    rng = random.Random(11)
    fast, reference = FastSolver(TABLE), Solver()
    for index in range(2000):
        position = random_position(
            rng, rng.randint(16, 21) if index % 20 == 0 else rng.randint(22, 41)
        )
        assert fast.best_moves(position) == reference.best_moves(position), position


def test_the_fast_search_visits_the_nodes_the_reference_visits() -> None:
    # The same search: on a fresh table each, position by position, the same node counts.
    for moves, score in pons_set("end-easy")[:200]:
        fast, reference = FastSolver(TABLE), Solver()
        position = position_from_moves(moves)
        assert fast.solve(position) == reference.solve(position) == score
        assert fast.nodes == reference.nodes, moves


@pytest.mark.parametrize("name", ["end-easy", "middle-easy"])
def test_the_fast_search_gets_every_score_of_pons_sets(name: str) -> None:
    fast = FastSolver()
    wrong = [
        (moves, score)
        for moves, score in pons_set(name)
        if fast.solve(position_from_moves(moves)) != score
    ]
    assert wrong == []


@pytest.mark.parametrize("solver_type", [Solver, FastSolver])
def test_a_search_out_of_budget_says_so_and_leaves_its_table_sound(
    solver_type: type[Solver] | type[FastSolver],
) -> None:
    position = random_position(random.Random(3), 14)
    solver = solver_type() if solver_type is Solver else FastSolver(TABLE)
    assert solver.best_moves(position, budget=500) is None
    assert solver.best_moves(position) == FastSolver(TABLE).best_moves(position)
    assert solver.best_moves(position, budget=10**9) is not None


def test_best_moves_are_the_fastest_wins_and_the_longest_resistance() -> None:
    fast = FastSolver(TABLE)
    # Red can win at once in column 1.
    assert fast.best_moves(position_from_moves("121212")) == BestMoves(18, (0,))
    # Yellow must block column 1 or lose at once; it loses later anyway, as late as it can.
    best = fast.best_moves(position_from_moves("4455331"))
    assert best is not None
    assert best.score == -(22 - 5)
    for column in best.columns:
        assert fast.solve(position_from_moves("4455331").play(column)) == 22 - 5


def test_a_table_must_tell_its_keys_apart() -> None:
    for size in (1 << 20, 1 << 17, 1001):
        with pytest.raises(ValueError, match="table_size must be odd and above 2\\*\\*17"):
            FastSolver(size)


# -- the book ----------------------------------------------------------------------------------


def board(rows: list[list[int]]) -> Position:
    """A position from bitbully-databases' board notation: rows from the top, 1 the first
    player's stone, 2 the second's (the first player is to move: 12 stones)."""
    first = mask = 0
    for row_index, row in enumerate(reversed(rows)):
        for column, cell in enumerate(row):
            if cell:
                mask |= 1 << (column * 7 + row_index)
                first |= (cell == 1) << (column * 7 + row_index)
    return Position(first, mask, mask.bit_count())


#: The examples of bitbully-databases' documentation, with their documented values.
DOCUMENTED = [
    (
        [
            [0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 1, 0, 0, 0],
            [0, 1, 0, 2, 0, 0, 0],
            [0, 2, 0, 1, 0, 2, 0],
            [0, 1, 0, 2, 0, 1, 0],
            [0, 2, 0, 1, 0, 2, 0],
        ],
        71,
    ),
    (
        [
            [0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0],
            [0, 0, 1, 1, 0, 0, 0],
            [0, 0, 2, 2, 0, 0, 0],
            [0, 1, 2, 1, 0, 0, 0],
            [0, 1, 1, 2, 0, 2, 2],
        ],
        -88,
    ),
    (
        [
            [0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0],
            [0, 1, 0, 0, 0, 0, 0],
            [0, 2, 2, 0, 1, 0, 0],
            [0, 2, 1, 0, 2, 0, 0],
            [1, 1, 2, 1, 2, 0, 0],
        ],
        73,
    ),
    (
        [
            [0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0],
            [0, 0, 1, 1, 0, 0, 0],
            [0, 0, 2, 2, 0, 0, 0],
            [0, 0, 2, 1, 2, 0, 0],
            [0, 1, 1, 2, 1, 2, 0],
        ],
        0,
    ),
]


@pytest.mark.parametrize(("rows", "value"), DOCUMENTED)
def test_the_book_holds_its_documented_examples_and_the_search_agrees(
    book: Book, rows: list[list[int]], value: int
) -> None:
    position = board(rows)
    assert position.moves == 12
    assert book.score(position) == score_of(value)
    assert book.score(mirror(position)) == score_of(value)
    assert FastSolver(TABLE).solve(position) == score_of(value)


def test_values_become_scores() -> None:
    # A win on the first player's 8th stone (score 14) is 97; a loss to the second player's
    # 7th (score -15) is -98.
    assert [score_of(v) for v in (97, 71, 0, -68 + 2 * -1, -98)] == [14, 1, 0, -1, -15]


def test_the_book_agrees_with_the_search_on_random_positions(book: Book) -> None:
    rng = random.Random(12)
    fast = FastSolver(TABLE)
    checked = 0
    while checked < 8:
        position = random_position(rng, 12)
        known = book.score(position)
        if position.can_win_next() or known is None:
            continue  # not a book position: the search goes on past it
        assert fast.solve(position) == known
        checked += 1
    assert book.score(Position()) is None  # no position of another size


def test_the_book_holds_every_position_of_12_stones_but_a_win_at_once(book: Book) -> None:
    rng = random.Random(13)
    forced = 0
    for _ in range(300):
        position = random_position(rng, 12)
        assert (book.score(position) is None) == position.can_win_next(), position
        opponent = position.current ^ position.mask
        forced += bool(_winning_cells(opponent, position.mask) & _possible(position.mask))
    assert forced > 30  # among them, positions where the side to move must block


def test_a_position_code_is_the_books() -> None:
    assert code(Position()) == 0  # seven empty columns: every bit 0
    # Column 1: red then yellow (10 11 0), then six empty columns: 1011 0000 ... 0.
    assert code(position_from_moves("11")) == (0b1011 << 28) - (1 << 32)
    assert code(position_from_moves("11"), mirror=True) == 0b1011 << 22


def test_a_book_is_whole_records() -> None:
    assert len(Book.from_bytes(b"\x00\x00\x00\x01\x05" * 3)) == 3
    with pytest.raises(ValueError, match="5-byte records: 7 bytes"):
        Book.from_bytes(b"\x00" * 7)


def test_the_searches_with_the_book_agree_with_the_search_without_it(book: Book) -> None:
    rng = random.Random(14)
    with_book, without = FastSolver(TABLE, book=book), FastSolver(TABLE)
    reference = Solver(book=book)
    for stones in (11, 11, 10):
        position = random_position(rng, stones)
        best = with_book.best_moves(position)
        assert best == without.best_moves(position)
        if stones == 11:
            assert reference.best_moves(position) == best


# -- the perfect player --------------------------------------------------------------------------


def test_the_perfect_player_searches_and_falls_back_when_out_of_budget(book: Book) -> None:
    player = perfect_player()
    first = player.decide(Position(), random.Random(1))
    assert first == Decision(3, Source.SEARCH, 1)  # the first player wins, in the centre
    late = position_from_moves(DRAW[:20])
    decision = player.decide(late, random.Random(1))
    assert decision.source is Source.SEARCH
    assert decision.score == FastSolver(TABLE).solve(late)
    fallback = player.decide(late, random.Random(2), budget=1)
    assert fallback == Decision(choose(late, Level.STRONG, random.Random(2)), Source.FALLBACK)


def test_the_perfect_player_varies_among_equal_moves(book: Book) -> None:
    player = perfect_player()
    # After 4 4, red's best moves: several keep the win (checked by the search).
    position = position_from_moves("44")
    best = FastSolver(TABLE, book=book).best_moves(position)
    assert best is not None
    played = {player.decide(position, random.Random(seed)).column for seed in range(30)}
    assert played == set(best.columns)


def test_what_the_book_knows_saves_the_search_work_and_changes_nothing(book: Book) -> None:
    rng = random.Random(16)
    for _ in range(3):
        previous = random_position(rng, 12)
        if previous.can_win_next():
            continue
        fresh, hinted = FastSolver(TABLE, book=book), FastSolver(TABLE, book=book)
        known = book.score(previous)
        assert known is not None
        exact = hinted.best_moves(previous, score=known)
        assert exact == fresh.best_moves(previous)
        for column in range(7):
            if previous.can_play(column) and not previous.is_winning_move(column):
                after = previous.play(column)
                assert hinted.best_moves(after, at_least=-known) == fresh.best_moves(after)


def checked_value(position: Position, checker: FastSolver, reference: Solver) -> int:
    """The score of ``position``, from solvers of the test's own, both with the book: the
    reference, but for 12 to 19 stones (past the book, and far from the end: up to a minute
    in pure Python), where it is the fast search (held to the reference above)."""
    return (checker if 12 <= position.moves < 20 else reference).solve(position)


@pytest.mark.parametrize("opponent", ["random", "casual", "strong"])
def test_the_perfect_player_moving_first_always_wins_and_keeps_the_value(
    book: Book, opponent: str
) -> None:
    player = perfect_player()
    checker, reference = FastSolver(TABLE, book=book), Solver(book=book)
    rng = random.Random(2026)
    for _ in range(6):
        position, previous = Position(), None
        while True:
            if position.moves % 2 == 0:  # the perfect player, red
                column = player.decide(position, rng, previous=previous).column
                # Its move keeps the value: the opponent's score after it is minus red's.
                if not position.is_winning_move(column):
                    value = checked_value(position, checker, reference)
                    after = checked_value(position.play(column), checker, reference)
                    assert after == -value, position
            elif opponent == "random":
                column = rng.choice([c for c in range(7) if position.can_play(c)])
            else:
                column = choose(position, Level(opponent), rng)
            if position.is_winning_move(column):
                assert position.moves % 2 == 0, "the perfect player lost"
                break
            previous, position = position, position.play(column)
            assert position.moves < 42, "a draw"


def test_the_perfect_player_beats_the_strong_level_clearly() -> None:
    player, rng = perfect_player(), random.Random(2026)
    wins = losses = 0
    for game in range(10):  # each moves first in half of them
        position, previous, perfect_moves = Position(), None, game % 2
        while position.moves < 42:
            if position.moves % 2 == perfect_moves:
                column = player.decide(position, rng, previous=previous).column
            else:
                column = choose(position, Level.STRONG, rng)
            if position.is_winning_move(column):
                if position.moves % 2 == perfect_moves:
                    wins += 1
                else:
                    losses += 1
                break
            previous, position = position, position.play(column)
    assert wins >= 8, (wins, losses)
    assert losses <= 1, (wins, losses)


def test_a_cleared_table_searches_as_a_new_one() -> None:
    position = position_from_moves(pons_set("middle-easy")[0][0])
    used = FastSolver(TABLE)
    used.solve(position_from_moves(pons_set("middle-easy")[1][0]))
    used.clear()
    fresh = FastSolver(TABLE)
    assert used.solve(position) == fresh.solve(position)
    assert used.nodes == fresh.nodes
