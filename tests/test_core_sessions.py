"""Sessions through the sans-IO core: seat tokens, the versioned log, drops and resumes.

The peers are real wsproto clients (``peers.py``); time moves only through the core's clock
argument. A ``Tab`` plays a browser page of the versioned protocol: it applies each event once
in order of ``v``, as the web UI does, so that "holds exactly the game's log" can be checked.
"""

from __future__ import annotations

from typing import Any

import pytest
from peers import Network
from tabs import Tab, comparable, log_of, new_game, play_moves, read_all

from connect4proto import (
    RECONNECTING,
    SEAT_REPLACED,
    Config,
    Ending,
    GameClosed,
    GameEnded,
    LocalProtocolError,
    Player,
    PlayerReturned,
    SeatReplaced,
)
from connect4proto.events import ConnectionId, GameId
from connect4proto.lobby import Role
from connect4proto.log import GameEvent, Logged, MovePlayed, SeatTaken
from connect4proto.refusals import Refusal
from connect4proto.seats import (
    Away,
    Computer,
    Held,
    SeatChange,
    SeatEvent,
    SeatInput,
    SeatRequest,
    Vacant,
    transition,
)
from connect4proto.store import Conflict, Credential, MemoryStore

#: Red wins on its fourth checker in column 3 (the seventh move).
RED_WINS = [3, 4, 3, 4, 3, 4, 3]
GRACE = Config().seat_grace


# -- the versioned protocol, first contact ------------------------------------------------


def test_creator_gets_keys_a_seat_token_and_the_first_event() -> None:
    network = Network()
    red = Tab(network)
    assert red.keys == {"type": "init", "join": "key-1", "watch": "key-2"}
    assert red.seat == {"type": "seat", "player": "red", "token": "key-3", "v": 0}
    assert red.applied == [{"type": "joined", "player": "red", "v": 1}]


