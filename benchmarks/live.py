"""Live benchmark machinery: a server subprocess on loopback, driven by a checking load client.

The server (``server.py`` or ``benchmarks/reference_server.py``) runs as a subprocess, pinned
to one core, with a raised RLIMIT_NOFILE; the load client runs in this process (asyncio, on
uvloop when installed, with picows: the frame parsing and masking are in C), pinned to the
other core. Every game is a full 42-move draw on new connections; every event a client receives
is checked (type, order, player, column, row): a lost, duplicated or reordered move, an
``error`` or ``win`` event, or a connection dropped mid-game is a failure of the run.

Server CPU is the process's CPU clock (``clock_gettime`` on the CPU-time clock of its PID: the
same count as utime + stime in ``/proc/PID/stat``, in nanoseconds instead of 10 ms ticks), peak
RSS is ``VmHWM`` from ``/proc/PID/status``, system calls come from ``strace -c -f``.

``benchmarks/run.py`` runs the whole suite; this module can also run one scenario by hand:

    python benchmarks/live.py [--server ours|reference] [--games 50] [--spectators 0]
                              [--duration 2] [--lockstep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar

import msgspec
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

try:
    import uvloop

    HAVE_UVLOOP = True
except ImportError:  # the client then runs on the default asyncio loop, somewhat slower
    HAVE_UVLOOP = False

ROOT = Path(__file__).resolve().parent.parent

#: Every game plays this sequence (red plays even indices): 42 moves, a draw, no four in a row.
DRAW = [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 2, 3, 2, 3, 2, 3, 3, 2, 3, 2, 3, 2,
        4, 5, 4, 5, 4, 5, 5, 4, 5, 4, 5, 4, 6, 6, 6, 6, 6, 6]  # fmt: skip
MOVES = len(DRAW)


def _expected_moves() -> list[tuple[str, int, int]]:
    heights = [0] * 7
    moves = []
    for index, column in enumerate(DRAW):
        moves.append(("red" if index % 2 == 0 else "yellow", column, heights[column]))
        heights[column] += 1
    return moves


#: (player, column, row) of every move of the game, in order.
EXPECTED = _expected_moves()
PLAY_PAYLOADS = [msgspec.json.encode({"type": "play", "column": column}) for column in range(7)]
INIT = b'{"type":"init"}'

#: The server runs on this core, the load client on the other one (when there are two).
SERVER_CPU = 0
CLIENT_CPU = 1

T = TypeVar("T")


# --- the servers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerKind:
    """How to start one of the servers under test."""

    name: str
    argv: tuple[str, ...]


OURS = ServerKind("ours", (sys.executable, "server.py", "--port", "0", "--log-level", "WARNING"))
REFERENCE = ServerKind(
    "reference", (sys.executable, "benchmarks/reference_server.py", "--port", "0")
)
SERVERS = {kind.name: kind for kind in (OURS, REFERENCE)}


def raise_nofile_limit() -> None:
    """Raise this process's soft limit on open files to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _prepare_child(cpu: int | None) -> None:  # runs in the child, before exec
    raise_nofile_limit()
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


#: The cores this process may use when imported (before ``pin_client`` narrows them).
_ALLOWED_CPUS = frozenset(os.sched_getaffinity(0))


def two_cores() -> bool:
    """Whether the server and the client can each have a core of their own."""
    return {SERVER_CPU, CLIENT_CPU} <= _ALLOWED_CPUS


def pin_client() -> None:
    """Pin this process (the load client) to the client's core, if there are two."""
    raise_nofile_limit()
    if two_cores():
        os.sched_setaffinity(0, {CLIENT_CPU})


