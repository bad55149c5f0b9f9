"""The whole match through the sans-IO core: hot-seat play, resign, draw offers, abort,
rematch, move clocks, the spectator count and the record.

The match's table is walked pair by pair (``match.py``); everything else goes through real
wsproto peers (``peers.py``) and pages of the versioned protocol (``tabs.py``). Time moves
only through the core's clock argument.
"""

from __future__ import annotations

from typing import Any

import pytest
from peers import Network
from tabs import Tab, log_of, new_game, play_moves, read_all

from connect4proto import Config, Ending, GameEnded, LocalProtocolError, Player
from connect4proto.clock import Bank, Clock, PerMove
from connect4proto.events import ConnectionId, RematchBegun
from connect4proto.log import OfferKind, OfferWithdrawn
from connect4proto.match import PLAYER_ACTIONS, Action, Match, MatchRequest, Phase, refusal_for
from connect4proto.watchers import SpectatorCount, Telling

#: Red wins on its fourth checker in column 3 (the seventh move).
RED_WINS = [3, 4, 3, 4, 3, 4, 3]
#: 42 moves that fill the board with no four in a row (from ``test_game``).
DRAW_COLUMNS = [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 2, 3, 2, 3, 2, 3, 3, 2, 3, 2, 3, 2]
DRAW_COLUMNS += [4, 5, 4, 5, 4, 5, 5, 4, 5, 4, 5, 4, 6, 6, 6, 6, 6, 6]


def error(message: str, code: str) -> dict[str, Any]:
    return {"type": "error", "message": message, "code": code}


# -- the table: every (phase, action) pair ------------------------------------------------

#: What a player gets for each action in each phase: "ok" (a transition; the handler may
#: still refuse, below), or the code of the refusal.
EXPECTED = {
    Phase.WAITING: {
        Action.MOVE: "ok", Action.ABORT: "ok", Action.RESIGN: "no_opponent",
        Action.OFFER_DRAW: "no_opponent", Action.CLAIM: "no_opponent",
        Action.ACCEPT_DRAW: "no_offer", Action.DECLINE_DRAW: "no_offer",
        Action.OFFER_REMATCH: "not_over", Action.ACCEPT_REMATCH: "not_over",
        Action.DECLINE_REMATCH: "not_over",
    },
    Phase.PLAYING: {
        Action.MOVE: "ok", Action.ABORT: "ok", Action.RESIGN: "ok", Action.OFFER_DRAW: "ok",
        Action.CLAIM: "ok", Action.ACCEPT_DRAW: "no_offer", Action.DECLINE_DRAW: "no_offer",
        Action.OFFER_REMATCH: "not_over", Action.ACCEPT_REMATCH: "not_over",
        Action.DECLINE_REMATCH: "not_over",
    },
    Phase.DRAW_OFFERED: {
        Action.MOVE: "ok", Action.ABORT: "ok", Action.RESIGN: "ok", Action.OFFER_DRAW: "ok",
        Action.CLAIM: "ok", Action.ACCEPT_DRAW: "ok", Action.DECLINE_DRAW: "ok",
        Action.OFFER_REMATCH: "not_over", Action.ACCEPT_REMATCH: "not_over",
        Action.DECLINE_REMATCH: "not_over",
    },
    Phase.OVER: {
        Action.MOVE: "ok", Action.ABORT: "game_over", Action.RESIGN: "game_over",
        Action.OFFER_DRAW: "game_over", Action.CLAIM: "game_over",
        Action.ACCEPT_DRAW: "game_over", Action.DECLINE_DRAW: "game_over",
        Action.OFFER_REMATCH: "ok", Action.ACCEPT_REMATCH: "no_offer",
        Action.DECLINE_REMATCH: "no_offer",
    },
    Phase.REMATCH_OFFERED: {
        Action.MOVE: "ok", Action.ABORT: "game_over", Action.RESIGN: "game_over",
        Action.OFFER_DRAW: "game_over", Action.CLAIM: "game_over",
        Action.ACCEPT_DRAW: "game_over", Action.DECLINE_DRAW: "game_over",
        Action.OFFER_REMATCH: "ok", Action.ACCEPT_REMATCH: "ok", Action.DECLINE_REMATCH: "ok",
    },
}  # fmt: skip