def test_every_recipient_sees_each_event_with_the_same_v() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    assert yellow.seat == {"type": "seat", "player": "yellow", "token": "key-4", "v": 1}
    assert observer.watching == {"type": "watching", "v": 1}
    play_moves({"red": red, "yellow": yellow}, RED_WINS, observer)
    expected = [
        {"type": "joined", "player": "red", "v": 1},
        {"type": "joined", "player": "yellow", "v": 2},
        *(
            {"type": "play", "player": "red" if i % 2 == 0 else "yellow", "column": c,
             "row": i // 2, "v": 3 + i}
            for i, c in enumerate(RED_WINS)
        ),
        {"type": "win", "player": "red", "cells": [[3, 0], [3, 1], [3, 2], [3, 3]],
         "reason": "four", "record": "4545454", "v": 10},
    ]  # fmt: skip
    assert log_of(red) == log_of(yellow) == log_of(observer) == expected


def test_a_tutorial_client_beside_versioned_ones_gets_the_bytes_it_always_got() -> None:
    network = Network()
    red = Tab(network)
    assert red.keys is not None
    tutorial = network.websocket()
    tutorial.send({"type": "init", "watch": red.keys["watch"]})
    yellow = Tab(network, join=red.keys["join"])
    play_moves(
        {"red": red, "yellow": yellow}, RED_WINS, tutorial_observer := Tab(network, watch="key-2")
    )
    yellow.drop()
    assert tutorial.texts == [
        '{"type":"joined","player":"red"}',
        '{"type":"joined","player":"yellow"}',
        '{"type":"play","player":"red","column":3,"row":0}',
        '{"type":"play","player":"yellow","column":4,"row":0}',
        '{"type":"play","player":"red","column":3,"row":1}',
        '{"type":"play","player":"yellow","column":4,"row":1}',
        '{"type":"play","player":"red","column":3,"row":2}',
        '{"type":"play","player":"yellow","column":4,"row":2}',
        '{"type":"play","player":"red","column":3,"row":3}',
        '{"type":"win","player":"red","cells":[[3,0],[3,1],[3,2],[3,3]]}',
        '{"type":"left","player":"yellow"}',
    ]
    del tutorial_observer


# -- drops and resumes --------------------------------------------------------------------

POINTS = ["before the join", "mid-game", "on the winning move", "after the end"]


def setup_point(network: Network, point: str) -> tuple[Tab, Tab | None, Tab, str, str]:
    """A game at ``point``: red, yellow (None before the join), an observer, the keys."""
    red = Tab(network)
    assert red.keys is not None
    join, watch = red.keys["join"], red.keys["watch"]
    observer = Tab(network, watch=watch)
    red.read()
    if point == "before the join":
        red.play(3)  # red may move before yellow arrives
        read_all(red, observer)
        return red, None, observer, join, watch
    yellow = Tab(network, join=join)
    read_all(red, observer)
    moves = {"mid-game": RED_WINS[:3], "on the winning move": RED_WINS, "after the end": RED_WINS}
    play_moves({"red": red, "yellow": yellow}, moves[point], observer)
    if point == "after the end":
        yellow.play(0)  # refused: the game is over; nothing is logged
        read_all(red, yellow, observer)
    return red, yellow, observer, join, watch


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("role", ["red", "yellow", "spectator"])
def test_drop_and_resume_holds_exactly_the_log(point: str, role: str) -> None:
    network = Network()
    red, yellow, observer, join, watch = setup_point(network, point)
    if role == "yellow" and yellow is None:
        # Before the join there is no yellow seat to drop: the first to join takes it.
        yellow = Tab(network, join=join)
        read_all(red, observer)
    watcher = Tab(network, watch=watch)
    tab = {"red": red, "yellow": yellow, "spectator": watcher}[role]
    assert tab is not None
    tab.drop()
    read_all(red, observer, *([] if role == "spectator" else [watcher]))
    lobby = network.server.lobby
    assert lobby.version(1) == observer.v
    if role != "spectator":
        away = observer.applied[-1]
        assert away == {"type": "away", "player": role, "grace": GRACE, "v": away["v"]}
        assert type(lobby.seats(1)[Player(role)]) is Away
    # The game goes on while a seat is away: the other player moves if it is their turn.
    game = network.server.lobby.game(1)
    if not game.is_over and role != "spectator" and yellow is not None:
        mover = {"red": red, "yellow": yellow}[game.turn.value]
        if mover is not tab:
            mover.play(0)
            read_all(red, observer)
    if role == "spectator":
        tab.resume(watch=watch)
    else:
        tab.resume()
        assert tab.seat is not None
        assert tab.seat["player"] == role
    read_all(red, observer, *(t for t in (yellow, watcher) if t is not tab and t is not None))
    assert log_of(tab) == log_of(observer)
    if role != "spectator":
        assert observer.applied[-1] == {"type": "joined", "player": role, "v": observer.v}
        assert PlayerReturned(game=1, player=Player(role), connection=tab.peer.id) in (
            network.events
        )


@pytest.mark.parametrize("since", ["zero", "middle", "latest", "ahead"])
def test_resume_from_any_version(since: str) -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    play_moves({"red": red, "yellow": yellow}, RED_WINS[:4], observer)
    yellow.drop()
    read_all(red, observer)
    latest = observer.v  # yellow's away is the last event
    v = {"zero": 0, "middle": 3, "latest": latest, "ahead": latest + 5}[since]
    assert yellow.seat is not None
    peer = network.websocket()
    peer.send({"type": "init", "token": yellow.seat["token"], "v": v})
    messages = peer.take()
    # The seat again, with the version its catch-up reaches.
    assert messages[0] == {**yellow.seat, "v": latest}
    back = {"type": "joined", "player": "yellow", "v": latest + 1}
    # After the catch-up, what is not in the log: who watches.
    assert messages[-2:] == [{"type": "watchers", "count": 1}, back]
    caught_up = messages[1:-2]
    if since == "ahead":
        assert caught_up == [
            {
                "type": "sync",
                "v": latest,
                "moves": [
                    {"player": "red", "column": 3, "row": 0},
                    {"player": "yellow", "column": 4, "row": 0},
                    {"player": "red", "column": 3, "row": 1},
                    {"player": "yellow", "column": 4, "row": 1},
                ],
                "red": {"state": "here"},
                "yellow": {"state": "away", "grace": GRACE},
            }
        ]
    else:
        assert comparable(caught_up) == log_of(observer)[v:]
    assert red.read() == [back]


def test_an_event_older_than_the_log_keeps_is_caught_up_with_a_snapshot() -> None:
    network = Network(config=Config(max_log_events=4))
    red, yellow, observer = new_game(network)
    play_moves({"red": red, "yellow": yellow}, RED_WINS[:4], observer)  # versions 3-6
    watcher = network.websocket()
    watcher.send({"type": "init", "watch": "key-2", "v": 1})  # 2 is gone: the log keeps 3-6
    watching, sync, watchers = watcher.take()
    assert watching == {"type": "watching", "v": 6}
    assert watchers == {"type": "watchers", "count": 2}
    assert sync["type"] == "sync"
    assert sync["v"] == 6
    assert len(sync["moves"]) == 4
    assert "result" not in sync
    again = network.websocket()
    again.send({"type": "init", "watch": "key-2", "v": 2})  # 3-6 are all there
    assert again.take() == [
        {"type": "watching", "v": 6},
        *log_of(observer)[2:],
        {"type": "watchers", "count": 3},
    ]


def test_a_snapshot_of_a_finished_game_has_its_result_and_every_seat() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    play_moves({"red": red, "yellow": yellow}, RED_WINS, observer)
    watcher = network.websocket()
    watcher.send({"type": "init", "watch": "key-2", "v": 1000})
    _, sync, _ = watcher.take()
    assert sync["result"] == {
        "winner": "red",
        "reason": "four",
        "cells": [[3, 0], [3, 1], [3, 2], [3, 3]],
        "record": "4545454",
    }
    assert sync["red"] == sync["yellow"] == {"state": "here"}
    fresh = Network()
    lone = Tab(fresh)
    assert lone.keys is not None
    peer = fresh.websocket()
    peer.send({"type": "init", "watch": lone.keys["watch"], "v": 50})
    _, sync, _ = peer.take()
    assert sync["yellow"] == {"state": "vacant"}


# -- tokens -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["wrong", "", "key-3x", "KEY-3", "key-1", "key-2", "key-7"],
    ids=["wrong", "empty", "longer", "case", "join-key", "watch-key", "other-game"],
)
def test_a_wrong_or_other_games_token_is_refused_and_the_seat_stays(token: str) -> None:
    network = Network()
    red, yellow, observer = new_game(network)  # key-3 and key-4 are its tokens
    other = Tab(network)  # another game: key-5, key-6, and red's token key-7
    red.drop()
    read_all(yellow, observer)
    intruder = network.websocket()
    intruder.send({"type": "init", "token": token, "v": 0})
    if token == "key-7":
        # Another game's token resumes that game's seat, never this one's.
        assert intruder.take()[1] == {"type": "seat", "player": "red", "token": "key-7", "v": 1}
        assert other.peer.close_code == SEAT_REPLACED
    else:
        assert intruder.take() == [
            {
                "type": "error",
                "message": "This game cannot be resumed: it has ended and expired, "
                "or the seat token is wrong.",
                "code": "unknown_token",
            }
        ]
    assert yellow.read() == observer.read() == []
    assert red.seat is not None
    red.resume()  # the owner still can
    observer.read()
    assert red.seat["player"] == "red"
    assert log_of(red) == log_of(observer)


