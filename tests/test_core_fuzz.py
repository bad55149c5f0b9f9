"""Byte-level fuzzing of the core's receive path: random and mutated bytes, cut anyhow.

Each example opens one connection on a server that also hosts a game in progress, feeds it
bytes in random pieces (random bytes, a valid handshake and session with bit flips,
truncations, duplicated or spliced pieces, frames with random fields), then ends it (end of
stream, lost transport, or silence until the timers give up). Nothing may escape
``receive_data``; what the server wrote back must be well-formed; the connection must end in
``Output.close`` with no trace left; the game next door must not notice; and the same server
must still serve ``/healthz`` and a whole game afterwards.

The bytes are built by hand with a fixed mask and key, not by wsproto (whose masks are random),
so that Hypothesis can replay and shrink every example.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from peers import HttpPeer, Network, WebSocketPeer

from connect4proto import Config, LocalProtocolError, Output

HANDSHAKE = (
    b"GET / HTTP/1.1\r\n"
    b"Host: localhost\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)
MASK = b"\x37\xfa\x21\x3d"

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = MASK,
    length: int | None = None,
    length_size: int | None = None,
) -> bytes:
    """A client frame (RFC 6455 section 5.2), any field of it possibly wrong on purpose.

    ``length`` is the declared payload length (the true one by default), ``length_size``
    the width of its encoding in bytes: 0 (7 bits), 2 or 8; the smallest that fits by default.
    """
    declared = len(payload) if length is None else length
    if length_size is None:
        length_size = 0 if declared < 126 else 2 if declared < 65536 else 8
    if length_size == 0 and declared < 126:
        lengths = bytes([declared])
    elif length_size in (0, 2) and declared < 65536:
        lengths = bytes([126]) + struct.pack("!H", declared)
    else:
        lengths = bytes([127]) + struct.pack("!Q", declared % 2**64)
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    if mask is None:
        return head + lengths + payload
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return head + bytes([0x80 | lengths[0]]) + lengths[1:] + mask + masked


SESSION_FRAMES = (
    frame(TEXT, b'{"type": "init"}'),
    frame(TEXT, b'{"type": "play", "column": 3}'),
    frame(PING, b"hi"),
    frame(TEXT, b'{"type": "pl', fin=False),
    frame(CONTINUATION, b'ay", "column": 4}'),
    frame(TEXT, b"not json"),
    frame(PONG, b""),
    frame(CLOSE, struct.pack("!H", 1000) + b"bye"),
)
SESSION = b"".join(SESSION_FRAMES)
SEED = HANDSHAKE + SESSION

SERVER_MESSAGE_TYPES = {"init", "play", "win", "draw", "joined", "left", "error"}
# Close codes that may go on the wire, ours or a peer's echoed: RFC 6455 section 7.4 and the
# IANA registry (1012-1014 came later; 1004 is reserved; 1005, 1006, 1015 are local only).
VALID_CLOSE_CODES = {1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)}


# -- strategies ---------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` after a few bit flips, overwrites, cuts, duplications and splices."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 5))):
        operation = draw(
            st.sampled_from(
                ["flip", "overwrite", "truncate", "delete", "duplicate", "splice", "insert"]
            )
        )
        size = len(data)
        position = draw(st.integers(0, size))
        if operation == "flip" and size:
            data[min(position, size - 1)] ^= 1 << draw(st.integers(0, 7))
        elif operation == "overwrite" and size:
            data[min(position, size - 1)] = draw(st.integers(0, 255))
        elif operation == "truncate":
            del data[position:]
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif operation == "duplicate":
            piece = data[position : position + draw(st.integers(1, 64))]
            at = draw(st.integers(0, size))
            data[at:at] = piece
        elif operation == "splice":
            start = draw(st.integers(0, len(SEED)))
            piece = SEED[start : start + draw(st.integers(1, 64))]
            data[position:position] = piece
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


_PAYLOADS = st.one_of(
    st.sampled_from(
        [
            b'{"type": "init"}',
            b'{"type": "play", "column": 0}',
            b'{"type": "init", "watch": "key-2"}',
            struct.pack("!H", 1000),
            struct.pack("!H", 1005),
            b"\xff\xfe",
        ]
    ),
    st.text(max_size=40).map(str.encode),
    st.binary(max_size=140),
)


@st.composite
def random_frame(draw: st.DrawFn) -> bytes:
    """One frame whose every header field may be anything: opcode, RSV, mask, length."""
    payload = draw(_PAYLOADS)
    return frame(
        draw(st.sampled_from([CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG]) | st.integers(0, 15)),
        payload,
        fin=draw(st.booleans()),
        rsv=draw(st.just(0) | st.integers(0, 7)),
        mask=draw(st.just(MASK) | st.none() | st.binary(min_size=4, max_size=4)),
        length=draw(
            st.none() | st.integers(0, len(payload) + 2) | st.integers(0, 2**64 - 1), label="length"
        ),
        length_size=draw(st.sampled_from([None, 0, 2, 8])),
    )


CHUNK_SIZES = st.lists(st.integers(1, 40), max_size=12)
# Small limits, so that short inputs cross them too: head size, line length, header count,
# message size, fragments, message rate (the bystanders and the final game stay within).
SMALL_LIMITS = Config(
    max_head_size=200,
    max_line_size=100,
    max_headers=6,
    max_message_size=64,
    max_fragments=3,
    max_messages_per_second=3,
)
CONFIGS = st.sampled_from([Config(), SMALL_LIMITS])
ENDINGS = st.sampled_from(["end of stream", "connection lost", "silence"])


def walk_responses(data: bytes) -> bytes | None:
    """Check that ``data`` is whole HTTP/1.1 responses; the bytes after a 101, if one came.

    Nothing follows a response that says ``Connection: close``. A response to HEAD has a
    Content-Length and no body: the next response then starts at once.
    """
    position = 0
    while position < len(data):
        assert data.startswith(b"HTTP/1.1 ", position), data[position : position + 40]
        head_end = data.index(b"\r\n\r\n", position) + 4
        head = data[position:head_end]
        status = int(head[9:12])
        if status == 101:
            return data[head_end:]
        found = re.search(rb"\r\ncontent-length: (\d+)\r\n", head, re.IGNORECASE)
        assert found is not None, head
        position = head_end
        if not data.startswith(b"HTTP/1.1 ", position):
            position += int(found[1])
        if re.search(rb"\r\nconnection: close\r\n", head, re.IGNORECASE):
            assert position == len(data), "bytes after Connection: close"
        assert position <= len(data), "a partial body"
    return None


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split what the server wrote after its 101 into ``(opcode, payload)``, strictly.

    A server frame is final, unmasked, without reserved bits, of a known opcode, with its
    length in the shortest encoding (RFC 6455 section 5.2); every byte belongs to a frame.
    """
    frames = []
    position = 0
    while position < len(data):
        assert len(data) >= position + 2, "a partial frame header"
        first, second = data[position], data[position + 1]
        assert first & 0xF0 == 0x80, f"not final, or reserved bits: {first:#x}"
        assert second & 0x80 == 0, "a masked server frame"
        length, position = second & 0x7F, position + 2
        if length == 126:
            (length,) = struct.unpack("!H", data[position : position + 2])
            assert length >= 126
            position += 2
        elif length == 127:
            (length,) = struct.unpack("!Q", data[position : position + 8])
            assert length >= 65536
            position += 8
        payload = data[position : position + length]
        assert len(payload) == length, "a partial frame"
        frames.append((first & 0x0F, payload))
        position += length
    return frames