class ServerProcess:
    """One server subprocess: started, listening, measured, stopped with SIGTERM."""

    def __init__(self, kind: ServerKind, *, pin: bool = True, start_timeout: float = 30) -> None:
        self.kind = kind
        self.url = ""  # ws://127.0.0.1:PORT/
        self.returncode: int | None = None
        self.stderr = ""
        self._cpu = SERVER_CPU if pin and two_cores() else None
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr_file: IO[bytes] | None = None
        self._clock = 0

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self._process = subprocess.Popen(
            self.kind.argv,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            preexec_fn=partial(_prepare_child, self._cpu),
        )
        try:
            line = self._read_line()
        except BaseException:
            self.stop()
            raise
        match = re.search(r"http://([^/\s]+)/", line)
        if match is None:  # it died, or printed something else: say what it wrote
            self.stop()
            raise RuntimeError(
                f"{self.kind.name} did not start: first line {line!r}, exit code"
                f" {self.returncode}, stderr: {self.stderr[-1000:]!r}"
            )
        self.url = f"ws://{match.group(1)}/"
        self._clock = ((~self.pid) << 3) | 2  # CPUCLOCK_SCHED of the whole process

    def _read_line(self) -> str:
        """The first line the server prints, or "" if none comes in time."""
        assert self._process is not None
        assert self._process.stdout is not None
        stdout = self._process.stdout
        ready, _, _ = select.select([stdout], [], [], self._start_timeout)
        return stdout.readline().decode(errors="replace") if ready else ""

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server has used so far."""
        try:
            return time.clock_gettime(self._clock)
        except OSError:  # no per-process CPU clocks: fall back to /proc ticks
            with open(f"/proc/{self.pid}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def status_kib(self, key: str) -> int:
        """A ``/proc/PID/status`` memory line (``VmRSS``, ``VmHWM``), in KiB."""
        with open(f"/proc/{self.pid}/status") as file:
            for line in file:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0  # a zombie: the server has exited (stop() records how)

    def settle(self, quiet: float = 0.05, timeout: float = 5.0) -> None:
        """Wait until the server has used no CPU for ``quiet`` seconds (closes processed)."""
        deadline = time.monotonic() + timeout
        before = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            after = self.cpu_seconds()
            if after - before < quiet * 0.02:
                return
            before = after

    def stop(self) -> None:
        """SIGTERM, wait, close the pipes; keep the exit code and the stderr text."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                self.returncode = process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                self.returncode = process.wait()
        finally:
            if process.stdout is not None:
                process.stdout.close()
            if self._stderr_file is not None:
                self._stderr_file.seek(0)
                self.stderr = self._stderr_file.read().decode(errors="replace")
                self._stderr_file.close()
                self._stderr_file = None

    def problems(self) -> list[str]:
        """What went wrong on the server's side: a bad exit, a traceback, error logs."""
        found = []
        if self.returncode not in (None, 0):
            found.append(f"{self.kind.name} exited with {self.returncode}")
        for line in self.stderr.splitlines():
            if any(word in line for word in ("Traceback", "ERROR", "CRITICAL", "Error")):
                found.append(f"{self.kind.name} stderr: {line.strip()[:200]}")
        return found


# --- the load client ----------------------------------------------------------------------------

RED, YELLOW, SPECTATOR, IDLE = 0, 1, 2, 3
ROLE_NAMES = ("red", "yellow", "spectator", "idle")
_decode = msgspec.json.Decoder().decode


class Conn(WSListener):
    """One client connection: hands every text frame to its ``Load``."""

    def __init__(self, load: Load, game: Game | None, role: int) -> None:
        super().__init__()
        self.load = load
        self.game = game
        self.role = role
        self.transport: WSTransport | None = None
        self.next_index = 0  # the index of the next play event this connection expects
        self.closing = False  # we said goodbye: the close and the disconnection are expected
        #: The reply to ``init``, for the connections that create a game.
        self.reply: asyncio.Future[dict[str, Any]] | None = None
        if role in (RED, IDLE):
            self.reply = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.load.open_connections += 1

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.TEXT:
            self.load.on_text(self, frame.get_payload_as_bytes())
        elif kind == WSMsgType.CLOSE:
            if not self.closing:
                self.load.fail(self, f"closed by the server: {frame.get_close_code()}")
                self.closing = True
            if not transport.is_close_frame_sent:
                transport.send_close(WSCloseCode.OK)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.load.open_connections -= 1
        if not self.closing:
            self.load.fail(self, "disconnected by the server")
            self.closing = True
        self.load.disconnected.set()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_close_frame_sent:
            self.transport.send_close(WSCloseCode.OK)

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, payload)


class Game:
    """One game: red, yellow, spectators; the state of each move's delivery."""

    def __init__(self, load: Load, spectators: int) -> None:
        self.load = load
        self.spectators = spectators
        self.participants = 2 + spectators
        self.red = Conn(load, self, RED)
        self.conns: list[Conn] = [self.red]
        self.sent_at = [0.0] * MOVES
        self.receipts = [0] * MOVES
        self.spectator_receipts = [0] * MOVES
        self.done = 0
        self.finished = asyncio.get_running_loop().create_future()
        self.cpu_start = 0.0
        self.client_cpu_start = 0.0

    def play(self, conn: Conn, index: int) -> None:
        self.sent_at[index] = time.perf_counter()
        conn.send(PLAY_PAYLOADS[DRAW[index]])

    def player(self, index: int) -> Conn:
        return self.red if index % 2 == 0 else self.conns[1]