@pytest.mark.memory_store  # shared, a game stays in the store outside until it expires there
def test_an_expired_games_token_is_refused() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    for tab in (observer, red, yellow):
        tab.drop()
    network.wait_out_grace()
    assert GameClosed(game=1) in network.events
    assert red.seat is not None
    peer = network.websocket()
    peer.send({"type": "init", "token": red.seat["token"], "v": 3})
    assert [m["code"] for m in peer.take()] == ["unknown_token"]


def test_a_token_with_a_key_is_refused() -> None:
    network = Network()
    red = Tab(network)
    assert red.seat is not None
    peer = network.websocket()
    peer.send({"type": "init", "token": red.seat["token"], "watch": "key-2"})
    assert peer.take() == [
        {
            "type": "error",
            "message": "Send a seat token alone, without join or watch.",
            "code": "bad_init",
        }
    ]


def test_a_token_without_v_resumes_from_the_start() -> None:
    network = Network()
    red = Tab(network)
    assert red.seat is not None
    red.drop()
    peer = network.websocket()
    peer.send({"type": "init", "token": red.seat["token"]})
    assert peer.take()[1:] == [
        {**red.seat, "v": 2},
        {"type": "joined", "player": "red", "v": 1},
        {"type": "away", "player": "red", "grace": GRACE, "v": 2},
        {"type": "watchers", "count": 0},  # a page that comes back may hold an older count
        {"type": "joined", "player": "red", "v": 3},
    ]


