"""The whole server's message loop as one sans-IO object.

The driver opens connections, feeds them bytes and tells when they are lost; each call
returns an ``Output``: the bytes to write to each connection, the connections to close once
those bytes are written, and what happened (for the logs). No sockets, clocks or randomness:
keys come from the ``new_key`` factory and the web UI's files from the ``Site``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping

import msgspec
from wsproto.frame_protocol import CloseReason, FrameProtocol

from .config import Config
from .connection import ClientConnection, ConnectionState, Throttled
from .errors import LocalProtocolError
from .events import ConnectionId, ConnectionRefused, Event, GameId
from .lobby import Lobby
from .messages import (
    Draw,
    Error,
    InvalidMessage,
    Joined,
    Left,
    Played,
    ServerMessage,
    decode_client_message,
    encode_server_message,
)
from .web import Site, busy_response

__all__ = ["GameServer", "Output"]


class Output(msgspec.Struct, frozen=True, kw_only=True):
    """What the driver must do after one call into the core.

    Write ``data[c]`` to connection ``c`` (in order with earlier writes); then close every
    connection in ``close``, after its data is written. A closed connection is already
    forgotten by the core.
    """

    data: Mapping[ConnectionId, bytes]
    close: frozenset[ConnectionId]
    events: tuple[Event, ...]


_NOTHING = Output(data={}, close=frozenset(), events=())


class _Batch:
    """The ``Outbox`` of one call: frames each message once, remembers who got something."""

    __slots__ = ("_connections", "_framer", "_lobby", "events", "touched")

    def __init__(
        self,
        connections: dict[ConnectionId, ClientConnection],
        lobby: Lobby,
        framer: FrameProtocol,
    ) -> None:
        self._connections = connections
        self._lobby = lobby
        self._framer = framer
        self.touched: dict[ConnectionId, None] = {}
        self.events: list[Event] = []

    def _frame(self, message: ServerMessage) -> bytes:
        if type(message) in _REPEATED:
            frame = _FRAMES.get(message)
            if frame is None:
                frame = _FRAMES[message] = self._encode(message)
            return frame
        return self._encode(message)

    def _encode(self, message: ServerMessage) -> bytes:
        # wsproto frames text given as str; the JSON is ASCII-safe UTF-8, so this is exact.
        return bytes(self._framer.send_data(encode_server_message(message).decode()))

    def send(self, connection: ConnectionId, message: ServerMessage) -> None:
        if self._connections[connection].send_frame(self._frame(message)):
            self.touched[connection] = None

    def broadcast(self, game: GameId, message: ServerMessage) -> None:
        frame = self._frame(message)
        connections = self._connections
        touched = self.touched
        for member in self._lobby.members(game):
            client = connections[member]
            if client.state is _OPEN:  # ``send_frame``, inlined: this loop is the fan-out
                client.queued.append(frame)
                touched[member] = None

    def report(self, event: Event) -> None:
        self.events.append(event)


class GameServer:
    """Connect Four for any number of connections, from raw bytes to raw bytes."""

    def __init__(
        self,
        *,
        site: Site,
        new_key: Callable[[], str],
        config: Config | None = None,
    ) -> None:
        self._site = site
        self._config = config if config is not None else Config()
        self._lobby = Lobby(new_key)
        self._connections: dict[ConnectionId, ClientConnection] = {}
        self._next_connection = 1
        # The clock, as last told by ``advance``, and the timers: (when, tie-break, connection)
        # in a heap. An entry can be stale (the connection is gone, or was heard from since):
        # it is checked when it comes due, so that a message costs no heap operation.
        self._now = 0.0
        self._timers: list[tuple[float, int, ConnectionId]] = []
        self._timer_count = 0
        # Server frames are unmasked and we negotiate no extension: one encoder serves all.
        self._framer = FrameProtocol(client=False, extensions=[])

    @property
    def lobby(self) -> Lobby:
        """The games in progress (read-only use: for tests, metrics and health checks)."""
        return self._lobby

    @property
    def config(self) -> Config:
        return self._config

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def accepting(self) -> bool:
        """Whether a new connection may be opened (``max_connections`` not reached).

        When it is False, answer the new transport with ``busy_response()`` and close it.
        """
        return len(self._connections) < self._config.max_connections

    @staticmethod
    def busy_response() -> bytes:
        """HTTP 503, for a transport refused because the server is full."""
        return busy_response()

    @property
    def next_deadline(self) -> float | None:
        """When ``advance`` should be called next, at the latest (None: no timer is set).

        It may come early (timers are checked lazily); calling ``advance`` then is harmless.
        """
        timers = self._timers
        return timers[0][0] if timers else None

    def open_connection(self) -> ConnectionId:
        """A new transport connected; returns its id for the other calls."""
        if not self.accepting:
            raise LocalProtocolError("open_connection() beyond max_connections: check accepting")
        connection = ConnectionId(self._next_connection)
        self._next_connection += 1
        client = ClientConnection(site=self._site, config=self._config, now=self._now)
        self._connections[connection] = client
        self._schedule(connection, client)
        return connection

    def advance(self, now: float) -> Output:
        """The clock now reads ``now`` (seconds, monotonic): run the timers that are due.

        Idle WebSockets get a ping, silent ones are dropped (and their games told), slow
        request heads get 408, unanswered close frames stop being waited for. Every other
        call uses the time given here last, so call it before handing over fresh bytes.
        """
        if now < self._now:
            raise LocalProtocolError(f"time went backwards: {now} < {self._now}")
        self._now = now
        timers = self._timers
        if not timers or timers[0][0] > now:
            return _NOTHING
        connections = self._connections
        batch = self._batch()
        due: list[tuple[ConnectionId, ClientConnection]] = []
        while timers and timers[0][0] <= now:
            when, _, connection = heapq.heappop(timers)
            client = connections.get(connection)
            if client is None or when != client.scheduled:
                continue  # stale: the connection is gone, or has an earlier entry
            client.scheduled = _INFINITY
            client.on_timer(now)
            batch.touched[connection] = None
            due.append((connection, client))
        for connection, client in due:
            self._schedule(connection, client)
        return self._finish(batch)

    def receive_data(self, connection: ConnectionId, data: bytes | None) -> Output:
        """Bytes read from ``connection``; ``None`` when the peer ended the stream."""
        client = self._client(connection)
        batch = self._batch()
        for message in client.receive_data(data, self._now):
            if message is Throttled.MESSAGE:
                limit = self._config.max_messages_per_second
                batch.send(
                    connection,
                    Error(message=f"Too many messages: at most {limit} per second."),
                )
            else:
                self._receive_message(connection, client, message, batch)
        batch.touched[connection] = None
        # Only a connection that was just read from can need an earlier wake-up (its next
        # ping, or the wait for its close); a later one is found when its entry comes due.
        self._schedule(connection, client)
        return self._finish(batch)

    def _receive_message(
        self, connection: ConnectionId, client: ClientConnection, data: str | bytes, batch: _Batch
    ) -> None:
        """One complete message on an open WebSocket: the game's JSON protocol.

        The one extension point of the class: the conformance tests' echo application
        overrides it to run the same connection layer and driver without the game.
        """
        if not isinstance(data, str):
            client.refuse(CloseReason.UNSUPPORTED_DATA, "Binary frames are not supported.")
            return
        message = decode_client_message(data)
        if isinstance(message, InvalidMessage):
            batch.send(connection, Error(message=message.reason))
        else:
            self._lobby.receive(connection, message, batch)

    def connection_lost(self, connection: ConnectionId) -> Output:
        """The transport failed or the driver gave up on it: forget ``connection`` now."""
        self._client(connection).abort()
        return self._finish_one(connection)

    def fail(self, connection: ConnectionId) -> Output:
        """The driver hit an unexpected error on ``connection``: close it with 1011."""
        self._client(connection).close_now(CloseReason.INTERNAL_ERROR, "Internal error.")
        return self._finish_one(connection)

    def too_slow(self, connection: ConnectionId) -> Output:
        """The driver holds more than ``max_output_buffer`` unsent bytes for ``connection``.

        The peer reads slower than its game moves: close it with 1013 and forget it, so that
        memory stays bounded and its game goes on without it. The driver may drop the bytes
        it holds for it (those not yet started), write the close frame, and close.
        """
        client = self._client(connection)
        client.close_reason = "Reading too slowly to keep up."
        client.close_now(CloseReason.TRY_AGAIN_LATER, "Too slow to keep up.")
        return self._finish_one(connection)

    def shutdown(self) -> Output:
        """The server is stopping: close 1001 (going away) on every connection."""
        batch = self._batch()
        for connection, client in self._connections.items():
            client.close(CloseReason.GOING_AWAY, "Server shutting down.", now=self._now)
            batch.touched[connection] = None
            self._schedule(connection, client)  # the wait for its answer
        return self._finish(batch)

    def _schedule(self, connection: ConnectionId, client: ClientConnection) -> None:
        when = client.deadline()
        if when < client.scheduled:
            client.scheduled = when
            self._timer_count += 1
            heapq.heappush(self._timers, (when, self._timer_count, connection))

    def _client(self, connection: ConnectionId) -> ClientConnection:
        client = self._connections.get(connection)
        if client is None:
            raise LocalProtocolError(f"unknown or closed connection {connection}")
        return client

    def _finish_one(self, connection: ConnectionId) -> Output:
        """The output after the driver ended ``connection`` (lost, failed, too slow)."""
        batch = self._batch()
        batch.touched[connection] = None
        return self._finish(batch)

    def _batch(self) -> _Batch:
        return _Batch(self._connections, self._lobby, self._framer)

    def _finish(self, batch: _Batch) -> Output:
        """Take connections that stopped being open out of their games; collect the output."""
        connections = self._connections
        lobby = self._lobby
        touched = batch.touched
        # Only open connections are in games, so the broadcasts of ``leave`` touch only open
        # connections: iterating over a snapshot visits every one that needs to leave.
        ended = [
            c
            for c in touched
            if (state := connections[c].state) is not _OPEN and state is not _HTTP
        ]
        for connection in ended:
            lobby.leave(connection, batch)
        data: dict[ConnectionId, bytes] = {}
        for connection in touched:
            client = connections[connection]
            queued = client.queued
            if queued:  # this runs once per recipient of every broadcast: kept inline
                client.queued = []
                data[connection] = queued[0] if len(queued) == 1 else b"".join(queued)
        if not ended:
            return Output(data=data, close=_NOBODY, events=tuple(batch.events))
        close = frozenset(c for c in ended if connections[c].state is ConnectionState.CLOSED)
        for connection in close:
            reason = connections.pop(connection).close_reason
            if reason is not None:
                batch.events.append(ConnectionRefused(connection=connection, reason=reason))
        return Output(data=data, close=close, events=tuple(batch.events))


_OPEN = ConnectionState.OPEN
_HTTP = ConnectionState.HTTP
_NOBODY: frozenset[ConnectionId] = frozenset()
_INFINITY = float("inf")
#: Messages from a small, fixed set (2 players x 7 columns x 6 rows of ``play``, and the
#: presence events): each is encoded and framed once per process, then reused.
_REPEATED = frozenset({Played, Joined, Left, Draw})
_FRAMES: dict[ServerMessage, bytes] = {}
