"""Every error path of the core: bad messages, bad frames, bad HTTP; real peers, no sockets."""

from __future__ import annotations

import struct

import pytest
from peers import SITE, Network, RawPeer, WebSocketPeer, byte_by_byte, header
from wsproto.events import CloseConnection, Message
from wsproto.frame_protocol import FrameProtocol

from connect4proto import Config, ConnectionEnded, Fault, GameServer, Site


def started() -> tuple[Network, WebSocketPeer]:
    network = Network()
    red = network.websocket()
    red.send({"type": "init"})
    red.take()
    return network, red


def masked_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    """A client frame built by hand, for the cases where the bytes themselves are the point."""
    mask = b"\x01\x02\x03\x04"
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    length = len(payload)
    if length < 126:
        head += bytes([0x80 | length])
    elif length < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", length)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("not json", "Invalid message: JSON is malformed: invalid character (byte 4)"),
        ("", "Invalid message: Input data was truncated"),
        ("[1, 2]", "Invalid message: Expected `object`, got `array`"),
        ('"init"', "Invalid message: Expected `object`, got `str`"),
        ("{}", "Invalid message: Object missing required field `type`"),
        ('{"type": "surrender"}', "Invalid message: Invalid value 'surrender' - at `$.type`"),
        ('{"type": 1}', "Invalid message: Expected `str` - at `$.type`"),
        ('{"type": "play"}', "Invalid message: Object missing required field `column`"),
        (
            '{"type": "play", "column": "3"}',
            "Invalid message: Expected `int`, got `str` - at `$.column`",
        ),
        (
            '{"type": "play", "column": 2.5}',
            "Invalid message: Expected `int`, got `float` - at `$.column`",
        ),
        (
            '{"type": "play", "column": true}',
            "Invalid message: Expected `int`, got `bool` - at `$.column`",
        ),
        ('{"type": "play", "column": -1}', "Column must be between 0 and 6."),
        ('{"type": "play", "column": 99}', "Column must be between 0 and 6."),
        (
            '{"type": "init", "join": 5}',
            "Invalid message: Expected `str | null`, got `int` - at `$.join`",
        ),
        (
            '{"type": "play", "column": 3} trailing',
            "Invalid message: JSON is malformed: trailing characters (byte 31)",
        ),
        (
            '{"type": "play", "column": 3, "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "Invalid message: JSON nested too deeply.",
        ),
    ],
)
def test_malformed_message_gets_an_error_and_changes_nothing(text: str, error: str) -> None:
    network = Network(config=Config(max_message_size=300_000))
    red = network.websocket()
    red.send({"type": "init"})
    red.take()
    red.send(text)
    assert red.take() == [{"type": "error", "message": error}]
    assert network.server.lobby.game(1).moves == ()
    # The connection stays usable.
    red.send({"type": "play", "column": 3})
    assert red.take() == [{"type": "play", "player": "red", "column": 3, "row": 0}]


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"type": "claim"}], "Send an init message first."),
        ([{"type": "init", "join": "nope"}], "Game not found."),
        ([{"type": "init", "watch": "nope"}], "Game not found."),
        ([{"type": "init", "join": "key-2"}], "Game not found."),  # a watch key is not a join key
        (
            [{"type": "init", "join": "key-1", "watch": "key-2"}],
            "Send either join or watch, not both.",
        ),
        ([{"type": "init"}, {"type": "init"}], "You are already in a game."),
    ],
)
def test_refused_init_and_play_get_clear_errors(
    messages: list[dict[str, object]], error: str
) -> None:
    network, red = started()
    peer = network.websocket()
    for message in messages:
        peer.send(message)
    assert peer.take()[-1] == {"type": "error", "message": error}
    assert red.take() == []


def test_spectator_cannot_play() -> None:
    network, red = started()
    spectator = network.websocket()
    spectator.send({"type": "init", "watch": "key-2"})
    spectator.take()
    spectator.send({"type": "play", "column": 0})
    assert spectator.take() == [{"type": "error", "message": "Spectators cannot play."}]
    assert red.take() == []


