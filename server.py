"""The trio driver: moves bytes between TCP sockets and the sans-IO core.

Run ``python server.py`` and open the address it prints. Everything about HTTP, WebSocket and
the game lives in ``connect4proto``; this file only reads, writes, keeps time, logs and
handles signals.

One task pumps every socket (benchmarks/README.md has the measurements behind this): the
sockets sit in one ``epoll`` set, and trio wakes the pump when that set is readable (an epoll
descriptor is itself pollable). Each wake-up reads every ready socket once, hands the bytes to
the core, and writes what that produced for each connection with a single non-blocking
``send``. A task and an ``await`` per connection or per message would cost more than the
WebSocket parsing.
Bytes the kernel does not take wait in the connection's queue (bounded by
``Config.max_output_buffer``) until the socket is writable again.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import heapq
import importlib.util
import logging
import multiprocessing
import os
import random

try:
    import resource  # POSIX only
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]
import secrets
import select
import signal
import socket
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import cache, partial
from pathlib import Path
from typing import Any, NoReturn

import trio

from connect4proto import (
    ComputeMove,
    Config,
    ConnectionEnded,
    ConnectionId,
    Event,
    GameClosed,
    GameCreated,
    GameEnded,
    GameServer,
    Output,
    PlayerJoined,
    PlayerLeft,
    PlayerReturned,
    RematchBegun,
    SeatReplaced,
    Site,
    SpectatorJoined,
)
from connect4proto.solver import ORDER, position_from_moves
from connect4proto.solver.bots import Level, choose
from connect4proto.solver.perfect import PerfectPlayer, Source
from connect4proto.web import CONTENT_TYPES

log = logging.getLogger("connect4proto")

STATIC_DIR = Path(__file__).resolve().parent / "static"
RECEIVE_SIZE = 65536
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
#: Most ready sockets handled per wake-up, so that timers and signals are never starved.
MAX_EVENTS = 1024
#: Most connections accepted per wake-up: a burst of new connections waits in the kernel's
#: backlog rather than holding up the moves of games in progress.
MAX_ACCEPTS = 16
#: Out of file descriptors, accepting pauses this long (the listener would stay readable, and
#: the pump spin on it, until some connection closes).
ACCEPT_PAUSE = 0.1
#: A socket error means the peer is gone (reset, broken pipe, ...): not our bug.
_GONE = (ConnectionError, TimeoutError)
_WOULD_BLOCK = (BlockingIOError, InterruptedError)


def new_key() -> str:
    """A join or watch key: 128 bits from the OS CSPRNG, URL-safe."""
    return secrets.token_urlsafe(16)


def load_site(directory: Path = STATIC_DIR) -> Site:
    """Every file under ``directory``, read once at start-up; a file of no known type (a
    ``Thumbs.db`` or ``desktop.ini`` that a desktop drops there, an editor's backup) is left
    out, with a warning."""
    files = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        name = path.relative_to(directory).as_posix()
        if path.suffix.lower() not in CONTENT_TYPES:
            log.warning("static/%s is not served: no known content type for %r", name, path.suffix)
            continue
        files[name] = path.read_bytes()
    return Site.from_files(files)


#: What stops the server: Ctrl-C, SIGTERM, and Ctrl-Break where there is one (Windows).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM) + (
    (signal.SIGBREAK,) if hasattr(signal, "SIGBREAK") else ()
)
#: macOS's largest per-process open-file limit (OPEN_MAX in <sys/syslimits.h>).
MACOS_OPEN_MAX = 10240

#: The computer's moves waiting for its worker process at most (each a few milliseconds of
#: work, up to 100 at the perfect and strong levels); beyond, the computer plays the casual
#: level's move at once, so that a crowd of games against it cannot queue up seconds.
MAX_THINKING = 64


#: Readiness, as epoll numbers it (the same on every Linux; the portable poller uses them too).
READABLE = 0x001  # EPOLLIN
WRITABLE = 0x004  # EPOLLOUT
_READ_OR_HUNG_UP = 0x001 | 0x008 | 0x010  # EPOLLIN | EPOLLERR | EPOLLHUP: a read says which


class EpollPoller:
    """Linux: every socket in one epoll set, whose descriptor trio waits on; a turn takes
    what is ready with one ``epoll_wait`` (``benchmarks/README.md`` measures why)."""

    def __init__(self) -> None:
        self._epoll = select.epoll()

    def attach(self, nursery: trio.Nursery) -> None:
        pass  # nothing runs beside the pump

    def register(self, fd: int, events: int = READABLE) -> None:
        self._epoll.register(fd, events)

    def modify(self, fd: int, events: int) -> None:
        self._epoll.modify(fd, events)

    def unregister(self, fd: int) -> None:
        self._epoll.unregister(fd)

    def ready(self) -> list[tuple[int, int]]:
        return self._epoll.poll(0, MAX_EVENTS)

    async def wait(self) -> None:
        await trio.lowlevel.wait_readable(self._epoll.fileno())

    def close(self) -> None:
        self._epoll.close()


class PortablePoller:
    """Everywhere (macOS: kqueue, Windows: IOCP, through trio): a task per socket and
    direction waits with trio's ``wait_readable`` / ``wait_writable``, and marks it ready.

    A turn takes every socket marked since the last, in the order the sockets were
    registered: the same order whatever order trio woke the tasks in (a prototype that let
    the wake-ups decide sent a player's ``left`` before its own move's echo in most runs).
    A task marks its socket once per turn: it waits for the turn to take the mark before it
    waits again (the socket stays readable until the pump reads it).
    """

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        self._interest: dict[int, int] = {}  # by descriptor, in registration order
        self._order: dict[int, int] = {}
        self._next = 0
        self._watchers: dict[tuple[int, int], trio.CancelScope] = {}
        self._marked: dict[int, int] = {}
        self._taken: dict[int, trio.Event] = {}
        self._write_wanted: dict[int, trio.Event] = {}  # writers idle until wanted again
        self._wakeup = trio.Event()

    def attach(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        for fd, events in self._interest.items():
            self._watch(fd, events)

    def register(self, fd: int, events: int = READABLE) -> None:
        self._interest[fd] = events
        self._order[fd] = self._next
        self._next += 1
        self._taken[fd] = trio.Event()
        self._watch(fd, events)

    def modify(self, fd: int, events: int) -> None:
        self._interest[fd] = events
        wanted = self._write_wanted.pop(fd, None)
        if wanted is not None and events & WRITABLE:
            wanted.set()  # its writer task waits for this (it is not cancelled and restarted:
            # a new task could not wait on the socket before the old one's cancellation ends)
        self._watch(fd, events)

    def unregister(self, fd: int) -> None:
        del self._interest[fd]
        del self._order[fd]
        self._marked.pop(fd, None)
        self._taken.pop(fd).set()
        self._write_wanted.pop(fd, None)
        for direction in (READABLE, WRITABLE):
            scope = self._watchers.pop((fd, direction), None)
            if scope is not None:
                scope.cancel()
        trio.lowlevel.notify_closing(fd)  # a wait on it ends now, before the socket closes

    def ready(self) -> list[tuple[int, int]]:
        marked = self._marked
        if not marked:
            return []
        order = self._order
        ready = sorted(marked.items(), key=lambda item: order[item[0]])
        marked.clear()
        self._wakeup = trio.Event()
        for fd, _ in ready:
            self._taken[fd].set()
            self._taken[fd] = trio.Event()
        return ready

    async def wait(self) -> None:
        await self._wakeup.wait()

    def close(self) -> None:
        for scope in self._watchers.values():
            scope.cancel()
        self._watchers.clear()

    def _watch(self, fd: int, events: int) -> None:
        if self._nursery is None:
            return  # attach starts them
        for direction in (READABLE, WRITABLE):
            if events & direction and (fd, direction) not in self._watchers:
                scope = trio.CancelScope()
                self._watchers[fd, direction] = scope
                self._nursery.start_soon(self._wait_for, fd, direction, scope)

    async def _wait_for(self, fd: int, direction: int, scope: trio.CancelScope) -> None:
        wait = trio.lowlevel.wait_readable if direction == READABLE else trio.lowlevel.wait_writable
        with scope:
            while self._watchers.get((fd, direction)) is scope:  # else: unregistered
                if not self._interest[fd] & direction:
                    wanted = self._write_wanted[fd] = trio.Event()
                    await wanted.wait()
                    continue
                try:
                    await wait(fd)
                except (trio.ClosedResourceError, OSError):
                    return  # unregistered: the socket is closing
                if self._watchers.get((fd, direction)) is not scope:
                    return
                self._marked[fd] = self._marked.get(fd, 0) | direction
                self._wakeup.set()
                await self._taken[fd].wait()


Poller = EpollPoller | PortablePoller


def make_poller(name: str | None = None) -> Poller:
    """``epoll`` where there is one, else ``portable``; ``name`` (or ``$CONNECT4_POLLER``)
    forces one."""
    name = name or os.environ.get("CONNECT4_POLLER") or "auto"
    if name == "auto":
        name = "epoll" if hasattr(select, "epoll") else "portable"
    if name == "epoll":
        if not hasattr(select, "epoll"):
            raise ValueError("CONNECT4_POLLER=epoll: there is no epoll here (it is Linux's)")
        return EpollPoller()
    if name == "portable":
        return PortablePoller()
    raise ValueError(f"CONNECT4_POLLER={name}: not a poller (epoll, portable or auto)")


class _Link:
    """The driver's side of one socket: what waits to be written, and how it ends.

    Life: open (the core knows it as ``connection``) -> closing (the core has forgotten it:
    write what is queued, then stop writing) -> draining (our side is shut: read and drop
    what the peer still sends until it closes too, so that our last bytes are not lost to a
    reset) -> closed. ``deadline`` bounds closing and draining together.
    """

    __slots__ = (
        "connection",
        "deadline",
        "draining",
        "fd",
        "fresh",
        "pending",
        "pending_size",
        "sock",
        "started",
        "writable_wanted",
    )

    def __init__(self, sock: socket.socket, connection: ConnectionId | None) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        #: The core's id; None once the core has forgotten it (or never knew it).
        self.connection = connection
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.started = False  # some of pending[0] is already sent: it must be finished
        self.writable_wanted = False
        self.draining = False
        self.deadline = float("inf")
        self.fresh = True  # nothing read yet: its first read is usually a handshake


class Driver:
    """Serves one ``GameServer`` to any number of sockets, from one task (``run``)."""

    def __init__(
        self,
        core: GameServer,
        max_thinking: int = MAX_THINKING,
        poller: Poller | None = None,
    ) -> None:
        self.core = core
        self._max_thinking = max_thinking
        self._waiting_to_think = 0  # requests for the computer's move not answered yet
        self._thinkers_pool = Thinkers()
        self._config = core.config
        self._poller = poller if poller is not None else make_poller()
        self._links: dict[int, _Link] = {}  # by file descriptor
        self._by_connection: dict[ConnectionId, _Link] = {}
        self._listeners: dict[int, socket.socket] = {}
        self._accepting_again = float("inf")  # when paused listeners are watched again
        self._paused: list[socket.socket] = []
        self._dirty: dict[_Link, None] = {}  # links with new bytes to write this turn
        # Links whose send failed (True) or whose queue overflowed (False), to settle once the
        # output being written is all written (see ``_apply``).
        self._troubled: list[tuple[_Link, bool]] = []
        self._deadlines: list[tuple[float, int, _Link]] = []  # closing links, lazily
        self._deadline_count = 0
        self._wait_scope: trio.CancelScope | None = None
        # The clock as last read: at the start of each turn, and when a socket or a shutdown
        # comes from outside one. Every call into the core passes it, so that the core's time
        # never goes backwards and a turn costs one reading of the clock, not one per socket.
        self._now = 0.0
        self._all_closed = trio.Event()
        self._all_closed.set()
        # The computer thinks off the event loop (``Thinkers``), one task per request waiting
        # for its answer in this nursery, while the pump goes on serving.
        self._thinkers: trio.Nursery | None = None
        self._random = random.Random()

    @property
    def open_connections(self) -> int:
        return len(self._links)

    # -- sockets in -----------------------------------------------------------------------

    def add_listener(self, sock: socket.socket) -> None:
        """Accept connections on a listening socket (from the pump, as they come)."""
        sock.setblocking(False)
        self._listeners[sock.fileno()] = sock
        self._poller.register(sock.fileno())

    def add_socket(self, sock: socket.socket) -> None:
        """Serve a connected socket (from ``accept``, or a ``socketpair`` in tests)."""
        try:
            self._add_socket(sock)
        except Exception:
            # A bug of ours (or a socket already dead): this connection pays, not the server.
            log.exception("could not serve a new connection")
            link = self._links.get(sock.fileno())
            if link is not None:
                self._abandon(link)
            else:
                sock.close()

    def _add_socket(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # Small writes must not wait for the peer's delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        core = self.core
        if not core.accepting:
            link = _Link(sock, None)
            self._register(link)
            self._queue(link, core.busy_response())
            log.warning("refused a connection: %d connections open", core.connection_count)
            self._close_link(link)
        else:
            # A socket may come outside a turn (``add_socket``): read the clock, and let the
            # rest of the turn go on from that reading (time never goes backwards).
            now = self._now = trio.current_time()
            connection = core.open_connection(now)
            link = _Link(sock, connection)
            self._by_connection[connection] = link
            self._register(link)
            self._poke()  # its request timeout may be the earliest deadline
        self._flush()

    def _register(self, link: _Link) -> None:
        self._links[link.fd] = link
        self._poller.register(link.fd)
        self._all_closed = trio.Event() if self._all_closed.is_set() else self._all_closed

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(MAX_ACCEPTS):
            try:
                sock, _address = listener.accept()
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: leave the rest in the backlog, and stop watching
                    # the listener for a moment rather than spin on it.
                    log.error("cannot accept connections for now: %s", exc)
                    self._poller.unregister(listener.fileno())
                    self._paused.append(listener)
                    self._accepting_again = trio.current_time() + ACCEPT_PAUSE
                    return
                raise
            self.add_socket(sock)

    # -- the pump -------------------------------------------------------------------------

    async def run(self) -> None:
        """Pump every socket until cancelled: the driver's only long-lived task (beside one
        task per move of the computer's, waiting for the answer)."""
        try:
            async with trio.open_nursery() as self._thinkers:
                self._poller.attach(self._thinkers)
                await self._pump()
        finally:
            self._thinkers_pool.close()

    def start_thinking(self) -> None:
        """Start the computer's worker process now (and its perfect player, if offered),
        not at the first move that needs it."""
        self._thinkers_pool.start(Level.PERFECT in self._config.computer_levels)

    async def _pump(self) -> None:
        poller = self._poller
        while True:
            ready = poller.ready()
            if ready:
                await trio.lowlevel.checkpoint()  # let signals and other tasks in
            else:
                wake = self._next_wakeup()
                with trio.CancelScope(deadline=wake) as self._wait_scope:
                    await poller.wait()
                self._wait_scope = None
                ready = poller.ready()
            self._turn(ready)

    def _next_wakeup(self) -> float:
        wake = self.core.next_deadline
        deadlines = self._deadlines
        if deadlines and (wake is None or deadlines[0][0] < wake):
            wake = deadlines[0][0]
        return min(self._accepting_again, float("inf") if wake is None else wake)

    def _resume_accepting(self, now: float) -> None:
        if now >= self._accepting_again:
            self._accepting_again = float("inf")
            for listener in self._paused:
                self._poller.register(listener.fileno())
            self._paused.clear()

    def _poke(self) -> None:
        """Wake the pump: something outside it changed the deadlines."""
        if self._wait_scope is not None:
            self._wait_scope.cancel()

    def _turn(self, ready: list[tuple[int, int]]) -> None:
        """One wake-up: timers, then every ready socket, each read answered at once.

        Writing right after each read, not once at the end of the turn, costs no extra
        ``send``: a read's output goes to connections that no other read of the same turn
        usually reaches (players alternate; games are apart). But the first mover of a busy
        turn no longer waits for the whole turn to hear its echo.

        Games in progress go first: new connections (accepts, and first reads, which are
        handshakes costing as much as several moves) wait for the end of the turn.

        The whole turn happens at the time read at its start (``_now``): the core is given
        one clock reading per wake-up, not one per socket.
        """
        now = self._now = trio.current_time()
        try:
            self._apply(self.core.advance(now))
        except Exception:  # a bug in a timer: log it, and keep serving everyone else
            log.exception("timers: unexpected error")
        self._expire(now)
        self._resume_accepting(now)
        self._flush()  # pings and timeouts go out even when no socket is ready
        links = self._links
        later: list[tuple[int, int]] = []
        for fd, mask in ready:
            link = links.get(fd)
            if link is None or link.fresh:
                later.append((fd, mask))
            else:
                self._handle(fd, mask, link)
        for fd, mask in later:
            self._handle(fd, mask, links.get(fd))

    def _handle(self, fd: int, mask: int, link: _Link | None) -> None:
        """One ready descriptor: accept, or read and answer, or write what waits."""
        try:
            if link is None:
                listener = self._listeners.get(fd)
                if listener is not None:
                    self._accept(listener)
                return
            if mask & _READ_OR_HUNG_UP:
                self._read(link)
            if mask & WRITABLE and self._links.get(fd) is link:
                self._dirty[link] = None
            if self._dirty:
                self._flush()
        except Exception:
            log.exception("unexpected error on descriptor %d", fd)
            if link is not None:
                self._abandon(link)

    def _read(self, link: _Link) -> None:
        try:
            data = link.sock.recv(RECEIVE_SIZE)
        except _WOULD_BLOCK:
            return
        except _GONE:
            self._lost(link)
            return
        link.fresh = False
        connection = link.connection
        if connection is None:
            if not data:
                self._drop(link)  # draining: the peer closed too
            return  # what the peer sends after we are done is dropped
        try:
            output = self.core.receive_data(connection, data or None, self._now)
        except Exception:
            self._fail(link, connection)
            return
        self._apply(output)

    def _fail(self, link: _Link, connection: ConnectionId) -> None:
        """A bug of ours: this connection pays for it (close 1011), nobody else does."""
        log.exception("connection %d: unexpected error", connection)
        try:
            self._apply(self.core.fail(connection, self._now))
        except Exception:
            log.exception("connection %d: could not fail it cleanly", connection)
            self._drop(link)

    def _abandon(self, link: _Link) -> None:
        """After an unexpected error around this socket: 1011 if we can, and let it go."""
        connection = link.connection
        if connection is not None:
            self._fail(link, connection)
        self._dirty.pop(link, None)
        with contextlib.suppress(Exception):
            self._flush()
        self._drop(link)

    def _lost(self, link: _Link) -> None:
        """The socket failed (reset, ...): tell the core if it still knows it, and drop it."""
        connection = link.connection
        if connection is not None:
            link.pending.clear()
            self._apply(self.core.connection_lost(connection, self._now))
        self._drop(link)

    # -- core output ----------------------------------------------------------------------

    def _apply(self, output: Output) -> None:
        """Write the core's bytes (or queue them); end closed connections; log what happened.

        A socket that fails or overflows on the way is only noted here: telling the core
        (which answers with more output, for other connections too) waits until this output
        is applied whole, so that nothing is sent out of order or to a forgotten connection.
        """
        by_connection = self._by_connection
        for connection, data in output.data.items():
            link = by_connection[connection]
            if link.pending:
                self._queue(link, data)  # behind what already waits
            else:
                self._send(link, data)
        for connection in output.close:
            link = by_connection.pop(connection)
            link.connection = None
            self._close_link(link)
        for event in output.events:
            _log_event(event)
        if output.compute:
            assert self._thinkers is not None  # the core asks only while the pump runs
            for request in output.compute:
                # Counted here, as the core asks, so that the queue's bound does not depend
                # on when the tasks start.
                self._waiting_to_think += 1
                hurried = self._waiting_to_think > self._max_thinking
                self._thinkers.start_soon(self._think, request, hurried)
        self._settle()

    async def _think(self, request: ComputeMove, hurried: bool) -> None:
        """Work out the computer's move off the event loop, then hand it to the core;
        ``hurried`` (too many wait already), the casual level's move at once."""
        seed = self._random.getrandbits(64)
        try:
            if hurried:
                log.warning(
                    "game %d: %d moves of the computer wait to be worked out; it plays a quick one",
                    request.game,
                    self._waiting_to_think - 1,
                )
                column = _hurried_move(request, seed)
            else:
                column = await self._work_out(request, seed)
        finally:
            self._waiting_to_think -= 1
        self._now = max(self._now, trio.current_time())
        self._apply(self.core.computed(request, column, self._now))
        self._poke()  # the deadlines may have moved

    async def _work_out(self, request: ComputeMove, seed: int) -> int:
        try:
            column, note = await self._thinkers_pool.move(request, seed)
        except Exception:
            # A bug in a level, or a worker process that died, must not stop the server,
            # nor the game: it plays on (and a new worker process starts for the next move).
            log.exception("game %d: the computer failed to move; it plays a safe one", request.game)
            return _fallback_move(request)
        if note is not None:
            log.warning("game %d: %s", request.game, note)
        return column

    def _settle(self) -> None:
        """Deal with the sockets that failed or overflowed while output was being written."""
        troubled = self._troubled
        while troubled:
            link, failed = troubled.pop()
            if self._links.get(link.fd) is not link:
                continue  # already dropped
            if failed:
                self._lost(link)
            else:
                self._too_slow(link)

    def _send(self, link: _Link, data: bytes) -> None:
        """Write at once what nothing waits before: the usual case, one ``send`` per output."""
        try:
            sent = link.sock.send(data)
        except _WOULD_BLOCK:
            sent = 0
        except _GONE:
            self._troubled.append((link, True))
            return
        if sent < len(data):
            link.pending.append(data[sent:] if sent else data)
            link.pending_size = len(data) - sent
            link.started = sent > 0
            self._check_size(link)
            self._watch_writable(link, True)

    def _queue(self, link: _Link, data: bytes) -> None:
        link.pending.append(data)
        link.pending_size += len(data)
        if link.writable_wanted:
            self._check_size(link)  # the socket is full: wait for EPOLLOUT, do not try now
        else:
            self._dirty[link] = None

    def _check_size(self, link: _Link) -> None:
        if link.pending_size > self._config.max_output_buffer and link.connection is not None:
            self._troubled.append((link, False))

    def _watch_writable(self, link: _Link, wanted: bool) -> None:
        if wanted != link.writable_wanted:
            link.writable_wanted = wanted
            self._poller.modify(link.fd, READABLE | (WRITABLE if wanted else 0))

    def _close_link(self, link: _Link) -> None:
        """The core is done with this socket: write what is queued, then end it."""
        link.connection = None
        self._dirty[link] = None
        self._set_deadline(link, trio.current_time() + self._config.close_timeout)

    def _set_deadline(self, link: _Link, deadline: float) -> None:
        if deadline < link.deadline:
            link.deadline = deadline
            self._deadline_count += 1
            heapq.heappush(self._deadlines, (deadline, self._deadline_count, link))
            self._poke()

    def _expire(self, now: float) -> None:
        """Links still writing or draining past their deadline: give up on them."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            deadline, _, link = heapq.heappop(deadlines)
            if link.deadline == deadline and self._links.get(link.fd) is link:
                self._drop(link)

    def _flush(self) -> None:
        """Write every connection's queued bytes with one ``send`` each, as far as it goes."""
        dirty = self._dirty
        while dirty:
            link = next(iter(dirty))
            del dirty[link]
            if self._links.get(link.fd) is link:
                self._write(link)
        self._settle()

    def _write(self, link: _Link) -> None:
        pending = link.pending
        if pending:
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            try:
                sent = link.sock.send(data)
            except _WOULD_BLOCK:
                sent = 0
            except _GONE:
                self._troubled.append((link, True))
                return
            if sent == len(data):
                pending.clear()
                link.pending_size = 0
                link.started = False
            elif sent:
                # Keep the queued pieces apart: a reader too slow loses all but the one it is in.
                link.pending_size -= sent
                skipped = 0
                while sent >= len(pending[skipped]):
                    sent -= len(pending[skipped])
                    skipped += 1
                pending[: skipped + 1] = [pending[skipped][sent:]]
                link.started = sent > 0
            if pending:
                self._check_size(link)
        self._watch_writable(link, bool(pending))
        if not pending and link.connection is None and not link.draining:
            self._drain(link)

    def _too_slow(self, link: _Link) -> None:
        """The peer reads slower than its game moves: keep the piece it is in, drop the rest."""
        connection = link.connection
        if connection is None:
            return  # already closing; its deadline bounds it
        link.pending[:] = link.pending[:1] if link.started else []
        link.pending_size = sum(map(len, link.pending))
        self._apply(self.core.too_slow(connection, self._now))
        self._dirty[link] = None

    def _drain(self, link: _Link) -> None:
        """All written: shut our side, and read until the peer closes (or the deadline)."""
        link.draining = True
        try:
            link.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._drop(link)

    def _drop(self, link: _Link) -> None:
        """Forget the socket and close it."""
        if self._links.pop(link.fd, None) is None:
            return
        self._dirty.pop(link, None)
        connection = link.connection
        if connection is not None:  # only when the core failed to forget it
            self._by_connection.pop(connection, None)
        with contextlib.suppress(OSError):
            self._poller.unregister(link.fd)
        link.sock.close()
        link.deadline = float("-inf")
        if not self._links:
            self._all_closed.set()

    # -- shutdown -------------------------------------------------------------------------

    def stop_accepting(self) -> None:
        for fd, listener in self._listeners.items():
            with contextlib.suppress(OSError):
                self._poller.unregister(fd)
            listener.close()
        self._listeners.clear()
        self._paused.clear()
        self._accepting_again = float("inf")

    def shutdown(self) -> None:
        """Stop accepting; send close 1001 on every WebSocket (and end HTTP connections)."""
        self.stop_accepting()
        now = self._now = trio.current_time()
        self._apply(self.core.advance(now))
        self._apply(self.core.shutdown(now))
        self._flush()
        self._poke()

    async def wait_all_closed(self) -> None:
        await self._all_closed.wait()

    def close(self) -> None:
        """Close every socket now, whatever state it is in (the last step of shutdown)."""
        self.stop_accepting()
        for link in list(self._links.values()):
            with contextlib.suppress(Exception):  # closing regardless is the point here
                self._lost(link)
            self._drop(link)
        self._poller.close()


class Thinkers:
    """Where the computer's moves are worked out: a worker process, one search at a time, at
    a lower priority than the server (nice 10: the pump, whose work is short and waited
    for, runs first when both want the CPU).

    A process, not a thread: the levels below perfect are pure Python and would hold the
    GIL (the strong level for up to 100 ms), stalling the pump at every switch interval;
    and the perfect level's numba and book (about 140 MiB) stay out of the server's memory.
    The process starts at the first move that needs it, or at ``start``; the perfect
    player's table stays warm in it from one move to the next.
    """

    def __init__(self) -> None:
        self._process: ProcessPoolExecutor | None = None

    def start(self, perfect: bool) -> None:
        """Start the process now, and with ``perfect`` load and compile the perfect player
        there (about 1 s; 3 s more the first time on a machine, for numba), before a move
        waits for it."""
        self._worker().submit(_warm_up_worker, perfect)

    async def move(self, request: ComputeMove, seed: int) -> tuple[int, str | None]:
        """The computer's column for ``request``, and what to log about it, if anything."""
        try:
            return await _answer(self._worker().submit(_worker_move, request, seed))
        except BrokenProcessPool:
            self._process = None  # the next move starts a new one
            raise

    def close(self) -> None:
        """Stop the process; the moves still waiting are dropped (their answers have nowhere
        to go). This waits for a search under way (0.2 s at most): without the wait, Python
        3.11 may fail at exit ("Bad file descriptor": its exit hook wakes the pool's manager
        thread through a pipe that thread is closing)."""
        if self._process is not None:
            self._process.shutdown(wait=True, cancel_futures=True)
            self._process = None

    def _worker(self) -> ProcessPoolExecutor:
        if self._process is None:
            self._process = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker
            )
        return self._process


