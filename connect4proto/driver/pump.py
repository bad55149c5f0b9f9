"""The pump: one trio task moves bytes between every socket and the sans-IO core.

The sockets sit in one poller (``pollers``); each wake-up reads every ready socket once,
hands the bytes to the core, and writes what that produced for each connection with a single
non-blocking ``send``. A task and an ``await`` per connection or per message would cost more
than the WebSocket parsing (``benchmarks/README.md`` has the measurements behind this).
Bytes the kernel does not take wait in the connection's queue (bounded by
``Config.max_output_buffer``) until the socket is writable again.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import logging
import random
import socket
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol

import trio

from connect4proto import ComputeMove, ConnectionId, GameServer, Output, Site
from connect4proto.shared import StoreIntent
from connect4proto.solver.bots import Level

from .event_log import log_event
from .metrics import ServerMetrics
from .pollers import READ_OR_HUNG_UP, READABLE, WRITABLE, Poller, make_poller
from .thinkers import MAX_THINKING, Thinkers, fallback_move, hurried_move

__all__ = ["ACCEPT_PAUSE", "Driver"]

log = logging.getLogger("connect4proto")

RECEIVE_SIZE = 65536
#: Most connections accepted per wake-up: a burst of new connections waits in the kernel's
#: backlog rather than holding up the moves of games in progress.
MAX_ACCEPTS = 16
#: Out of file descriptors, accepting pauses this long (the listener would stay readable, and
#: the pump spin on it, until some connection closes).
ACCEPT_PAUSE = 0.1
#: A socket error means the peer is gone (reset, broken pipe, ...): not our bug.
_GONE = (ConnectionError, TimeoutError)
_WOULD_BLOCK = (BlockingIOError, InterruptedError)
_NOTHING_READY: list[tuple[int, int]] = []  # never changed: a turn only reads it


class StoreOutside(Protocol):
    """Where a core that shares its games sends its store intents (``SharedGames``)."""

    def attach(self, core: GameServer, answer: Callable[[Callable[[float], Output]], None]) -> None:
        """Give the answers to ``core`` through ``answer``."""

    def submit(self, intents: Sequence[StoreIntent]) -> None:
        """Carry ``intents`` out."""


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
        metrics: ServerMetrics | None = None,
        outside: StoreOutside | None = None,
    ) -> None:
        self.core = core
        #: Where the store intents of a core that shares its games go (``SharedGames``).
        self._outside = outside
        if outside is not None:
            outside.attach(core, self.from_outside)
        #: What ``/metrics`` shows (where the core's site has the page: see ``cli.main``).
        self.metrics = metrics = ServerMetrics() if metrics is None else metrics
        metrics.observe(core)
        self._processing = metrics.processing
        self._statistics = core.statistics  # read around every call into the core
        self._max_thinking = max_thinking
        self._waiting_to_think = 0  # requests for the computer's move not answered yet
        self._thinkers_pool = Thinkers()
        self._config = core.config
        self._poller = poller if poller is not None else make_poller()
        self._links: dict[int, _Link] = {}  # by file descriptor
        self._by_connection: dict[ConnectionId, _Link] = {}
        self._listeners: dict[int, socket.socket] = {}
        self._listener_sites: dict[int, Site | None] = {}  # None: the game's own
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

    def add_listener(self, sock: socket.socket, site: Site | None = None) -> None:
        """Accept connections on a listening socket (from the pump, as they come); ``site``:
        what they are served instead of the game (the metrics, on an operator's port)."""
        sock.setblocking(False)
        self._listeners[sock.fileno()] = sock
        self._listener_sites[sock.fileno()] = site
        self._poller.register(sock.fileno())

    def add_socket(self, sock: socket.socket, site: Site | None = None) -> None:
        """Serve a connected socket (from ``accept``, or a ``socketpair`` in tests)."""
        try:
            self._add_socket(sock, site)
        except Exception:
            # A bug of ours (or a socket already dead): this connection pays, not the server.
            log.exception("could not serve a new connection")
            link = self._links.get(sock.fileno())
            if link is not None:
                self._abandon(link)
            else:
                sock.close()

    def _add_socket(self, sock: socket.socket, site: Site | None) -> None:
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
            connection = core.open_connection(now, site)
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
        site = self._listener_sites[listener.fileno()]
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
            self.add_socket(sock, site)

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
        """Wait, take what is ready, turn; again.

        What a wake-up costs is what a move costs at human pace, so the wait is kept lean:

        - After a quiet turn (one ready socket or none), the pump waits at once: asking the
          poller again would find nothing, one system call per move for nothing. After a busy
          turn it lets trio run others first (a checkpoint), then takes what came meanwhile
          without waiting, so that a saturated server never pays for a wait.
        - One cancel scope serves wait after wait: its deadline is moved only when the next
          wake-up moves (rarely: it is the earliest of every connection's timers). A scope
          per wait costs more than the rest of the wait. It ends when its deadline passes or
          something outside the pump pokes it (``_poke``); a turn follows at once (the timers
          due run in it), and the next scope starts.
        """
        poller = self._poller
        busy = False
        while True:
            with trio.CancelScope() as scope:
                while True:
                    ready = _NOTHING_READY
                    if busy:
                        await trio.lowlevel.checkpoint()  # let signals and other tasks in
                        ready = poller.ready()
                    if not ready:
                        wake = self._next_wakeup()
                        if wake != scope.deadline:
                            scope.deadline = wake
                        self._wait_scope = scope
                        await poller.wait()
                        self._wait_scope = None
                        ready = poller.ready()
                    busy = len(ready) > 1
                    self._turn(ready)
            self._wait_scope = None
            ready = poller.ready()
            busy = len(ready) > 1
            self._turn(ready)

    def _next_wakeup(self) -> float:
        wake = self.core.next_deadline
        deadlines = self._deadlines
        if deadlines and (wake is None or deadlines[0][0] < wake):
            wake = deadlines[0][0]
        return min(self._accepting_again, float("inf") if wake is None else wake)

    def _resume_accepting(self) -> None:
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
        # Most turns have no timer due: the core is asked only when one is (``advance``
        # would find nothing), and only what waits is written, which is a wake-up's cost
        # less at human pace, where each move is a wake-up of its own.
        due = self.core.next_deadline
        if due is not None and due <= now:
            try:
                self._apply(self.core.advance(now))
            except Exception:  # a bug in a timer: log it, and keep serving everyone else
                log.exception("timers: unexpected error")
        deadlines = self._deadlines
        if deadlines and deadlines[0][0] <= now:
            self._expire(now)
        if now >= self._accepting_again:
            self._resume_accepting()
        if self._dirty:  # pings and timeouts, and what came from outside the pump
            self._flush()
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
            if mask & READ_OR_HUNG_UP:
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
        fresh, link.fresh = link.fresh, False
        connection = link.connection
        if connection is None:
            if not data:
                self._drop(link)  # draining: the peer closed too
            return  # what the peer sends after we are done is dropped
        statistics = self._statistics
        handshakes = statistics.handshakes
        started = time.perf_counter()
        try:
            output = self.core.receive_data(connection, data or None, self._now)
        except Exception:
            self._fail(link, connection)
            return
        spent = time.perf_counter() - started
        if statistics.handshakes != handshakes:
            self._processing["handshake"].observe(spent)
        else:
            self._processing["http" if fresh else "message"].observe(spent)
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

    def _lost(self, link: _Link, vanished: bool = True) -> None:
        """The socket failed (reset, ...; else, not ``vanished``, we end it ourselves): tell
        the core if it still knows it, and drop it."""
        connection = link.connection
        if connection is not None:
            link.pending.clear()
            self._apply(self.core.connection_lost(connection, self._now, vanished=vanished))
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
            log_event(event)
        if output.store:
            assert self._outside is not None  # only a core that shares its games asks
            self._outside.submit(output.store)
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
        asked = trio.current_time()
        how = "hurried" if hurried else "searched"
        try:
            if hurried:
                log.warning(
                    "game %d: %d moves of the computer wait to be worked out; it plays a quick one",
                    request.game,
                    self._waiting_to_think - 1,
                )
                column = hurried_move(request, seed)
            else:
                column, how = await self._work_out(request, seed)
        finally:
            self._waiting_to_think -= 1
        metrics = self.metrics
        metrics.thinking[request.level].observe(trio.current_time() - asked)
        metrics.computed[request.level, how] += 1
        self.from_outside(partial(self.core.computed, request, column))

    def from_outside(self, call: Callable[[float], Output]) -> None:
        """Give the core something from outside the pump (the computer's move, the store's
        answer to one of its intents), at the time it came: ``call`` is the core's method,
        given the time."""
        self._now = max(self._now, trio.current_time())
        wake = self._next_wakeup()
        self._apply(call(self._now))
        if self._next_wakeup() != wake:
            self._poke()  # the pump sleeps until another time now

    async def _work_out(self, request: ComputeMove, seed: int) -> tuple[int, str]:
        """The column, and how it was found (``metrics.HOW_COMPUTED``)."""
        try:
            column, note = await self._thinkers_pool.move(request, seed)
        except Exception:
            # A bug in a level, or a worker process that died, must not stop the server,
            # nor the game: it plays on (and a new worker process starts for the next move).
            log.exception("game %d: the computer failed to move; it plays a safe one", request.game)
            return fallback_move(request), "failed"
        if note is not None:
            log.warning("game %d: %s", request.game, note)
        return column, "searched"

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

    def _try_send(self, link: _Link, data: bytes) -> int | None:
        """What the kernel takes of ``data`` now (0: nothing, it is full); None: the peer is
        gone (noted, to settle once the output being written is all written)."""
        try:
            return link.sock.send(data)
        except _WOULD_BLOCK:
            return 0
        except _GONE:
            self._troubled.append((link, True))
            return None

    def _send(self, link: _Link, data: bytes) -> None:
        """Write at once what nothing waits before: the usual case, one ``send`` per output."""
        sent = self._try_send(link, data)
        if sent is None:
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
            sent = self._try_send(link, data)
            if sent is None:
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
        self.metrics.overflows += 1
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
        self._listener_sites.clear()
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
                self._lost(link, vanished=False)
            self._drop(link)
        self._poller.close()