@dataclass
class LoadConfig:
    games: int = 50
    spectators: int = 0
    duration: float = 2.0
    #: One move at a time per game: the next move waits until the last one reached everyone
    #: (for the fan-out timing); otherwise each player moves as soon as it sees the echo.
    lockstep: bool = False
    connect_concurrency: int = 64
    drain_timeout: float = 20.0


@dataclass
class LoadResult:
    server: str
    config: LoadConfig
    wall: float = 0.0  # seconds of the measured window
    games: int = 0  # games played to the end
    moves: int = 0  # plays echoed to their sender
    messages: int = 0  # text frames received by all clients (every type)
    latencies: list[float] = field(default_factory=list)  # play sent -> its echo, seconds
    fanout: list[float] = field(default_factory=list)  # play sent -> last spectator, seconds
    failures: list[str] = field(default_factory=list)  # the first few
    failure_count: int = 0
    server_cpu: float = 0.0  # seconds, over the window
    other_cpu: float = 0.0  # seconds of every other process on the machine, over the window
    client_cpu: float = 0.0  # seconds, over the window
    play_cpu: float = 0.0  # lockstep: server seconds from move 1 sent to move 42 delivered
    play_client_cpu: float = 0.0  # lockstep: the load client's seconds in that span
    play_messages: int = 0  # lockstep: play events delivered in that span
    peak_rss_kib: int = 0
    server_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure_count == 0 and self.moves > 0 and not self.server_problems

    def per_move_us(self) -> float:
        return self.server_cpu / self.moves * 1e6 if self.moves else float("nan")

    def per_message_us(self) -> float:
        return self.server_cpu / self.messages * 1e6 if self.messages else float("nan")

    def per_delivery_us(self) -> float:
        """Lockstep: server CPU per play event delivered, moves 2-42 only."""
        return self.play_cpu / self.play_messages * 1e6 if self.play_messages else float("nan")

    def client_per_delivery_us(self) -> float:
        """Lockstep: the load client's CPU per play event received, moves 2-42 only."""
        if not self.play_messages:
            return float("nan")
        return self.play_client_cpu / self.play_messages * 1e6

    def latency_ms(self, quantile: float) -> float:
        return _quantile(self.latencies, quantile) * 1e3

    def fanout_ms(self, quantile: float) -> float:
        return _quantile(self.fanout, quantile) * 1e3

    def summary(self) -> str:
        config = self.config
        text = (
            f"{self.server:9} {config.games}x{config.spectators}"
            f"{' lockstep' if config.lockstep else ''}: {self.games} games, {self.moves} moves"
            f" in {self.wall:.2f} s ({self.moves / self.wall:.0f}/s),"
            f" {self.messages / self.wall:.0f} msg/s; server {self.per_move_us():.1f} us/move"
            f" {self.per_message_us():.2f} us/msg ({self.server_cpu / self.wall:.0%} CPU);"
            f" client {self.client_cpu / self.wall:.0%} CPU;"
            f" other processes {self.other_cpu / self.wall:.0%} CPU;"
            f" latency p50 {self.latency_ms(0.5):.2f} p99 {self.latency_ms(0.99):.2f} ms"
        )
        if self.fanout and config.lockstep:
            text += (
                f"; last spectator p50 {self.fanout_ms(0.5):.2f} ms,"
                f" {self.per_delivery_us():.2f} us/delivery"
                f" (client {self.client_per_delivery_us():.2f})"
            )
        if self.failure_count:
            text += f"; {self.failure_count} FAILURES: {self.failures[:3]}"
        if self.server_problems:
            text += f"; SERVER: {self.server_problems[:3]}"
        return text


