"""The whole server's message loop as one sans-IO object.

The driver opens connections, feeds them bytes and tells when they are lost; each call
returns an ``Output``: the bytes to write to each connection, the connections to close once
those bytes are written, and what happened (for the logs). No sockets, clocks or randomness:
keys come from the ``new_key`` factory and the web UI's files from the ``Site``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import msgspec
from wsproto.frame_protocol import CloseReason, FrameProtocol

from .config import Config
from .connection import ClientConnection, ConnectionState, Throttled
from .errors import LocalProtocolError
from .events import ComputeMove, ConnectionEnded, ConnectionId, Event, GameId
from .lobby import RECONNECTING, Lobby
from .log import Logged, MovePlayed
from .messages import (
    Draw,
    InvalidMessage,
    Joined,
    Left,
    Played,
    ServerMessage,
    decode_client_message,
    encode_server_message,
)
from .projection import Profile, project
from .refusals import invalid_message, too_many_messages
from .shared import Found, StoreIntent
from .statistics import NORMAL_CLOSE, Statistics
from .store import GameStore, MemoryStore
from .timers import Timers
from .web import Site, busy_response

__all__ = ["Application", "GameServer", "Output", "Replies"]


class Output(msgspec.Struct, frozen=True, kw_only=True):
    """What the driver must do after one call into the core.

    Write ``data[c]`` to connection ``c`` (in order with earlier writes); then close every
    connection in ``close``, after its data is written. A closed connection is already
    forgotten by the core.
    """

    data: Mapping[ConnectionId, bytes]
    close: frozenset[ConnectionId]
    events: tuple[Event, ...]
    #: The computer's moves to work out, off the event loop: give each answer to
    #: ``GameServer.computed``.
    compute: tuple[ComputeMove, ...] = ()
    #: Games shared with other processes: what to ask of the store outside, each answer to
    #: be given back (``appended``, ``conflicted``, ``store_unavailable``, ``looked_up``).
    store: tuple[StoreIntent, ...] = ()


_NOTHING = Output(data={}, close=frozenset(), events=())


class Replies(Protocol):
    """What an application may do in answer to a message."""

    def send_data(self, connection: ConnectionId, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message to ``connection``."""

    def refuse(self, connection: ConnectionId, code: int, reason: str) -> None:
        """Close ``connection`` with ``code`` because its peer sent what we refuse."""


class Application(Protocol):
    """What a complete message on an open WebSocket means: by default, the game's JSON
    protocol; the conformance tests' echo is another application of the same transport."""

    def receive_message(
        self, connection: ConnectionId, data: str | bytes, replies: Replies
    ) -> None:
        """One whole message from ``connection`` (text as ``str``, binary as ``bytes``)."""


