"""Several server processes sharing their games through a store outside them, in memory.

Each ``SharedNetwork`` is one process (its own core, its own connections); the ``SharedLog``
behaves as the Redis log does, and delivers its answers at once or when the test says, so that
races between processes are played out in every order. Whatever happens, every page that
follows a game holds the same log, and nothing a page saw accepted is missing from it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from shared_log import SharedLog, SharedNetwork
from tabs import Tab, log_of, read_all

from connect4proto import Config, GameId, LocalProtocolError, Player
from connect4proto.clock import Bank
from connect4proto.lobby import SEAT_REPLACED
from connect4proto.log import Logged, MovePlayed
from connect4proto.seats import Elsewhere, Held

#: Red wins on its fourth checker in column 3 (the seventh move).
RED_WINS = [3, 4, 3, 4, 3, 4, 3]


def nodes(count: int, log: SharedLog | None = None, **config: Any) -> list[SharedNetwork]:
    """``count`` processes on ``log``, each with keys of its own (as random ones would be)."""
    log = SharedLog() if log is None else log
    return [
        SharedNetwork(log, config=Config(**config), new_key=prefixed_keys(f"p{i}"), process=f"p{i}")
        for i in range(count)
    ]


def prefixed_keys(prefix: str) -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{prefix}-key-{next(counter)}"


def at(now: float, *networks: SharedNetwork) -> None:
    """Every process's clock at ``now`` (their timers run)."""
    for network in networks:
        network.advance(now)


def created_on_first(count: int) -> tuple[SharedLog, list[SharedNetwork], Tab]:
    """``count`` processes on one log, and a game created on the first (red's tab)."""
    log = SharedLog()
    networks = nodes(count, log)
    red = Tab(networks[0])
    assert red.keys is not None
    return log, networks, red


def cross_node_game(a: SharedNetwork, b: SharedNetwork, c: SharedNetwork) -> tuple[Tab, Tab, Tab]:
    """Red creates on ``a``, yellow joins on ``b``, a spectator watches on ``c``."""
    red = Tab(a)
    assert red.keys is not None
    yellow = Tab(b, join=red.keys["join"])
    observer = Tab(c, watch=red.keys["watch"])
    read_all(red, yellow, observer)
    return red, yellow, observer


def test_a_game_created_on_one_process_is_joined_played_and_watched_from_others() -> None:
    a, b, c = nodes(3)
    red, yellow, observer = cross_node_game(a, b, c)
    assert yellow.seat is not None
    assert yellow.seat["player"] == "yellow"
    for i, column in enumerate(RED_WINS):
        (red if i % 2 == 0 else yellow).play(column)
        read_all(red, yellow, observer)
    assert observer.last["type"] == "win"
    assert observer.last["player"] == "red"
    assert log_of(red) == log_of(yellow) == log_of(observer)
    assert [m["type"] for m in log_of(observer)].count("play") == 7
    # Each process holds the game; the log outside holds every event, once.
    assert [logged.version for logged in b.log.logs[1]] == list(range(1, red.v + 1))
    for network in (a, b, c):
        assert network.server.lobby.version(1) == red.v


def test_a_move_is_sent_only_once_the_store_outside_has_logged_it() -> None:
    log = SharedLog()
    a, b = nodes(2, log)
    red, yellow, _ = cross_node_game(a, b, b)
    log.automatic = False
    red.play(3)
    assert red.read() == []
    assert yellow.read() == []
    assert log.waiting == 3  # the answer to a, and the event to a and b (they follow it)
    log.deliver()
    assert [m["type"] for m in red.read()] == ["play"]
    assert [m["type"] for m in yellow.read()] == ["play"]