def test_the_join_link_of_a_taken_seat_is_refused_with_a_code_and_may_watch() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    yellow.drop()
    read_all(red, observer)
    stranger = network.websocket()
    stranger.send({"type": "init", "join": "key-1", "v": 0})
    assert stranger.take() == [
        {"type": "error", "message": "This game already has two players.", "code": "seat_taken"}
    ]
    stranger.send({"type": "init", "watch": "key-1", "v": 0})
    watching, *events, watchers = stranger.take()
    assert watching == {"type": "watching", "v": observer.v}
    assert watchers == {"type": "watchers", "count": 2}
    assert comparable(events) == log_of(observer)
    assert network.server.lobby.seat(stranger.id) == (1, Role.SPECTATOR)


# -- two connections for one seat -------------------------------------------------------


def test_a_second_connection_takes_the_seat_and_the_first_is_closed_with_4000() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    play_moves({"red": red, "yellow": yellow}, RED_WINS[:2], observer)
    first = red.peer
    assert red.seat is not None
    second = Tab(network, token=red.seat["token"])  # a duplicated tab: a fresh page, v 0
    assert second.keys == red.keys
    assert second.seat == {**red.seat, "v": observer.v}
    assert log_of(second) == log_of(observer)
    assert first.close_code == SEAT_REPLACED
    assert first.close_reason == "This seat was taken over by a newer connection."
    assert first.transport_closed  # it answered our close frame
    # Nothing was logged: the seat never stopped being held.
    assert yellow.read() == observer.read() == []
    assert SeatReplaced(game=1, player=Player.RED, connection=first.id) in network.events
    # Only the newer connection acts for red.
    second.play(0)
    read_all(second, yellow, observer)
    assert observer.applied[-1]["type"] == "play"
    assert observer.applied[-1]["player"] == "red"
    assert network.server.lobby.member_count == 3


# -- claims and the grace period ----------------------------------------------------------


def test_the_claim_is_refused_before_the_grace_period_and_accepted_after_it() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    play_moves({"red": red, "yellow": yellow}, RED_WINS[:2], observer)

    def claim(tab: Tab) -> dict[str, Any]:
        tab.peer.send({"type": "claim"})
        (answer,) = tab.peer.take()
        return answer

    assert claim(red)["code"] == "opponent_connected"
    network.advance(10.0)
    yellow.drop()
    read_all(red, observer)
    network.advance(10.0 + GRACE - 0.5)
    assert claim(red) == {
        "type": "error",
        "message": "Yellow may still come back: you can claim the win in 1 s.",
        "code": "too_early",
    }
    assert claim(observer)["code"] == "spectator"
    network.advance(10.0 + GRACE)
    red.peer.send({"type": "claim"})
    read_all(red, observer)
    end = {"type": "win", "player": "red", "cells": [], "reason": "claim", "record": "45"}
    end["by"] = "red"  # who claimed
    end["v"] = observer.v
    assert red.applied[-1] == observer.applied[-1] == end
    assert GameEnded(game=1, winner=Player.RED, moves=2, reason=Ending.CLAIM) in network.events
    assert claim(red)["code"] == "game_over"
    # Yellow may come back after all: the game is over, and it sees how it ended.
    yellow.resume()
    assert log_of(yellow) == [*log_of(observer), {"type": "joined", "player": "yellow",
                                                   "v": observer.v + 1}]  # fmt: skip
    yellow.play(5)
    yellow.read()
    assert [m["code"] for m in yellow.errors] == ["game_over"]


def test_a_player_who_comes_back_in_time_simply_carries_on() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    yellow.drop()
    network.advance(GRACE - 1)
    yellow.resume()
    network.advance(GRACE + 1)
    red.peer.send({"type": "claim"})
    red.read()
    assert [m["code"] for m in red.errors] == ["opponent_connected"]
    red.play(3)
    yellow.play(3)
    read_all(red, yellow, observer)
    assert log_of(red) == log_of(yellow) == log_of(observer)
    assert [m["type"] for m in log_of(observer)][-2:] == ["play", "play"]