class _Batch:
    """The ``Outbox`` of one call: frames each event once per profile, remembers who got
    something."""

    __slots__ = (
        "_connections",
        "_framer",
        "_grace",
        "_lobby",
        "computing",
        "events",
        "now",
        "sent",
        "storing",
        "touched",
    )

    def __init__(
        self,
        connections: dict[ConnectionId, ClientConnection],
        lobby: Lobby,
        framer: FrameProtocol,
        now: float,
        grace: float,
    ) -> None:
        self._connections = connections
        self._lobby = lobby
        self._framer = framer
        self._grace = grace
        self.now = now
        self.touched: dict[ConnectionId, None] = {}
        self.events: list[Event] = []
        self.computing: list[ComputeMove] = []
        self.storing: list[StoreIntent] = []
        self.sent = 0  # messages, one per recipient

    def _frame(self, message: ServerMessage) -> bytes:
        # Messages of the tutorial's protocol come from a small, fixed set: framed once per
        # process. Versioned ones carry their ``v`` and are framed once per event.
        if type(message) in _REPEATED and getattr(message, "v", None) is None:
            frame = _FRAMES.get(message)
            if frame is None:
                frame = _FRAMES[message] = self._encode(message)
            return frame
        return self._encode(message)

    def _encode(self, message: ServerMessage) -> bytes:
        # wsproto frames text given as str; the JSON is ASCII-safe UTF-8, so this is exact.
        return bytes(self._framer.send_data(encode_server_message(message).decode()))

    # A connection may be gone by the time its message is sent: in a game shared with other
    # processes, what a decision sends waits for the store outside to log it.

    def send(self, connection: ConnectionId, message: ServerMessage) -> None:
        client = self._connections.get(connection)
        if client is not None and client.send_frame(self._frame(message)):
            self.touched[connection] = None
            self.sent += 1

    def announce(self, game: GameId, message: ServerMessage) -> None:
        # Framed once, for the versioned members only: the tutorial's have no such message.
        frame: bytes | None = None
        connections = self._connections
        for member, profile in self._lobby.members(game).items():
            if profile is not _TUTORIAL:
                if frame is None:
                    frame = self._frame(message)
                client = connections.get(member)
                if client is not None and client.send_frame(frame):
                    self.touched[member] = None
                    self.sent += 1

    def publish(self, game: GameId, logged: Logged) -> None:
        # Framed at most once per profile, when the first member of that profile needs it.
        tutorial: bytes | None = _UNSET
        versioned: bytes | None = _UNSET
        connections = self._connections
        touched = self.touched
        sent = 0
        for member, profile in self._lobby.members(game).items():
            if profile is _TUTORIAL:
                if tutorial is _UNSET:
                    event = logged.event
                    # A move's frame in the tutorial's protocol is the move's alone (no
                    # version, no clock): one of 84, each framed once per process.
                    tutorial = _MOVE_FRAMES.get(event) if type(event) is MovePlayed else None
                    if tutorial is None:
                        tutorial = self._project(logged, profile)
                        if type(event) is MovePlayed:
                            assert tutorial is not None
                            _MOVE_FRAMES[event] = tutorial
                frame = tutorial
            else:
                if versioned is _UNSET:
                    versioned = self._project(logged, profile)
                frame = versioned
            if frame is None:
                continue
            client = connections.get(member)
            if client is not None and client.state is _OPEN:  # ``send_frame``, inlined
                client.queued.append(frame)
                touched[member] = None
                sent += 1
        self.sent += sent

    def _project(self, logged: Logged, profile: Profile) -> bytes | None:
        message = project(logged, profile, self.now, self._grace)
        return None if message is None else self._frame(message)

    def send_data(self, connection: ConnectionId, data: str | bytes) -> None:
        # wsproto's FrameProtocol makes a text frame of a str and a binary frame of bytes.
        if self._connections[connection].send_frame(bytes(self._framer.send_data(data))):
            self.touched[connection] = None
            self.sent += 1

    def refuse(self, connection: ConnectionId, code: int, reason: str) -> None:
        self._connections[connection].refuse(code, reason)
        self.touched[connection] = None

    def disconnect(self, connection: ConnectionId, code: int, reason: str) -> None:
        client = self._connections.get(connection)
        if client is not None:
            client.close(code, reason, now=self.now)
            self.touched[connection] = None

    def report(self, event: Event) -> None:
        self.events.append(event)

    def compute(self, request: ComputeMove) -> None:
        self.computing.append(request)

    def store(self, intent: StoreIntent) -> None:
        self.storing.append(intent)