@pytest.mark.parametrize("first", ["red", "yellow"])
def test_two_processes_deciding_at_the_same_version_are_both_heard_once_in_one_order(
    first: str,
) -> None:
    log = SharedLog()
    a, b, c = nodes(3, log)
    red, yellow, observer = cross_node_game(a, b, c)
    red.play(3)
    read_all(red, yellow, observer)
    log.automatic = False
    # At the same version: yellow moves on b while red offers a draw on a.
    tabs = {
        "red": (red, lambda: red.send("offer", offer="draw")),
        "yellow": (yellow, lambda: yellow.play(4)),
    }
    order = [first, "yellow" if first == "red" else "red"]
    for name in order:
        tabs[name][1]()
    log.deliver()
    read_all(red, yellow, observer)
    kinds = [m["type"] for m in log_of(observer)]
    if first == "red":  # the offer came first: yellow's move, decided again, declines it
        assert kinds[-3:] == ["offer", "declined", "play"]
    else:
        assert kinds[-2:] == ["play", "offer"]
    assert log_of(red) == log_of(yellow) == log_of(observer)
    assert red.errors == yellow.errors == []


def test_a_flag_that_falls_on_every_process_is_logged_once() -> None:
    a, b = nodes(2)
    red = Tab(a, clock={"kind": "bank", "initial": 5})
    assert red.keys is not None
    yellow = Tab(b, join=red.keys["join"])
    read_all(red, yellow)
    at(4.0, a, b)
    red.play(3)
    read_all(red, yellow)
    # Yellow's 5 s run from 4.0: both processes' timers fire at 9.0.
    at(9.5, a, b)
    read_all(red, yellow)
    results = [m for m in log_of(red) if m["type"] == "win"]
    assert len(results) == 1
    assert results[0]["reason"] == "time"
    assert log_of(red) == log_of(yellow)
    assert [type(e.event).__name__ for e in a.log.logs[1]].count("GameOver") == 1


def test_while_the_store_cannot_be_reached_moves_are_refused_and_nothing_is_lost() -> None:
    log = SharedLog()
    a, b = nodes(2, log)
    red, yellow, observer = cross_node_game(a, b, b)
    red.play(3)
    read_all(red, yellow, observer)
    before = log_of(observer)
    log.down = True
    yellow.play(4)
    read_all(red, yellow, observer)
    assert yellow.errors[-1]["code"] == "reconnecting"
    assert log_of(observer) == before  # nothing was played, nobody saw anything
    assert b.server.lobby.game(1).moves == a.server.lobby.game(1).moves
    log.down = False
    yellow.play(4)
    read_all(red, yellow, observer)
    assert log_of(red) == log_of(yellow) == log_of(observer)
    assert log_of(observer)[-1]["column"] == 4


def test_a_new_game_is_refused_while_the_store_cannot_be_reached() -> None:
    log = SharedLog()
    (a,) = nodes(1, log)
    log.down = True
    red = Tab(a)
    assert red.keys is None
    assert red.seat is None
    assert red.errors[-1]["code"] == "reconnecting"
    assert a.server.lobby.game_count == 0
    log.down = False
    red.resume(v=0)  # a new connection, and a new try
    assert red.keys is not None


def test_a_join_is_refused_while_the_store_cannot_be_reached() -> None:
    log, (_a, b), red = created_on_first(2)
    log.down = True
    yellow = Tab(b, join=red.keys["join"])
    assert yellow.errors[-1]["code"] == "reconnecting"
    log.down = False
    yellow = Tab(b, join=red.keys["join"])
    red.read()
    assert yellow.seat is not None
    assert [m["type"] for m in log_of(red)][-1] == "joined"


def test_a_player_who_left_while_the_store_was_down_is_told_of_once_it_is_back() -> None:
    log = SharedLog()
    a, b = nodes(2, log, away_delay=2.0)
    red, yellow, _ = cross_node_game(a, b, b)
    log.down = True
    red.drop()  # on a: the absence cannot be logged; it is kept quiet meanwhile
    at(2.5, a, b)  # the absence is due to be told: still down, tried again later
    yellow.read()
    assert [m["type"] for m in log_of(yellow)][-1] == "joined"
    log.down = False
    at(4.0, a, b)
    yellow.read()
    assert log_of(yellow)[-1]["type"] == "away"
    assert log_of(yellow)[-1]["player"] == "red"