def _quantile(values: list[float], quantile: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


class Load:
    """The load client: plays games against one server and checks every event."""

    def __init__(self, url: str, config: LoadConfig, server_cpu: Callable[[], float]) -> None:
        self.url = url
        self.config = config
        self.server_cpu = server_cpu
        self.result = LoadResult(server="", config=config)
        self.open_connections = 0
        self.disconnected = asyncio.Event()
        self.stopping = False
        self.connect_slots = asyncio.Semaphore(config.connect_concurrency)
        #: Payloads already checked, by move index: the same bytes need no second decoding.
        self.checked: list[bytes] = [b""] * MOVES
        self.everyone: set[Conn] = set()

    # The hot path: one call per text frame received.
    def on_text(self, conn: Conn, payload: bytes) -> None:
        result = self.result
        result.messages += 1
        index = conn.next_index
        if index >= MOVES or payload != self.checked[index]:
            try:
                message = _decode(payload)
                kind = message["type"] if type(message) is dict else None
            except (msgspec.DecodeError, KeyError):
                self.fail(conn, f"not a JSON event: {payload[:100]!r}")
                return
            if kind != "play":
                self.on_other(conn, kind, message)
                return
            if conn.role == IDLE:
                self.fail(conn, f"unexpected play event: {message}")
                return
            got = (message.get("player"), message.get("column"), message.get("row"))
            if index >= MOVES:
                self.fail(conn, f"a play after the last move: {message}")
                return
            if got != EXPECTED[index]:
                lost = got in EXPECTED[index + 1 :]
                self.fail(
                    conn,
                    f"move {index + 1}: expected {EXPECTED[index]}, got {got}"
                    f"{' (a move lost or reordered)' if lost else ''}",
                )
                return
            self.checked[index] = payload
        # A correct play event for move ``index``.
        conn.next_index = index + 1
        game = conn.game
        assert game is not None
        game.receipts[index] += 1
        role = conn.role
        if role == SPECTATOR:
            game.spectator_receipts[index] += 1
            if game.spectator_receipts[index] == game.spectators and index > 0:
                result.fanout.append(time.perf_counter() - game.sent_at[index])
        elif role == index % 2:  # the echo of this player's own move
            result.latencies.append(time.perf_counter() - game.sent_at[index])
            result.moves += 1
        elif not self.config.lockstep and index + 1 < MOVES:
            game.play(conn, index + 1)  # the opponent moved: our turn
        if self.config.lockstep and game.receipts[index] == game.participants:
            self.everyone_has(game, index)
        if index + 1 == MOVES:
            game.done += 1
            if game.done == game.participants and not game.finished.done():
                game.finished.set_result(None)

    def everyone_has(self, game: Game, index: int) -> None:
        """Lockstep: move ``index`` reached everyone; play the next one."""
        if index == 0:  # every spectator is now registered: the broadcasts start
            game.cpu_start = self.server_cpu()
            game.client_cpu_start = time.process_time()
        if index + 1 < MOVES:
            game.play(game.player(index + 1), index + 1)
        else:
            self.result.play_cpu += self.server_cpu() - game.cpu_start
            self.result.play_client_cpu += time.process_time() - game.client_cpu_start
            self.result.play_messages += (MOVES - 1) * game.participants

    def on_other(self, conn: Conn, kind: object, message: Any) -> None:
        if kind == "init" and conn.reply is not None and not conn.reply.done():
            conn.reply.set_result(message)
        elif kind in ("error", "win", "init", None):
            self.fail(conn, f"unexpected event: {message}")
        # Anything else is an extension event of ours ("joined", "left", "draw"): skipped.

    def fail(self, conn: Conn, reason: str) -> None:
        self.result.failure_count += 1
        if len(self.result.failures) < 10:
            self.result.failures.append(f"{ROLE_NAMES[conn.role]}: {reason}")
        if conn.game is not None and not conn.game.finished.done():
            conn.game.finished.set_exception(RuntimeError(reason))
        if conn.reply is not None and not conn.reply.done():
            conn.reply.set_exception(RuntimeError(reason))

    async def connect(self, game: Game | None, role: int, first: bytes) -> Conn:
        """Open one connection and send its first message."""
        async with self.connect_slots:
            conn = Conn(self, game, role)
            self.everyone.add(conn)
            await self.open(conn)
        conn.send(first)
        return conn

    async def open(self, conn: Conn) -> None:
        """Connect and shake hands (on uvloop, with its own connect rather than aiofastnet's)."""
        fastnet = False if HAVE_UVLOOP else None
        await ws_connect(
            lambda: conn, self.url, websocket_handshake_timeout=20, use_aiofastnet=fastnet
        )

    async def init(self, conn: Conn) -> dict[str, Any]:
        assert conn.reply is not None
        return await asyncio.wait_for(conn.reply, self.config.drain_timeout)

    async def play_game(self) -> None:
        """One game from the first connection to the last close."""
        game = Game(self, self.config.spectators)
        red = game.red
        self.everyone.add(red)
        try:
            async with self.connect_slots:
                await self.open(red)
            red.send(INIT)
            keys = await self.init(red)
            join = msgspec.json.encode({"type": "init", "join": keys["join"]})
            watch = msgspec.json.encode({"type": "init", "watch": keys["watch"]})
            others = await asyncio.gather(
                self.connect(game, YELLOW, join),
                *(self.connect(game, SPECTATOR, watch) for _ in range(game.spectators)),
            )
            game.conns.extend(others)
            game.play(red, 0)
            await asyncio.wait_for(game.finished, self.config.drain_timeout)
            self.result.games += 1
        except Exception as exc:  # a failed run, not a crash of the harness
            if not isinstance(exc, RuntimeError):  # RuntimeError: already counted by fail()
                self.fail(red, f"game aborted: {exc!r}")
        finally:
            _consume(game.finished)
            _consume(red.reply)
            for conn in reversed(game.conns):  # spectators first, as in "the show is over"
                conn.close()

    async def slot(self) -> None:
        while not self.stopping:
            await self.play_game()
            if self.result.failure_count:
                break

    async def close_everyone(self) -> None:
        """Wait until every connection is gone; force the stragglers."""
        for conn in self.everyone:
            conn.close()
            _consume(conn.reply)
        deadline = time.monotonic() + self.config.drain_timeout
        while self.open_connections > 0 and time.monotonic() < deadline:
            self.disconnected.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.disconnected.wait(), 0.5)
        for conn in self.everyone:
            if conn.transport is not None and not conn.transport.is_disconnected:
                if conn.role != IDLE:
                    self.fail(conn, "still connected at the end")
                conn.transport.disconnect(graceful=False)
        await asyncio.sleep(0)
        self.everyone.clear()

    async def run(self) -> LoadResult:
        slots = [asyncio.create_task(self.slot()) for _ in range(self.config.games)]
        try:
            await asyncio.sleep(self.config.duration)
        finally:
            self.stopping = True
            await asyncio.gather(*slots, return_exceptions=True)
            await self.close_everyone()
        return self.result


