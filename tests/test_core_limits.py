"""Every limit and timer of the core, crossed from both sides, in memory with real peers.

Each limit is tried just under (served) and just over (refused with the right HTTP status or
close code, and the reason kept for the logs). After a refusal nothing of the peer is left in
the core, and the same server still serves ``/healthz`` and a whole game. Time is whatever
the test says it is: it reaches the core only through ``GameServer.advance``.
"""

from __future__ import annotations

import math
from typing import Any

import h11
import pytest
from peers import (
    CHUNKERS,
    Chunker,
    HttpPeer,
    Network,
    Peer,
    RawPeer,
    WebSocketPeer,
    byte_by_byte,
    header,
    whole,
)
from wsproto.events import Message
from wsproto.frame_protocol import FrameProtocol

from connect4proto import Config, ConnectionEnded, Fault, LocalProtocolError

#: Limits small enough to cross one byte at a time in a few milliseconds.
SMALL = Config(max_head_size=600, max_line_size=300, max_headers=8)

#: The default limits and small ones, each fed whole and one byte at a time.
LIMITS = [
    pytest.param(Config(), whole, id="default-whole"),
    pytest.param(SMALL, whole, id="small-whole"),
    pytest.param(SMALL, byte_by_byte, id="small-byte_by_byte"),
    pytest.param(Config(), byte_by_byte, id="default-byte_by_byte"),
]

ORIGIN = "https://connect4.example"


@pytest.fixture(params=list(CHUNKERS))
def chunker(request: pytest.FixtureRequest) -> Chunker:
    chosen: Chunker = CHUNKERS[request.param]
    return chosen


# -- helpers -------------------------------------------------------------------------------


def refusals(network: Network, peer: Peer) -> list[str]:
    """The reasons the core reported for closing ``peer`` (for the logs)."""
    return [
        event.reason
        for event in network.events
        if isinstance(event, ConnectionEnded) and event.connection == peer.id
    ]


def faults(network: Network, peer: Peer) -> list[Fault]:
    """How the core said ``peer``'s connection ended (whose fault, in one word)."""
    return [
        event.fault
        for event in network.events
        if isinstance(event, ConnectionEnded) and event.connection == peer.id
    ]


def statuses(peer: HttpPeer) -> list[int]:
    return [response.status_code for response, _ in peer.responses]


def assert_state(
    network: Network, *, connections: int = 0, members: int = 0, games: int = 0
) -> None:
    server = network.server
    assert server.connection_count == connections
    assert server.lobby.member_count == members
    assert server.lobby.game_count == games


def start_game(
    network: Network, headers: list[tuple[str, str]] | None = None
) -> tuple[WebSocketPeer, WebSocketPeer]:
    red = network.websocket(headers=headers)
    red.send({"type": "init"})
    (keys,) = red.take()
    yellow = network.websocket(headers=headers)
    yellow.send({"type": "init", "join": keys["join"]})
    assert yellow.take() == [
        {"type": "joined", "player": "red"},
        {"type": "joined", "player": "yellow"},
    ]
    assert red.take() == [{"type": "joined", "player": "yellow"}]
    return red, yellow


def assert_still_serves(network: Network, headers: list[tuple[str, str]] | None = None) -> None:
    """The same server answers ``/healthz`` and plays a whole game; then it is as it was."""
    server = network.server
    before = (server.connection_count, server.lobby.member_count, server.lobby.game_count)
    http = network.http()
    http.request("GET", "/healthz", [("Connection", "close")])
    assert [(r.status_code, body) for r, body in http.responses] == [(200, b"OK\n")]
    assert http.transport_closed
    red, yellow = start_game(network, headers)
    for index in range(7):
        (red if index % 2 == 0 else yellow).send({"type": "play", "column": index % 2})
    win = {"type": "win", "player": "red", "cells": [[0, 0], [0, 1], [0, 2], [0, 3]]}
    assert red.take()[-1] == win
    assert yellow.take()[-1] == win
    red.close()
    yellow.close()
    assert red.transport_closed
    assert yellow.transport_closed
    # Both seats wait for their tokens through the grace period, so the game stays for now.
    after = (server.connection_count, server.lobby.member_count, server.lobby.game_count)
    assert after == (before[0], before[1], before[2] + 1)