class GameServer:
    """Connect Four for any number of connections, from raw bytes to raw bytes.

    Every call takes ``now``: the time in seconds on a monotonic clock (any epoch), which must
    never go backwards. It drives the timers: pings, timeouts, a seat's grace period.

    ``store``: where games are kept, this process's memory by default. A ``SharedStore``
    shares them with other processes through a store outside (Redis): then ``Output.store``
    says what to ask of it, and every process's ``now`` must be on one time base (the logged
    times of one are read by the others: the driver's clock follows the wall clock).
    ``new_game_id``: ids of new games (None: none can be had now, and the game is refused).
    ``process``: this process's name among those sharing games (logged with the seats its
    connections hold, so that the others can tell when they are gone: ``process_gone``).
    """

    def __init__(
        self,
        *,
        site: Site,
        new_key: Callable[[], str],
        config: Config | None = None,
        store: GameStore | None = None,
        application: Application | None = None,
        new_game_id: Callable[[], GameId | None] | None = None,
        process: str | None = None,
    ) -> None:
        self._site = site
        self._config = config = config if config is not None else Config()
        self._grace = config.seat_grace
        if store is None:
            store = MemoryStore(max_events=config.max_log_events)
        self._statistics = Statistics()
        self._lobby = Lobby(
            new_key,
            store=store,
            seat_grace=config.seat_grace,
            away_delay=config.away_delay,
            offer_interval=config.offer_interval,
            watchers_interval=config.watchers_interval,
            bot_delay=config.bot_delay,
            computer_levels=config.computer_levels,
            statistics=self._statistics,
            new_game_id=new_game_id,
            process=process,
        )
        self._application: Application = (
            _GameMessages(self._lobby) if application is None else application
        )
        self._connections: dict[ConnectionId, ClientConnection] = {}
        self._next_connection = 1
        # The latest time given; each connection's next deadline, kept lazily (see Timers):
        # a message pushes a connection's ping back without any heap operation.
        self._now = 0.0
        self._timers: Timers[ConnectionId] = Timers()
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
    def statistics(self) -> Statistics:
        """Totals since the start (read-only use: for the driver's metrics)."""
        return self._statistics

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
        ours = self._timers.next_deadline
        games = self._lobby.next_deadline
        if ours is None:
            return games
        return ours if games is None else min(ours, games)

    def _tick(self, now: float) -> None:
        if now < self._now:
            raise LocalProtocolError(f"time went backwards: {now} < {self._now}")
        self._now = now

    def open_connection(self, now: float, site: Site | None = None) -> ConnectionId:
        """A new transport connected; returns its id for the other calls. ``site``: what it
        is served instead of the game's own (an operator's private port, for its metrics)."""
        if not self.accepting:
            raise LocalProtocolError("open_connection() beyond max_connections: check accepting")
        self._tick(now)
        connection = ConnectionId(self._next_connection)
        self._next_connection += 1
        client = ClientConnection(
            site=self._site if site is None else site, config=self._config, now=now
        )
        self._connections[connection] = client
        self._timers.schedule(connection, client.deadline())
        return connection

    def advance(self, now: float) -> Output:
        """Run the timers that are due at ``now``.

        Idle WebSockets get a ping, silent ones are dropped (and their games told), slow
        request heads get 408, unanswered close frames stop being waited for, and games
        nobody came back to are forgotten.
        """
        self._tick(now)
        lobby_due = (games := self._lobby.next_deadline) is not None and games <= now
        ours = self._timers.next_deadline
        if not lobby_due and (ours is None or ours > now):
            return _NOTHING
        connections = self._connections
        batch = self._batch()
        due = self._timers.pop_due(now)
        for connection in due:  # a closed connection's deadline is cancelled: all are open
            connections[connection].on_timer(now)
            batch.touched[connection] = None
        for connection in due:
            self._timers.schedule(connection, connections[connection].deadline())
        if lobby_due:
            self._lobby.advance(now, batch)
        return self._finish(batch)

    def receive_data(self, connection: ConnectionId, data: bytes | None, now: float) -> Output:
        """Bytes read from ``connection``; ``None`` when the peer ended the stream."""
        client = self._connections.get(connection)  # ``_client`` and ``_tick``, inlined:
        if client is None:  # this runs on every read
            raise LocalProtocolError(f"unknown or closed connection {connection}")
        if now < self._now:
            raise LocalProtocolError(f"time went backwards: {now} < {self._now}")
        self._now = now
        batch = _Batch(self._connections, self._lobby, self._framer, now, self._grace)
        opening = client.path is None  # not a WebSocket yet: this read may be its handshake
        received = 0
        for message in client.receive_data(data, now):
            received += 1
            if message is Throttled.MESSAGE:
                limit = self._config.max_messages_per_second
                assert limit is not None
                self._lobby.refuse(connection, too_many_messages(limit), batch)
            else:
                self._application.receive_message(connection, message, batch)
        statistics = self._statistics
        statistics.messages_received += received
        if opening and client.path is not None:
            statistics.handshakes += 1
        batch.touched[connection] = None
        # Only a connection that was just read from can need an earlier wake-up, and only if
        # its state changed (the wait for its close, its first ping) or its ping was answered:
        # else a read only moves its next ping later, which the timers find lazily when the
        # entry it has comes due. (Two calls fewer on almost every read.)
        if opening or client.state is not _OPEN or client.answered_ping:
            self._timers.schedule(connection, client.deadline())
        return self._finish(batch)

    def connection_lost(
        self, connection: ConnectionId, now: float, *, vanished: bool = True
    ) -> Output:
        """The transport failed (``vanished``: logged and counted as such) or the driver gave
        up on it (not ``vanished``: at the end of a shutdown): forget ``connection`` now."""
        client = self._client(connection)
        self._tick(now)
        client.abort(vanished)
        return self._finish_one(connection)

    def fail(self, connection: ConnectionId, now: float) -> Output:
        """The driver hit an unexpected error on ``connection``: close it with 1011."""
        client = self._client(connection)
        self._tick(now)
        client.close_now(CloseReason.INTERNAL_ERROR, "Internal error.")
        return self._finish_one(connection)

    def too_slow(self, connection: ConnectionId, now: float) -> Output:
        """The driver holds more than ``max_output_buffer`` unsent bytes for ``connection``.

        The peer reads slower than its game moves: close it with 1013 and forget it, so that
        memory stays bounded and its game goes on without it. The driver may drop the bytes
        it holds for it (those not yet started), write the close frame, and close.
        """
        client = self._client(connection)
        self._tick(now)
        client.too_slow()
        return self._finish_one(connection)

    def computed(self, request: ComputeMove, column: int, now: float) -> Output:
        """The computer's move for ``request`` (from ``Output.compute``), worked out by the
        driver: played if the game is still where it was asked at, else dropped."""
        return self._in_lobby(now, lambda batch: self._lobby.computed(request, column, now, batch))

    # -- games shared with other processes (a ``SharedStore``) -----------------------------

    def appended(self, intent: int, now: float) -> Output:
        """The store outside logged ``intent`` (an ``Append`` of ``Output.store``)."""
        return self._in_lobby(now, lambda batch: self._lobby.appended(intent, batch, now))

    def conflicted(self, intent: int, events: Sequence[Logged], now: float) -> Output:
        """The store outside refused ``intent``: its game's log was no longer at the version
        expected. ``events``: what it holds after that version."""
        return self._in_lobby(now, lambda batch: self._lobby.conflicted(intent, events, batch, now))

    def store_unavailable(self, intent: int, now: float) -> Output:
        """The store outside could not be reached for ``intent``, or gave no answer in time:
        it is undone (the driver gives a late answer to no one; the log, read again when the
        store is back, says whether it was appended after all)."""
        return self._in_lobby(now, lambda batch: self._lobby.store_unavailable(intent, batch, now))

    def remote(self, game: GameId, events: Sequence[Logged], now: float) -> Output:
        """Events appended to a game followed here (``Follow``), in order of version."""
        return self._in_lobby(now, lambda batch: self._lobby.remote(game, events, batch, now))

    def looked_up(self, digest: bytes, found: Found | None, now: float) -> Output:
        """The answer to a ``Lookup``."""
        return self._in_lobby(now, lambda batch: self._lobby.looked_up(digest, found, batch, now))

    def held_elsewhere(self) -> set[str]:
        """The other processes holding seats of games held here (to watch for)."""
        return self._lobby.held_elsewhere()

    def process_gone(self, process: str, now: float) -> Output:
        """``process`` is gone: the seats it held are away (its players come back anywhere)."""
        return self._in_lobby(now, lambda batch: self._lobby.process_gone(process, batch, now))

    def lookup_unavailable(self, digest: bytes, now: float) -> Output:
        """The store outside could not be reached for a ``Lookup``."""
        return self._in_lobby(now, lambda batch: self._lobby.lookup_unavailable(digest, batch, now))

    def shutdown(self, now: float) -> Output:
        """The server is stopping: close 1001 (going away) on every connection."""
        self._tick(now)
        batch = self._batch()
        for connection, client in self._connections.items():
            client.close(CloseReason.GOING_AWAY, "Server shutting down.", now=now)
            batch.touched[connection] = None
            self._timers.schedule(connection, client.deadline())  # the wait for its answer
        return self._finish(batch)

    def _client(self, connection: ConnectionId) -> ClientConnection:
        client = self._connections.get(connection)
        if client is None:
            raise LocalProtocolError(f"unknown or closed connection {connection}")
        return client

    def _in_lobby(self, now: float, act: Callable[[_Batch], None]) -> Output:
        """The output of ``act``, something the lobby does at ``now`` that no socket's read
        brought (the computer's move, an answer of the store outside)."""
        self._tick(now)
        batch = self._batch()
        act(batch)
        return self._finish(batch)

    def _finish_one(self, connection: ConnectionId) -> Output:
        """The output after the driver ended ``connection`` (lost, failed, too slow)."""
        batch = self._batch()
        batch.touched[connection] = None
        return self._finish(batch)

    def _batch(self) -> _Batch:
        return _Batch(self._connections, self._lobby, self._framer, self._now, self._grace)

    def _leave(
        self, ended: list[ConnectionId], batch: _Batch, data: dict[ConnectionId, bytes]
    ) -> None:
        """Take ``ended`` out of their games, and add what that sends to ``data``.

        Only open connections are in games, so the broadcasts of ``leave`` touch only open
        connections: none of them is one of ``ended``, whose list is then complete.
        """
        connections = self._connections
        for connection in ended:
            client = connections[connection]
            going_away = client.peer_close_code in _COMING_BACK
            self._lobby.leave(connection, batch, self._now, going_away=going_away)
            if client.state is ConnectionState.CLOSING:
                # Closed during another connection's call (its seat was taken over): the
                # wait for its close frame needs its own deadline.
                self._timers.schedule(connection, client.deadline())
        for connection in batch.touched:  # the leaves' broadcasts come after what was taken
            client = connections[connection]
            queued = client.queued
            if queued:
                client.queued = []
                data[connection] = data.get(connection, b"") + b"".join(queued)

    def _finish(self, batch: _Batch) -> Output:
        """Take connections that stopped being open out of their games; collect the output."""
        connections = self._connections
        touched = batch.touched
        # One pass takes what each touched connection has queued and finds those that
        # ended. This runs once per recipient of every broadcast: kept inline.
        data: dict[ConnectionId, bytes] = {}
        ended: list[ConnectionId] = []
        for connection in touched:
            client = connections[connection]
            state = client.state
            if state is not _OPEN and state is not _HTTP:
                ended.append(connection)
            queued = client.queued
            if queued:
                client.queued = []
                data[connection] = queued[0] if len(queued) == 1 else b"".join(queued)
        if ended:
            self._leave(ended, batch, data)
        # Most calls report, compute and store nothing: no tuple to build for them.
        compute = tuple(batch.computing) if batch.computing else ()
        store = tuple(batch.storing) if batch.storing else ()
        events = batch.events
        statistics = self._statistics
        statistics.messages_sent += batch.sent
        if not ended:
            return Output(
                data=data,
                close=_NOBODY,
                events=tuple(events) if events else (),
                compute=compute,
                store=store,
            )
        close = frozenset(c for c in ended if connections[c].state is ConnectionState.CLOSED)
        for connection in close:
            self._timers.cancel(connection)
            client = connections.pop(connection)
            reason = client.close_reason
            if reason is None:
                statistics.closes[NORMAL_CLOSE] += 1
            else:
                statistics.closes[client.close_fault.value] += 1
                batch.events.append(
                    ConnectionEnded(connection=connection, reason=reason, fault=client.close_fault)
                )
        return Output(
            data=data, close=close, events=tuple(batch.events), compute=compute, store=store
        )