def test_claims_that_cannot_be_granted_say_why() -> None:
    network = Network()
    red = Tab(network)
    red.peer.send({"type": "claim"})
    assert red.peer.take() == [
        {"type": "error", "message": "Nobody has joined this game yet.", "code": "no_opponent"}
    ]
    nobody = network.websocket()
    nobody.send({"type": "claim"})
    assert nobody.take() == [{"type": "error", "message": "Send an init message first."}]


# -- forgetting ---------------------------------------------------------------------------


@pytest.mark.memory_store  # shared, a game stays in the store outside until it expires there
def test_a_game_is_forgotten_once_everyones_grace_is_over() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    lobby = network.server.lobby
    red.drop()
    network.advance(30.0)
    yellow.drop()
    observer.drop()
    # Yellow's grace ends last: at 30 + GRACE.
    assert lobby.next_deadline == pytest.approx(30.0 + GRACE)
    network.advance(30.0 + GRACE - 0.001)
    assert lobby.game_count == 1
    network.advance(30.0 + GRACE)
    assert lobby.game_count == 0
    assert GameClosed(game=1) in network.events
    late = network.websocket()
    late.send({"type": "init", "watch": "key-2", "v": 0})
    assert [m["code"] for m in late.take()] == ["game_not_found"]


def test_somebody_coming_back_keeps_the_game() -> None:
    network = Network()
    red, _yellow, observer = new_game(network)
    red.drop()
    _yellow.drop()
    observer.drop()
    network.advance(GRACE / 2)
    observer.resume(watch="key-2")
    network.advance(GRACE * 3)
    assert network.server.lobby.game_count == 1
    observer.drop()
    # Both seats' grace is over: nobody can come back any more.
    assert network.server.lobby.game_count == 0


def test_a_game_whose_last_watcher_leaves_after_every_grace_is_forgotten_at_once() -> None:
    network = Network()
    red = Tab(network)
    assert red.keys is not None
    watcher = Tab(network, watch=red.keys["watch"])
    red.drop()
    network.advance(GRACE + 5)
    assert network.server.lobby.game_count == 1  # the watcher is still there
    watcher.drop()
    assert network.server.lobby.game_count == 0


# -- the seat table -----------------------------------------------------------------------

C1, C2 = ConnectionId(1), ConnectionId(2)
SEATS = {
    "vacant": Vacant(),
    "held": Held(connection=C1, token=b"t"),
    "away": Away(token=b"t", since=5.0),
    "away, not told": Away(token=b"t", since=5.0, announced=False),
    "computer": Computer(level="casual"),
}
#: What each (seat, input) pair does with a request from connection 2 at 9.0 with token t
#: (a quiet drop: 1001); the pairs left out must raise.
EXPECTED: dict[tuple[str, SeatInput], SeatChange | str] = {
    ("vacant", SeatInput.TAKE): SeatChange(
        seat=Held(connection=C2, token=b"t"), logged=SeatEvent.TAKEN
    ),
    ("held", SeatInput.TAKE): "seat_taken",
    ("away", SeatInput.TAKE): "seat_taken",
    ("away, not told", SeatInput.TAKE): "seat_taken",
    ("computer", SeatInput.TAKE): "seat_taken",
    ("held", SeatInput.DROP): SeatChange(
        seat=Away(token=b"t", since=9.0, announced=False)  # quiet: told later
    ),
    ("held", SeatInput.RESUME): SeatChange(seat=Held(connection=C2, token=b"t"), displaced=C1),
    ("away", SeatInput.RESUME): SeatChange(
        seat=Held(connection=C2, token=b"t"), logged=SeatEvent.BACK
    ),
    ("away, not told", SeatInput.RESUME): SeatChange(seat=Held(connection=C2, token=b"t")),
    ("away", SeatInput.ANNOUNCE): SeatChange(seat=Away(token=b"t", since=5.0)),
    ("away, not told", SeatInput.ANNOUNCE): SeatChange(
        seat=Away(token=b"t", since=5.0), logged=SeatEvent.AWAY
    ),
}