def head_fields(size: int, config: Config) -> list[tuple[str, str]]:
    """Filler headers that make ``GET /healthz`` with ``Host: localhost`` ``size`` bytes long,
    every line within ``max_line_size``."""
    remaining = size - len(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    fields: list[tuple[str, str]] = []
    while remaining:
        take = min(remaining, config.max_line_size)
        if 0 < remaining - take < 13:
            take -= 13  # leave enough for one more "X-Fill-N: v\r\n"
        name = f"X-Fill-{len(fields)}"
        fields.append((name, "v" * (take - len(name) - 4)))
        remaining -= take
    return fields


# -- Config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        *[
            (name, value)
            for name in (
                "max_message_size",
                "max_fragments",
                "max_head_size",
                "max_line_size",
                "max_headers",
                "max_output_buffer",
                "max_connections",
                "max_messages_per_second",
                "max_log_events",
            )
            for value in (0, -1, 1.0, True, "8", None)
            if not (name == "max_messages_per_second" and value is None)
        ],
        *[
            (name, value)
            for name in (
                "request_timeout",
                "ping_interval",
                "ping_timeout",
                "close_timeout",
                "seat_grace",
            )
            for value in (0, 0.0, -1.0, math.inf, math.nan, True, "10", None)
        ],
        # 0 tells at once.
        *[("away_delay", value) for value in (-0.5, math.inf, math.nan, True, "2", None)],
        ("allowed_origins", ["https://a.example"]),
        ("allowed_origins", "https://a.example"),
        ("allowed_origins", ("",)),
        ("allowed_origins", (b"https://a.example",)),
        ("allowed_origins", ("https://a.example", None)),
    ],
)
def test_config_refuses_a_limit_that_is_not_positive_and_finite(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        Config(**{field: value})


def test_config_accepts_the_smallest_limits_and_whole_seconds() -> None:
    config = Config(
        max_message_size=1,
        max_fragments=1,
        max_head_size=1,
        max_line_size=1,
        max_headers=1,
        max_output_buffer=1,
        max_connections=1,
        max_messages_per_second=1,
        request_timeout=1,
        ping_interval=1e-9,
        ping_timeout=1,
        close_timeout=0.5,
        allowed_origins=("https://a.example", "http://localhost:8000"),
        seat_grace=1,
        away_delay=0,
        max_log_events=1,
    )
    assert config.request_timeout == 1
    assert Config(max_messages_per_second=None).max_messages_per_second is None


# -- HTTP request heads --------------------------------------------------------------------


@pytest.mark.parametrize(("config", "chunker"), LIMITS)
def test_request_line_at_the_limit_is_served_and_one_byte_more_is_414(
    config: Config, chunker: Chunker
) -> None:
    network = Network(chunker, config=config)
    # "GET " + target + " HTTP/1.1\r\n"
    target = "/healthz?" + "a" * (config.max_line_size - len("GET  HTTP/1.1\r\n/healthz?"))
    http = network.http()
    data = http.build("GET", target)
    assert data.index(b"\r\n") + 2 == config.max_line_size
    http.send_bytes(data)
    assert http.responses[-1][1] == b"OK\n"

    http.request("GET", target + "a")
    assert statuses(http) == [200, 414]
    reason = f"Request line longer than {config.max_line_size} bytes."
    assert http.responses[-1][1] == f"414 Request-URI Too Long: {reason}\n".encode()
    assert header(http.responses[-1][0], "connection") == "close"
    assert http.transport_closed
    assert refusals(network, http) == [reason]
    assert_state(network)
    assert_still_serves(network)


@pytest.mark.parametrize(("config", "chunker"), LIMITS)
def test_header_line_at_the_limit_is_served_and_one_byte_more_is_431(
    config: Config, chunker: Chunker
) -> None:
    network = Network(chunker, config=config)
    value = "v" * (config.max_line_size - len("X-Long: \r\n"))
    http = network.http()
    http.request("GET", "/healthz", [("X-Long", value)])
    assert statuses(http) == [200]

    http.request("GET", "/healthz", [("X-Long", value + "v")])
    assert statuses(http) == [200, 431]
    reason = f"Header line longer than {config.max_line_size} bytes."
    assert http.responses[-1][1] == f"431 Request Header Fields Too Large: {reason}\n".encode()
    assert http.transport_closed
    assert refusals(network, http) == [reason]
    assert_state(network)
    assert_still_serves(network)


@pytest.mark.parametrize(("config", "chunker"), LIMITS)
def test_header_count_at_the_limit_is_served_and_one_more_is_431(
    config: Config, chunker: Chunker
) -> None:
    network = Network(chunker, config=config)
    fields = [(f"X-{index}", "1") for index in range(config.max_headers - 1)]  # and Host
    http = network.http()
    http.request("GET", "/healthz", fields)
    assert statuses(http) == [200]

    http.request("GET", "/healthz", [*fields, ("X-One-More", "1")])
    assert statuses(http) == [200, 431]
    assert http.transport_closed
    assert refusals(network, http) == [f"More than {config.max_headers} header fields."]
    assert_state(network)
    assert_still_serves(network)


@pytest.mark.parametrize(("config", "chunker"), LIMITS)
def test_head_at_the_size_limit_is_served_and_one_byte_more_is_431(
    config: Config, chunker: Chunker
) -> None:
    network = Network(chunker, config=config)
    http = network.http()
    data = http.build("GET", "/healthz", head_fields(config.max_head_size, config))
    assert len(data) == config.max_head_size
    http.send_bytes(data)
    assert statuses(http) == [200]

    data = http.build("GET", "/healthz", head_fields(config.max_head_size + 1, config))
    assert len(data) == config.max_head_size + 1
    http.send_bytes(data)
    assert statuses(http) == [200, 431]
    assert http.transport_closed
    assert refusals(network, http) == [f"Request head larger than {config.max_head_size} bytes."]
    assert_state(network)
    assert_still_serves(network)


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(Config(), id="default"),
        pytest.param(SMALL, id="small"),
        pytest.param(Config(max_head_size=32768), id="32-KiB"),
    ],
)
def test_head_that_never_ends_is_refused_once_past_the_size_limit(
    config: Config, chunker: Chunker
) -> None:
    network = Network(chunker, config=config)
    http = network.http()
    unfinished = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Endless: "
    unfinished += b"a" * (config.max_head_size - len(unfinished))
    http.send_bytes(unfinished)
    assert http.responses == []
    assert not http.transport_closed
    http.send_bytes(b"a")
    assert statuses(http) == [431]
    assert http.transport_closed
    assert_state(network)
    assert_still_serves(network)