def match_in(phase: Phase) -> Match:
    """A match in ``phase``, reached through the table; offers are red's."""
    match = Match(offer_interval=10.0)
    red = MatchRequest(player=Player.RED, now=0.0)
    steps: list[Action] = {
        Phase.WAITING: [],
        Phase.PLAYING: [Action.JOIN],
        Phase.DRAW_OFFERED: [Action.JOIN, Action.OFFER_DRAW],
        Phase.OVER: [Action.JOIN, Action.RESIGN],
        Phase.REMATCH_OFFERED: [Action.JOIN, Action.RESIGN, Action.OFFER_REMATCH],
    }[phase]
    for action in steps:
        assert isinstance(match.apply(action, red), tuple)
    assert match.phase is phase
    return match


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("action", sorted(PLAYER_ACTIONS, key=lambda a: a.value))
def test_every_phase_and_action_is_a_transition_or_a_coded_refusal(
    phase: Phase, action: Action
) -> None:
    expected = EXPECTED[phase][action]
    refusal = refusal_for(phase, action)
    if expected != "ok":
        assert refusal is not None
        assert refusal.code == expected
        match = match_in(phase)
        assert match.apply(action, MatchRequest(player=Player.YELLOW, now=1.0)) == refusal
        assert match.phase is phase  # a refusal changes nothing
    else:
        assert refusal is None


def test_the_lobbys_own_actions_outside_their_phases_are_its_mistakes() -> None:
    request = MatchRequest(player=Player.RED, now=0.0)
    with pytest.raises(LocalProtocolError):
        match_in(Phase.WAITING).apply(Action.FLAG, request)  # no clock runs
    with pytest.raises(LocalProtocolError):
        match_in(Phase.PLAYING).apply(Action.JOIN, request)  # the seat was taken once


def test_an_offer_answered_by_the_same_offer_is_accepted_and_ones_own_is_refused() -> None:
    red = MatchRequest(player=Player.RED, now=1.0)
    yellow = MatchRequest(player=Player.YELLOW, now=1.0)
    match = match_in(Phase.DRAW_OFFERED)
    for action in (Action.OFFER_DRAW, Action.ACCEPT_DRAW, Action.DECLINE_DRAW):
        refused = match.apply(action, red)
        assert not isinstance(refused, tuple)
        assert refused.code == ("offer_pending" if action is Action.OFFER_DRAW else "own_offer")
    match.apply(Action.OFFER_DRAW, yellow)
    assert match.phase is Phase.OVER
    assert match.game.ending is Ending.AGREED
    match = match_in(Phase.REMATCH_OFFERED)
    refused = match.apply(Action.OFFER_REMATCH, red)
    assert not isinstance(refused, tuple)
    assert refused.code == "offer_pending"
    for action in (Action.ACCEPT_REMATCH, Action.DECLINE_REMATCH):
        refused = match.apply(action, red)
        assert not isinstance(refused, tuple)
        assert refused.code == "own_offer"
    match.apply(Action.OFFER_REMATCH, yellow)
    assert match.phase is Phase.PLAYING
    assert match.round == 2


def test_only_its_makers_absence_withdraws_a_rematch_offer() -> None:
    match = match_in(Phase.REMATCH_OFFERED)
    assert match.apply(Action.LEAVE, MatchRequest(player=Player.YELLOW, now=1.0)) == ()
    assert match.phase is Phase.REMATCH_OFFERED
    (withdrawn,) = match.apply(Action.LEAVE, MatchRequest(player=Player.RED, now=2.0))
    assert withdrawn == OfferWithdrawn(offer=OfferKind.REMATCH, player=Player.RED)
    assert match.phase is Phase.OVER
    assert match.offer is None


def test_nobody_can_be_offered_a_rematch_of_a_game_aborted_before_anyone_joined() -> None:
    match = Match(control=Bank(initial=60))
    red = MatchRequest(player=Player.RED, now=0.0)
    match.apply(Action.ABORT, red)  # its clocks never started
    assert match.clocks(5.0) == match.clocks(0.0)
    refused = match.apply(Action.OFFER_REMATCH, red)
    assert not isinstance(refused, tuple)
    assert refused.code == "no_opponent"