def test_a_seat_resumed_on_another_process_lets_the_old_connection_go() -> None:
    a, b = nodes(2)
    red, yellow, _ = cross_node_game(a, b, b)
    assert red.seat is not None
    token = red.seat["token"]
    old = red.peer
    second = Tab(b, token=token)  # red's second tab, on b
    assert old.close_code == SEAT_REPLACED
    assert second.seat is not None
    assert second.seat["player"] == "red"
    seats_a = a.server.lobby.seats(1)
    seats_b = b.server.lobby.seats(1)
    assert type(seats_a[Player.RED]) is Elsewhere
    assert type(seats_b[Player.RED]) is Held
    second.play(3)
    read_all(second, yellow)
    assert log_of(second)[-1] == log_of(yellow)[-1]
    assert log_of(yellow)[-1]["type"] == "play"


def test_players_of_a_process_that_died_resume_on_another_and_finish_the_game() -> None:
    log = SharedLog()
    a, b = nodes(2, log)
    red, yellow, _ = cross_node_game(a, b, b)
    for i, column in enumerate(RED_WINS[:4]):
        (red if i % 2 == 0 else yellow).play(column)
        read_all(red, yellow)
    # a is killed: nothing more comes from it, and nothing of red's is logged.
    log.followers[1].remove(a)
    red.network = b
    red.resume()
    read_all(red, yellow)
    for i, column in enumerate(RED_WINS[4:], start=4):
        (red if i % 2 == 0 else yellow).play(column)
        read_all(red, yellow)
    assert red.last["type"] == "win"
    assert log_of(red) == log_of(yellow)


def test_a_rematch_across_processes_swaps_the_colours_and_the_tokens() -> None:
    a, b, c = nodes(3)
    red, yellow, observer = cross_node_game(a, b, c)
    red.send("resign")
    read_all(red, yellow, observer)
    yellow.send("offer", offer="rematch")
    read_all(red, yellow, observer)
    red.send("accept", offer="rematch")
    read_all(red, yellow, observer)
    assert red.seat is not None
    assert yellow.seat is not None
    assert (red.seat["player"], yellow.seat["player"]) == ("yellow", "red")
    assert observer.last["type"] == "rematch"
    # The old red's token now leads to yellow, from any process.
    red.drop()
    red.network = c
    red.resume()
    assert red.seat is not None
    assert red.seat["player"] == "yellow"
    yellow.play(3)  # red moves first: last game's yellow
    read_all(red, yellow, observer)
    assert log_of(red) == log_of(yellow) == log_of(observer)


def test_a_timed_game_folded_on_another_process_has_the_same_clocks() -> None:
    a, b = nodes(2)
    red = Tab(a, clock={"kind": "bank", "initial": 60, "increment": 2})
    assert red.keys is not None
    at(1.0, a, b)
    yellow = Tab(b, join=red.keys["join"])
    at(3.0, a, b)
    red.play(3)
    read_all(red, yellow)
    assert a.server.lobby.match(1).clocks(10.0) == b.server.lobby.match(1).clocks(10.0)
    assert b.server.lobby.match(1).control == Bank(initial=60, increment=2)


def test_a_computer_game_resumed_on_another_process_goes_on() -> None:
    a, b = nodes(2, bot_delay=0.0)
    red = Tab(a, bot="beginner")
    a.think()
    red.play(3)
    a.think()
    red.read()
    moves = [m for m in log_of(red) if m["type"] == "play"]
    assert len(moves) == 2
    red.drop()
    red.network = b
    red.resume()
    red.play(4)
    b.think()  # b asks for the computer's move now
    red.read()
    assert [m["type"] for m in log_of(red)].count("play") == 4


