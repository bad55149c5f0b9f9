"""Whole games through the sans-IO core, with real wsproto clients as peers, no sockets."""

from __future__ import annotations

import pytest
from peers import CHUNKERS, Chunker, Network, WebSocketPeer, byte_by_byte
from test_game import DRAW_COLUMNS

from connect4proto import (
    Ending,
    GameClosed,
    GameCreated,
    GameEnded,
    LocalProtocolError,
    Player,
    PlayerJoined,
    PlayerLeft,
    SpectatorJoined,
)


@pytest.fixture(params=list(CHUNKERS))
def network(request: pytest.FixtureRequest) -> Network:
    chunker: Chunker = CHUNKERS[request.param]
    return Network(chunker)


def start_game(network: Network) -> tuple[WebSocketPeer, WebSocketPeer, str]:
    red = network.websocket()
    red.send({"type": "init"})
    (keys,) = red.take()
    yellow = network.websocket()
    yellow.send({"type": "init", "join": keys["join"]})
    assert yellow.take() == [
        {"type": "joined", "player": "red"},
        {"type": "joined", "player": "yellow"},
    ]
    assert red.take() == [{"type": "joined", "player": "yellow"}]
    return red, yellow, keys["watch"]


def play(peer: WebSocketPeer, column: int) -> None:
    peer.send({"type": "play", "column": column})


def test_creator_gets_two_distinct_keys(network: Network) -> None:
    red = network.websocket()
    assert red.accepted
    red.send({"type": "init"})
    (message,) = red.take()
    assert message == {"type": "init", "join": "key-1", "watch": "key-2"}
    assert network.events == [GameCreated(game=1, connection=red.id)]


def test_full_game_to_a_win_with_a_spectator_who_joins_midway(network: Network) -> None:
    red, yellow, watch_key = start_game(network)
    moves = [(red, 0), (yellow, 1), (red, 0), (yellow, 1)]
    for peer, column in moves:
        play(peer, column)
    expected = [
        {"type": "play", "player": "red", "column": 0, "row": 0},
        {"type": "play", "player": "yellow", "column": 1, "row": 0},
        {"type": "play", "player": "red", "column": 0, "row": 1},
        {"type": "play", "player": "yellow", "column": 1, "row": 1},
    ]
    assert red.take() == expected
    assert yellow.take() == expected

    spectator = network.websocket()
    spectator.send({"type": "init", "watch": watch_key})
    assert spectator.take() == [
        *expected,
        {"type": "joined", "player": "red"},
        {"type": "joined", "player": "yellow"},
    ]
    assert red.take() == yellow.take() == []  # spectators arrive silently

    for peer, column in [(red, 0), (yellow, 1), (red, 0)]:
        play(peer, column)
    ending = [
        {"type": "play", "player": "red", "column": 0, "row": 2},
        {"type": "play", "player": "yellow", "column": 1, "row": 2},
        {"type": "play", "player": "red", "column": 0, "row": 3},
        {"type": "win", "player": "red", "cells": [[0, 0], [0, 1], [0, 2], [0, 3]]},
    ]
    assert red.take() == yellow.take() == spectator.take() == ending

    play(yellow, 1)
    assert yellow.take() == [{"type": "error", "message": "The game is over."}]
    assert red.take() == spectator.take() == []
    assert (
        GameEnded(game=1, winner=Player.RED, moves=7, reason=Ending.FOUR_IN_A_ROW) in network.events
    )
    assert SpectatorJoined(game=1, connection=spectator.id) in network.events


def test_full_game_to_a_draw_with_a_spectator_who_joins_midway(network: Network) -> None:
    red, yellow, watch_key = start_game(network)
    spectator = None
    seen: list[dict[str, object]] = []
    for index, column in enumerate(DRAW_COLUMNS):
        if index == 21:
            spectator = network.websocket()
            spectator.send({"type": "init", "watch": watch_key})
            assert spectator.take()[:21] == seen
        play(red if index % 2 == 0 else yellow, column)
        event, *rest = red.take()
        assert event["type"] == "play"
        seen.append(event)
    assert rest == [{"type": "draw"}]
    assert spectator is not None
    assert spectator.take()[-1] == {"type": "draw"}
    assert yellow.take() == [*seen, {"type": "draw"}]
    assert GameEnded(game=1, winner=None, moves=42, reason=Ending.BOARD_FULL) in network.events


def test_late_comer_to_a_finished_game_gets_the_result_after_the_replay() -> None:
    network = Network()
    red, yellow, watch_key = start_game(network)
    for peer, column in [(red, 0), (yellow, 1)] * 3 + [(red, 0)]:
        play(peer, column)
    spectator = network.websocket()
    spectator.send({"type": "init", "watch": watch_key})
    messages = spectator.take()
    assert [m["type"] for m in messages] == ["play"] * 7 + ["win", "joined", "joined"]


def test_late_comer_to_a_drawn_game_gets_the_draw_after_the_replay() -> None:
    network = Network()
    red, yellow, watch_key = start_game(network)
    for index, column in enumerate(DRAW_COLUMNS):
        play(red if index % 2 == 0 else yellow, column)
    spectator = network.websocket()
    spectator.send({"type": "init", "watch": watch_key})
    messages = spectator.take()
    assert [m["type"] for m in messages] == ["play"] * 42 + ["draw", "joined", "joined"]
    assert [m["column"] for m in messages[:42]] == DRAW_COLUMNS