# -- clocks ------------------------------------------------------------------------------


def test_a_bank_clock_runs_for_the_player_to_move_and_adds_the_increment() -> None:
    clock = Clock(Bank(initial=60, increment=2))
    assert clock.flag_at is None
    clock.moved(Player.RED, 1.0)  # before the clocks start: free
    assert clock.running is None
    clock.start(Player.YELLOW, 5.0)
    assert clock.flag_at == 65.0
    clock.moved(Player.YELLOW, 15.0)  # 10 s used, 2 s earned
    assert clock.left(Player.YELLOW, 15.0) == 52.0
    assert clock.running is Player.RED
    shown = clock.clocks(20.5)
    assert (shown.red, shown.yellow, shown.running) == (54500, 52000, Player.RED)
    clock.stop(100.0)
    assert clock.clocks(200.0).red == 0  # stopped at zero, and not below
    assert clock.running is None


def test_a_per_move_clock_gives_each_move_the_same_time() -> None:
    clock = Clock(PerMove(seconds=10))
    clock.start(Player.RED, 0.0)
    clock.moved(Player.RED, 9.0)
    clock.moved(Player.YELLOW, 12.0)
    assert clock.left(Player.RED, 12.0) == clock.left(Player.YELLOW, 12.0) == 10.0
    assert clock.flag_at == 22.0


# -- hot-seat: the tutorial's part 1 -----------------------------------------------------


def test_plays_without_init_are_a_hot_seat_game_in_the_tutorials_messages() -> None:
    network = Network()
    page = network.websocket()
    for column in [3, 4, 3]:
        page.send({"type": "play", "column": column})
    assert page.take() == [
        {"type": "play", "player": "red", "column": 3, "row": 0},
        {"type": "play", "player": "yellow", "column": 4, "row": 0},
        {"type": "play", "player": "red", "column": 3, "row": 1},
    ]
    for column in [4, 3, 4, 3]:
        page.send({"type": "play", "column": column})
    *_, win = page.take()
    assert win == {"type": "win", "player": "red", "cells": [[3, 0], [3, 1], [3, 2], [3, 3]]}
    page.send({"type": "play", "column": 0})
    assert page.take() == [{"type": "error", "message": "The game is over."}]
    assert network.server.lobby.game_count == 0  # nothing for anyone else to find
    hot_seat = network.server.lobby.hot_seat(page.id)
    assert hot_seat is not None
    assert hot_seat.record == "4545454"


def test_a_hot_seat_game_refuses_a_full_column_and_ends_in_a_draw() -> None:
    network = Network()
    page = network.websocket()
    for _ in range(6):
        page.send({"type": "play", "column": 0})
    page.take()
    page.send({"type": "play", "column": 0})
    assert page.take() == [{"type": "error", "message": "This slot is full."}]
    fresh = network.websocket()
    for column in DRAW_COLUMNS:
        fresh.send({"type": "play", "column": column})
    messages = fresh.take()
    assert [m["type"] for m in messages] == ["play"] * 42 + ["draw"]
    assert messages[-1] == {"type": "draw"}


def test_a_hot_seat_connection_cannot_init_resign_or_claim() -> None:
    """(An ``init`` is refused as on any connection already in a game.)"""
    network = Network()
    page = network.websocket()
    page.send({"type": "play", "column": 3})
    page.take()
    page.send({"type": "init"})
    page.send({"type": "resign"})
    assert page.take() == [
        {"type": "error", "message": "You are already in a game."},
        {"type": "error", "message": "This game is played on one device: only moves are possible."},
    ]
    page.send({"type": "play", "column": 3})
    assert page.take() == [{"type": "play", "player": "yellow", "column": 3, "row": 1}]


def test_a_play_after_a_refused_init_is_not_a_hot_seat_game() -> None:
    network = Network()
    page = network.websocket()
    page.send({"type": "init", "join": "nope"})
    page.send({"type": "play", "column": 3})
    assert page.take() == [
        {"type": "error", "message": "Game not found."},
        {"type": "error", "message": "Send an init message first."},
    ]


# -- resign, abort, draw offers ------------------------------------------------------------


