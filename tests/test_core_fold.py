"""A match folded from its log is the match that was played: what another process, or this one
after a restart, knows of a game it did not decide.

Hypothesis plays random matches through ``Match.apply`` (every action, at random moments, with
and without clocks), logs what each step decided with its time, and folds that log into a
fresh ``Match`` after every step: both must agree on everything a player can see or do next.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connect4proto import LocalProtocolError, Player
from connect4proto.clock import Bank, Clocks, PerMove, TimeControl
from connect4proto.log import GameEvent, MovePlayed, SeatTaken
from connect4proto.match import Action, Match, MatchRequest

CONTROLS: list[TimeControl | None] = [None, PerMove(seconds=4), Bank(initial=6, increment=1)]

#: A step: what to do, who does it, in which column, and how many seconds after the last one.
steps = st.lists(
    st.tuples(
        st.sampled_from(sorted(Action, key=lambda a: a.value)),
        st.sampled_from(list(Player)),
        st.integers(min_value=0, max_value=6),
        st.sampled_from([0.0, 0.25, 1.0, 3.5, 9.0]),
    ),
    max_size=120,
)


def play(match: Match, action: Action, request: MatchRequest) -> tuple[GameEvent, ...] | None:
    """What the lobby logs for ``action``, or None if it does not do it now."""
    if action is Action.JOIN:
        if match.joined:
            return None  # the yellow seat is taken once
        events = match.apply(action, request)
        assert events == ()
        return (SeatTaken(player=Player.YELLOW, clock=match.clocks(request.now)),)
    if action is Action.FLAG and not match.flag_due(request.now):
        return None  # the lobby flags only a clock that ran out
    if match.flag_due(request.now):
        return None  # ... and before anything else
    events = match.apply(action, request)
    return events if type(events) is tuple else None


def assert_same(played: Match, folded: Match, now: float) -> None:
    for name in ("phase", "round", "joined", "offer_by", "ended_by", "offered_at"):
        assert getattr(folded, name) == getattr(played, name), name
    game, again = played.game, folded.game
    assert (again.moves, again.ending, again.winner) == (game.moves, game.ending, game.winner)
    assert again.winning_cells == game.winning_cells
    assert folded.offer == played.offer
    if played.clock is None:
        assert folded.clock is None
        return
    assert folded.clock is not None
    assert folded.clock.running is played.clock.running
    # The log shows the clocks in whole milliseconds: the fold is as exact as that.
    mine, theirs = played.clocks(now), folded.clocks(now)
    assert mine is not None
    assert theirs is not None
    assert abs(mine.red - theirs.red) <= 1
    assert abs(mine.yellow - theirs.yellow) <= 1
    if played.deadline is None:
        assert folded.deadline is None
    else:
        assert folded.deadline is not None
        assert abs(folded.deadline - played.deadline) <= 0.001
        assert folded.flag_due(now) is played.flag_due(now)


@settings(max_examples=150, deadline=None)
@given(control=st.sampled_from(CONTROLS), steps=steps)
def test_folding_the_log_gives_the_match_that_was_played(
    control: TimeControl | None, steps: list[tuple[Action, Player, int, float]]
) -> None:
    played = Match(control=control, offer_interval=5.0)
    log: list[tuple[GameEvent, float]] = []
    now = 100.0
    for action, player, column, pause in steps:
        now += pause
        request = MatchRequest(player=player, now=now, column=column)
        events = play(played, action, request)
        if events is None:
            continue
        log.extend((event, now) for event in events)
        folded = Match(control=control, offer_interval=5.0)
        for event, at in log:
            folded.fold(event, at)
        assert_same(played, folded, now)


def test_a_rematch_folded_starts_from_an_empty_board_with_fresh_clocks() -> None:
    played = Match(control=Bank(initial=60), offer_interval=5.0)
    log: list[tuple[GameEvent, float]] = []
    script = [
        (Action.JOIN, Player.YELLOW, 1.0),
        (Action.MOVE, Player.RED, 2.0),
        (Action.RESIGN, Player.YELLOW, 3.0),
        (Action.OFFER_REMATCH, Player.RED, 4.0),
        (Action.ACCEPT_REMATCH, Player.YELLOW, 5.0),
    ]
    for action, player, at in script:
        events = play(played, action, MatchRequest(player=player, now=at, column=3))
        assert events
        log.extend((event, at) for event in events)
    folded = Match(control=Bank(initial=60), offer_interval=5.0)
    for event, at in log:
        folded.fold(event, at)
    assert folded.round == 2
    assert folded.game.moves == ()
    assert folded.offered_at == {}
    assert folded.clocks(7.0) == Clocks(red=58_000, yellow=60_000, running=Player.RED)


def test_a_move_the_board_cannot_take_is_a_broken_log() -> None:
    match = Match()
    match.fold(MovePlayed(player=Player.RED, column=0, row=0), 1.0)
    with pytest.raises(LocalProtocolError, match="not the board's"):
        match.fold(MovePlayed(player=Player.RED, column=1, row=0), 2.0)  # yellow's turn