# --- running a scenario -------------------------------------------------------------------------


def _consume(future: asyncio.Future[Any] | None) -> None:
    """Cancel a pending future, or mark its exception as seen (no "never retrieved" log)."""
    if future is None:
        return
    if not future.done():
        future.cancel()
    elif not future.cancelled():
        future.exception()


def _run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    if HAVE_UVLOOP:
        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


@contextlib.contextmanager
def _client_cpu(result: LoadResult) -> Iterator[None]:
    before = resource.getrusage(resource.RUSAGE_SELF)
    yield
    after = resource.getrusage(resource.RUSAGE_SELF)
    result.client_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def machine_busy_seconds() -> float:
    """CPU time of the whole machine, all cores, not idle (stolen time counts as busy)."""
    with open("/proc/stat") as file:
        user, nice, system, _idle, _iowait, irq, softirq, steal = file.readline().split()[1:9]
    ticks = sum(int(value) for value in (user, nice, system, irq, softirq, steal))
    return ticks / os.sysconf("SC_CLK_TCK")


def run_load(server: ServerProcess, config: LoadConfig) -> LoadResult:
    """Play ``config`` against a running server; measure it over the whole window."""
    server.settle()
    busy_before = machine_busy_seconds()
    cpu_before = server.cpu_seconds()
    load = Load(server.url, config, server.cpu_seconds)
    result = load.result
    result.server = server.kind.name
    start = time.perf_counter()
    with _client_cpu(result):
        _run_async(load.run())
        server.settle()
    result.wall = time.perf_counter() - start
    result.server_cpu = server.cpu_seconds() - cpu_before
    busy = machine_busy_seconds() - busy_before
    result.other_cpu = max(0.0, busy - result.server_cpu - result.client_cpu)
    result.peak_rss_kib = server.status_kib("VmHWM")
    return result


def measure_load(kind: ServerKind, config: LoadConfig) -> LoadResult:
    """A fresh server, one load run, the server stopped (its problems recorded)."""
    with ServerProcess(kind) as server:
        result = run_load(server, config)
    result.server_problems = server.problems()
    return result