def test_resigning_gives_the_opponent_the_win_with_the_record() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    play_moves({"red": red, "yellow": yellow}, [3, 4, 2], observer)
    yellow.send("resign")
    read_all(red, yellow, observer)
    end = {"type": "win", "player": "red", "cells": [], "reason": "resign", "record": "453"}
    end["by"] = "yellow"  # who resigned
    assert red.last == yellow.last == observer.last == {**end, "v": 6}
    assert GameEnded(game=1, winner=Player.RED, moves=3, reason=Ending.RESIGNATION) in (
        network.events
    )
    red.send("resign")
    red.read()
    assert red.errors == [error("The game is over.", "game_over")]


def test_a_game_can_be_aborted_until_both_have_moved() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    red.play(3)
    read_all(red, yellow, observer)
    yellow.send("abort")
    read_all(red, yellow, observer)
    assert observer.last == {"type": "aborted", "player": "yellow", "record": "4", "v": 4}
    later = Network()
    red, yellow, observer = new_game(later)
    play_moves({"red": red, "yellow": yellow}, [3, 4], observer)
    red.send("abort")
    red.read()
    assert red.errors[-1]["code"] == "too_late"
    lone = Tab(Network())
    lone.send("abort")  # nobody joined yet: red may call it off
    lone.read()
    assert lone.last == {"type": "aborted", "player": "red", "record": "", "v": 2}


def test_an_abort_is_an_error_text_for_the_tutorials_protocol() -> None:
    network = Network()
    red = Tab(network)
    assert red.keys is not None
    old = network.websocket()  # a page of the tutorial's protocol, watching
    old.send({"type": "init", "watch": red.keys["watch"]})
    old.take()
    red.send("abort")
    assert old.take() == [{"type": "error", "message": "Red aborted the game."}]


def test_a_draw_offer_accepted_ends_the_game_as_agreed() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    play_moves({"red": red, "yellow": yellow}, [3, 4], observer)
    red.send("offer", offer="draw")
    read_all(red, yellow, observer)
    assert yellow.last == {"type": "offer", "offer": "draw", "player": "red", "v": 5}
    yellow.send("accept", offer="draw")
    read_all(red, yellow, observer)
    assert red.last == observer.last == {
        "type": "draw", "reason": "agreed", "record": "45", "by": "yellow", "v": 6
    }  # fmt: skip
    assert GameEnded(game=1, winner=None, moves=2, reason=Ending.AGREED) in network.events


def test_a_draw_offer_is_declined_by_a_word_or_by_a_move() -> None:
    network = Network(config=Config(offer_interval=10.0))
    red, yellow, observer = new_game(network)
    red.send("offer", offer="draw")
    red.play(3)  # the offer stands while its maker plays on
    read_all(red, yellow, observer)
    yellow.send("decline", offer="draw")
    read_all(red, yellow, observer)
    assert observer.last == {"type": "declined", "offer": "draw", "player": "yellow", "v": 5}
    red.send("offer", offer="draw")  # again at once: too soon
    red.read()
    assert red.errors == [error("You can offer a draw again in 10 s.", "offer_too_soon")]
    network.advance(10.0)
    red.send("offer", offer="draw")
    yellow.play(4)
    read_all(red, yellow, observer)
    assert [m["type"] for m in observer.applied[-3:]] == ["offer", "declined", "play"]
    assert observer.applied[-2] == {
        "type": "declined", "offer": "draw", "player": "yellow", "v": 7
    }  # fmt: skip
    yellow.send("accept", offer="draw")  # nothing to accept any more
    yellow.read()
    assert yellow.errors == [error("There is no draw offer to answer.", "no_offer")]


def test_spectators_and_connections_without_a_game_take_no_part() -> None:
    network = Network()
    *_, observer = new_game(network)
    for kind, fields in [("resign", {}), ("offer", {"offer": "draw"}), ("abort", {})]:
        observer.send(kind, **fields)
    observer.read()
    assert [e["code"] for e in observer.errors] == ["spectator"] * 3
    stranger = network.websocket()
    stranger.send({"type": "init", "v": 0, "join": "nope"})
    stranger.send({"type": "resign"})
    assert stranger.take()[-1] == error("Send an init message first.", "init_first")