async def _answer(future: Future[tuple[int, str | None]]) -> tuple[int, str | None]:
    """Wait for ``future`` without holding a thread: it wakes this task when it is done."""
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()

    def wake(_: object) -> None:
        with contextlib.suppress(trio.RunFinishedError):  # the server stopped meanwhile
            token.run_sync_soon(done.set)

    future.add_done_callback(wake)
    try:
        await done.wait()
    except trio.Cancelled:
        future.cancel()
        raise
    return future.result()


def _start_worker() -> None:
    """In the worker process: nice 10, and Ctrl-C left to the server (which stops it)."""
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(10)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@cache
def _perfect_player() -> PerfectPlayer:
    """In the worker process: the perfect player, loaded at its first move (or at
    ``start``), then kept (its table stays warm)."""
    return PerfectPlayer.load()


def _warm_up_worker(perfect: bool) -> None:
    if perfect:
        _perfect_player().warm_up()


def _worker_move(request: ComputeMove, seed: int) -> tuple[int, str | None]:
    """In the worker process: the computer's column, and a note for the log."""
    record = request.record
    position = position_from_moves(record)
    level = Level(request.level)
    if level is not Level.PERFECT:
        return choose(position, level, random.Random(seed)), None
    previous = position_from_moves(record[:-1]) if record else None
    decision = _perfect_player().decide(position, random.Random(seed), previous=previous)
    if decision.source is Source.FALLBACK:
        note = (
            f"the perfect player's search ran out of its budget after {record}; "
            "it played the strong level's move"
        )
        return decision.column, note
    return decision.column, None