def test_opponent_is_told_when_a_player_drops_and_the_join_link_cannot_take_the_seat() -> None:
    network = Network()
    red, yellow, watch_key = start_game(network)
    spectator = network.websocket()
    spectator.send({"type": "init", "watch": watch_key})
    spectator.take()
    play(red, 3)
    yellow.close()
    assert yellow.close_code == 1000
    assert yellow.transport_closed
    assert red.take()[-1] == spectator.take()[-1] == {"type": "left", "player": "yellow"}
    assert PlayerLeft(game=1, player=Player.YELLOW, connection=yellow.id) in network.events

    # The seat belongs to its token's holder now: the join link no longer takes it.
    again = network.websocket()
    again.send({"type": "init", "join": "key-1"})
    assert again.take() == [{"type": "error", "message": "This game already has two players."}]
    assert red.take() == spectator.take() == []


def test_second_joiner_is_refused_while_yellow_is_seated(network: Network) -> None:
    red, yellow, _ = start_game(network)
    intruder = network.websocket()
    intruder.send({"type": "init", "join": "key-1"})
    assert intruder.take() == [{"type": "error", "message": "This game already has two players."}]
    play(intruder, 0)
    assert intruder.take() == [{"type": "error", "message": "Send an init message first."}]
    assert red.take() == yellow.take() == []


@pytest.mark.memory_store  # shared, a game stays in the store outside until it expires there
def test_game_and_keys_are_forgotten_once_everyone_left_and_the_grace_is_over(
    network: Network,
) -> None:
    red, yellow, watch_key = start_game(network)
    spectator = network.websocket()
    spectator.send({"type": "init", "watch": watch_key})
    red.close()
    yellow.close()
    assert network.server.lobby.game_count == 1  # the spectator still watches
    spectator.close()
    # Nobody is connected, but red and yellow may still come back with their tokens.
    assert network.server.lobby.game_count == 1
    network.advance(network.server.config.seat_grace - 0.001)
    assert network.server.lobby.game_count == 1
    network.advance(network.server.config.seat_grace)
    assert network.server.lobby.game_count == 0
    assert network.server.lobby.member_count == 0
    assert network.server.connection_count == 0
    assert GameClosed(game=1) in network.events
    for key in ("key-1", "key-2"):
        late = network.websocket()
        late.send({"type": "init", "join" if key == "key-1" else "watch": key})
        assert late.take() == [{"type": "error", "message": "Game not found."}]


def test_connection_lost_without_close_frame_leaves_the_game() -> None:
    network = Network()
    red, yellow, _ = start_game(network)
    network.apply(network.server.connection_lost(yellow.id, network.now))
    assert red.take() == [{"type": "left", "player": "yellow"}]
    network.feed(red, None)  # end of stream, no close frame
    assert red.transport_closed
    assert network.server.connection_count == 0
    network.advance(network.server.config.seat_grace)
    assert network.server.lobby.game_count == 0


def test_spectator_can_watch_before_yellow_joins_and_sees_the_join() -> None:
    network = Network(byte_by_byte)
    red = network.websocket()
    red.send({"type": "init"})
    red.take()
    play(red, 2)  # as in the tutorial, red may move before yellow arrives
    spectator = network.websocket()
    spectator.send({"type": "init", "watch": "key-2"})
    assert spectator.take() == [
        {"type": "play", "player": "red", "column": 2, "row": 0},
        {"type": "joined", "player": "red"},
    ]
    yellow = network.websocket()
    yellow.send({"type": "init", "join": "key-1"})
    assert spectator.take() == [{"type": "joined", "player": "yellow"}]
    assert PlayerJoined(game=1, player=Player.YELLOW, connection=yellow.id) in network.events


def test_many_games_are_independent() -> None:
    network = Network()
    games = [start_game(network) for _ in range(5)]
    for index, (red, _, _) in enumerate(games):
        play(red, index)
    for index, (red, yellow, _) in enumerate(games):
        expected = [{"type": "play", "player": "red", "column": index, "row": 0}]
        assert red.take() == yellow.take() == expected


@pytest.mark.memory_store  # shared, the store outside holds the secrets
def test_key_factory_that_repeats_a_key_is_a_local_error() -> None:
    network = Network(new_key=lambda: "same")
    red = network.websocket()
    with pytest.raises(LocalProtocolError):
        red.send({"type": "init"})


def test_feeding_a_forgotten_connection_is_a_local_error() -> None:
    network = Network()
    red = network.websocket()
    red.close()
    with pytest.raises(LocalProtocolError):
        network.server.receive_data(red.id, b"more", network.now)


def test_newcomer_to_a_game_that_red_left_is_told_so() -> None:
    network = Network()
    red = network.websocket()
    red.send({"type": "init"})
    spectator = network.websocket()
    spectator.send({"type": "init", "watch": "key-2"})
    assert spectator.take() == [{"type": "joined", "player": "red"}]
    red.close()
    assert spectator.take() == [{"type": "left", "player": "red"}]
    late = network.websocket()
    late.send({"type": "init", "watch": "key-2"})
    assert late.take() == [{"type": "left", "player": "red"}]
    yellow = network.websocket()
    yellow.send({"type": "init", "join": "key-1"})
    assert yellow.take() == [
        {"type": "left", "player": "red"},
        {"type": "joined", "player": "yellow"},
    ]