# -- rematch -------------------------------------------------------------------------------


def finished_game(network: Network) -> tuple[Tab, Tab, Tab]:
    red, yellow, observer = new_game(network)
    play_moves({"red": red, "yellow": yellow}, RED_WINS, observer)
    return red, yellow, observer


def test_a_rematch_swaps_the_colours_and_the_spectators_follow() -> None:
    network = Network()
    red, yellow, observer = finished_game(network)
    assert red.seat is not None
    assert yellow.seat is not None
    tokens = red.seat["token"], yellow.seat["token"]
    yellow.send("offer", offer="rematch")
    read_all(red, yellow, observer)
    assert red.last == {"type": "offer", "offer": "rematch", "player": "yellow", "v": 11}
    red.send("accept", offer="rematch")
    messages = red.read()
    read_all(yellow, observer)
    assert red.last == yellow.last == observer.last == {"type": "rematch", "round": 2, "v": 12}
    # Last game's yellow moves first, as red; the new colour comes without a token: each
    # person's token stays theirs, and now leads to the other colour.
    assert messages[-1] == {"type": "seat", "player": "yellow", "v": 12}
    assert yellow.seat["player"] == "red"
    assert red.seat["player"] == "yellow"
    assert (red.seat["token"], yellow.seat["token"]) == tokens
    assert RematchBegun(game=1, round=2) in network.events
    red.play(3)  # red is yellow now: not its turn
    red.read()
    assert red.errors[-1]["code"] == "not_your_turn"
    yellow.play(0)
    read_all(red, yellow, observer)
    assert observer.last == {"type": "play", "player": "red", "column": 0, "row": 0, "v": 13}
    assert network.server.lobby.game(1).record == "1"
    red.drop()
    read_all(yellow, observer)
    back = red.resume()
    # The creator's page gets the invite links back, whatever its colour now.
    assert back[0] == {"type": "init", "join": "key-1", "watch": "key-2"}
    assert back[1] == {"type": "seat", "player": "yellow", "token": tokens[0], "v": 14}
    observer.read()
    assert log_of(red) == log_of(observer)


def test_a_page_that_reloads_as_the_rematch_begins_comes_back_to_its_new_colour() -> None:
    network = Network()
    red, yellow, observer = finished_game(network)
    red.send("offer", offer="rematch")
    read_all(red, yellow, observer)
    yellow.send("accept", offer="rematch")
    lost = red.peer.take()  # they reach a page that is reloading: lost with it
    assert [m["type"] for m in lost] == ["rematch", "seat"]
    red.peer.close(1001)
    red.resume()
    read_all(yellow, observer)
    assert red.seat is not None
    assert red.seat["player"] == "yellow"
    assert log_of(red) == log_of(observer)
    assert observer.applied[-1]["type"] == "rematch"  # the reload itself went unseen


def test_a_rematch_offer_can_be_declined_and_lapses_when_its_maker_leaves() -> None:
    network = Network()
    red, yellow, observer = finished_game(network)
    red.send("offer", offer="rematch")
    yellow.send("decline", offer="rematch")
    read_all(red, yellow, observer)
    assert observer.last == {"type": "declined", "offer": "rematch", "player": "yellow", "v": 12}
    yellow.send("offer", offer="rematch")
    read_all(red, yellow, observer)
    yellow.drop()
    read_all(red, observer)
    assert [m["type"] for m in observer.applied[-2:]] == ["away", "withdrawn"]
    assert observer.last == {"type": "withdrawn", "offer": "rematch", "player": "yellow", "v": 15}
    red.send("accept", offer="rematch")
    red.read()
    assert red.errors[-1] == error("There is no rematch offer to answer.", "no_offer")


def test_a_rematch_waits_for_a_maker_who_is_reconnecting() -> None:
    network = Network()
    red, yellow, observer = finished_game(network)
    yellow.send("offer", offer="rematch")
    read_all(red, yellow, observer)
    yellow.peer.close(1001)  # a reload: quiet for the away delay
    red.send("accept", offer="rematch")
    red.read()
    assert red.errors[-1] == error(
        "Yellow is reconnecting: try again in a moment.", "opponent_away"
    )
    yellow.resume()
    red.send("accept", offer="rematch")
    read_all(red, yellow, observer)
    assert observer.last["type"] == "rematch"