def offer_perfect_level(config: Config) -> Config:
    """``config``, without the perfect level where numba or the book is not installed (said
    in the log). Looked up, not imported: the worker process imports them."""
    missing = [package for package in ("numba", "bitbully_databases") if not _installed(package)]
    if not missing:
        return config
    log.warning(
        "the perfect level is off: %s not installed: pip install 'connect4proto[perfect]'",
        " and ".join(missing),
    )
    levels = config.computer_levels - {Level.PERFECT}
    return dataclasses.replace(config, computer_levels=levels)


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules: hidden
        return False


def _hurried_move(request: ComputeMove, seed: int) -> int:
    """The casual level's move (about a millisecond, on the event loop): what the computer
    plays when too many of its moves already wait to be worked out."""
    return choose(position_from_moves(request.record), Level.CASUAL, random.Random(seed))


def _fallback_move(request: ComputeMove) -> int:
    """A legal move, the centre first: what the computer plays if its search failed."""
    position = position_from_moves(request.record)
    return next(c for c in ORDER if position.can_play(c))


def _log_event(event: Event) -> None:
    if isinstance(event, GameCreated):
        log.info("game %d: created by connection %d", event.game, event.connection)
    elif isinstance(event, PlayerJoined):
        log.info(
            "game %d: %s joined (connection %d)", event.game, event.player.value, event.connection
        )
    elif isinstance(event, SpectatorJoined):
        log.info("game %d: spectator joined (connection %d)", event.game, event.connection)
    elif isinstance(event, PlayerLeft):
        log.info(
            "game %d: %s away (connection %d ended)",
            event.game,
            event.player.value,
            event.connection,
        )
    elif isinstance(event, PlayerReturned):
        log.info(
            "game %d: %s back (connection %d)", event.game, event.player.value, event.connection
        )
    elif isinstance(event, SeatReplaced):
        log.info(
            "game %d: %s taken over from connection %d",
            event.game,
            event.player.value,
            event.connection,
        )
    elif isinstance(event, GameEnded):
        outcome = "draw" if event.winner is None else f"{event.winner.value} wins"
        log.info(
            "game %d: ended, %s (%s) after %d moves",
            event.game,
            outcome,
            event.reason.value,
            event.moves,
        )
    elif isinstance(event, RematchBegun):
        log.info("game %d: rematch, game %d of the match begins", event.game, event.round)
    elif isinstance(event, GameClosed):
        log.info("game %d: closed, nobody can come back to it", event.game)
    elif isinstance(event, ConnectionEnded):
        log.warning(
            "connection %d: closed (%s): %s", event.connection, event.fault.value, event.reason
        )


