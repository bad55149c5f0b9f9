"""Many processes sharing games through Redis: what it costs per move, and what it gives.

The same checking load client as ``live.py`` (every game a full 42-move draw, every event
checked), against:
- ``memory``: one process, games in its memory (the embedded default);
- ``redis``: one process sharing its games through Redis (``--redis``);
- ``cross``: two processes on one Redis, red on one and yellow on the other: every move is
  appended by one process and reaches the opponent through Redis' pub/sub and the other;
- ``workers N``: ``--workers N`` on one port, the load spread by the kernel (throughput only).

The server processes and Redis share the server's core (the load client has the other), so
that CPU per move compares like with like; the workers are not pinned (they are the way to use
both cores), and then the client competes with them for the machine. CPU is each process's own
CPU clock; Redis' commands per move come from ``INFO stats`` (``total_commands_processed``).

    python benchmarks/scale_out.py [--games 50] [--duration 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from live import (
    OURS,
    SERVER_CPU,
    Load,
    LoadConfig,
    LoadResult,
    ServerKind,
    ServerProcess,
    _client_cpu,
    _run_async,
    machine_busy_seconds,
    pin_client,
    two_cores,
)
from redis_servers import REDIS_SERVER, RedisServer

__all__ = ["ScaleResult", "measure", "measure_workers"]

#: Every core this process may use, before ``pin_client`` narrows it to the client's.
_ALL_CPUS = frozenset(os.sched_getaffinity(0))


@dataclass
class ScaleResult:
    name: str
    load: LoadResult
    server_cpu: float = 0.0  # seconds, every server process of the run
    redis_cpu: float = 0.0
    redis_commands: int = 0
    #: Cores of the whole machine kept busy during the load (``workers N`` only): what one
    #: worker leaves idle bounds what a second one can add.
    machine_busy: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.load.ok and not self.problems

    @property
    def moves_per_second(self) -> float:
        return self.load.moves / self.load.wall if self.load.wall else 0.0

    def per_move_us(self, seconds: float) -> float:
        return seconds / self.load.moves * 1e6 if self.load.moves else float("nan")

    @property
    def commands_per_move(self) -> float:
        return self.redis_commands / self.load.moves if self.load.moves else float("nan")


def _cpu_seconds(pid: int) -> float:
    return time.clock_gettime(((~pid) << 3) | 2)  # CPUCLOCK_SCHED of the whole process


def redis_commands(server: RedisServer) -> int:
    """Commands Redis has processed since it started (``INFO stats``)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"INFO stats\r\n")
        data = b""
        while b"total_commands_processed:" not in data or not data.endswith(b"\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    line = next(line for line in data.split(b"\r\n") if line.startswith(b"total_commands"))
    return int(line.split(b":")[1])


def _redis(directory: Path) -> RedisServer:
    server = RedisServer(directory)  # no persistence: what is measured is the sharing
    server.start()
    assert server.process is not None
    if two_cores():  # beside the server processes, on their core
        os.sched_setaffinity(server.process.pid, {SERVER_CPU})
    return server


def _shared(url: str) -> ServerKind:
    return ServerKind("redis", (*OURS.argv, "--redis", url))


def measure(name: str, config: LoadConfig, directory: Path) -> ScaleResult:
    """One run of ``name`` (``memory``, ``redis`` or ``cross``) on fresh processes."""
    redis = None if name == "memory" else _redis(directory)
    kinds = [OURS] if redis is None else [_shared(redis.url)] * (2 if name == "cross" else 1)
    servers = [ServerProcess(kind) for kind in kinds]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.settle()
        urls = tuple(server.url for server in servers)
        load = Load(urls[0], config, lambda: sum(s.cpu_seconds() for s in servers), urls=urls)
        result = ScaleResult(name, load.result)
        load.result.server = name
        cpu_before = [server.cpu_seconds() for server in servers]
        redis_before = 0.0 if redis is None else _cpu_seconds(redis.process.pid)  # type: ignore[union-attr]
        commands_before = 0 if redis is None else redis_commands(redis)
        start = time.perf_counter()
        with _client_cpu(load.result):
            _run_async(load.run())
            for server in servers:
                server.settle()
        load.result.wall = time.perf_counter() - start
        result.server_cpu = sum(
            server.cpu_seconds() - before
            for server, before in zip(servers, cpu_before, strict=True)
        )
        load.result.server_cpu = result.server_cpu
        if redis is not None:
            assert redis.process is not None
            result.redis_cpu = _cpu_seconds(redis.process.pid) - redis_before
            result.redis_commands = redis_commands(redis) - commands_before
    finally:
        for server in servers:
            server.stop()
        if redis is not None:
            redis.stop()
    for server in servers:
        result.problems.extend(server.problems())
    return result


def measure_workers(count: int, config: LoadConfig, directory: Path) -> ScaleResult:
    """Throughput of ``--workers count`` (unpinned) on one Redis."""
    redis = _redis(directory)
    assert redis.process is not None
    os.sched_setaffinity(redis.process.pid, _ALL_CPUS)
    # Both cores (this process, the client, is pinned to one, and a child inherits that):
    # taskset runs the supervisor itself, whose workers inherit both.
    cores = ",".join(map(str, sorted(_ALL_CPUS)))
    argv = ("taskset", "-c", cores, *OURS.argv, "--redis", redis.url, "--workers", str(count))
    kind = ServerKind(f"workers {count}", argv)
    server = ServerProcess(kind, pin=False)
    try:
        server.start()
        time.sleep(0.5)  # every worker up (the supervisor prints once one answers)
        load = Load(server.url, config, lambda: 0.0)
        load.result.server = kind.name
        start = time.perf_counter()
        busy = machine_busy_seconds()
        with _client_cpu(load.result):
            _run_async(load.run())
        load.result.wall = time.perf_counter() - start
        result = ScaleResult(kind.name, load.result)
        result.machine_busy = (machine_busy_seconds() - busy) / load.result.wall
    finally:
        server.stop()
        redis.stop()
    result.problems.extend(server.problems())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=50)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if REDIS_SERVER is None:
        sys.exit("no redis-server (Debian: apt install redis-server)")
    pin_client()
    config = LoadConfig(games=args.games, spectators=0, duration=args.duration)
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        runs: dict[str, list[ScaleResult]] = {}
        for _ in range(args.rounds):
            for name in ("memory", "redis", "cross"):
                runs.setdefault(name, []).append(measure(name, config, Path(directory)))
            for count in (1, 2):
                result = measure_workers(count, config, Path(directory))
                runs.setdefault(result.name, []).append(result)
    for line in table(runs):
        print(line)


def table(runs: dict[str, list[ScaleResult]]) -> list[str]:
    """A line per setup: the median throughput, and the rest from its best run."""
    lines = []
    for name, results in runs.items():
        best = min(results, key=lambda r: r.per_move_us(r.server_cpu) if r.server_cpu else 0.0)
        problems = [r.load.failures[:2] + r.problems[:2] for r in results if not r.ok]
        lines.append(
            f"{name:10} {statistics.median(r.moves_per_second for r in results):7.0f} moves/s"
            f"  server {best.per_move_us(best.server_cpu):7.1f} us/move"
            f"  redis {best.per_move_us(best.redis_cpu):6.1f} us/move"
            f"  {best.commands_per_move:4.1f} commands/move"
            f"  p50 {best.load.latency_ms(0.5):6.2f} p99 {best.load.latency_ms(0.99):6.2f} ms"
            + (f"  machine {best.machine_busy:.2f} cores busy" if best.machine_busy else "")
            + f"  {'FAILED ' + str(problems) if problems else 'ok'}"
        )
    return lines


if __name__ == "__main__":
    main()