def test_a_rematch_needs_both_players_on_the_versioned_protocol() -> None:
    network = Network()
    red = Tab(network)
    assert red.keys is not None
    old = network.websocket()  # the tutorial's client as yellow
    old.send({"type": "init", "join": red.keys["join"]})
    red.send("resign")
    red.send("offer", offer="rematch")
    red.read()
    assert red.errors[-1]["code"] == "unsupported"


def test_a_spectator_of_the_tutorials_protocol_is_let_go_at_a_rematch() -> None:
    network = Network()
    red, yellow, observer = finished_game(network)
    old = network.websocket()
    old.send({"type": "init", "watch": "key-2"})
    old.take()
    red.send("offer", offer="rematch")
    yellow.send("accept", offer="rematch")
    assert old.close_code == 1000
    assert network.server.lobby.members(1).keys() == {
        red.peer.id, yellow.peer.id, observer.peer.id
    }  # fmt: skip


# -- clocks through the lobby --------------------------------------------------------------

BANK = {"kind": "bank", "initial": 60, "increment": 2}


def clocked(red: int, yellow: int, running: str | None) -> dict[str, Any]:
    return {"red": red, "yellow": yellow, "running": running}


def timed_game(network: Network, control: dict[str, Any]) -> tuple[Tab, Tab, Tab]:
    red = Tab(network, clock=control)
    assert red.keys is not None
    observer = Tab(network, watch=red.keys["watch"])
    yellow = Tab(network, join=red.keys["join"])
    read_all(red, observer)
    return red, yellow, observer


def test_a_timed_game_starts_the_clocks_when_yellow_arrives_and_moves_carry_them() -> None:
    network = Network()
    red, yellow, observer = timed_game(network, BANK)
    assert red.seat is not None
    assert red.seat["control"] == BANK
    assert observer.last == {
        "type": "joined", "player": "yellow", "clock": clocked(60000, 60000, "red"), "v": 2
    }  # fmt: skip
    network.advance(5.0)
    red.play(3)
    network.advance(7.5)
    yellow.play(4)
    read_all(red, yellow, observer)
    assert [m["clock"] for m in observer.applied[-2:]] == [
        clocked(57000, 60000, "yellow"),
        clocked(57000, 59500, "red"),
    ]
    # A newcomer gets the clocks as they stand, after the events that carry older ones.
    network.advance(10.0)
    late = Tab(network, watch="key-2")
    assert late.clock == clocked(54500, 59500, "red")


def test_a_player_whose_time_runs_out_loses_even_while_away() -> None:
    network = Network()
    red, yellow, observer = timed_game(network, {"kind": "move", "seconds": 20})
    red.play(3)
    read_all(red, yellow, observer)
    yellow.drop()  # away: its clock keeps running
    assert network.server.lobby.match(1).deadline == 20.0
    network.advance(19.9)
    read_all(red, observer)
    assert observer.last["type"] == "away"
    network.advance(20.0)
    read_all(red, observer)
    assert observer.last == {
        "type": "win", "player": "red", "cells": [], "reason": "time", "record": "4",
        "by": "yellow", "clock": clocked(20000, 0, None), "v": 5,
    }  # fmt: skip
    assert GameEnded(game=1, winner=Player.RED, moves=1, reason=Ending.TIME) in network.events


def test_a_move_after_the_flag_fell_is_too_late_whenever_the_timer_runs() -> None:
    network = Network()
    red, yellow, observer = timed_game(network, {"kind": "move", "seconds": 20})
    network.now = 25.0  # no advance() call: the move comes first
    red.play(3)
    read_all(red, yellow, observer)
    assert observer.last["reason"] == "time"
    assert red.errors == [error("The game is over.", "game_over")]


def test_a_time_control_is_chosen_only_at_creation_and_validated() -> None:
    network = Network()
    red = Tab(network)
    page = network.websocket()
    page.send({"type": "init", "join": "key-1", "clock": BANK})
    page.send({"type": "init", "clock": {"kind": "bank", "initial": 0}})
    first, second = page.take()
    assert first["code"] == "bad_init"
    assert second["message"] == "Invalid message: Expected `int` >= 1 - at `$.clock.initial`"
    assert red.seat is not None
    assert "control" not in red.seat  # untimed: the tutorial's game