def test_an_unknown_key_is_not_found_on_any_process() -> None:
    (a,) = nodes(1)
    tab = Tab(a, join="no-such-key")
    assert tab.errors[-1]["code"] == "game_not_found"
    tab = Tab(a, token="no-such-token")
    assert tab.errors[-1]["code"] == "unknown_token"


def test_a_lookup_the_store_cannot_answer_is_refused() -> None:
    log, (_a, b), red = created_on_first(2)
    log.down = True
    watcher = Tab(b, watch=red.keys["watch"])
    assert watcher.errors[-1]["code"] == "reconnecting"


def test_a_connection_that_closes_while_its_init_is_looked_up_joins_nothing() -> None:
    log, (a, b), red = created_on_first(2)
    log.automatic = False
    peer = b.websocket()
    peer.send({"type": "init", "join": red.keys["join"], "v": 0})
    b.lose(peer)
    log.deliver()
    assert b.server.lobby.member_count == 0
    assert type(a.server.lobby.seats(1)[Player.YELLOW]).__name__ == "Vacant"


# -- the edges of waiting for the store ------------------------------------------------------


def test_inits_that_wait_for_one_lookup_are_asked_once_and_all_answered() -> None:
    log, (_a, b), red = created_on_first(2)
    log.automatic = False
    first, second = b.websocket(), b.websocket()
    for peer in (first, second):
        peer.send({"type": "init", "watch": red.keys["watch"], "v": 0})
    assert log.waiting == 1  # one lookup for both
    # The same connection sends a second init before the first is done: refused, once done.
    first.send({"type": "init", "watch": red.keys["watch"], "v": 0})
    log.deliver()
    assert [m["type"] for m in second.take()][:2] == ["watching", "joined"]
    kinds = [(m["type"], m.get("code")) for m in first.take()]
    assert kinds[:2] == [("watching", None), ("joined", None)]
    assert [kind for kind in kinds if kind[0] == "error"] == [("error", "already_in_game")]


def test_a_join_whose_append_the_store_refuses_leaves_the_seat_vacant() -> None:
    log, (_a, b), red = created_on_first(2)
    log.automatic = False
    yellow = b.websocket()
    yellow.send({"type": "init", "join": red.keys["join"], "v": 0})
    log.down = True  # found, but gone by the time the seat is to be logged
    log.deliver()
    assert [(m["type"], m.get("code")) for m in yellow.take()] == [("error", "reconnecting")]
    assert b.server.lobby.member_count == 0
    assert b.server.lobby.seat(yellow.id) is None
    log.down = False
    yellow.send({"type": "init", "join": red.keys["join"], "v": 0})
    log.deliver()
    assert yellow.take()[0]["type"] == "seat"


def test_timers_wait_for_the_decision_before_them() -> None:
    log = SharedLog()
    a, b = nodes(2, log)
    red = Tab(a, clock={"kind": "bank", "initial": 10})
    assert red.keys is not None
    yellow = Tab(b, join=red.keys["join"])
    at(9.0, a, b)
    log.automatic = False
    red.send("offer", offer="draw")  # decided at 9.0, red's clock running: waiting
    at(10.5, a)  # red's flag was due at 10: it waits for the decision before it
    assert a.log.waiting == 3
    log.automatic = True
    log.deliver()
    at(10.6, a, b)
    read_all(red, yellow)
    assert [m["type"] for m in log_of(yellow)][-2:] == ["offer", "win"]
    assert log_of(yellow)[-1]["reason"] == "time"
    assert log_of(red) == log_of(yellow)


def test_what_comes_for_a_game_forgotten_here_is_dropped() -> None:
    log = SharedLog()
    a, b = nodes(2, log)
    red, _yellow, _ = cross_node_game(a, a, a)
    watcher = Tab(b, watch=red.keys["watch"] if red.keys else "")
    log.automatic = False
    red.play(3)  # its event is on its way to b
    b.lose(watcher.peer)  # b's only member: b forgets the game
    assert b.server.lobby.game_count == 0
    log.deliver()  # the event arrives for a game b forgot
    red.read()
    assert b.server.lobby.game_count == 0
    assert log_of(red)[-1]["type"] == "play"