def test_illegal_moves_get_the_tutorial_texts() -> None:
    network, red = started()
    yellow = network.websocket()
    yellow.send({"type": "init", "join": "key-1"})
    yellow.take()
    red.take()
    yellow.send({"type": "play", "column": 0})
    assert yellow.take() == [{"type": "error", "message": "It isn't your turn."}]
    for index in range(6):
        (red if index % 2 == 0 else yellow).send({"type": "play", "column": 4})
    red.take()
    red.send({"type": "play", "column": 4})
    assert red.take() == [{"type": "error", "message": "This slot is full."}]
    assert yellow.take()[-1]["row"] == 5


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    _network, red = started()
    red.send({"type": "play", "column": 1, "clock": 30})
    assert red.take() == [{"type": "play", "player": "red", "column": 1, "row": 0}]


def test_binary_frame_is_closed_with_1003_and_leaves_the_game() -> None:
    network, red = started()
    red.send_bytes(red.ws.send(Message(data=b"\x00\x01")))
    assert red.close_code == 1003
    assert red.close_reason == "Binary frames are not supported."
    assert red.transport_closed  # the client answered the close frame
    assert network.server.lobby.game_count == 1  # red's seat waits for its token
    network.wait_out_grace()
    assert network.server.lobby.game_count == 0
    assert ConnectionEnded(
        connection=red.id, reason="Binary frames are not supported.", fault=Fault.PEER
    ) in (network.events)


def test_ping_gets_a_pong_with_the_same_payload() -> None:
    _network, red = started()
    red.ping(b"are you there")
    assert red.pongs == [b"are you there"]


def test_fragmented_message_is_reassembled() -> None:
    _network, red = started()
    red.send_bytes(red.ws.send(Message(data='{"type": "pl', message_finished=False)))
    red.send_bytes(red.ws.send(Message(data="", message_finished=False)))
    red.send_bytes(red.ws.send(Message(data='ay", "column": 5}', message_finished=True)))
    assert red.take() == [{"type": "play", "player": "red", "column": 5, "row": 0}]


def test_message_over_the_size_limit_is_closed_with_1009() -> None:
    network = Network(config=Config(max_message_size=100))
    red = network.websocket()
    red.send({"type": "init", "padding": "x" * 60})  # 95 bytes: fits
    assert red.take()[0]["type"] == "init"
    red.send({"type": "play", "column": 1, "padding": "é" * 40})  # 40 characters, 80 bytes
    assert red.close_code == 1009
    assert red.take() == []
    assert network.server.lobby.game_count == 1  # red's seat waits for its token
    network.wait_out_grace()
    assert network.server.lobby.game_count == 0


def test_endless_fragments_are_closed_with_1009() -> None:
    network = Network(config=Config(max_fragments=4))
    red = network.websocket()
    for _ in range(4):
        red.send_bytes(red.ws.send(Message(data="", message_finished=False)))
    assert red.close_code is None
    red.send_bytes(red.ws.send(Message(data="", message_finished=False)))
    assert red.close_code == 1009


def test_oversized_frame_is_refused_before_it_is_buffered() -> None:
    network = Network(config=Config(max_message_size=1000))
    red = network.websocket()
    # A header announcing 1 GiB, then the first 2 KiB of it: refused without the rest.
    head = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 2**30) + b"\x00" * 4
    red.send_bytes(head + b"a" * 2048)
    assert red.close_code == 1009


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        pytest.param(bytes([0x81, 0x02]) + b"hi", 1002, id="unmasked"),
        pytest.param(masked_frame(0x1, b"hi", rsv=0x40), 1002, id="reserved-bit"),
        pytest.param(masked_frame(0x3, b"hi"), 1002, id="unknown-opcode"),
        pytest.param(masked_frame(0x9, b"x" * 126), 1002, id="long-control-frame"),
        pytest.param(masked_frame(0x9, b"x", fin=False), 1002, id="fragmented-control-frame"),
        pytest.param(masked_frame(0x1, b"\xff\xfe"), 1007, id="invalid-utf8"),
    ],
)
def test_invalid_frames_are_closed_with_the_rfc_code(frame: bytes, code: int) -> None:
    network, red = started()
    red.send_bytes(frame)
    assert red.close_code == code
    assert red.transport_closed
    assert network.server.connection_count == 0
    assert network.server.lobby.game_count == 1  # red's seat waits for its token
    network.wait_out_grace()
    assert network.server.lobby.game_count == 0