def test_a_rematch_of_a_timed_game_starts_both_clocks_afresh() -> None:
    network = Network()
    red, yellow, observer = timed_game(network, BANK)
    network.advance(4.0)
    red.send("resign")
    yellow.send("offer", offer="rematch")
    red.send("accept", offer="rematch")
    read_all(red, yellow, observer)
    assert observer.last == {
        "type": "rematch", "round": 2, "clock": clocked(60000, 60000, "red"), "v": 5
    }  # fmt: skip


def test_a_snapshot_carries_the_clocks_the_round_and_a_pending_offer() -> None:
    network = Network()
    red, yellow, observer = timed_game(network, BANK)
    red.send("offer", offer="draw")
    read_all(red, yellow, observer)
    network.advance(3.0)
    late = network.websocket()
    late.send({"type": "init", "watch": "key-2", "v": 99})
    _, sync, clock, _ = late.take()
    assert sync["offer"] == {"offer": "draw", "player": "red"}
    assert sync["clock"] == clocked(57000, 60000, "red")
    assert sync["control"] == BANK
    assert "round" not in sync  # 1, the default, is left out
    assert clock == {"type": "clock", "clock": clocked(57000, 60000, "red")}


# -- the spectator count -------------------------------------------------------------------


def test_the_spectator_count_is_told_at_most_once_per_interval() -> None:
    network = Network(config=Config(watchers_interval=1.0))
    red = Tab(network)
    assert red.keys is not None
    first = Tab(network, watch=red.keys["watch"])
    assert first.watchers == 1
    red.read()
    assert red.watchers == 1
    crowd = [Tab(network, watch="key-2") for _ in range(5)]
    assert crowd[-1].watchers == 6  # a newcomer is told at once
    assert red.read() == []  # the others, once the interval is over
    for tab in crowd[:3]:
        tab.drop()
    network.advance(0.999)
    assert red.read() == []
    network.advance(1.0)
    assert red.read() == [{"type": "watchers", "count": 3}]
    assert first.read() == [{"type": "watchers", "count": 3}]
    # Somebody who comes and goes within the interval changes nothing.
    network.advance(1.5)
    Tab(network, watch="key-2").drop()
    network.advance(2.5)
    assert red.read() == []


def test_a_newcomer_told_a_count_the_others_were_not_is_corrected() -> None:
    network = Network(config=Config(watchers_interval=1.0))
    red = Tab(network)
    first = Tab(network, watch="key-2")  # told to everyone at once: 1
    network.advance(0.5)
    second = Tab(network, watch="key-2")
    assert second.watchers == 2  # told at once, alone
    first.drop()  # back to the 1 everyone else was told
    network.advance(1.0)
    second.read()
    assert second.watchers == 1
    red.read()
    assert red.watchers == 1
    assert network.server.lobby.next_deadline != 1.0  # nothing more to tell


def test_a_player_who_comes_back_is_told_the_count_even_when_nobody_watches() -> None:
    network = Network()
    _, yellow, observer = new_game(network)
    assert yellow.watchers == 1
    yellow.drop()
    observer.drop()
    yellow.resume()
    assert yellow.watchers == 0


def test_a_spectator_count_tells_everyone_once_per_interval_and_corrects_newcomers() -> None:
    count = SpectatorCount(interval=1.0)
    a, b, c = ConnectionId(1), ConnectionId(2), ConnectionId(3)
    assert count.arrived(a, 0.0) == Telling(1, everyone=True)
    assert count.deadline is None
    assert count.arrived(b, 0.5) == Telling(2, privately=(b,))  # within the interval
    assert count.deadline == 1.0
    assert count.arrived(None, 0.6) == Telling(3)  # a tutorial page: counted, never told
    assert count.left((a, b), 0.7) == Telling(1)  # back to what everyone holds but b
    assert count.newcomer(c) == Telling(1, privately=(c,))  # told the truth: not stale
    assert count.due(1.0) == Telling(1)  # b left: nobody to correct
    assert count.deadline is None