def pieces(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """``data`` cut into pieces of the given sizes, in turn; whole if there are none."""
    if not sizes:
        yield data
        return
    position, turn = 0, 0
    while position < len(data):
        size = sizes[turn % len(sizes)]
        yield data[position : position + size]
        position += size
        turn += 1


# -- the harness --------------------------------------------------------------------------


class Neighbourhood:
    """A server with a game in progress (two players, one move, a spectator) beside the
    connection under test, whose bytes the harness collects itself."""

    def __init__(self, config: Config | None = None) -> None:
        self.network = Network(config=config or Config())
        self.server = self.network.server
        self.now = 0.0
        red = self.network.websocket()
        red.send({"type": "init"})
        keys = red.take()[0]
        yellow = self.network.websocket()
        yellow.send({"type": "init", "join": keys["join"]})
        spectator = self.network.websocket()
        spectator.send({"type": "init", "watch": keys["watch"]})
        red.send({"type": "play", "column": 3})
        self.peers = [red, yellow, spectator]
        for peer in self.peers:
            peer.take()
        self.before = self._census()
        self.connection = self.server.open_connection(self.now)
        self.received = bytearray()
        self.closed = False

    def _census(self) -> tuple[int, int, int, tuple[object, ...]]:
        lobby = self.server.lobby
        return (
            self.server.connection_count,
            lobby.game_count,
            lobby.member_count,
            lobby.game(1).moves,
        )

    def _advance(self, seconds: float) -> None:
        self.now += seconds
        self.network.now = self.now  # the bystanders answer their pings at this time
        self.route(self.server.advance(self.now))

    def route(self, output: Output) -> None:
        """The connection under test's part of ``output`` to ``received``, the rest to peers."""
        connection = self.connection
        self.received += output.data.get(connection, b"")
        if connection in output.close:
            self.closed = True
        self.network.apply(
            Output(
                data={c: d for c, d in output.data.items() if c != connection},
                close=output.close - {connection},
                events=output.events,
            )
        )

    def feed(self, data: bytes, sizes: list[int]) -> None:
        for piece in pieces(data, sizes):
            self.route(self.server.receive_data(self.connection, piece, self.now))
            if self.closed:
                return

    def end(self, how: str) -> None:
        """End the connection under test, if the server did not; it must then be forgotten."""
        if not self.closed:
            if how == "end of stream":
                self.route(self.server.receive_data(self.connection, None, self.now))
            elif how == "connection lost":
                self.route(self.server.connection_lost(self.connection, self.now))
            else:
                # A silent peer: the request timeout, the unanswered ping, or the close
                # timeout ends it; the bystanders answer their pings and stay.
                for _ in range(3):
                    self._advance(100.0)
                    if self.closed:
                        break
        assert self.closed
        # A game the connection made, or a seat it held, waits out the grace period.
        self._advance(self.server.config.seat_grace)
        with pytest.raises(LocalProtocolError):
            self.server.receive_data(self.connection, b"x", self.now)
        assert self._census() == self.before
        for peer in self.peers:
            assert peer.take() == []
            assert not peer.transport_closed

    def check_what_was_written(self, closed_by_server: bool) -> None:
        """The bytes written to the connection under test are HTTP, then (after a 101)
        well-formed server frames: unmasked, text that is a known JSON message, at most one
        close frame and nothing after it; one ends every connection the server closed."""
        after_upgrade = walk_responses(bytes(self.received))
        if after_upgrade is None:
            return
        frames = server_frames(after_upgrade)
        for index, (opcode, payload) in enumerate(frames):
            if opcode == TEXT:
                message = json.loads(payload.decode())
                assert message["type"] in SERVER_MESSAGE_TYPES
            elif opcode == CLOSE:
                assert index == len(frames) - 1, "frames after a close frame"
                # No body (the answer to an empty close frame), or a code and a UTF-8 reason.
                assert len(payload) != 1
                if payload:
                    (code,) = struct.unpack("!H", payload[:2])
                    assert code in VALID_CLOSE_CODES, code
                    payload[2:].decode()
            else:
                assert opcode in (PING, PONG)
        if closed_by_server:
            assert frames
            assert frames[-1][0] == CLOSE


def assert_still_serves(neighbourhood: Neighbourhood) -> None:
    """The same server answers ``/healthz`` and plays a whole game to a win."""
    network = neighbourhood.network
    http = HttpPeer(network)
    response, body = http.get("/healthz")
    assert response.status_code == 200
    assert body == b"OK\n"
    # One message a second from each player keeps within any rate limit.
    neighbourhood.now += 1.0
    network.advance(neighbourhood.now)
    red = network.websocket()
    red.send({"type": "init"})
    keys = red.take()[0]
    yellow = network.websocket()
    yellow.send({"type": "init", "join": keys["join"]})
    watcher = WebSocketPeer(network)
    watcher.send({"type": "init", "watch": keys["watch"]})
    for peer in (red, yellow, watcher):
        peer.take()
    for index, column in enumerate([0, 1, 0, 1, 0, 1, 0]):
        neighbourhood.now += 1.0
        network.advance(neighbourhood.now)
        (red if index % 2 == 0 else yellow).send({"type": "play", "column": column})
    for peer in (red, yellow, watcher):
        messages = peer.take()
        assert [m["type"] for m in messages] == ["play"] * 7 + ["win"]
        assert messages[-1]["player"] == "red"


def fuzz(data: bytes, sizes: list[int], ending: str, config: Config) -> None:
    neighbourhood = Neighbourhood(config)
    neighbourhood.feed(data, sizes)
    closed_by_server = neighbourhood.closed
    upgraded = b"HTTP/1.1 101 " in neighbourhood.received
    event(
        f"{'upgraded' if upgraded else 'not upgraded'}, {'closed' if closed_by_server else 'open'}"
    )
    neighbourhood.end(ending)
    neighbourhood.check_what_was_written(closed_by_server)
    assert_still_serves(neighbourhood)


FUZZ = settings(max_examples=300, deadline=None)


# -- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[], [1], [7, 3]], ids=["whole", "byte_by_byte", "7_and_3"])
def test_the_unmutated_session_is_served_in_full(sizes: list[int]) -> None:
    """The seed of the mutations is a valid session: each of its frames gets its answer."""
    neighbourhood = Neighbourhood()
    neighbourhood.feed(SEED, sizes)
    assert neighbourhood.closed  # the close frame is echoed, then the connection is closed
    received = bytes(neighbourhood.received)
    assert received.startswith(b"HTTP/1.1 101 ")
    after_upgrade = walk_responses(received)
    assert after_upgrade is not None
    frames = server_frames(after_upgrade)
    texts = [json.loads(payload) for opcode, payload in frames if opcode == TEXT]
    assert [message["type"] for message in texts] == ["init", "play", "error", "error"]
    assert texts[2] == {"type": "error", "message": "It isn't your turn."}
    assert texts[3]["message"].startswith("Invalid message: JSON is malformed")
    assert (PONG, b"hi") in frames
    assert frames[-1] == (CLOSE, struct.pack("!H", 1000) + b"bye")
    neighbourhood.end("end of stream")
    assert_still_serves(neighbourhood)


@FUZZ
@given(data=st.binary(max_size=400), sizes=CHUNK_SIZES, ending=ENDINGS, config=CONFIGS)
def test_random_bytes_on_a_new_connection(
    data: bytes, sizes: list[int], ending: str, config: Config
) -> None:
    fuzz(data, sizes, ending, config)


@FUZZ
@given(data=mutated(SEED), sizes=CHUNK_SIZES, ending=ENDINGS, config=CONFIGS)
def test_mutated_handshake_and_session(
    data: bytes, sizes: list[int], ending: str, config: Config
) -> None:
    fuzz(data, sizes, ending, config)


@FUZZ
@given(data=mutated(SESSION), sizes=CHUNK_SIZES, ending=ENDINGS, config=CONFIGS)
def test_mutated_session_after_a_valid_handshake(
    data: bytes, sizes: list[int], ending: str, config: Config
) -> None:
    fuzz(HANDSHAKE + data, sizes, ending, config)


@FUZZ
@given(
    frames=st.lists(random_frame(), min_size=1, max_size=6),
    init_first=st.booleans(),
    sizes=CHUNK_SIZES,
    ending=ENDINGS,
    config=CONFIGS,
)
def test_frames_with_random_header_fields(
    frames: list[bytes], init_first: bool, sizes: list[int], ending: str, config: Config
) -> None:
    """Random opcodes, reserved bits, mask bits and keys, declared lengths and their widths."""
    start = HANDSHAKE + (SESSION_FRAMES[0] if init_first else b"")
    fuzz(start + b"".join(frames), sizes, ending, config)