@dataclass
class IdleResult:
    server: str
    connections: int
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    failures: list[str] = field(default_factory=list)
    server_problems: list[str] = field(default_factory=list)

    @property
    def per_connection_kib(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.connections

    @property
    def ok(self) -> bool:
        return not self.failures and not self.server_problems


async def _idle(server: ServerProcess, connections: int, result: IdleResult) -> None:
    config = LoadConfig(games=0, duration=0)
    load = Load(server.url, config, server.cpu_seconds)
    try:
        # Warm up (first-connection allocations, imports), then measure from a quiet server.
        conns = await asyncio.gather(*(load.connect(None, IDLE, INIT) for _ in range(20)))
        await asyncio.gather(*(load.init(conn) for conn in conns))
        await load.close_everyone()
        await asyncio.sleep(0.2)
        result.rss_before_kib = server.status_kib("VmRSS")
        conns = await asyncio.gather(*(load.connect(None, IDLE, INIT) for _ in range(connections)))
        replies = await asyncio.gather(*(load.init(conn) for conn in conns))
        if not all(reply.get("type") == "init" for reply in replies):
            result.failures.append("an init without its reply")
        await asyncio.sleep(0.2)
        result.rss_after_kib = server.status_kib("VmRSS")
    except (OSError, RuntimeError, TimeoutError) as exc:
        result.failures.append(repr(exc))
    finally:
        await load.close_everyone()
        result.failures.extend(load.result.failures)


def measure_idle(kind: ServerKind, connections: int) -> IdleResult:
    """RSS growth of a fresh server per open idle WebSocket that has sent ``init``."""
    result = IdleResult(server=kind.name, connections=connections)
    with ServerProcess(kind) as server:
        _run_async(_idle(server, connections, result))
    result.server_problems = server.problems()
    return result


@dataclass
class SyscallResult:
    server: str
    moves: int
    syscalls: int
    top: list[tuple[str, int]]  # the most frequent calls

    @property
    def per_move(self) -> float:
        return self.syscalls / self.moves if self.moves else float("nan")


def strace_available() -> bool:
    try:
        done = subprocess.run(["strace", "-V"], capture_output=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def measure_syscalls(kind: ServerKind, config: LoadConfig) -> SyscallResult | None:
    """``strace -c -f`` attached to a fresh server for one load run: calls per move."""
    with ServerProcess(kind) as server, tempfile.NamedTemporaryFile("w+") as output:
        strace = subprocess.Popen(
            ["strace", "-c", "-f", "-o", output.name, "-p", str(server.pid)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            assert strace.stderr is not None
            attached = strace.stderr.readline()  # "strace: Process N attached"
            if b"attached" not in attached:
                return None
            load = Load(server.url, config, server.cpu_seconds)
            result = _run_async(load.run())
        finally:
            strace.send_signal(signal.SIGINT)
            try:
                strace.wait(timeout=20)
            except subprocess.TimeoutExpired:
                strace.kill()
                strace.wait()
            if strace.stderr is not None:
                strace.stderr.close()
        report = Path(output.name).read_text()
    calls = []
    total = 0
    for line in report.splitlines():
        fields = line.split()
        if len(fields) < 5 or not fields[0][0].isdigit() or not fields[3].isdigit():
            continue  # headings, rulers
        if fields[-1] == "total":
            total = int(fields[3])
        else:
            calls.append((fields[-1], int(fields[3])))
    if not total or result.failure_count:
        return None
    calls.sort(key=lambda call: -call[1])
    return SyscallResult(kind.name, result.moves, total, calls[:5])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one live scenario against one server.")
    parser.add_argument("--server", choices=sorted(SERVERS), default="ours")
    parser.add_argument("--games", type=int, default=50)
    parser.add_argument("--spectators", type=int, default=0)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--lockstep", action="store_true")
    parser.add_argument("--idle", type=int, default=0, help="measure N idle connections instead")
    parser.add_argument("--strace", action="store_true", help="count system calls instead")
    args = parser.parse_args()
    pin_client()
    kind = SERVERS[args.server]
    config = LoadConfig(args.games, args.spectators, args.duration, args.lockstep)
    if args.idle:
        idle = measure_idle(kind, args.idle)
        print(f"{kind.name}: {idle.per_connection_kib:.2f} KiB per idle connection", idle)
    elif args.strace:
        print(measure_syscalls(kind, config))
    else:
        print(measure_load(kind, config).summary())


if __name__ == "__main__":
    main()
