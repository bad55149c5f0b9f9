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
    python benchmarks/live.py --beside perfect|strong|casual|beginner [--games 50] [--bots 20]
                              [--duration 5] [--rounds 2]

``--beside LEVEL`` (ours only: the reference server has no computer opponent) plays human-paced
games (each move after a pause of 100-300 ms, seeded) for the whole run, with bot games of that
level beside them in every other phase (each answering the computer's move at once, with the
server's ``--bot-delay 0``): the move latency of the human games without and with the bots,
phases alternated so that the machine's noise falls on both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re

try:
    import resource
except ImportError:  # Windows: the benchmarks need Linux, but the tests must collect
    resource = None  # type: ignore[assignment]
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
#: Ours on the portable poller (what macOS and Windows get), on Linux: env execs the server,
#: so that the process measured is the server's.
OURS_PORTABLE = ServerKind("portable", ("/usr/bin/env", "CONNECT4_POLLER=portable", *OURS.argv))
SERVERS = {kind.name: kind for kind in (OURS, REFERENCE, OURS_PORTABLE)}


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
_ALLOWED_CPUS = frozenset(
    os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
)  # (importable elsewhere, so that the test suite collects on macOS and Windows)


def _ticked_cpu_seconds(pid: int) -> float:
    """A process's CPU time (user + system) from ``/proc/PID/stat``, counted in clock ticks."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()  # after the name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
            # A server being measured is never traced (the test suite runs under coverage).
            env={k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")},
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
            return _ticked_cpu_seconds(self.pid)

    def status_kib(self, key: str) -> int:
        """A ``/proc/PID/status`` memory line (``VmRSS``, ``VmHWM``), in KiB."""
        with open(f"/proc/{self.pid}/status") as file:
            for line in file:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0  # a zombie: the server has exited (stop() records how)

    def settle(self, quiet: float = 0.05, timeout: float = 5.0) -> None:
        """Wait until the server and its child processes have used no CPU for ``quiet``
        seconds (closes processed; our computer's worker process warmed up: it loads and
        compiles the perfect player at start, about a second of CPU on the server's core,
        which would otherwise fall in the first run's window and slow the server beside it)."""
        deadline = time.monotonic() + timeout
        before = self._tree_cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            after = self._tree_cpu_seconds()
            if after - before < quiet * 0.02:
                return
            before = after

    def _tree_cpu_seconds(self) -> float:
        """The server's CPU time and its children's (theirs in clock ticks, from ``/proc``)."""
        total = self.cpu_seconds()
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as file:
                children = file.read().split()
        except OSError:
            return total
        for child in children:
            with contextlib.suppress(OSError):  # it ended meanwhile
                total += _ticked_cpu_seconds(int(child))
        return total

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

RED, YELLOW, SPECTATOR, IDLE, BOT = 0, 1, 2, 3, 4
ROLE_NAMES = ("red", "yellow", "spectator", "idle", "bot game")
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
        pause = self.load.config.pause
        if pause is None:
            self.send(conn, index)
        else:  # a person thinks first; the latency counts from the real send
            delay = self.load.random.uniform(*pause)
            asyncio.get_running_loop().call_later(delay, self.send, conn, index)

    def send(self, conn: Conn, index: int) -> None:
        if conn.closing:
            return  # the run ended while this player was thinking
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
    #: Human pace: each move after a pause drawn uniformly from this range (seconds), so
    #: that a wake-up of the server handles about one move; None: at once (saturation).
    pause: tuple[float, float] | None = None
    seed: int = 7


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

    def __init__(
        self,
        url: str,
        config: LoadConfig,
        server_cpu: Callable[[], float],
        urls: tuple[str, ...] = (),
    ) -> None:
        self.url = url
        #: Processes sharing their games (``scale_out.py``): each role connects to its own,
        #: red to the first, yellow to the second (spectators to the first again).
        self.urls = urls or (url,)
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
        self.random = random.Random(config.seed)  # the pauses of human pace

    # The hot path: one call per text frame received.
    def on_text(self, conn: Conn, payload: bytes) -> None:
        result = self.result
        result.messages += 1
        index = conn.next_index
        if index >= MOVES or payload != self.checked[index]:
            event = self.decode(conn, payload)
            if event is None:
                return
            message, kind = event
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

    def decode(self, conn: Conn, payload: bytes) -> tuple[Any, object] | None:
        """The event and its type (None if it has none); None, the failure recorded, if
        it is not JSON."""
        try:
            message = _decode(payload)
            return message, (message["type"] if type(message) is dict else None)
        except (msgspec.DecodeError, KeyError):
            self.fail(conn, f"not a JSON event: {payload[:100]!r}")
            return None

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
        url = self.urls[conn.role % len(self.urls)]
        await ws_connect(lambda: conn, url, websocket_handshake_timeout=20, use_aiofastnet=fastnet)

    async def init(self, conn: Conn) -> dict[str, Any]:
        assert conn.reply is not None
        return await asyncio.wait_for(conn.reply, self.config.drain_timeout)

    def new_game(self) -> Game:
        return Game(self, self.config.spectators)

    async def play_game(self) -> None:
        """One game from the first connection to the last close."""
        game = self.new_game()
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
    server.settle(quiet=0.25, timeout=20.0)  # started and warm, children included
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


# --- human-paced games beside bot games -----------------------------------------------------------
#
# Issue 11: while the computer thinks (in the server's one worker thread), the moves of the
# other games must not slow down. Human-paced games (every move after a pause of 100-300 ms)
# play for the whole run; bot games, each a client playing the computer and answering its
# every move at once, are switched on and off: phases without and with them alternate, so the
# machine's noise falls on both conditions alike. A human move counts for the phase it was
# sent and echoed in; moves that straddle a change of phase are left out, and so is the drain
# after each phase with bots (the computer finishing the searches already asked for).

LEVELS = ("beginner", "casual", "strong", "perfect")
WITHOUT, WITH = 0, 1  # the two conditions
CONDITIONS = ("without bots", "with bots")
GAP = -1  # the phase between measured phases: warm-up, drain, the end

#: The server as the issue's benchmark runs it: the computer answers at once (no natural
#: pause), and no per-connection message rate: a bot game against a fast level sends more
#: than 50 moves a second, and the point is to keep the thinking thread busy.
OURS_BOTS_AT_ONCE = ServerKind(
    "ours", (*OURS.argv, "--bot-delay", "0", "--max-messages-per-second", "0")
)


class Cut(RuntimeError):
    """A game still going when the run ends: closed as it stands, not a failure."""


@dataclass
class BesideConfig:
    humans: int = 50  # human-paced games (two clients each)
    bots: int = 20  # bot games beside them (one client each)
    level: str = "perfect"
    seconds: float = 5.0  # of each phase
    rounds: int = 2  # phases without then with the bots, this many times
    pause: tuple[float, float] = (0.1, 0.3)  # a human's pause before each move, uniform
    seed: int = 11
    warm_up_timeout: float = 30.0  # the perfect player's warm-up (numba) comes first
    drain_timeout: float = 30.0

    def schedule(self) -> list[int]:
        return [WITHOUT, WITH] * self.rounds


@dataclass
class PhaseResult:
    condition: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # human moves, sent -> echo
    bot_moves: int = 0  # the computer's moves received by the bot games
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    other_cpu: float = 0.0

    def latency_ms(self, quantile: float) -> float:
        return _quantile(self.latencies, quantile) * 1e3


@dataclass
class BesideResult:
    config: BesideConfig
    human: LoadResult  # every human move's checks and failures (and the bot games' failures)
    phases: list[PhaseResult]
    bot_games: int = 0  # bot games played to their end
    bot_moves: int = 0  # the computer's moves received in all, warm-up and drains included
    server_problems: list[str] = field(default_factory=list)

    def of(self, condition: int) -> list[PhaseResult]:
        return [phase for phase in self.phases if phase.condition == condition]

    def latencies(self, condition: int) -> list[float]:
        return [latency for phase in self.of(condition) for latency in phase.latencies]

    def latency_ms(self, condition: int, quantile: float) -> float:
        return _quantile(self.latencies(condition), quantile) * 1e3

    def seconds(self, condition: int) -> float:
        return sum(phase.seconds for phase in self.of(condition))

    def share(self, condition: int, measure: Callable[[PhaseResult], float]) -> float:
        """A CPU figure of the condition's phases, as a share of one core."""
        seconds = self.seconds(condition)
        return sum(measure(phase) for phase in self.of(condition)) / seconds if seconds else 0.0

    def moves_per_s(self, condition: int) -> float:
        """The human games' moves counted in the condition, per second of it."""
        seconds = self.seconds(condition)
        return len(self.latencies(condition)) / seconds if seconds else 0.0

    def bot_moves_per_s(self) -> float:
        seconds = self.seconds(WITH)
        return sum(phase.bot_moves for phase in self.of(WITH)) / seconds if seconds else 0.0

    @property
    def ok(self) -> bool:
        return (
            self.human.failure_count == 0
            and not self.server_problems
            and all(self.latencies(condition) for condition in (WITHOUT, WITH))
            and self.bot_moves_per_s() > 0
        )

    def summary(self) -> str:
        config = self.config
        text = f"{config.humans} human-paced games, {config.bots} {config.level} bot games:"
        for condition in (WITHOUT, WITH):
            text += (
                f" {CONDITIONS[condition]}: {len(self.latencies(condition))} moves,"
                f" p50 {self.latency_ms(condition, 0.5):.2f} p99"
                f" {self.latency_ms(condition, 0.99):.2f} ms,"
                f" server {self.share(condition, lambda p: p.server_cpu):.0%} CPU,"
                f" other processes {self.share(condition, lambda p: p.other_cpu):.0%};"
            )
        each = ", ".join(f"{phase.latency_ms(0.99):.1f}" for phase in self.phases)
        text += (
            f" bot moves {self.bot_moves_per_s():.0f}/s, {self.bot_games} bot games ended;"
            f" p99 of each phase (ms): {each}"
        )
        if self.human.failure_count:
            text += f"; {self.human.failure_count} FAILURES: {self.human.failures[:3]}"
        if self.server_problems:
            text += f"; SERVER: {self.server_problems[:3]}"
        return text


class PacedGame(Game):
    """A game of two people: each move after a pause, timed from when it is really sent."""

    def __init__(self, load: PacedLoad) -> None:
        super().__init__(load, 0)
        self.paced = load
        self.sent_phase = [GAP] * MOVES
        load.live_games.add(self)
        self.finished.add_done_callback(lambda _: load.live_games.discard(self))

    def play(self, conn: Conn, index: int) -> None:
        load = self.paced
        if index == 0:
            load.game_started()
        low, high = load.beside.pause
        load.loop.call_later(load.random.uniform(low, high), self.send_move, conn, index)

    def send_move(self, conn: Conn, index: int) -> None:
        if conn.closing or self.paced.stopping:
            return
        self.sent_phase[index] = self.paced.phase
        super().play(conn, index)


class BotConn(Conn):
    """A bot game's only client: red against the computer, any legal column at once."""

    def __init__(self, load: PacedLoad, chance: random.Random) -> None:
        super().__init__(load, None, BOT)
        self.chance = chance
        self.heights = [0] * 7
        self.cells: dict[str, set[tuple[int, int]]] = {"red": set(), "yellow": set()}
        self.my_turn = False  # the computer has answered; we move when the bots run
        self.thinking = False  # our move is sent; the computer's answer is awaited
        self.over: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def placed(self, player: str, column: int, row: int) -> bool:
        """Record a move; whether it ended the game (four in a row, or a full board)."""
        self.heights[column] = row + 1
        cells = self.cells[player]
        cells.add((column, row))
        if all(height == 6 for height in self.heights):
            return True
        for step_column, step_row in ((1, 0), (0, 1), (1, 1), (1, -1)):
            line = 1
            for sign in (1, -1):
                at_column, at_row = column + sign * step_column, row + sign * step_row
                while (at_column, at_row) in cells:
                    line += 1
                    at_column, at_row = at_column + sign * step_column, at_row + sign * step_row
            if line >= 4:
                return True
        return False

    def legal_column(self) -> int:
        return self.chance.choice([column for column in range(7) if self.heights[column] < 6])


class PacedLoad(Load):
    """Human-paced games for the whole run, and bot games in the phases with bots."""

    def __init__(self, url: str, config: BesideConfig, server_cpu: Callable[[], float]) -> None:
        games = LoadConfig(games=config.humans, duration=0, drain_timeout=config.drain_timeout)
        super().__init__(url, games, server_cpu)
        self.result.server = "ours"
        self.beside = config
        self.loop = asyncio.get_running_loop()
        self.random = random.Random(config.seed)
        self.phase = GAP  # the index of the phase under way in the schedule
        self.phases = [PhaseResult(condition) for condition in config.schedule()]
        self.live_games: set[PacedGame] = set()
        self.started_games = 0
        self.all_started = asyncio.Event()
        self.bots_run = asyncio.Event()
        self.bot_conns: set[BotConn] = set()
        self.thinking = 0  # bot games waiting for the computer's move
        self.computer_idle = asyncio.Event()
        self.computer_idle.set()
        self.first_answer = asyncio.Event()
        self.bot_games = 0
        self.bot_moves = 0
        self.bot_init = msgspec.json.encode({"type": "init", "v": 0, "bot": config.level})

    def new_game(self) -> Game:
        return PacedGame(self)

    def game_started(self) -> None:
        self.started_games += 1
        if self.started_games >= self.beside.humans:
            self.all_started.set()

    def on_text(self, conn: Conn, payload: bytes) -> None:
        if conn.role == BOT:
            assert isinstance(conn, BotConn)
            self.on_bot_text(conn, payload)
            return
        latencies = self.result.latencies
        count = len(latencies)
        super().on_text(conn, payload)  # every event checked, as in every other scenario
        if len(latencies) > count:  # the echo of a move: it counts if its phase is still on
            game = conn.game
            assert isinstance(game, PacedGame)
            phase = self.phase
            if phase != GAP and game.sent_phase[conn.next_index - 1] == phase:
                self.phases[phase].latencies.append(latencies[-1])

    # -- the bot games ---------------------------------------------------------------------

    def on_bot_text(self, conn: BotConn, payload: bytes) -> None:
        event = self.decode(conn, payload)
        if event is None:
            return
        message, kind = event
        if kind == "play":
            player, column, row = message["player"], message["column"], message["row"]
            ended = conn.placed(player, column, row)
            if player == "yellow":  # the computer's answer
                self.answered(conn)
                self.bot_moves += 1
                self.first_answer.set()
                if self.phase != GAP:
                    self.phases[self.phase].bot_moves += 1
                if not ended:
                    self.bot_turn(conn)
        elif kind == "joined" and message.get("bot"):  # the computer sits down: red's turn
            self.bot_turn(conn)
        elif kind in ("win", "draw"):
            self.answered(conn)  # our move may have ended it: no answer comes
            if not conn.over.done():
                conn.over.set_result(None)
        elif kind in ("error", None):
            self.fail(conn, f"unexpected event: {message}")
        # init, seat, joined (red), watchers: skipped.

    def bot_turn(self, conn: BotConn) -> None:
        if self.bots_run.is_set() and not self.stopping:
            self.bot_move(conn)
        else:
            conn.my_turn = True

    def bot_move(self, conn: BotConn) -> None:
        if conn.closing:
            return
        conn.my_turn = False
        conn.thinking = True
        self.thinking += 1
        self.computer_idle.clear()
        conn.send(PLAY_PAYLOADS[conn.legal_column()])

    def answered(self, conn: BotConn) -> None:
        if conn.thinking:
            conn.thinking = False
            self.thinking -= 1
            if self.thinking == 0:
                self.computer_idle.set()

    def fail(self, conn: Conn, reason: str) -> None:
        super().fail(conn, reason)
        if isinstance(conn, BotConn) and not conn.over.done():
            conn.over.set_exception(RuntimeError(reason))

    def harness_failure(self, reason: str) -> None:
        """A failure of the run that no one connection is to blame for."""
        self.result.failure_count += 1
        if len(self.result.failures) < 10:
            self.result.failures.append(reason)

    async def bot_slot(self, number: int) -> None:
        """One bot game after another, while the bots run."""
        chance = random.Random(self.beside.seed * 1000 + number)
        while not self.stopping and not self.result.failure_count:
            await self.bots_run.wait()
            if self.stopping:
                return
            conn = BotConn(self, chance)
            self.everyone.add(conn)
            self.bot_conns.add(conn)
            try:
                async with self.connect_slots:
                    await self.open(conn)
                conn.send(self.bot_init)
                await conn.over
                self.bot_games += 1
            except Exception as exc:
                if not isinstance(exc, RuntimeError):  # RuntimeError: counted, or Cut
                    self.fail(conn, f"bot game aborted: {exc!r}")
            finally:
                _consume(conn.over)
                self.answered(conn)
                self.bot_conns.discard(conn)
                conn.close()

    def start_bots(self) -> None:
        self.bots_run.set()
        for conn in list(self.bot_conns):
            if conn.my_turn:
                self.bot_move(conn)

    async def stop_bots(self) -> None:
        """Let the bot games wait, and the computer finish what it was asked."""
        self.bots_run.clear()
        try:
            await asyncio.wait_for(self.computer_idle.wait(), self.beside.drain_timeout)
        except TimeoutError:
            self.harness_failure(
                f"{self.thinking} bot games still wait for the computer"
                f" {self.beside.drain_timeout} s after the bots stopped"
            )

    # -- the run ---------------------------------------------------------------------------

    def begin_phase(self, index: int) -> tuple[float, float, float, float]:
        self.phase = index
        return time.perf_counter(), self.server_cpu(), time.process_time(), machine_busy_seconds()

    def end_phase(self, index: int, start: tuple[float, float, float, float]) -> None:
        self.phase = GAP
        wall, server, client, busy = start
        phase = self.phases[index]
        phase.seconds = time.perf_counter() - wall
        phase.server_cpu = self.server_cpu() - server
        phase.client_cpu = time.process_time() - client
        busy = machine_busy_seconds() - busy
        phase.other_cpu = max(0.0, busy - phase.server_cpu - phase.client_cpu)

    async def warm_up(self) -> None:
        """Every human game under way, the computer's first answer in (after the perfect
        player's warm-up in the thinking thread), the bots stopped again."""
        self.start_bots()
        try:
            await asyncio.wait_for(
                asyncio.gather(self.all_started.wait(), self.first_answer.wait()),
                self.beside.warm_up_timeout,
            )
        except TimeoutError:
            self.harness_failure(
                f"warm-up: {self.started_games} human games started,"
                f" {self.bot_moves} moves of the computer within {self.beside.warm_up_timeout} s"
            )
        await self.stop_bots()

    async def run_beside(self) -> None:
        humans = [asyncio.create_task(self.slot()) for _ in range(self.beside.humans)]
        bots = [asyncio.create_task(self.bot_slot(number)) for number in range(self.beside.bots)]
        try:
            await self.warm_up()
            for index, condition in enumerate(self.beside.schedule()):
                if self.result.failure_count:
                    break
                if condition == WITH:
                    self.start_bots()
                start = self.begin_phase(index)
                await asyncio.sleep(self.beside.seconds)
                self.end_phase(index, start)
                if condition == WITH:
                    await self.stop_bots()
        finally:
            self.phase = GAP
            self.stopping = True
            self.bots_run.set()  # the bot slots waiting for it see ``stopping``
            for game in list(self.live_games):  # the games still going end here
                if not game.finished.done():
                    game.finished.set_exception(Cut("the run is over"))
            for conn in list(self.bot_conns):
                if not conn.over.done():
                    conn.over.set_exception(Cut("the run is over"))
            await asyncio.gather(*humans, *bots, return_exceptions=True)
            await self.close_everyone()


def measure_beside_bots(config: BesideConfig) -> BesideResult:
    """A fresh server (the computer answering at once), human-paced games with and without
    bot games beside them; the server stopped, its problems recorded."""
    if config.level not in LEVELS:
        raise ValueError(f"unknown level {config.level!r}: one of {', '.join(LEVELS)}")

    async def run(server: ServerProcess) -> PacedLoad:
        load = PacedLoad(server.url, config, server.cpu_seconds)
        await load.run_beside()
        return load

    with ServerProcess(OURS_BOTS_AT_ONCE) as server:
        load = _run_async(run(server))
    result = BesideResult(
        config=config,
        human=load.result,
        phases=load.phases,
        bot_games=load.bot_games,
        bot_moves=load.bot_moves,
    )
    result.server_problems = server.problems()
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one live scenario against one server.")
    parser.add_argument("--server", choices=sorted(SERVERS), default="ours")
    parser.add_argument("--games", type=int, default=50)
    parser.add_argument("--spectators", type=int, default=0)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--lockstep", action="store_true")
    parser.add_argument(
        "--pause",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="human pace: each move after a pause from LOW to HIGH seconds",
    )
    parser.add_argument("--idle", type=int, default=0, help="measure N idle connections instead")
    parser.add_argument("--strace", action="store_true", help="count system calls instead")
    parser.add_argument(
        "--beside",
        choices=LEVELS,
        help="human-paced games (--games) with and without bot games of this level beside"
        " them (ours only; --duration: seconds of each phase)",
    )
    parser.add_argument("--bots", type=int, default=20, help="with --beside: bot games")
    parser.add_argument("--rounds", type=int, default=2, help="with --beside: phases of each")
    args = parser.parse_args()
    pin_client()
    kind = SERVERS[args.server]
    config = LoadConfig(args.games, args.spectators, args.duration, args.lockstep)
    if args.pause:
        config.pause = (args.pause[0], args.pause[1])
    if args.beside:
        beside = BesideConfig(args.games, args.bots, args.beside, args.duration, args.rounds)
        print(measure_beside_bots(beside).summary())
    elif args.idle:
        idle = measure_idle(kind, args.idle)
        print(f"{kind.name}: {idle.per_connection_kib:.2f} KiB per idle connection", idle)
    elif args.strace:
        print(measure_syscalls(kind, config))
    else:
        print(measure_load(kind, config).summary())


if __name__ == "__main__":
    main()