def open_listeners(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for ``host``:``port`` (every address it resolves to)."""
    listeners: list[socket.socket] = []
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    try:
        for family, type_, proto, _, address in infos:
            sock = socket.socket(family, type_, proto)
            listeners.append(sock)
            if sys.platform != "win32":
                # Restart at once on a port whose last connections linger in TIME_WAIT.
                # Not on Windows: there it lets a second server bind a port in use.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(socket.SOMAXCONN)
            if port == 0:  # one free port for every address: the first one chosen
                port = sock.getsockname()[1]
                break
    except BaseException:
        for sock in listeners:
            sock.close()
        raise
    return listeners


async def serve(
    driver: Driver,
    host: str,
    port: int,
    *,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    listeners: list[socket.socket] | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until SIGINT or SIGTERM, then close every connection within ``shutdown_timeout``
    (a second signal meanwhile stops waiting). ``listeners``: opened already (``main`` opens
    them first, to say what went wrong in one line); else opened here."""
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        if listeners is None:
            listeners = open_listeners(host, port)
        try:
            for listener in listeners:
                driver.add_listener(listener)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(driver.run)
                task_status.started(browser_address(listeners[0].getsockname()))
                async for signum in signals:
                    received = signal.Signals(signum).name
                    break
                count = driver.open_connections
                log.info(
                    "%s: shutting down: waiting up to %g s for %d connection%s to close"
                    " (a second Ctrl-C quits at once)",
                    received,
                    shutdown_timeout,
                    count,
                    "" if count == 1 else "s",
                )
                driver.shutdown()
                with trio.move_on_after(shutdown_timeout) as waited:
                    async with trio.open_nursery() as waiting:

                        async def closed() -> None:
                            await driver.wait_all_closed()
                            waiting.cancel_scope.cancel()

                        waiting.start_soon(closed)
                        async for signum in signals:
                            log.warning(
                                "%s again: quitting now, %d connections still open",
                                signal.Signals(signum).name,
                                driver.open_connections,
                            )
                            waiting.cancel_scope.cancel()
                            break
                if waited.cancelled_caught:
                    log.warning("%d connections did not close in time", driver.open_connections)
                nursery.cancel_scope.cancel()
        finally:
            driver.close()


def browser_address(bound: tuple[Any, ...]) -> str:
    """The address to open in a browser, for a socket bound to ``bound`` (its name): a
    wildcard host (every address) is not one, so the loopback address of its family stands
    for it."""
    host, port = bound[:2]
    if host == "0.0.0.0":
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def raise_open_file_limit() -> int | None:
    """Every connection is a descriptor: allow as many as the system lets us. The limit now
    in force, or None where there is none to raise (Windows)."""
    if resource is None:  # pragma: no cover - Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard
    if hard == resource.RLIM_INFINITY and sys.platform == "darwin":  # pragma: no cover
        wanted = MACOS_OPEN_MAX  # macOS refuses an infinite soft limit
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class _HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Every default in ``--help``, but for options whose help says it (a default of None)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:
            return action.help or ""
        return super()._get_help_string(action) or ""


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes in one line (``server.py: ...; see --help``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: 0 to 65535 (0 picks a free one)")
    return port


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds, 0 or more")
    return seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = Config()
    parser = _Parser(
        prog="server.py",
        description="Play Connect Four in the browser.",
        epilog="environment: PORT, the port when --port is not given; CONNECT4_POLLER, how "
        "sockets are watched: epoll (Linux), portable (trio's own waits: macOS, Windows) or "
        "auto, the default: epoll where there is one",
        formatter_class=_HelpWithDefaults,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (0.0.0.0 or :: for every address of the machine)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=None,
        help="port to listen on, 0 for a free one (default: $PORT, else 8000)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=DEFAULT_SHUTDOWN_TIMEOUT,
        help="seconds to wait for clients to close on shutdown (a second Ctrl-C stops waiting)",
    )
    parser.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="accept WebSocket handshakes only from pages of this origin, e.g. "
        "https://games.example.org (repeat for several; none: any origin, for local play)",
    )
    limits = parser.add_argument_group("limits")
    for name, help_text in LIMIT_FLAGS.items():
        default = getattr(defaults, name)
        limits.add_argument(
            "--" + name.replace("_", "-"),
            type=float if isinstance(default, float) else int,
            default=default,
            help=help_text,
        )
    args = parser.parse_args(argv)
    if args.port is None:  # read only now, so that a bad $PORT never breaks --help
        from_environment = os.environ.get("PORT", "8000")
        try:
            args.port = _port(from_environment)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"PORT={from_environment} in the environment: {exc}")
    try:
        args.config = config_from_args(args)
    except ValueError as exc:
        name, _, rest = str(exc).partition(" ")  # "max_headers must be ...": say the flag
        flag = "--" + name.replace("_", "-") if name in LIMIT_FLAGS else name
        parser.error(f"{flag} {rest}")
    return args