def test_head_within_a_size_limit_above_16_kib_is_served_and_one_byte_more_is_431(
    chunker: Chunker,
) -> None:
    config = Config(max_head_size=32768)
    network = Network(chunker, config=config)
    http = network.http()
    data = http.build("GET", "/healthz", head_fields(config.max_head_size, config))
    assert len(data) == config.max_head_size
    http.send_bytes(data)
    assert statuses(http) == [200]
    data = http.build("GET", "/healthz", head_fields(config.max_head_size + 1, config))
    http.send_bytes(data)
    assert statuses(http) == [200, 431]
    assert refusals(network, http) == ["Request head larger than 32768 bytes."]
    assert_state(network)


def padded_head(size: int, lines: int) -> bytes:
    """A ``GET /healthz`` head of ``size`` bytes whose ``lines`` header lines are mostly the
    optional whitespace after a one-letter value (RFC 9112 section 5: ``field-value OWS``)."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    remaining = size - len(head) - len(b"\r\n")
    for index in range(lines):
        line = remaining // (lines - index)
        name = b"X-Pad-%d: a" % index
        head += name + b" " * (line - len(name) - 2) + b"\r\n"
        remaining -= line
    head += b"\r\n"
    assert len(head) == size
    return head


@pytest.mark.parametrize(("size", "status"), [(16384, 200), (16385, 431)])
def test_whitespace_around_header_values_counts_toward_the_head_size(
    size: int, status: int, chunker: Chunker
) -> None:
    network = Network(chunker)
    http = network.http()
    http.send_bytes(padded_head(size, lines=3))
    assert statuses(http) == [status]
    if status == 431:
        assert refusals(network, http) == ["Request head larger than 16384 bytes."]
        assert http.transport_closed
        assert_state(network)
    assert_still_serves(network)


def test_ten_mebibyte_head_in_one_read_is_refused_without_parsing_it_all() -> None:
    network = Network()
    http = network.http()
    # Were the whole head parsed, its last line (no colon) would make it a 400, not a 431.
    head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * (10 << 20)
    http.send_bytes(head + b"\r\nno colon here\r\n\r\n")
    assert statuses(http) == [431]
    assert refusals(network, http) == ["Receive buffer too long"]  # h11's, while incomplete
    assert http.transport_closed
    assert_state(network)
    assert_still_serves(network)


def test_pipelined_request_within_limits_then_one_over_in_one_read() -> None:
    network = Network()
    peer = RawPeer(network)
    client = h11.Connection(h11.CLIENT)
    requests = [
        h11.Request(method="GET", target="/healthz", headers=[("Host", "x")]),
        h11.Request(method="GET", target="/healthz", headers=[("Host", "x"), ("X", "v" * 9000)]),
    ]
    # Both written before any answer is read; each from a client of its own (h11 does not
    # pipeline), the answers read by one that sends them in turn.
    data = b""
    for request in requests:
        writer = h11.Connection(h11.CLIENT)
        data += (writer.send(request) or b"") + (writer.send(h11.EndOfMessage()) or b"")
    peer.send_bytes(data)
    assert peer.transport_closed
    client.receive_data(peer.received)
    answers = []
    for request in requests:
        client.send(request)
        client.send(h11.EndOfMessage())
        response = client.next_event()
        assert isinstance(response, h11.Response)
        body = client.next_event()
        assert isinstance(body, h11.Data)
        assert isinstance(client.next_event(), h11.EndOfMessage)
        answers.append((response.status_code, bytes(body.data)))
        if client.their_state is h11.DONE:
            client.start_next_cycle()
    assert answers == [
        (200, b"OK\n"),
        (431, b"431 Request Header Fields Too Large: Header line longer than 8192 bytes.\n"),
    ]
    assert_state(network)


@pytest.mark.parametrize(("config", "chunker"), LIMITS)
def test_websocket_handshake_is_held_to_the_head_limits(config: Config, chunker: Chunker) -> None:
    network = Network(chunker, config=config)
    # wsproto sends Host, Upgrade, Connection, Sec-WebSocket-Key and Sec-WebSocket-Version.
    extra = [(f"X-{index}", "1") for index in range(config.max_headers - 5)]
    peer = network.websocket(headers=extra)
    assert peer.accepted
    peer.close()

    refused = network.websocket(headers=[*extra, ("X-One-More", "1")])
    assert not refused.accepted
    assert refused.rejected is not None
    assert refused.rejected.status_code == 431
    assert refused.transport_closed
    assert_state(network)
    assert_still_serves(network)


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param([("Content-Length", "5")], id="content-length"),
        pytest.param([("Transfer-Encoding", "chunked")], id="chunked"),
    ],
)
def test_request_with_a_body_is_refused_with_413(
    framing: list[tuple[str, str]], chunker: Chunker
) -> None:
    network = Network(chunker)
    http = network.http()
    http.send_bytes(http.build("POST", "/healthz", framing, body=b"hello"))
    assert statuses(http) == [413]
    assert header(http.responses[0][0], "connection") == "close"
    assert http.transport_closed
    assert refusals(network, http) == ["Request bodies are not accepted."]
    assert faults(network, http) == [Fault.PEER]
    assert_state(network)
    assert_still_serves(network)


def test_request_with_content_length_zero_is_served_and_kept_alive(chunker: Chunker) -> None:
    network = Network(chunker)
    http = network.http()
    http.request("GET", "/healthz", [("Content-Length", "0")])
    http.request("GET", "/healthz")
    assert statuses(http) == [200, 200]
    assert not http.transport_closed


def test_chunked_request_with_content_length_zero_is_refused_with_413(chunker: Chunker) -> None:
    network = Network(chunker)
    http = network.http()
    # Hand-made: h11's client would not write both framings; a smuggling attempt does.
    http.send_bytes(
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 0\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    assert statuses(http) == [413]
    assert http.transport_closed
    assert refusals(network, http) == ["Request bodies are not accepted."]
    assert faults(network, http) == [Fault.PEER]
    assert_state(network)
    assert_still_serves(network)


# -- request timeout -----------------------------------------------------------------------


def test_request_completed_just_before_the_timeout_is_served(chunker: Chunker) -> None:
    network = Network(chunker)
    http = network.http()
    data = http.build("GET", "/healthz")
    network.feed(http, data[:-1])
    network.advance(9.999)
    assert http.responses == []
    network.feed(http, data[-1:])
    assert statuses(http) == [200]
    assert not http.transport_closed


def test_request_not_complete_within_the_timeout_gets_408(chunker: Chunker) -> None:
    network = Network(chunker)
    http = network.http()
    network.advance(3.0)
    network.feed(http, http.build("GET", "/healthz")[:-1])
    network.advance(9.999)
    assert http.responses == []
    assert network.server.connection_count == 1
    network.advance(10.0)  # from when the connection opened, not from its last bytes
    assert statuses(http) == [408]
    assert http.responses[0][1] == (b"408 Request Timeout: Request not complete within 10 s.\n")
    assert header(http.responses[0][0], "connection") == "close"
    assert http.transport_closed
    assert refusals(network, http) == ["Request not complete within 10 s."]
    assert faults(network, http) == [Fault.TIMEOUT]
    assert_state(network)
    assert_still_serves(network)


def test_trickled_bytes_do_not_extend_the_request_timeout() -> None:
    network = Network()
    http = network.http()
    data = http.build("GET", "/healthz")
    for second in range(10):
        network.advance(float(second))
        network.feed(http, data[second : second + 1])
    network.advance(10.0)
    assert statuses(http) == [408]
    assert http.transport_closed


def test_connection_that_sends_nothing_is_closed_quietly_after_the_timeout() -> None:
    network = Network()
    network.advance(1.0)
    http = network.http()
    network.advance(10.999)
    assert not http.transport_closed
    network.advance(11.0)
    assert http.transport_closed
    assert http.responses == []
    assert network.events == []
    assert_state(network)


def test_idle_keep_alive_connection_is_closed_quietly_after_the_timeout() -> None:
    network = Network()
    http = network.http()
    network.advance(3.0)
    http.request("GET", "/healthz")
    network.advance(12.999)  # the wait for the next request starts at the response
    assert not http.transport_closed
    network.advance(13.0)
    assert http.transport_closed
    assert statuses(http) == [200]
    assert network.events == []
    assert_state(network)
    assert_still_serves(network)


def test_next_request_on_a_keep_alive_connection_has_its_own_timeout() -> None:
    network = Network()
    http = network.http()
    network.advance(3.0)
    http.request("GET", "/healthz")
    network.advance(5.0)
    network.feed(http, http.build("GET", "/healthz")[:10])
    network.advance(12.999)
    assert statuses(http) == [200]
    network.advance(13.0)
    assert statuses(http) == [200, 408]
    assert http.transport_closed
    assert_state(network)


# -- idle WebSockets: ping, pong timeout ---------------------------------------------------


def test_idle_websocket_is_pinged_each_interval_and_stays_while_it_answers() -> None:
    network = Network()
    red, yellow = start_game(network)
    network.advance(19.999)
    assert red.pings == yellow.pings == []
    network.advance(20.0)
    assert red.pings == yellow.pings == [b""]  # both answered (as browsers do)
    network.advance(39.999)
    assert red.pings == [b""]
    network.advance(40.0)  # an interval after the pong
    assert red.pings == yellow.pings == [b"", b""]
    red.send({"type": "play", "column": 3})
    assert yellow.take() == [{"type": "play", "player": "red", "column": 3, "row": 0}]
    assert_state(network, connections=2, members=2, games=1)


def test_websocket_that_does_not_answer_a_ping_is_dropped_and_its_game_told() -> None:
    network = Network()
    red, yellow = start_game(network)
    yellow.answer_pings = False
    network.advance(20.0)
    assert yellow.pings == [b""]
    network.advance(39.999)
    assert not yellow.transport_closed
    network.advance(40.0)
    assert yellow.transport_closed
    assert yellow.close_code is None  # dropped, not closed: it would not answer anyway
    assert red.take() == [{"type": "left", "player": "yellow"}]
    assert refusals(network, yellow) == ["No answer to a ping within 20 s."]
    assert faults(network, yellow) == [Fault.TIMEOUT]
    assert_state(network, connections=1, members=1, games=1)
    assert_still_serves(network)


def test_any_bytes_from_the_peer_count_as_a_sign_of_life() -> None:
    network = Network()
    red, yellow = start_game(network)
    yellow.answer_pings = False
    network.advance(15.0)
    red.send({"type": "play", "column": 0})  # red's message pushes red's ping back
    network.advance(20.0)
    assert red.pings == []
    assert yellow.pings == [b""]
    network.advance(30.0)
    frame = yellow.ws.send(Message(data='{"type": "play", "column": 1}'))
    network.feed(yellow, frame[:1])  # one byte of a frame, and no pong
    network.advance(40.0)
    assert not yellow.transport_closed
    network.advance(49.999)
    assert yellow.pings == [b""]
    network.advance(50.0)
    assert yellow.pings == [b"", b""]
    network.feed(yellow, frame[1:])
    assert red.take()[-1] == {"type": "play", "player": "yellow", "column": 1, "row": 0}
    network.advance(70.0)  # silent since 50: 20 s to the ping, 20 more to give up
    assert not yellow.transport_closed
    network.advance(90.0)
    assert yellow.transport_closed
    assert red.take()[-1] == {"type": "left", "player": "yellow"}


def test_a_driver_that_sleeps_until_next_deadline_is_never_late() -> None:
    network = Network()
    server = network.server
    assert server.next_deadline is None
    network.advance(1.0)
    peer = network.websocket()  # opened and upgraded at 1
    peer.answer_pings = False
    pinged_at = None
    woken: list[float] = []
    while (deadline := server.next_deadline) is not None:
        network.advance(deadline)
        woken.append(deadline)
        if peer.pings and pinged_at is None:
            pinged_at = deadline
    # It may wake early (a timer left from the handshake), never late.
    assert pinged_at == 21.0
    assert woken[-1] == 41.0
    assert peer.transport_closed
    assert server.connection_count == 0


def test_time_going_backwards_is_the_drivers_error() -> None:
    network = Network()
    network.advance(5.0)
    network.advance(5.0)
    with pytest.raises(LocalProtocolError, match="backwards"):
        network.server.advance(4.999)


# -- closing handshake timeout -------------------------------------------------------------


def test_unanswered_close_frame_is_given_up_after_the_close_timeout() -> None:
    network = Network()
    red, yellow = start_game(network)
    yellow.answer_close = False
    network.advance(2.0)
    yellow.send({"type": "init", "padding": "x" * 5000})
    assert yellow.close_code == 1009
    assert red.take() == [{"type": "left", "player": "yellow"}]  # at once, not at the timeout
    assert_state(network, connections=2, members=1, games=1)
    network.advance(5.0)
    # More frames after our close frame: read and dropped; the wait goes on. (wsproto's
    # client will not send them once closing; its framer, like a careless client, will.)
    framer = FrameProtocol(client=True, extensions=[])
    network.feed(yellow, bytes(framer.send_data('{"type": "play", "column": 0}')))
    network.advance(6.999)
    assert not yellow.transport_closed
    network.advance(7.0)
    assert yellow.transport_closed
    assert refusals(network, yellow) == ["Message larger than 4096 bytes."]
    assert faults(network, yellow) == [Fault.PEER]
    assert_state(network, connections=1, members=1, games=1)
    assert_still_serves(network)


def test_a_peer_that_drops_after_its_refusal_is_logged_for_the_refusal() -> None:
    network = Network()
    red, yellow = start_game(network)
    yellow.answer_close = False
    yellow.send({"type": "init", "padding": "x" * 5000})
    assert yellow.close_code == 1009
    network.feed(yellow, None)  # the stream ends, no close frame: not "vanished"
    assert yellow.transport_closed
    assert red.take() == [{"type": "left", "player": "yellow"}]  # told once
    assert refusals(network, yellow) == ["Message larger than 4096 bytes."]
    assert faults(network, yellow) == [Fault.PEER]
    assert_state(network, connections=1, members=1, games=1)


def test_shutdown_waits_for_close_frames_at_most_the_close_timeout() -> None:
    network = Network()
    red, yellow = start_game(network)
    yellow.answer_close = False
    network.advance(2.0)
    yellow.send({"type": "play", "column": 9})
    network.apply(network.server.shutdown(network.now))
    assert red.close_code == yellow.close_code == 1001
    assert red.transport_closed
    assert not yellow.transport_closed
    network.advance(6.999)
    assert network.server.connection_count == 1
    network.advance(7.0)
    assert yellow.transport_closed
    assert refusals(network, yellow) == ["No close frame within 5 s."]
    assert faults(network, yellow) == [Fault.TIMEOUT]
    assert refusals(network, red) == []
    assert_state(network, games=1)  # the seats wait for their tokens


def test_shutdown_waits_the_close_timeout_for_a_peer_that_was_idle() -> None:
    network = Network()
    _red, yellow = start_game(network)
    yellow.answer_close = False
    network.advance(12.0)
    yellow.send({"type": "play", "column": 9})  # last heard from at 12
    network.advance(19.0)  # quiet, but not yet due a ping
    network.apply(network.server.shutdown(network.now))
    assert yellow.close_code == 1001
    network.advance(19.0)  # the driver runs the timers at once
    assert not yellow.transport_closed
    network.advance(23.999)
    assert not yellow.transport_closed
    network.advance(24.0)
    assert yellow.transport_closed
    assert refusals(network, yellow) == ["No close frame within 5 s."]
    assert_state(network, games=1)  # the seats wait for their tokens


# -- rate limit ----------------------------------------------------------------------------

TOO_MANY = {"type": "error", "message": "Too many messages: at most 50 per second."}
OUT_OF_RANGE = {"type": "error", "message": "Column must be between 0 and 6."}


def test_messages_beyond_the_rate_get_an_error_and_are_not_acted_on(chunker: Chunker) -> None:
    network = Network(chunker)
    red, yellow = start_game(network)  # yellow's init is its first message
    network.advance(0.999)
    for _ in range(48):
        yellow.send({"type": "play", "column": 9})
    assert yellow.take() == [OUT_OF_RANGE] * 48
    red.send({"type": "play", "column": 0})
    red.take()
    yellow.take()
    yellow.send({"type": "play", "column": 1})  # the 50th: played
    assert red.take() == [{"type": "play", "player": "yellow", "column": 1, "row": 0}]
    red.send({"type": "play", "column": 0})
    red.take()
    yellow.take()
    yellow.send({"type": "play", "column": 1})  # the 51st: refused
    assert yellow.take() == [TOO_MANY]
    assert red.take() == []
    assert len(network.server.lobby.game(1).moves) == 3
    assert not yellow.transport_closed


def test_a_new_window_opens_a_second_after_the_last_began() -> None:
    network = Network()
    red, _yellow = start_game(network)  # red's init: the window starts at 0
    for _ in range(49):
        red.send({"type": "play", "column": 9})
    red.take()
    network.advance(0.999)
    red.send({"type": "play", "column": 0})
    assert red.take() == [TOO_MANY]
    network.advance(1.0)
    red.send({"type": "play", "column": 0})
    assert red.take() == [{"type": "play", "player": "red", "column": 0, "row": 0}]
    assert network.server.lobby.game(1).moves[0].column == 0


def test_twice_the_rate_in_one_second_closes_with_1008(chunker: Chunker) -> None:
    network = Network(chunker)
    red, yellow = start_game(network)
    for _ in range(99):
        yellow.send({"type": "play", "column": 9})
    assert yellow.take() == [OUT_OF_RANGE] * 49 + [TOO_MANY] * 50
    assert yellow.close_code is None
    yellow.send({"type": "play", "column": 9})  # the 101st
    assert yellow.close_code == 1008
    assert yellow.close_reason == "More than 100 messages in one second."
    assert yellow.take() == []
    assert yellow.transport_closed
    assert red.take() == [{"type": "left", "player": "yellow"}]
    assert refusals(network, yellow) == ["More than 100 messages in one second."]
    assert faults(network, yellow) == [Fault.PEER]
    assert_state(network, connections=1, members=1, games=1)
    network.advance(1.0)  # red's window is its own
    assert_still_serves(network)


def test_pings_count_against_the_rate_limit() -> None:
    network = Network()
    peer = network.websocket()
    for index in range(100):
        peer.ping(str(index).encode())
    assert peer.pongs == [str(index).encode() for index in range(50)]
    peer.send({"type": "init"})  # the 101st
    assert peer.close_code == 1008
    assert peer.transport_closed
    assert_state(network)
    network.advance(1.0)
    assert_still_serves(network)


def test_rate_limit_can_be_turned_off() -> None:
    network = Network(config=Config(max_messages_per_second=None))
    peer = network.websocket()
    for _ in range(300):
        peer.send({"type": "claim"})
        peer.ping(b"x")
    assert peer.take() == [{"type": "error", "message": "Send an init message first."}] * 300
    assert len(peer.pongs) == 300
    assert not peer.transport_closed


def test_first_window_opens_at_the_first_message_not_at_the_connection() -> None:
    network = Network()
    peer = network.websocket()  # opened at 0
    network.advance(0.5)
    for _ in range(50):
        peer.ping(b"x")
    network.advance(1.499)  # still the window opened at 0.5
    peer.ping(b"late")
    assert len(peer.pongs) == 50
    network.advance(1.5)
    peer.ping(b"next")
    assert peer.pongs[-1] == b"next"
    assert len(peer.pongs) == 51


# -- allowed origins -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "origin"),
    [
        ((ORIGIN,), ORIGIN),
        ((ORIGIN,), ORIGIN.upper()),
        ((ORIGIN,), ORIGIN + "/"),
        ((ORIGIN + "/",), ORIGIN),
        (("http://localhost:8000", ORIGIN), ORIGIN),
    ],
)
def test_listed_origin_may_open_a_websocket(
    allowed: tuple[str, ...], origin: str, chunker: Chunker
) -> None:
    network = Network(chunker, config=Config(allowed_origins=allowed))
    red, _yellow = start_game(network, [("Origin", origin)])
    assert red.accepted


@pytest.mark.parametrize(
    "origins",
    [
        pytest.param([("Origin", "https://evil.example")], id="other-site"),
        pytest.param([("Origin", ORIGIN + ".evil.example")], id="suffix"),
        pytest.param([("Origin", "https://evil.example/" + ORIGIN)], id="path"),
        pytest.param([("Origin", ORIGIN.replace("https", "http"))], id="other-scheme"),
        pytest.param([("Origin", ORIGIN + ":8443")], id="other-port"),
        pytest.param([("Origin", "null")], id="null"),
        pytest.param([], id="missing"),
        pytest.param([("Origin", ORIGIN), ("Origin", ORIGIN)], id="twice"),
    ],
)
def test_other_origins_are_refused_with_403(
    origins: list[tuple[str, str]], chunker: Chunker
) -> None:
    network = Network(chunker, config=Config(allowed_origins=(ORIGIN,)))
    peer = network.websocket(headers=origins)
    assert not peer.accepted
    assert peer.rejected is not None
    assert peer.rejected.status_code == 403
    assert peer.transport_closed
    assert refusals(network, peer) == ["Origin not allowed."]
    assert faults(network, peer) == [Fault.PEER]
    assert_state(network)
    assert_still_serves(network, [("Origin", ORIGIN)])


def test_allowed_origins_do_not_apply_to_plain_http() -> None:
    network = Network(config=Config(allowed_origins=(ORIGIN,)))
    http = network.http()
    http.request("GET", "/", [("Origin", "https://evil.example")])
    assert statuses(http) == [200]


def test_any_origin_may_open_a_websocket_when_none_are_listed() -> None:
    network = Network()
    peer = network.websocket(headers=[("Origin", "https://anywhere.example")])
    assert peer.accepted


# -- connection cap ------------------------------------------------------------------------


def test_at_the_connection_cap_the_server_stops_accepting_until_one_closes() -> None:
    network = Network(config=Config(max_connections=2))
    server = network.server
    assert server.accepting
    first = network.http()
    assert server.accepting
    second = network.websocket()
    assert not server.accepting
    with pytest.raises(LocalProtocolError, match="max_connections"):
        server.open_connection(0.0)
    assert server.connection_count == 2

    first.request("GET", "/healthz", [("Connection", "close")])
    assert first.transport_closed
    assert server.accepting
    second.close()
    assert_state(network)
    assert_still_serves(network)


def test_busy_response_is_a_complete_503_that_closes() -> None:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "localhost")]))
    client.send(h11.EndOfMessage())
    client.receive_data(Network().server.busy_response())
    response = client.next_event()
    assert isinstance(response, h11.Response)
    assert response.status_code == 503
    assert header(response, "connection") == "close"
    assert header(response, "retry-after") == "5"
    body = client.next_event()
    assert isinstance(body, h11.Data)
    assert body.data.startswith(b"503 Service Unavailable")
    assert isinstance(client.next_event(), h11.EndOfMessage)
    assert client.their_state is h11.MUST_CLOSE


# -- slow readers --------------------------------------------------------------------------


def test_too_slow_reader_is_closed_with_1013_and_its_opponent_told() -> None:
    network = Network()
    red, yellow = start_game(network)
    output = network.server.too_slow(yellow.id, network.now)
    assert output.close == frozenset({yellow.id})
    network.apply(output)
    assert yellow.close_code == 1013
    assert yellow.close_reason == "Too slow to keep up."
    assert red.take() == [{"type": "left", "player": "yellow"}]
    assert refusals(network, yellow) == ["Reading too slowly to keep up."]
    assert faults(network, yellow) == [Fault.TOO_SLOW]
    assert_state(network, connections=1, members=1, games=1)
    with pytest.raises(LocalProtocolError):
        network.server.receive_data(yellow.id, b"x", network.now)
    with pytest.raises(LocalProtocolError):
        network.server.too_slow(yellow.id, network.now)
    assert_still_serves(network)


# -- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        {"type": "init", "join": "key-2"},  # the watch key, to join
        {"type": "init", "join": "key-3"},  # red's seat token, to join
        {"type": "init", "watch": "key-3"},  # red's seat token, to watch
        {"type": "init", "join": "key-"},
        {"type": "init", "join": "key-11"},
        {"type": "init", "join": "KEY-1"},
        {"type": "init", "join": " key-1"},
        {"type": "init", "join": ""},
        {"type": "init", "join": "kéy-1"},
        {"type": "init", "watch": "key-2" * 500},
    ],
)
def test_only_the_exact_key_of_the_right_role_finds_the_game(message: dict[str, str]) -> None:
    network = Network()
    red = network.websocket()
    red.send({"type": "init"})
    red.take()
    peer = network.websocket()
    peer.send(message)
    assert peer.take() == [{"type": "error", "message": "Game not found."}]
    assert red.take() == []
    assert_state(network, connections=2, members=1, games=1)
    peer.send({"type": "init", "watch": "key-2"})
    assert peer.take() == [{"type": "joined", "player": "red"}]


def test_keys_of_a_game_nobody_came_back_to_find_nothing() -> None:
    network = Network()
    red, yellow = start_game(network)
    red.close()
    yellow.close()
    network.wait_out_grace()
    assert_state(network)
    peer = network.websocket()
    peer.send({"type": "init", "join": "key-1"})
    peer.send({"type": "init", "watch": "key-2"})
    assert peer.take() == [{"type": "error", "message": "Game not found."}] * 2


def test_ping_interval_shorter_than_the_request_timeout_is_kept() -> None:
    # The timer set for the request head (60 s) must not hide the first ping (5 s).
    network = Network(config=Config(request_timeout=60.0, ping_interval=5.0))
    red, _ = start_game(network)
    network.advance(4.999)
    assert red.pings == []
    assert network.server.next_deadline == pytest.approx(5.0)
    network.advance(5.0)
    assert red.pings == [b""]


def test_ping_timeout_longer_than_the_interval_is_kept_after_a_read() -> None:
    # A read while our ping waits for its pong moves the next ping to 5 s after that read.
    network = Network(config=Config(ping_interval=5.0, ping_timeout=30.0))
    red, yellow = start_game(network)
    network.advance(5.0)
    assert red.pings == yellow.pings == [b""]
    red.send({"type": "play", "column": 3})
    network.advance(9.999)
    assert red.pings == [b""]
    network.advance(10.0)
    assert red.pings == [b"", b""]