@pytest.mark.parametrize("seat", list(SEATS))
@pytest.mark.parametrize("seat_input", list(SeatInput), ids=lambda i: i.value)
def test_every_seat_and_input_pair_is_a_transition_or_a_local_error(
    seat: str, seat_input: SeatInput
) -> None:
    request = SeatRequest(connection=C2, token=b"t", now=9.0, quietly=True)
    expected = EXPECTED.get((seat, seat_input))
    if expected is None:
        with pytest.raises(LocalProtocolError):
            transition(SEATS[seat], seat_input, request)
        return
    result = transition(SEATS[seat], seat_input, request)
    if isinstance(expected, str):
        assert isinstance(result, Refusal)
        assert result.code == expected
    else:
        assert result == expected
    if seat_input is SeatInput.RESUME:
        wrong = transition(SEATS[seat], seat_input, SeatRequest(connection=C2, token=b"x"))
        assert isinstance(wrong, Refusal)
        assert wrong.code == "unknown_token"


def test_a_drop_that_is_not_quiet_is_logged_at_once() -> None:
    change = transition(SEATS["held"], SeatInput.DROP, SeatRequest(now=9.0))
    assert change == SeatChange(seat=Away(token=b"t", since=9.0), logged=SeatEvent.AWAY)


def test_time_cannot_go_backwards_on_any_call() -> None:
    network = Network()
    peer = network.websocket()
    network.advance(10.0)
    server = network.server
    for call in (
        lambda: server.open_connection(9.0),
        lambda: server.receive_data(peer.id, b"", 9.0),
        lambda: server.advance(9.0),
        lambda: server.connection_lost(peer.id, 9.0),
        lambda: server.fail(peer.id, 9.0),
        lambda: server.too_slow(peer.id, 9.0),
        lambda: server.shutdown(9.0),
    ):
        with pytest.raises(LocalProtocolError, match="time went backwards"):
            call()


# -- the store ----------------------------------------------------------------------------


def test_the_memory_store_appends_at_the_expected_version_only() -> None:
    store = MemoryStore(max_events=3)
    game = GameId(7)
    store.create(game)
    with pytest.raises(LocalProtocolError):
        store.create(game)
    assert store.since(game, 0) == []
    taken = SeatTaken(player=Player.RED)
    assert store.append(game, 0, taken, 2.5) == Logged(1, taken, 2.5)
    assert store.append(game, 0, taken, 3.0) == Conflict(1)
    for version in range(1, 5):
        store.append(game, version, MovePlayed(player=Player.RED, column=0, row=0), 4.0)
    # Five events, three kept: 3, 4 and 5.
    assert [logged.version for logged in store.since(game, 2) or []] == [3, 4, 5]
    assert store.since(game, 1) is None  # version 2 is gone
    assert store.since(game, 5) == []
    assert store.since(game, 6) is None  # ahead of the log
    store.add_secret(b"digest", game, Credential.WATCH)
    with pytest.raises(LocalProtocolError):
        store.add_secret(b"digest", game, Credential.JOIN)
    assert store.find(b"digest") == (game, Credential.WATCH)
    store.add_secret(b"creator", game, Credential.CREATOR)
    assert store.find(b"creator") == (game, Credential.CREATOR)
    assert (store.game_count, store.secret_count) == (1, 2)
    store.drop(game)
    assert store.find(b"digest") is None
    assert (store.game_count, store.secret_count) == (0, 0)


class _RacingStore(MemoryStore):
    """A shared store where another process appended first (as Redis may say)."""

    def append(self, game: GameId, expected: int, event: GameEvent, at: float) -> Logged | Conflict:
        if isinstance(event, MovePlayed):
            return Conflict(expected + 1)
        return super().append(game, expected, event, at)


def test_a_conflict_from_the_store_is_a_local_error_while_one_process_owns_its_games() -> None:
    network = Network(store=_RacingStore(max_events=10))
    red = Tab(network)
    with pytest.raises(LocalProtocolError, match="log at 2, not 1"):
        red.play(3)


def test_a_replaced_connection_that_never_answers_the_close_is_dropped_after_the_timeout() -> None:
    network = Network()
    red, _yellow, _observer = new_game(network)
    assert red.seat is not None
    red.peer.answer_close = False  # a frozen tab
    Tab(network, token=red.seat["token"])
    assert red.peer.close_code == SEAT_REPLACED
    assert not red.peer.transport_closed
    timeout = network.server.config.close_timeout
    network.advance(timeout - 0.001)
    assert not red.peer.transport_closed
    network.advance(timeout)
    assert red.peer.transport_closed
    assert network.server.connection_count == 3