#: A flag for every limit of ``Config`` (``allowed_origins`` has its own, repeatable one).
LIMIT_FLAGS = {
    "max_connections": "most connections open at once (HTTP 503 beyond)",
    "max_message_size": "largest WebSocket message in bytes (close 1009 beyond)",
    "max_fragments": "most frames per WebSocket message (close 1009 beyond)",
    "max_head_size": "largest HTTP request head in bytes (431 beyond)",
    "max_line_size": "longest HTTP request line or header in bytes (414/431 beyond)",
    "max_headers": "most HTTP header fields (431 beyond)",
    "max_output_buffer": "bytes queued for one slow reader (close 1013 beyond)",
    "max_messages_per_second": "messages per connection per second (error, then 1008; 0: no limit)",
    "request_timeout": "seconds for an HTTP request head to arrive (408 beyond)",
    "ping_interval": "seconds of WebSocket silence before a ping",
    "ping_timeout": "seconds to wait for the pong before dropping the peer",
    "close_timeout": "seconds to wait for the peer's close frame",
    "seat_grace": "seconds a dropped player keeps the seat before the opponent may claim the win",
    "away_delay": "seconds before a page that closed with 1001 (a reload) is announced as away",
    "offer_interval": "seconds before a player may make the same offer (draw, rematch) again",
    "watchers_interval": "least seconds between two spectator counts told to a game",
    "bot_delay": "seconds the computer waits before it plays (a natural pause)",
    "max_log_events": "events of a game's log kept for resuming (a snapshot beyond)",
}


