"""A small Redis client on trio: ``hiredis`` parses, a non-blocking socket moves the bytes.

hiredis' ``Reader`` is sans-IO (``feed`` bytes, ``gets`` replies) and ``pack_command`` writes
requests, so this module is only the part that waits. It moves Redis' bytes the way the pump
moves the players': a request is written with one non-blocking ``send`` in its caller's own
step (no task, lock, cancel scope or ``await`` per command), and one reader task per
connection reads every reply and hands each request its replies through a callback
(``Connection.request``); ``pipeline`` is the same thing for a caller that awaits. Requests
are pipelined on one connection in the order they are made. TLS is done in memory
(``ssl.MemoryBIO``), so that it takes the same path.

Why not trio's streams: a command cost five passes of trio's run loop (a task, a lock, a send
and its checkpoint, a read), and the Redis client was 40% of a move's CPU on the shared path.
The measurements, before and after, are in ``benchmarks/README.md`` (issue 12). Against
``coredis`` (444-708 us per sequential command, 0.32 s for 10,000 pipelined, and a pub/sub
that lost messages without a sign after a Redis restart), this client took about 130 us and
12 ms even on trio's streams.

What can go wrong is said by the exception, because the caller must act differently:
``ReplyError`` (Redis refused the command: nothing happened), ``Unavailable`` (it could not
be sent: nothing happened), and ``TimedOut`` or ``ConnectionLost`` after it was sent (it may or
may not have been applied: only an idempotent command may be retried).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
import trio

from .redis_address import RedisAddress

__all__ = [
    "Ambiguous",
    "Connection",
    "ConnectionLost",
    "Message",
    "Outcome",
    "Redis",
    "RedisAddress",
    "RedisError",
    "ReplyError",
    "Resubscribed",
    "Subscription",
    "TimedOut",
    "Unavailable",
]

log = logging.getLogger("connect4proto")

Command = Sequence[str | bytes | int | float]
RECEIVE_SIZE = 65536


def _pack(command: Command) -> bytes:
    packed: bytes = hiredis.pack_command(tuple(command))  # type: ignore[arg-type]  # its stub
    return packed  # types a tuple of one item: it takes any length


class RedisError(Exception):
    """Anything that kept a command from being answered."""


class ReplyError(RedisError):
    """Redis answered with an error (``-ERR ...``): the command was refused, nothing changed."""


class Unavailable(RedisError):
    """Redis could not be reached, or the connection was already broken: nothing was sent."""


class Ambiguous(RedisError):
    """The command was sent, and no answer came: it may or may not have been applied."""


class TimedOut(Ambiguous):
    """No answer within the timeout (Redis stalled, or the network)."""


class ConnectionLost(Ambiguous):
    """The connection broke after the command was sent."""


#: A request's outcome, given to its callback: every reply in order (an error reply is a
#: ``ReplyError`` in the list), or why none came (a ``RedisError``).
Outcome = list[Any] | RedisError


class _Closed(ConnectionError):
    """The peer closed the connection (an ``OSError``, as a reset is)."""


class _Socket:
    """A connected non-blocking socket, and TLS on it in memory when the address asks.

    ``wire`` turns what is to be sent into what goes on the wire (encrypted, with TLS), so
    that bytes the kernel did not take yet can wait as they are, in order; ``receive`` gives
    what came (decrypted).
    """

    __slots__ = ("_incoming", "_outgoing", "_tls", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._tls: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()

    @classmethod
    async def open(cls, address: RedisAddress) -> _Socket:
        """Connect (each address the name has, in turn), then the TLS handshake if asked."""
        infos = await trio.socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
        failure: OSError = OSError(f"{address.host} has no address")
        for family, kind, proto, _name, where in infos:
            sock = socket.socket(family, kind, proto)
            connected = None
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect_ex(where)  # (EINPROGRESS: writable once connected, or refused)
                await trio.lowlevel.wait_writable(sock)
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, os.strerror(code))
                candidate = cls(sock)
                if address.tls:
                    await candidate._handshake(address)
                connected = candidate
            except OSError as exc:
                failure = exc
                continue
            finally:
                if connected is None:
                    sock.close()  # refused, or cancelled: the next address, or nothing
            return connected
        raise failure

    async def _handshake(self, address: RedisAddress) -> None:
        context = ssl.create_default_context(cafile=address.ca_file)
        tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=address.host)
        while True:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                await self.send_all(self._outgoing.read())
                await trio.lowlevel.wait_readable(self.sock)
                data = self.sock.recv(RECEIVE_SIZE)
                if not data:
                    raise _Closed("the connection closed during the TLS handshake") from None
                self._incoming.write(data)
                continue
            await self.send_all(self._outgoing.read())
            self._tls = tls
            return

    def wire(self, data: bytes) -> bytes:
        if self._tls is None:
            return data
        self._tls.write(data)
        return self._outgoing.read()

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """How many of ``data``'s bytes (from ``wire``) the kernel took now."""
        try:
            return self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0

    async def send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self.send(view) :]
            if view:
                await trio.lowlevel.wait_writable(self.sock)

    def receive(self) -> bytes:
        """What came (decrypted); ``b""`` if nothing yet (half a TLS record, say). Raises
        ``_Closed`` once the peer has closed."""
        try:
            data = self.sock.recv(RECEIVE_SIZE)
        except (BlockingIOError, InterruptedError):
            return b""
        if not data:
            raise _Closed("Redis closed the connection")
        tls = self._tls
        if tls is None:
            return data
        self._incoming.write(data)
        plain = bytearray()
        # Until it wants more bytes; a close_notify is followed by the end of the stream.
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            while chunk := tls.read(RECEIVE_SIZE):
                plain += chunk
        return bytes(plain)

    def close(self) -> None:
        if self.sock.fileno() != -1:
            trio.lowlevel.notify_closing(self.sock)  # wakes whoever waits on it
            self.sock.close()


