"""Several ``server.py`` processes sharing their games through one real Redis.

Each process is started as a user would (``--redis URL``) on its own free port; the pages are
the ``websockets`` library's client speaking the versioned protocol. A game is created on one
process and joined, watched, played and resumed on others; a process is killed (``kill -9``)
mid-game and its players go on elsewhere; Redis is killed and restarted, or frozen, mid-game.
Every page's record of the game ends the same, with every move it saw accepted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from processes import ROOT, start_server, stop_server
from redis_servers import RedisServer, free_port, needs_redis, running
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

pytestmark = [needs_redis, pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]

#: Red wins on its fourth checker in column 3 (the seventh move).
RED_WINS = [3, 4, 3, 4, 3, 4, 3]


class Page:
    """A page of the versioned protocol on one connection at a time: applies each event
    once, in order of ``v``, as the web UI does."""

    def __init__(self, server: str, **init: Any) -> None:
        self._connections = contextlib.ExitStack()
        self.applied: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.seat: dict[str, Any] | None = None
        self.keys: dict[str, Any] | None = None
        self.ws = self._open(server, init)

    @property
    def v(self) -> int:
        return self.applied[-1]["v"] if self.applied else 0

    def _open(self, server: str, init: dict[str, Any]) -> ClientConnection:
        url = server.replace("http://", "ws://")
        ws = self._connections.enter_context(connect(url, open_timeout=5))
        ws.send(json.dumps({"type": "init", "v": self.v, **init}))
        return ws

    def resume(self, server: str) -> None:
        """A new connection, to ``server``, that takes up where this page left off."""
        assert self.seat is not None
        self.close()
        self.ws = self._open(server, {"token": self.seat["token"]})

    def close(self) -> None:
        self._connections.close()

    def until_closed(self, timeout: float = 10.0) -> None:
        """Apply what was on its way, until the connection ends (its process is gone)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                assert left > 0, f"still open after {timeout} s"
                self._apply(json.loads(self.ws.recv(timeout=left)))
        except ConnectionClosed:
            return

    def until(self, done: Callable[[Page], bool], timeout: float = 10.0) -> None:
        """Apply what arrives until ``done`` says so (failing after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while not done(self):
            left = deadline - time.monotonic()
            assert left > 0, f"waited {timeout} s: applied {self.applied}, errors {self.errors}"
            self._apply(json.loads(self.ws.recv(timeout=left)))

    def _apply(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "seat":
            self.seat = {**(self.seat or {}), **message}
        elif kind == "init":
            self.keys = message
        elif kind == "watching":
            pass  # the version its catch-up reaches: nothing to apply
        elif kind == "error":
            self.errors.append(message)
        elif kind == "sync":
            self.applied = [message]
        elif "v" in message and message["v"] > self.v:
            assert message["v"] == self.v + 1, f"gap: {self.v} then {message}"
            self.applied.append(message)

    def play(self, column: int) -> None:
        self.ws.send(json.dumps({"type": "play", "column": column}))

    def moves(self) -> list[int]:
        return [m["column"] for m in self.applied if m["type"] == "play"]


def new_game(red_at: str, yellow_at: str) -> tuple[Page, Page]:
    """Red creates a game on ``red_at``; yellow joins it on ``yellow_at``."""
    red = Page(red_at)
    red.until(lambda page: page.keys is not None and page.seat is not None)
    assert red.keys is not None
    yellow = Page(yellow_at, join=red.keys["join"])
    yellow.until(at(2))
    return red, yellow


def play(red: Page, yellow: Page, columns: list[int], start: int = 0) -> None:
    """Moves ``start`` on of a game, each seen by both pages before the next."""
    for i, column in enumerate(columns, start=start):
        (red if i % 2 == 0 else yellow).play(column)
        for page in (red, yellow):
            page.until(lambda page, moves=i + 1: len(page.moves()) >= moves)


def at(version: int) -> Callable[[Page], bool]:
    return lambda page: page.v >= version


def health(server: str) -> int:
    try:
        with urllib.request.urlopen(server + "healthz", timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:
        return 0  # not listening (yet)


def until_health(server: str, status: int, timeout: float = 10.0) -> None:
    """Poll the health check (a process outside: nothing to wait on but its answer)."""
    deadline = time.monotonic() + timeout
    while health(server) != status:
        assert time.monotonic() < deadline, f"{server}healthz never answered {status}"
        time.sleep(0.05)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with running(tmp_path, durable=True) as server:
        yield server


@pytest.fixture
def processes(tmp_path: Path, redis: RedisServer) -> Iterator[list[str]]:
    """Three server processes on one Redis: their addresses."""
    started = [
        start_server(tmp_path, "--redis", redis.url + "?timeout=0.3", name=f"node{i}")
        for i in range(3)
    ]
    yield [address for _, address in started]
    for i, (process, _) in enumerate(started):
        if process.poll() is None:
            logs = stop_server(process, tmp_path, name=f"node{i}")
            assert "ERROR" not in logs, logs


def test_a_game_is_created_joined_watched_and_won_across_processes(
    processes: list[str],
) -> None:
    a, b, c = processes
    red, yellow = new_game(a, b)
    assert red.keys is not None
    spectator = Page(c, watch=red.keys["watch"])
    for i, column in enumerate(RED_WINS):
        mover = red if i % 2 == 0 else yellow
        mover.play(column)
        for page in (red, yellow, spectator):
            page.until(lambda page, moves=i + 1: len(page.moves()) >= moves)
    for page in (red, yellow, spectator):
        page.until(lambda page: page.applied[-1]["type"] == "win")
    assert red.applied == yellow.applied == spectator.applied[-len(red.applied) :]
    assert red.moves() == RED_WINS
    assert red.applied[-1]["player"] == "red"


def test_players_of_a_process_killed_mid_game_resume_elsewhere_and_finish(
    tmp_path: Path, redis: RedisServer
) -> None:
    doomed, address_a = start_server(tmp_path, "--redis", redis.url, name="doomed")
    survivor, address_b = start_server(tmp_path, "--redis", redis.url, name="survivor")
    try:
        red, yellow = new_game(address_a, address_b)
        play(red, yellow, RED_WINS[:4])
        seen = list(red.applied)
        children = (Path(f"/proc/{doomed.pid}/task/{doomed.pid}/children")).read_text().split()
        assert children  # the computer's worker process
        doomed.send_signal(signal.SIGKILL)  # no shutdown, nothing more from it
        doomed.wait(timeout=10)
        red.until_closed()
        # The survivor finds the dead process's heartbeat gone: red is away for yellow.
        yellow.until(lambda page: page.applied[-1]["type"] == "away", timeout=15)
        assert yellow.applied[-1]["player"] == "red"
        red.resume(address_b)
        red.until(lambda page: page.seat is not None and page.seat["player"] == "red")
        play(red, yellow, RED_WINS[4:], start=4)
        for page in (red, yellow):
            page.until(lambda page: page.applied[-1]["type"] == "win")
        assert red.applied[: len(seen)] == seen  # nothing it saw accepted is missing
        assert red.moves() == yellow.moves() == RED_WINS
        # Its computer's worker process ended with it (it holds 180 MiB).
        deadline = time.monotonic() + 10
        while any(running_pid(int(child)) for child in children):
            assert time.monotonic() < deadline, "the killed server's worker process lives on"
            time.sleep(0.05)
    finally:
        if doomed.poll() is None:
            doomed.kill()
        doomed.wait()
        if doomed.stdout is not None:
            doomed.stdout.close()
        stop_server(survivor, tmp_path, name="survivor")


def test_moves_are_refused_while_redis_is_down_and_nothing_is_lost_after_it_restarts(
    processes: list[str], redis: RedisServer
) -> None:
    a, b, _ = processes
    red, yellow = new_game(a, b)
    red.play(3)
    for page in (red, yellow):
        page.until(lambda page: page.moves() == [3])
    redis.kill()  # with appendfsync always: everything it answered is on disk
    until_health(a, 503)
    until_health(b, 503)
    yellow.play(4)
    yellow.until(lambda page: bool(page.errors))
    assert yellow.errors[-1]["code"] == "reconnecting"
    redis.start()
    until_health(a, 200)
    until_health(b, 200)
    yellow.play(4)
    for page in (red, yellow):
        page.until(lambda page: page.moves() == [3, 4])
    assert red.applied == yellow.applied


def test_a_move_sent_while_redis_is_frozen_is_decided_once_when_it_thaws(
    processes: list[str], redis: RedisServer
) -> None:
    a, b, _ = processes
    red, yellow = new_game(a, b)
    redis.freeze()  # holds the connections, answers nothing
    try:
        red.play(3)  # sent to Redis, not answered: sent again, then refused
        red.until(lambda page: bool(page.errors), timeout=15)
        assert red.errors[-1]["code"] == "reconnecting"
    finally:
        redis.thaw()
    # Whatever Redis did with it, every page ends with the same game: the move is there once
    # (applied after all, and followed), or not at all (and red plays it now).
    until_health(a, 200)
    red.until(lambda page: True)
    if red.moves() != [3]:
        red.play(3)
    for page in (red, yellow):
        page.until(lambda page: page.moves() == [3])
    yellow.play(4)
    for page in (red, yellow):
        page.until(lambda page: page.moves() == [3, 4])
    assert red.applied == yellow.applied


def worker_pids(log: Path) -> list[int]:
    """The workers' pids, from their supervisor's log ("started 2 workers on port P: ...")."""
    line = next(line for line in log.read_text().splitlines() if "workers on port" in line)
    return [int(pid) for pid in line.rsplit(": ", 1)[1].split(", ")]


def running_pid(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_share_one_port_one_is_restarted_and_all_stop_together(
    tmp_path: Path, redis: RedisServer
) -> None:
    supervisor, address = start_server(
        tmp_path, "--redis", redis.url, "--workers", "2", name="workers"
    )
    try:
        pages = []
        for _ in range(8):  # games enough that both workers get some (the kernel spreads them)
            page = Page(address)
            page.until(lambda page: page.keys is not None)
            pages.append(page)
        assert pages[0].keys is not None
        yellow = Page(address, join=pages[0].keys["join"])
        yellow.until(at(2))
        pages[0].play(3)
        yellow.until(lambda page: page.moves() == [3])
        for page in (*pages, yellow):
            page.close()
        first, _ = worker_pids(tmp_path / "workers.log")
        children = Path(f"/proc/{first}/task/{first}/children").read_text().split()
        os.kill(first, signal.SIGKILL)  # a worker dies: another is started in its place
        deadline = time.monotonic() + 15
        # Replaced, and the new one up (its third "shared through Redis": two, then it).
        while (tmp_path / "workers.log").read_text().count("games are shared through") < 3:
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.05)
        assert "starting another" in (tmp_path / "workers.log").read_text()
        until_health(address, 200)
        while any(running_pid(int(child)) for child in children):  # its worker process too
            assert time.monotonic() < deadline, "the killed worker's own process lives on"
            time.sleep(0.05)
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=20) == 0
        if supervisor.stdout is not None:
            supervisor.stdout.close()
    logs = (tmp_path / "workers.log").read_text()
    assert "Traceback" not in logs
    workers = {
        line.split(" worker ")[1].split(":")[0]
        for line in logs.splitlines()
        if " worker " in line and "game" in line and "created" in line
    }
    assert len(workers) == 2, logs
    assert logs.count("all workers stopped") == 1


def test_workers_whose_supervisor_is_killed_stop_by_themselves(
    tmp_path: Path, redis: RedisServer
) -> None:
    supervisor, _ = start_server(tmp_path, "--redis", redis.url, "--workers", "2", name="orphans")
    pids = worker_pids(tmp_path / "orphans.log")
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait(timeout=10)
    if supervisor.stdout is not None:
        supervisor.stdout.close()
    deadline = time.monotonic() + 15
    while any(running_pid(pid) for pid in pids):
        assert time.monotonic() < deadline, "orphaned workers still run"
        time.sleep(0.05)
    assert "the supervising process" in (tmp_path / "orphans.log").read_text()


HAPROXY = shutil.which("haproxy")


def haproxy_config(port: int, servers: list[str]) -> str:
    """The README's HAProxy configuration, on loopback: its frontend on ``port``, its
    servers the processes at ``servers``."""
    text = (ROOT / "README.md").read_text()
    config = text.split("```haproxy\n", 1)[1].split("```", 1)[0]
    assert "bind :80" in config
    config = config.replace("bind :80", f"bind 127.0.0.1:{port}")
    lines = [line for line in config.splitlines() if not line.strip().startswith("server ")]
    for index, server in enumerate(servers):
        host_port = server.removeprefix("http://").rstrip("/")
        lines.append(f"    server process{index} {host_port}")
    return "\n".join(lines) + "\n"


@pytest.mark.skipif(HAPROXY is None, reason="no haproxy (Debian: apt install haproxy)")
def test_behind_haproxy_the_players_of_a_killed_process_come_back_through_the_balancer(
    tmp_path: Path, redis: RedisServer
) -> None:
    nodes = [start_server(tmp_path, "--redis", redis.url, name=f"node{i}") for i in range(2)]
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(port, [address for _, address in nodes]))
    assert HAPROXY is not None
    balancer = subprocess.Popen(
        [HAPROXY, "-f", str(config), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    front = f"http://127.0.0.1:{port}/"
    try:
        until_health(front, 200)
        red, yellow = new_game(front, front)
        play(red, yellow, RED_WINS[:4])
        # Kill the process red's game was created on: its connections end with it.
        created = [
            index
            for index in range(2)
            if "created by connection" in (tmp_path / f"node{index}.log").read_text()
        ]
        assert len(created) == 1
        doomed = nodes[created[0]][0]
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        red.until_closed()
        seen = list(red.applied)
        red.resume(front)  # through the balancer, to the process that is left
        red.until(lambda page: page.v >= len(seen))
        play(red, yellow, RED_WINS[4:], start=4)
        for page in (red, yellow):
            page.until(lambda page: page.applied[-1]["type"] == "win")
        assert red.applied[: len(seen)] == seen
        assert red.moves() == yellow.moves() == RED_WINS
        red.close()
        yellow.close()
    finally:
        balancer.send_signal(signal.SIGTERM)
        balancer.wait(timeout=10)
        if balancer.stderr is not None:
            balancer.stderr.close()
        for index, (process, _) in enumerate(nodes):
            if process.poll() is None:
                stop_server(process, tmp_path, name=f"node{index}")
            else:
                process.wait()
                if process.stdout is not None:
                    process.stdout.close()