#: Close codes of a page that is most likely back at once: 1001, its page goes away (a
#: reload); ``RECONNECTING``, it is opening a new connection itself.
_COMING_BACK = frozenset({CloseReason.GOING_AWAY, RECONNECTING})


class _GameMessages:
    """The game's application: JSON text messages, decoded and handed to the lobby."""

    __slots__ = ("_lobby",)

    def __init__(self, lobby: Lobby) -> None:
        self._lobby = lobby

    def receive_message(
        self, connection: ConnectionId, data: str | bytes, replies: Replies
    ) -> None:
        # The core's own batch: the lobby also publishes to games through it.
        batch: _Batch = replies  # type: ignore[assignment]  # (``cast`` is a call)
        if not isinstance(data, str):
            batch.refuse(
                connection, CloseReason.UNSUPPORTED_DATA, "Binary frames are not supported."
            )
            return
        message = decode_client_message(data)
        if isinstance(message, InvalidMessage):
            self._lobby.refuse(connection, invalid_message(message.reason), batch)
        else:
            self._lobby.receive(connection, message, batch, batch.now)


_OPEN = ConnectionState.OPEN
_HTTP = ConnectionState.HTTP
_NOBODY: frozenset[ConnectionId] = frozenset()
_UNSET = b"\x00unset"  # a sentinel, compared by identity
_TUTORIAL = Profile.TUTORIAL
#: Messages from a small, fixed set in the tutorial's protocol (2 players x 7 columns x 6 rows
#: of ``play``, and the presence events): each is encoded and framed once per process.
_REPEATED = frozenset({Played, Joined, Left, Draw})
_FRAMES: dict[ServerMessage, bytes] = {}
_MOVE_FRAMES: dict[MovePlayed, bytes] = {}
