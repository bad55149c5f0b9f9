"""What the core counts for ``/metrics`` (``GameServer.statistics``, the lobby's phases), and
the pages it serves for the driver: made on request, and on a site of their own without the
game's WebSocket (an operator's private port)."""

from __future__ import annotations

from collections import Counter

import h11
from peers import SITE, Network, WebSocketPeer

from connect4proto import Config, ConnectionEnded, Page, Site
from connect4proto.events import Fault
from connect4proto.match import Phase
from connect4proto.statistics import NORMAL_CLOSE


def start_game(network: Network) -> tuple[WebSocketPeer, WebSocketPeer]:
    red = network.websocket()
    red.send({"type": "init"})
    (keys,) = red.take()
    yellow = network.websocket()
    yellow.send({"type": "init", "join": keys["join"]})
    yellow.take()
    red.take()
    return red, yellow


def test_messages_moves_and_handshakes_are_counted() -> None:
    network = Network()
    statistics = network.server.statistics
    red, yellow = start_game(network)
    assert statistics.handshakes == 2
    # init (1 reply: the keys) and join (2 to yellow, 1 to red).
    assert (statistics.messages_received, statistics.messages_sent) == (2, 4)
    spectator = network.websocket()
    for index, column in enumerate([0, 1, 0, 1, 0, 1, 0]):
        (red if index % 2 == 0 else yellow).send({"type": "play", "column": column})
    assert statistics.moves == 7
    assert statistics.messages_received == 9
    # Each move to both players, and the win to both: the spectator never joined a game.
    assert statistics.messages_sent == 4 + 7 * 2 + 2
    assert spectator.take() == []
    assert statistics.handshakes == 3


def test_hot_seat_moves_count_as_moves() -> None:
    network = Network()
    page = network.websocket()
    page.send({"type": "play", "column": 3})
    page.send({"type": "play", "column": 3})
    page.send({"type": "play", "column": 9})  # illegal: an error, not a move
    assert network.server.statistics.moves == 2
    assert network.server.lobby.hot_seat_count == 1


def test_refusals_are_counted_by_code() -> None:
    network = Network()
    red, yellow = start_game(network)
    red.send({"type": "play", "column": 3})
    red.send({"type": "play", "column": 4})  # not its turn
    intruder = network.websocket()
    intruder.send({"type": "init", "join": "no-such-key"})
    intruder.send("not json")
    refusals = network.server.statistics.refusals
    assert refusals == Counter({"game_not_found": 1, "invalid_message": 1, "not_your_turn": 1})
    assert yellow.take()[0]["type"] == "play"


def test_closes_are_counted_by_reason() -> None:
    network = Network(config=Config(ping_interval=1.0, ping_timeout=1.0))
    closes = network.server.statistics.closes
    polite = network.websocket()
    polite.close(1000)
    assert closes == Counter({NORMAL_CLOSE: 1})
    network.lose(network.websocket())
    page = network.http()
    page.request("GET", "/", [("Connection", "close")])
    network.websocket().send_bytes(b"\xff\xff\xff")  # not a frame
    silent = network.websocket()
    silent.transport_closed = True  # it no longer answers: no pong
    network.advance(1.5)
    network.advance(3.0)
    assert closes == Counter({NORMAL_CLOSE: 2, "vanished": 1, "peer": 1, "timeout": 1})


def test_a_connection_the_driver_ends_itself_did_not_vanish() -> None:
    network = Network()
    lost, ended = network.websocket(), network.websocket()
    network.lose(lost)  # a reset: logged and counted
    network.apply(network.server.connection_lost(ended.id, network.now, vanished=False))
    assert network.server.statistics.closes == Counter({"vanished": 1, NORMAL_CLOSE: 1})
    (event,) = network.events
    assert isinstance(event, ConnectionEnded)
    assert (event.connection, event.fault) == (lost.id, Fault.VANISHED)


def test_games_are_counted_by_phase() -> None:
    network = Network()
    assert network.server.lobby.phases() == Counter()
    red, yellow = start_game(network)
    waiting = network.websocket()
    waiting.send({"type": "init"})
    assert network.server.lobby.phases() == Counter({Phase.PLAYING: 1, Phase.WAITING: 1})
    for index, column in enumerate([0, 1, 0, 1, 0, 1, 0]):
        (red if index % 2 == 0 else yellow).send({"type": "play", "column": column})
    assert network.server.lobby.phases() == Counter({Phase.OVER: 1, Phase.WAITING: 1})


def test_a_page_is_made_at_each_request() -> None:
    made: list[int] = []

    def render() -> bytes:
        made.append(len(made))
        return f"scrape {len(made)}\n".encode()

    site = SITE.with_pages({"/metrics": Page(content_type="text/plain", render=render)})
    network = Network(site=site)
    client = network.http()
    response, body = client.get("/metrics")
    assert (response.status_code, body) == (200, b"scrape 1\n")
    assert dict(response.headers)[b"content-type"] == b"text/plain"
    assert client.get("/metrics")[1] == b"scrape 2\n"
    head, body = client.get("/metrics", method="HEAD")
    assert (head.status_code, body, len(made)) == (200, b"", 3)
    assert client.get("/")[0].status_code == 200  # the files are still there


def test_a_site_without_the_websocket_declines_the_upgrade_and_keeps_serving() -> None:
    private = Site(
        pages={"/metrics": Page(content_type="text/plain", render=lambda: b"ok\n")},
        websocket=False,
    )
    network = Network()
    client = network.http(private)
    client.request(
        "GET",
        "/",
        [
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ],
    )
    ((response, _),) = client.responses
    assert response.status_code == 404
    assert client.h11.our_state is h11.IDLE  # not switched: the same connection goes on
    assert client.get("/metrics")[1] == b"ok\n"
    assert client.get("/healthz")[0].status_code == 200
    assert client.get("/")[0].status_code == 404  # not the game's files
    assert network.server.statistics.handshakes == 0