def test_a_decision_waiting_for_the_store_goes_on_for_whoever_is_still_there() -> None:
    # A tutorial-protocol spectator, let go at the rematch, and a player dropping meanwhile.
    log = SharedLog()
    a, b = nodes(2, log)
    red, yellow, _ = cross_node_game(a, b, b)
    tutorial = a.websocket()
    assert red.keys is not None
    tutorial.send({"type": "init", "watch": red.keys["watch"]})
    red.send("resign")
    yellow.send("offer", offer="rematch")
    read_all(red, yellow)
    log.automatic = False
    red.send("accept", offer="rematch")  # held: the spectator's dismissal with it
    a.lose(tutorial)
    log.deliver()
    read_all(red, yellow)
    assert red.seat is not None
    assert red.seat["player"] == "yellow"
    assert log_of(red)[-1]["type"] == "rematch"


def test_an_answer_for_no_decision_or_a_gap_in_the_log_is_a_local_error() -> None:
    (a,) = nodes(1)
    red = Tab(a)
    with pytest.raises(LocalProtocolError, match="no decision"):
        a.server.appended(99, a.now)
    ahead = Logged(red.v + 2, MovePlayed(player=Player.RED, column=0, row=0), 0.0)
    with pytest.raises(LocalProtocolError, match="after"):
        a.server.remote(GameId(1), [ahead], a.now)


def test_a_computer_move_asked_on_two_processes_is_played_once() -> None:
    a, b = nodes(2, bot_delay=0.0)
    red = Tab(a, bot="beginner", color="yellow")  # the computer is red, and moves first
    a.think()
    red.read()
    red.play(3)  # a asks for the computer's answer ...
    red.read()
    second = Tab(b, token=red.seat["token"] if red.seat else "")  # ... and so does b
    assert second.seat is not None
    assert second.seat["player"] == "yellow"
    b.think()  # b's answer is played
    a.think()  # a's comes late: its position is gone
    second.read()
    moves = [m for m in log_of(second) if m["type"] == "play"]
    assert [m["player"] for m in moves] == ["red", "yellow", "red"]


def test_an_answer_of_the_computer_for_a_game_forgotten_here_is_dropped() -> None:
    a, _b = nodes(2, bot_delay=0.0, seat_grace=5.0)
    red = Tab(a, bot="beginner")
    red.play(3)  # the computer's answer is asked for
    red.drop()
    a.advance(a.now + 5.0)
    assert a.server.lobby.game_count == 0  # nobody came back: forgotten here
    a.think()  # the answer comes for a game a no longer holds
    assert a.server.lobby.game_count == 0


def test_an_init_whose_connection_closed_is_not_refused_when_the_lookup_fails() -> None:
    log, (_a, b), red = created_on_first(2)
    log.automatic = False
    log.down = True
    gone, waiting = b.websocket(), b.websocket()
    for peer in (gone, waiting):
        peer.send({"type": "init", "watch": red.keys["watch"], "v": 0})
    b.lose(gone)
    log.deliver()
    assert [m["code"] for m in waiting.take()] == ["reconnecting"]


def test_no_new_game_without_a_game_id_from_the_store_outside() -> None:
    log = SharedLog()
    network = SharedNetwork(log, new_game_id=lambda: None)
    red = Tab(network)
    assert red.keys is None
    assert red.errors[-1]["code"] == "reconnecting"


