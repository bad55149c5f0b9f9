"""In-memory peers for the sans-IO core: real wsproto and h11 clients, no sockets.

A ``Network`` owns one ``GameServer`` and routes its ``Output`` to the client objects, the way
a driver would, so that tests read like a conversation between real peers.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from connect4proto import ComputeMove, ConnectionId, Event, GameServer, Output, Site
from connect4proto.solver import position_from_moves
from connect4proto.solver.bots import Level, choose
from connect4proto.solver.perfect import PerfectPlayer


@functools.cache
def perfect_player() -> PerfectPlayer:
    """The perfect player, loaded once for the whole run (its book takes 0.2 s, and its
    compiled search is loaded from numba's cache)."""
    return PerfectPlayer.load()


SITE = Site.from_files(
    {
        "index.html": b"<!doctype html><title>Connect Four</title>",
        "app.js": b"export {};",
        "style.css": b"body {}",
    }
)

Chunker = Callable[[bytes], Iterator[bytes]]


def whole(data: bytes) -> Iterator[bytes]:
    yield data


def byte_by_byte(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]


CHUNKERS = {"whole": whole, "byte_by_byte": byte_by_byte}


def counting_keys() -> Callable[[], str]:
    """Predictable keys for tests: key-1, key-2, ..."""
    counter = itertools.count(1)
    return lambda: f"key-{next(counter)}"


class Network:
    """A core and the peers connected to it; delivers every output at once."""

    def __init__(self, chunker: Chunker = whole, **kwargs: Any) -> None:
        kwargs.setdefault("site", SITE)
        kwargs.setdefault("new_key", counting_keys())
        self.server = GameServer(**kwargs)
        self.chunker = chunker
        self.peers: dict[ConnectionId, Peer] = {}
        self.events: list[Event] = []
        #: The time every call into the server is made at; ``advance`` moves it.
        self.now = 0.0
        #: The computer's moves asked for and not answered yet; ``think`` answers them.
        self.computing: list[ComputeMove] = []
        self.random = random.Random(2026)

    def think(self) -> None:
        """Work out every move the computer was asked for, in order, as a driver's worker
        thread would (seeded: the same games every run), and give them to the server."""
        while self.computing:
            request = self.computing.pop(0)
            position = position_from_moves(request.record)
            level = Level(request.level)
            if level is Level.PERFECT:
                column = perfect_player().decide(position, self.random).column
            else:
                column = choose(position, level, self.random)
            self.apply(self.server.computed(request, column, self.now))

    def feed(self, peer: Peer, data: bytes | None) -> None:
        """Give the server bytes from ``peer``, cut as the chunker says.

        Like a driver, stop writing to the server once it closed the connection.
        """
        if data is None:
            self.apply(self.server.receive_data(peer.id, None, self.now))
            return
        for chunk in self.chunker(data):
            if peer.transport_closed:
                return
            self.apply(self.server.receive_data(peer.id, chunk, self.now))

    def advance(self, now: float) -> None:
        """Set the clock to ``now`` and deliver what the server's timers did."""
        self.now = now
        self.apply(self.server.advance(now))

    def wait_out_grace(self) -> None:
        """Move the clock past the seat grace period: games nobody came back to are gone."""
        self.advance(self.now + self.server.config.seat_grace)

    def lose(self, peer: Peer) -> None:
        """``peer``'s transport failed (a reset, a network change): no close frame, no FIN."""
        peer.transport_closed = True
        self.apply(self.server.connection_lost(peer.id, self.now))

    def apply(self, output: Output) -> None:
        self.events.extend(output.events)
        self.computing.extend(output.compute)
        # The server closes those right after writing: a reply from the peer finds them closed.
        for connection in output.close:
            self.peers[connection].transport_closed = True
        for connection, data in output.data.items():
            self.peers[connection].receive(data)

    def websocket(
        self, path: str = "/", *, headers: list[tuple[str, str]] | None = None
    ) -> WebSocketPeer:
        return WebSocketPeer(self, path, headers=headers)

    def http(self, site: Site | None = None) -> HttpPeer:
        """A plain HTTP client; ``site``: served to it instead of the game's (a private port)."""
        return HttpPeer(self, site)


class Peer:
    def __init__(self, network: Network, site: Site | None = None) -> None:
        self.network = network
        self.id = network.server.open_connection(network.now, site)
        network.peers[self.id] = self
        self.transport_closed = False

    def send_bytes(self, data: bytes) -> None:
        assert not self.transport_closed, "the server closed this connection"
        self.network.feed(self, data)

    def receive(self, data: bytes) -> None:
        raise NotImplementedError


class WebSocketPeer(Peer):
    """A browser tab, played by wsproto's client side."""

    def __init__(
        self,
        network: Network,
        path: str = "/",
        *,
        connect: bool = True,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Open a WebSocket to ``path``; with ``connect=False`` the handshake is only built
        (in ``self.handshake``), for tests that send it together with more bytes.
        ``headers`` are extra request headers (an ``Origin``, say)."""
        super().__init__(network)
        #: Like a browser, answer the server's pings and close frames; a test may turn
        #: either off to play a peer that has gone silent.
        self.answer_pings = True
        self.answer_close = True
        self.pings: list[bytes] = []
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.accepted = False
        self.rejected: RejectConnection | None = None
        self.messages: list[dict[str, Any]] = []
        #: The text of every message, exactly as sent (``messages`` has them parsed).
        self.texts: list[str] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.pongs: list[bytes] = []
        self.handshake = self.ws.send(
            Request(
                host="localhost",
                target=path,
                extra_headers=[(k.encode(), v.encode()) for k, v in headers or []],
            )
        )
        if connect:
            self.send_bytes(self.handshake)

    def receive(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.accepted = True
            elif isinstance(event, RejectConnection):
                self.rejected = event
            elif isinstance(event, RejectData):
                pass
            elif isinstance(event, TextMessage):
                assert event.message_finished, "the server sends whole messages"
                self.texts.append(event.data)
                self.messages.append(json.loads(event.data))
            elif isinstance(event, CloseConnection):
                self.close_code = event.code
                self.close_reason = event.reason
                if self.ws.state.name == "REMOTE_CLOSING" and self.answer_close:
                    reply = self.ws.send(event.response())
                    if not self.transport_closed:
                        self.network.feed(self, reply)
            elif isinstance(event, Ping):
                self.pings.append(event.payload)
                if self.answer_pings and self.ws.state.name == "OPEN" and not self.transport_closed:
                    self.network.feed(self, self.ws.send(event.response()))
            else:
                from wsproto.events import Pong

                assert isinstance(event, Pong), event
                self.pongs.append(event.payload)

    def send(self, message: dict[str, Any] | str) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        self.send_bytes(self.ws.send(Message(data=text)))

    def ping(self, payload: bytes = b"") -> None:
        self.send_bytes(self.ws.send(Ping(payload=payload)))

    def close(self, code: int = 1000) -> None:
        self.send_bytes(self.ws.send(CloseConnection(code=code)))

    def take(self) -> list[dict[str, Any]]:
        """The messages received since the last call."""
        messages, self.messages = self.messages, []
        return messages


class RawPeer(Peer):
    """Keeps the server's bytes as they come: for tests of exact bytes, and for answers an
    h11 client must read in its own order."""

    def __init__(self, network: Network) -> None:
        super().__init__(network)
        self.received = b""

    def receive(self, data: bytes) -> None:
        self.received += data


class HttpPeer(Peer):
    """A plain HTTP client, played by h11's client side."""

    def __init__(self, network: Network, site: Site | None = None) -> None:
        super().__init__(network, site)
        self.h11 = h11.Connection(h11.CLIENT)
        self.responses: list[tuple[h11.Response, bytes]] = []
        self._body = b""
        self._response: h11.Response | None = None

    def request(
        self, method: str, target: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        self.send_bytes(self.build(method, target, headers))

    def build(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> bytes:
        """The bytes of a request (``Host`` first), as h11 writes them, not yet sent: for
        tests that send them in parts, or measure them. ``body`` needs its framing header."""
        all_headers = [("Host", "localhost"), *(headers or [])]
        data = self.h11.send(h11.Request(method=method, target=target, headers=all_headers))
        assert data is not None
        if body:
            data += self.h11.send(h11.Data(data=body)) or b""
        return data + (self.h11.send(h11.EndOfMessage()) or b"")

    def receive(self, data: bytes) -> None:
        self.h11.receive_data(data)
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Response):
                self._response, self._body = event, b""
            elif isinstance(event, h11.Data):
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert self._response is not None
                self.responses.append((self._response, self._body))
                if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
                    self.h11.start_next_cycle()
            else:
                return

    def get(self, target: str, method: str = "GET") -> tuple[h11.Response, bytes]:
        count = len(self.responses)
        self.request(method, target)
        assert len(self.responses) == count + 1
        return self.responses[-1]


def header(response: h11.Response, name: str) -> str | None:
    for key, value in response.headers:
        if key.decode().lower() == name.lower():
            return value.decode()
    return None