def config_from_args(args: argparse.Namespace) -> Config:
    """The validated limits from the command line (ValueError says which is wrong)."""
    limits = {name: getattr(args, name) for name in LIMIT_FLAGS}
    if limits["max_messages_per_second"] == 0:
        limits["max_messages_per_second"] = None
    return Config(**limits, allowed_origins=tuple(args.allowed_origin))


def listen_or_exit(host: str, port: int) -> list[socket.socket]:
    """``open_listeners``, or the reason it failed and what to do in one line, exit 2."""
    try:
        return open_listeners(host, port)
    except socket.gaierror:
        reason = (
            f"cannot find the address of --host {host}: check it "
            "(127.0.0.1 for this machine only, 0.0.0.0 for every address)"
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = (
                f"port {port} is in use on {host} (another server?): stop it, or choose "
                "another with --port"
            )
        elif exc.errno == errno.EACCES:
            reason = (
                f"not allowed to listen on port {port}: ports below 1024 need privileges; "
                "choose --port 8000, for example"
            )
        elif exc.errno == errno.EADDRNOTAVAIL:
            reason = f"--host {host} is not an address of this machine: check it"
        else:
            reason = f"cannot listen on {host} port {port}: {exc.strerror or exc}"
    sys.stderr.write(f"server.py: {reason}\n")
    sys.exit(2)


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = args.config
    try:
        poller = make_poller()
    except ValueError as exc:
        sys.stderr.write(f"server.py: {exc}\n")
        sys.exit(2)
    listeners = listen_or_exit(args.host, args.port)  # before anything slow: fail fast
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    open_files = raise_open_file_limit()
    if open_files is not None:
        log.info("open files: at most %d (each connection takes one)", open_files)
    config = offer_perfect_level(config)
    log.info("polling: %s", "epoll" if isinstance(poller, EpollPoller) else "portable (trio)")
    driver = Driver(GameServer(site=load_site(), new_key=new_key, config=config), poller=poller)
    driver.start_thinking()
    async with trio.open_nursery() as nursery:
        address = await nursery.start(
            partial(
                serve,
                driver,
                args.host,
                args.port,
                shutdown_timeout=args.shutdown_timeout,
                listeners=listeners,
            )
        )
        print(f"Connect Four is ready: open {address} in your browser.", flush=True)


if __name__ == "__main__":
    trio.run(main)
    sys.exit(0)