class _Request:
    """One request's place in the line of replies."""

    __slots__ = ("count", "deadline", "done", "replies")

    def __init__(self, count: int, done: Callable[[Outcome], None], deadline: float) -> None:
        self.count = count
        self.done = done
        self.deadline = deadline
        self.replies: list[Any] = []


class Connection:
    """One connection to Redis; ``request`` (or ``pipeline``) from any number of tasks.

    Requests go out in the order they are made (a ``send`` at once; what the kernel did not
    take waits, and every later request behind it, for a writer task). Replies come back in
    that order: the connection's reader task, started by the first request, pairs them with
    their requests and calls each request's callback once. The oldest unanswered request's
    deadline bounds its wait: past it the connection is broken (``TimedOut``). Once broken
    (the peer closed, a read or write failed, a deadline passed, ``aclose``) every request
    waiting hears why, and the connection refuses everything after: open a new one.
    """

    def __init__(self, channel: _Socket, timeout: float) -> None:
        self._socket = channel
        self.timeout = timeout
        self._reader = hiredis.Reader(replyError=ReplyError)
        self._waiting: collections.deque[_Request] = collections.deque()
        self._unsent = bytearray()
        self._reading = False  # the reader task runs
        self._writing = False  # the writer task runs (bytes wait in _unsent)
        self._wait_scope: trio.CancelScope | None = None  # the reader's current wait
        #: Why the connection is broken, once it is (given to every request still waiting).
        self.broken: RedisError | None = None

    @classmethod
    async def open(cls, address: RedisAddress) -> Connection:
        """Connect, log in and select the database, all within the address's timeout."""
        channel: _Socket | None = None
        try:
            with trio.fail_after(address.timeout):
                channel = await _Socket.open(address)
                connection = cls(channel, address.timeout)
                setup: list[Command] = []
                if address.password is not None:
                    setup.append(
                        ("AUTH", address.password)
                        if address.username is None
                        else ("AUTH", address.username, address.password)
                    )
                if address.db:
                    setup.append(("SELECT", address.db))
                for reply in await connection._set_up(setup):
                    if isinstance(reply, ReplyError):
                        raise reply  # a wrong password: said as Redis says it
                return connection
        except BaseException as exc:
            if channel is not None:
                channel.close()
            if not isinstance(exc, OSError | trio.TooSlowError):
                raise
            # A refused certificate is an ssl.SSLError (an OSError): say the cause.
            why = str(exc) or type(exc).__name__
            raise Unavailable(f"cannot connect to {address}: {why}") from exc

    async def _set_up(self, commands: list[Command]) -> list[Any]:
        """The replies to the first commands, read here: a subscription's connection has no
        reader task (its replies are pushed, ``pushed``)."""
        await self._socket.send_all(self._socket.wire(b"".join(map(_pack, commands))))
        replies: list[Any] = []
        while len(replies) < len(commands):
            await trio.lowlevel.wait_readable(self._socket.sock)
            self._reader.feed(self._socket.receive())
            while (reply := self._reader.gets()) is not False:
                replies.append(reply)
        return replies

    def request(self, commands: Sequence[Command], done: Callable[[Outcome], None]) -> None:
        """Send ``commands`` now; ``done`` is called once, from the reader task, with their
        replies or with why none came. Raises ``Unavailable`` if the connection is broken
        (nothing is sent, and ``done`` is never called)."""
        if self.broken is not None:
            raise Unavailable(f"the connection is broken: {self.broken}")
        deadline = trio.current_time() + self.timeout
        self._waiting.append(_Request(len(commands), done, deadline))
        self._write(b"".join([_pack(command) for command in commands]))
        if not self._reading:
            self._reading = True
            trio.lowlevel.spawn_system_task(self._read, name="redis reader")
        elif len(self._waiting) == 1 and self._wait_scope is not None:
            self._wait_scope.deadline = deadline  # it waited with nothing asked

    async def pipeline(self, commands: Iterable[Command]) -> list[Any]:
        """Every command's reply, in order; error replies are returned, not raised."""
        answered = trio.Event()
        outcome: Outcome = []

        def done(result: Outcome) -> None:
            nonlocal outcome
            outcome = result
            answered.set()

        self.request(list(commands), done)
        await answered.wait()
        if isinstance(outcome, RedisError):
            raise outcome
        return outcome

    def _write(self, data: bytes) -> None:
        channel = self._socket
        wire = channel.wire(data)
        if self._unsent:
            self._unsent += wire  # behind what already waits
            return
        try:
            sent = channel.send(wire)
        except OSError as exc:
            self._break(ConnectionLost(f"the connection broke: {exc!r}"))
            return
        if sent < len(wire):
            self._unsent += memoryview(wire)[sent:]
            if not self._writing:
                self._writing = True
                trio.lowlevel.spawn_system_task(self._write_rest, name="redis writer")

    async def _write_rest(self) -> None:
        channel, unsent = self._socket, self._unsent
        try:
            while unsent and self.broken is None:
                await trio.lowlevel.wait_writable(channel.sock)
                del unsent[: channel.send(unsent)]
        except (OSError, trio.ClosedResourceError) as exc:
            self._break(ConnectionLost(f"the connection broke: {exc!r}"))
        finally:
            self._writing = False

    async def _read(self) -> None:
        """The reader task: every reply, until the connection breaks."""
        channel = self._socket
        try:
            while self.broken is None:
                waiting = self._waiting
                with trio.CancelScope(
                    deadline=waiting[0].deadline if waiting else float("inf")
                ) as self._wait_scope:
                    await trio.lowlevel.wait_readable(channel.sock)
                self._wait_scope = None
                if self.broken is not None:
                    break
                waiting = self._waiting
                if waiting and trio.current_time() >= waiting[0].deadline:
                    self._break(TimedOut(f"no answer within {self.timeout:g} s"))
                    break
                self._dispatch(channel.receive())
        except (OSError, trio.ClosedResourceError) as exc:
            self._break(ConnectionLost(f"the connection broke: {exc!r}"))
        except Exception as exc:  # pragma: no cover - a bug here must not end the run
            log.exception("the Redis connection's reader failed")
            self._break(ConnectionLost(f"the connection broke: {exc!r}"))
        finally:
            # Broken for good, or the run is ending (trio cancels its system tasks, and
            # then nobody is left to tell): nothing more is read or written.
            self._wait_scope = None
            channel.close()
        broken = self.broken
        assert broken is not None
        waiting = self._waiting
        while waiting:
            self._tell(waiting.popleft(), type(broken)(str(broken)))

    def _dispatch(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        while (reply := reader.gets()) is not False:
            if not waiting:  # pragma: no cover - Redis answers what is asked, no more
                self._break(ConnectionLost("the connection broke: a reply nobody asked for"))
                return
            request = waiting[0]
            replies = request.replies
            replies.append(reply)
            if len(replies) == request.count:
                waiting.popleft()
                self._tell(request, replies)

    @staticmethod
    def _tell(request: _Request, outcome: Outcome) -> None:
        try:
            request.done(outcome)
        except Exception:  # pragma: no cover - a caller's bug must not stop the others
            log.exception("a Redis request's callback failed")

    def _break(self, why: RedisError) -> None:
        if self.broken is None:
            self.broken = why
        if self._wait_scope is not None:
            self._wait_scope.cancel()  # the reader tells those waiting

    # -- pub/sub: a subscribed connection answers nothing in order; it pushes messages ----

    def send(self, command: Command) -> None:
        """Write ``command`` and expect no reply in line (``SUBSCRIBE``, ``UNSUBSCRIBE``)."""
        self._write(_pack(command))  # (on a broken connection, it fails quietly)

    async def pushed(self) -> AsyncIterator[Any]:
        """Every reply Redis sends, as it comes, until the connection breaks."""
        assert not self._reading  # replies in line and pushed ones do not mix
        channel, reader = self._socket, self._reader
        while True:
            try:
                await trio.lowlevel.wait_readable(channel.sock)
                reader.feed(channel.receive())
            except (OSError, trio.ClosedResourceError) as exc:
                self._break(ConnectionLost(f"the subscription broke: {exc!r}"))
                return
            while (reply := reader.gets()) is not False:
                yield reply

    async def aclose(self) -> None:
        self._break(ConnectionLost("the connection broke: closed"))
        self._socket.close()
        await trio.lowlevel.checkpoint()


class Redis:
    """Commands to one Redis server, connecting (again) as needed.

    A broken connection is dropped; the next command opens a new one. A command that was sent
    and not answered raises ``Ambiguous``: the caller decides whether to retry (appends carry
    an intent id, so that a retry is a no-op if the first one was applied).
    """

    def __init__(self, address: RedisAddress) -> None:
        self.address = address
        self._connection: Connection | None = None
        self._connecting = trio.Lock()

    async def execute(self, *command: str | bytes | int | float, idempotent: bool = False) -> Any:
        """One command's reply (an error reply raised). ``idempotent``: safe to send twice,
        so that a connection found broken (a Redis restart since the last command) is
        opened again and the command sent once more, instead of raising ``Ambiguous``."""
        (reply,) = await self.pipeline([command], idempotent=idempotent)
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def pipeline(self, commands: Iterable[Command], *, idempotent: bool = False) -> list[Any]:
        """Every command's reply, in order (error replies returned, not raised)."""
        commands = list(commands)
        for attempt in (1, 2):
            connection = await self._connect()
            try:
                return await connection.pipeline(commands)
            except Ambiguous:
                await self._drop(connection)
                if not idempotent or attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def request(self, commands: Sequence[Command], done: Callable[[Outcome], None]) -> bool:
        """Send ``commands`` now on the open connection, ``done`` told their outcome later
        (``Connection.request``); False, and nothing sent, if there is no open connection
        (``pipeline`` opens one)."""
        connection = self._connection
        if connection is None or connection.broken is not None:
            return False
        connection.request(commands, done)
        return True

    async def _connect(self) -> Connection:
        connection = self._connection
        if connection is not None and connection.broken is None:
            return connection  # (no lock: the common case, one loop pass less per command)
        async with self._connecting:
            connection = self._connection
            if connection is None or connection.broken is not None:
                self._connection = None
                connection = self._connection = await Connection.open(self.address)
            return connection

    async def _drop(self, connection: Connection) -> None:
        if self._connection is connection:
            self._connection = None
        await connection.aclose()

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._drop(self._connection)


@dataclass(frozen=True, slots=True)
class Message:
    """A message published on ``channel``."""

    channel: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class Resubscribed:
    """The subscription was lost and is back: messages published meanwhile are lost (pub/sub
    is at most once), so whatever they carried must be read again from where it is kept."""

    why: str


class Subscription:
    """Channels subscribed to on a connection of their own, kept across reconnections.

    ``messages()`` yields each ``Message`` as it comes, and ``Resubscribed`` after the
    connection was lost and opened again (retried every ``retry`` seconds meanwhile), once
    Redis has confirmed every channel again.

    Why wait for Redis' confirmations: Redis reads its connections in no promised order, so
    a ``SUBSCRIBE`` written before a read on another connection may take effect after it; a
    message published in between would reach nobody, and the read would not have it either
    (measured: one game in 50 lost a move that way with two processes). What is read from a
    log after a confirmed subscription misses nothing.
    """

    def __init__(self, address: RedisAddress, *, retry: float = 0.5) -> None:
        self.address = address
        self.retry = retry
        self.channels: set[bytes] = set()
        self._connection: Connection | None = None
        #: Channels asked for on the current connection, and not confirmed yet.
        self._unconfirmed: dict[bytes, trio.Event] = {}

    async def subscribe(self, *channels: bytes) -> bool:
        """Subscribe to ``channels``: True once Redis has confirmed each of them (whatever
        is published from then on is heard); False if it has not within the address's
        timeout, or the connection is down (``Resubscribed`` comes once it is back)."""
        new = [channel for channel in channels if channel not in self.channels]
        self.channels.update(new)
        connection = self._connection
        if connection is None or connection.broken is not None:
            await trio.lowlevel.checkpoint()
            return False
        if new:
            connection.send(("SUBSCRIBE", *new))
            for channel in new:
                self._unconfirmed[channel] = trio.Event()
        waits = [self._unconfirmed[c] for c in channels if c in self._unconfirmed]
        with trio.move_on_after(self.address.timeout):
            for confirmed in waits:
                await confirmed.wait()
            await trio.lowlevel.checkpoint()
            return connection.broken is None
        return False

    async def unsubscribe(self, *channels: bytes) -> None:
        gone = [channel for channel in channels if channel in self.channels]
        self.channels.difference_update(gone)
        if gone and self._connection is not None:
            self._connection.send(("UNSUBSCRIBE", *gone))
        await trio.lowlevel.checkpoint()

    async def messages(self) -> AsyncIterator[Message | Resubscribed]:
        first = True
        while True:
            try:
                connection = await Connection.open(self.address)
            except Unavailable as exc:
                first = False
                why = str(exc)
                await trio.sleep(self.retry)
                continue
            self._connection = connection
            unconfirmed = self._unconfirmed
            try:
                if self.channels:
                    connection.send(("SUBSCRIBE", *sorted(self.channels)))
                    for channel in self.channels:
                        unconfirmed[channel] = trio.Event()
                back = not first  # to be said once every channel is confirmed
                first = False
                if back and not unconfirmed:
                    back = False
                    yield Resubscribed(why)
                async for reply in connection.pushed():
                    kind = reply[0] if type(reply) is list and len(reply) == 3 else None
                    if kind == b"message":
                        yield Message(reply[1], reply[2])
                    elif kind == b"subscribe":
                        unconfirmed.pop(reply[1], trio.Event()).set()
                        if back and not unconfirmed:
                            back = False
                            yield Resubscribed(why)
                    # Else an unsubscribe confirmation: nothing to do.
                why = str(connection.broken or "the subscription ended")
            finally:
                self._connection = None
                for waiting in unconfirmed.values():
                    waiting.set()  # (``subscribe`` sees the connection broken)
                unconfirmed.clear()
                await connection.aclose()