def test_what_a_page_sends_while_its_init_is_looked_up_comes_after_the_init() -> None:
    log = SharedLog()
    a, b = nodes(2, log)
    red, yellow, _ = cross_node_game(a, a, a)
    assert red.seat is not None
    log.automatic = False
    red.peer = b.websocket()  # red's page reloads onto b, and plays at once
    red.peer.send({"type": "init", "token": red.seat["token"], "v": red.v})
    red.play(3)
    log.automatic = True
    log.deliver()
    read_all(red, yellow)
    assert red.errors == []
    assert log_of(yellow)[-1]["type"] == "play"
    assert log_of(yellow)[-1]["column"] == 3


def test_a_play_behind_an_init_the_store_could_not_look_up_is_no_hot_seat_game() -> None:
    log, (_a, b), red = created_on_first(2)
    log.automatic = False
    log.down = True
    peer = b.websocket()
    peer.send({"type": "init", "join": red.keys["join"], "v": 0})
    peer.send({"type": "play", "column": 3})
    log.deliver()
    assert [m["code"] for m in peer.take()] == ["reconnecting", "init_first"]


def test_the_seats_of_a_process_that_is_gone_are_away_and_can_be_claimed() -> None:
    log = SharedLog()
    a, b, c = nodes(3, log, seat_grace=10.0)
    red, yellow, observer = cross_node_game(a, b, c)
    red.play(3)
    read_all(red, yellow, observer)
    # a dies: nothing more from it; b and c find its heartbeat gone.
    log.followers[1].remove(a)
    assert b.server.held_elsewhere() == {"p0"}
    assert c.server.held_elsewhere() == {"p0", "p1"}
    for network in (b, c):  # both find it: the absence is logged once
        network.apply(network.server.process_gone("p0", network.now))
    read_all(yellow, observer)
    assert [m["type"] for m in log_of(yellow)].count("away") == 1
    assert log_of(yellow)[-1]["player"] == "red"
    assert b.server.held_elsewhere() == set()
    at(10.5, b, c)
    yellow.send("claim")
    read_all(yellow, observer)
    assert log_of(yellow)[-1]["type"] == "win"
    assert log_of(yellow)[-1]["reason"] == "claim"
    assert log_of(yellow) == log_of(observer)


def test_a_process_thought_gone_says_again_that_its_player_is_here() -> None:
    log = SharedLog()
    a, b = nodes(2, log)
    red, yellow, _ = cross_node_game(a, b, b)
    # b lost sight of a for a while (a could not renew its heartbeat), and logs red away;
    # a, which still holds red's connection, logs red back.
    b.apply(b.server.process_gone("p0", b.now))
    read_all(red, yellow)
    kinds = [(m["type"], m.get("player")) for m in log_of(yellow)][-2:]
    assert kinds == [("away", "red"), ("joined", "red")]
    assert log_of(red) == log_of(yellow)
    red.play(3)
    read_all(red, yellow)
    assert log_of(yellow)[-1]["type"] == "play"


def test_saying_so_again_after_a_conflict_keeps_the_events_it_lost_to() -> None:
    # a folds b's "red away" and logs red back; yellow's move on b got in first, so a's
    # append conflicts: a takes in the move, and logs red back after it. (Undoing to before
    # the fold once lost the fold: the move came after a gap in a's log.)
    log = SharedLog()
    a, b = nodes(2, log)
    red, yellow, _ = cross_node_game(a, b, b)
    red.play(3)
    read_all(red, yellow)
    log.automatic = False
    b.apply(b.server.process_gone("p0", b.now))
    log.deliver(1)  # b hears that the absence is logged; a has not heard of it yet
    yellow.play(4)  # appended by b behind the absence
    log.deliver(1)  # a hears of the absence: it logs red back, at a version now gone
    log.deliver()
    read_all(red, yellow)
    kinds = [(m["type"], m.get("player")) for m in log_of(yellow)][-3:]
    assert kinds == [("away", "red"), ("play", "yellow"), ("joined", "red")]
    assert log_of(red) == log_of(yellow)
    log.automatic = True
    red.play(2)
    read_all(red, yellow)
    assert log_of(yellow)[-1]["type"] == "play"
    assert log_of(red) == log_of(yellow)