def test_handshake_and_messages_in_one_read_are_all_handled() -> None:
    network = Network()
    peer = WebSocketPeer(network, "/game", connect=False)
    # Client frames can be built before the handshake completes: masking needs no answer.
    framer = FrameProtocol(client=True, extensions=[])
    data = peer.handshake + framer.send_data('{"type": "init"}')
    data += framer.send_data('{"type": "play", "column": 6}')
    network.feed(peer, bytes(data))
    assert peer.accepted
    assert [m["type"] for m in peer.take()] == ["init", "play"]


@pytest.mark.memory_store  # shared, replies wait for the store; the close is answered first
def test_replies_before_a_close_frame_are_sent_before_it() -> None:
    network, red = started()
    data = red.ws.send(Message(data='{"type": "play", "column": 0}'))
    data += red.ws.send(CloseConnection(code=1000))
    network.feed(red, data)
    assert red.take() == [{"type": "play", "player": "red", "column": 0, "row": 0}]
    assert red.close_code == 1000


def test_websocket_upgrade_works_on_any_path() -> None:
    network = Network(byte_by_byte)
    peer = network.websocket("/some/where?x=1")
    assert peer.accepted
    peer.send({"type": "init"})
    assert peer.take()[0]["type"] == "init"


# -- HTTP --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/", "text/html; charset=utf-8", SITE.files["/index.html"].body),
        ("/?join=abc", "text/html; charset=utf-8", SITE.files["/index.html"].body),
        ("/index.html", "text/html; charset=utf-8", SITE.files["/index.html"].body),
        ("/app.js", "text/javascript; charset=utf-8", b"export {};"),
        ("/style.css", "text/css; charset=utf-8", b"body {}"),
        ("/healthz", "text/plain; charset=utf-8", b"OK\n"),
    ],
)
def test_http_serves_the_ui_and_the_health_check(path: str, content_type: str, body: bytes) -> None:
    http = Network(byte_by_byte).http()
    response, received = http.get(path)
    assert response.status_code == 200
    assert header(response, "content-type") == content_type
    assert header(response, "referrer-policy") == "no-referrer"
    assert received == body
    head, empty = http.get(path, method="HEAD")
    assert head.status_code == 200
    assert header(head, "content-length") == str(len(body))
    assert empty == b""


@pytest.mark.parametrize(
    "path",
    ["/nope", "/../server.py", "/%2e%2e/server.py", "/static/app.js", "//app.js", "/app.js/"],
)
def test_unknown_paths_are_404(path: str) -> None:
    response, body = Network().http().get(path)
    assert response.status_code == 404
    assert body == b"Not Found\n"


def test_other_methods_are_405() -> None:
    response, _ = Network().http().get("/", method="DELETE")
    assert response.status_code == 405
    assert header(response, "allow") == "GET, HEAD"


def test_keep_alive_serves_several_requests_then_an_upgrade_on_one_connection() -> None:
    network = Network()
    http = network.http()
    assert http.get("/healthz")[0].status_code == 200
    assert http.get("/app.js")[0].status_code == 200
    assert not http.transport_closed


def test_connection_close_request_closes_after_the_response() -> None:
    network = Network()
    http = network.http()
    http.request("GET", "/healthz", [("Connection", "close")])
    assert http.responses[0][0].status_code == 200
    assert http.transport_closed
    assert network.server.connection_count == 0


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, id="tls"),
        pytest.param(b"hello there\r\n\r\n", 400, id="not-http"),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            426,
            id="bad-websocket-version",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
            400,
            id="no-connection-upgrade",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: xn--zz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            400,
            id="idna-host",
        ),
    ],
)
def test_bad_requests_get_an_http_error_and_are_closed(request_bytes: bytes, status: int) -> None:
    network = Network()
    http = network.http()
    http.send_bytes(request_bytes)
    assert [r.status_code for r, _ in http.responses] == [status]
    assert http.transport_closed
    assert network.server.connection_count == 0
    assert any(isinstance(e, ConnectionEnded) for e in network.events)
    # The server still serves others.
    assert network.http().get("/healthz")[0].status_code == 200


_KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status", "problem"),
    [
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + _KEY
            + b"Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n",
            400,
            "Request method must be GET",
            id="post",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
            + _KEY
            + b"Sec-WebSocket-Version: 13\r\n\r\n",
            400,
            "Missing header, 'Connection: Upgrade'",
            id="connection-without-upgrade",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + _KEY
            + b"\r\n",
            400,
            "Missing header, 'Sec-WebSocket-Version'",
            id="no-version",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n",
            400,
            "Missing header, 'Sec-WebSocket-Key'",
            id="no-key",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
            + _KEY
            + b"Sec-WebSocket-Version: 13\r\n\r\n",
            400,
            "Missing header, 'Upgrade: websocket'",
            id="upgrade-to-something-else",
        ),
    ],
)
def test_a_refused_handshake_says_why(request_bytes: bytes, status: int, problem: str) -> None:
    network = Network()
    http = network.http()
    http.send_bytes(request_bytes)
    ((response, body),) = http.responses
    assert response.status_code == status
    assert f"WebSocket handshake refused: {problem}" in body.decode()
    assert header(response, "connection") == "close"
    assert http.transport_closed


def test_an_unknown_websocket_version_gets_426_naming_ours() -> None:
    network = Network()
    http = network.http()
    http.send_bytes(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + _KEY
        + b"Sec-WebSocket-Version: 8\r\n\r\n"
    )
    ((response, _),) = http.responses
    assert response.status_code == 426
    assert header(response, "sec-websocket-version") == "13"


def test_the_upgrade_tokens_are_read_in_any_case_and_among_others() -> None:
    # Firefox sends "Connection: keep-alive, Upgrade"; the RFC's tokens are case-insensitive.
    network = Network()
    peer = RawPeer(network)
    peer.send_bytes(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, upgrade\r\n"
        + _KEY
        + b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    assert peer.received == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        # RFC 6455 section 1.3's own example key and its accept value.
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    assert not peer.transport_closed
    assert network.server.statistics.handshakes == 1


def test_end_of_stream_during_http_closes_quietly() -> None:
    network = Network()
    http = network.http()
    network.feed(http, None)
    assert http.transport_closed
    assert network.events == []


def test_shutdown_sends_1001_to_every_websocket_and_ends_http() -> None:
    network, red = started()
    http = network.http()
    network.apply(network.server.shutdown(network.now))
    assert red.close_code == 1001
    assert red.transport_closed  # red answered the close; the server then closed
    assert http.transport_closed
    assert network.server.connection_count == 0


def test_fail_closes_one_connection_with_1011_and_tells_the_opponent() -> None:
    network, red = started()
    yellow = network.websocket()
    yellow.send({"type": "init", "join": "key-1"})
    red.take()
    network.apply(network.server.fail(yellow.id, network.now))
    assert yellow.close_code == 1011
    assert yellow.transport_closed
    assert red.take() == [{"type": "left", "player": "yellow"}]


def test_pipelined_requests_beyond_one_head_size_in_one_read_are_all_answered() -> None:
    # 500 small requests in a single read: 17,500 bytes, fed to h11 in head-sized pieces.
    server = GameServer(site=SITE, new_key=lambda: "k")
    connection = server.open_connection(0.0)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    data = request * 500 + request[:10]  # and the start of one more
    assert len(data) > Config().max_head_size
    output = server.receive_data(connection, data, 0.0)
    assert output.data[connection].count(b"HTTP/1.1 200 OK\r\n") == 500
    assert connection not in output.close
    # The last one completes later, as if its rest came in the next read.
    output = server.receive_data(connection, request[10:], 0.0)
    assert output.data[connection].startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize(
    "name", ["/index.html", "../secret.html", "a/../index.html", "a\\b.html", "payload.exe"]
)
def test_the_site_refuses_files_it_could_not_serve_safely(name: str) -> None:
    with pytest.raises(ValueError, match=r"not a plain relative path|no known content type"):
        Site.from_files({name: b"x"})


def test_a_stream_that_ends_without_a_close_frame_is_reported_as_vanished() -> None:
    network, red = started()
    network.feed(red, None)
    assert red.transport_closed
    ended = [e for e in network.events if isinstance(e, ConnectionEnded)]
    assert ended == [
        ConnectionEnded(
            connection=red.id,
            reason="Connection closed without a close frame.",
            fault=Fault.VANISHED,
        )
    ]