def test_a_page_can_ask_whether_its_connection_is_alive() -> None:
    # Browsers cannot send WebSocket pings; a half-open socket shows only when nothing
    # answers. ``ping`` is answered at once, in a game or not, and changes nothing.
    network = Network()
    red = Tab(network)
    lone = network.websocket()
    for peer in (red.peer, lone):
        peer.send({"type": "ping"})
        assert peer.take() == [{"type": "pong"}]
    assert network.server.lobby.version(1) == 1


# -- a reload is not an absence -----------------------------------------------------------

DELAY = Config().away_delay


def test_a_page_that_reloads_is_back_before_anybody_hears_it_went_away() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    version = observer.v
    red.peer.close(1001)  # a browser closes with 1001 when its page goes away
    assert red.peer.transport_closed
    read_all(yellow, observer)
    assert observer.v == version  # nothing told, nothing logged
    yellow.peer.send({"type": "claim"})
    yellow.read()
    assert [e["code"] for e in yellow.errors] == ["opponent_connected"]
    network.advance(DELAY - 0.5)
    red.resume()
    read_all(yellow, observer)
    assert observer.v == version  # back: still nothing to tell
    assert red.seat is not None
    assert red.seat["v"] == version
    network.wait_out_grace()
    assert observer.read() == []
    red.play(3)
    read_all(red, yellow, observer)
    assert log_of(red) == log_of(yellow) == log_of(observer)


def test_a_page_that_went_away_and_did_not_come_back_is_told_after_the_delay() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    yellow.peer.close(1001)
    network.advance(1.0)
    watcher = Tab(network, watch="key-2", v=0)  # a snapshot meanwhile: yellow is still here
    assert observer.read() == [{"type": "watchers", "count": 2}]
    assert network.server.lobby.next_deadline == pytest.approx(DELAY)
    network.advance(DELAY - 0.001)
    assert observer.read() == []
    network.advance(DELAY)
    read_all(red, observer, watcher)
    # Told now, as away since it left: the grace counts from then.
    away = {"type": "away", "player": "yellow", "grace": GRACE - DELAY, "v": 3}
    assert red.applied[-1] == observer.applied[-1] == watcher.applied[-1] == away
    network.advance(GRACE - 0.001)
    red.peer.send({"type": "claim"})
    red.read()
    assert [e["code"] for e in red.errors] == ["too_early"]
    network.advance(GRACE)
    red.peer.send({"type": "claim"})
    red.read()
    assert red.applied[-1]["reason"] == "claim"
    yellow.resume()
    assert log_of(yellow)[-2:] == [
        {
            "type": "win",
            "player": "red",
            "cells": [],
            "reason": "claim",
            "record": "",
            "by": "red",
            "v": 4,
        },
        {"type": "joined", "player": "yellow", "v": 5},
    ]


def test_a_tutorial_page_that_goes_away_is_told_at_once() -> None:
    # It cannot come back (it has no token), so there is nothing to wait for.
    network = Network()
    red = network.websocket()
    red.send({"type": "init"})
    yellow = network.websocket()
    yellow.send({"type": "init", "join": "key-1"})
    red.take()
    yellow.close(1001)
    assert red.take() == [{"type": "left", "player": "yellow"}]


def test_a_game_whose_last_page_went_away_is_still_forgotten_after_the_grace() -> None:
    network = Network()
    red = Tab(network)
    red.peer.close(1001)
    network.advance(DELAY)
    assert network.server.lobby.game_count == 1
    network.advance(GRACE)
    assert network.server.lobby.game_count == 0


def test_a_page_that_reconnects_by_itself_says_so_with_4001() -> None:
    network = Network()
    red, yellow, observer = new_game(network)
    version = observer.v
    yellow.peer.close(RECONNECTING)
    yellow.resume()
    read_all(red, observer)
    assert observer.v == version  # nobody was told
    red.peer.close(1000)  # a plain close is an absence, told at once
    read_all(yellow, observer)
    assert observer.applied[-1]["type"] == "away"
