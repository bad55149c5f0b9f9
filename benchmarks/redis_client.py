"""The Redis client (``connect4proto.driver.resp``) against its floor, on a real redis-server.

The floor is the least a client can do for the same commands: a blocking socket, hiredis'
``pack_command`` and ``Reader``, nothing else (no trio, no waiting line). Both run in this
process against one ``redis-server`` started here on a free loopback port (no persistence):

- sequential commands (``GET``, one at a time: a round trip each);
- 10,000 pipelined ``INCR`` in one call;
- appends of one move through ``RedisLog.append`` (one ``EVALSHA`` of the append script),
  one at a time, and from 50 tasks at once (50 games).

Run: ``python benchmarks/redis_client.py [--quick]`` (needs Debian's redis-server).
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hiredis
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from redis_servers import REDIS_SERVER, RedisServer

from connect4proto.driver.redis_log import RedisLog
from connect4proto.driver.resp import Redis, RedisAddress
from connect4proto.events import GameId
from connect4proto.game import Move, Player
from connect4proto.log import Logged
from connect4proto.shared import Append


def floor_sequential(port: int, count: int) -> float:
    """Seconds per GET with a blocking socket and hiredis alone."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = hiredis.Reader()
        request = hiredis.pack_command(("GET", "k"))
        started = time.perf_counter()
        for _ in range(count):
            sock.sendall(request)
            reply: Any = False
            while reply is False:
                reader.feed(sock.recv(65536))
                reply = reader.gets()
        return (time.perf_counter() - started) / count


def floor_pipelined(port: int, count: int) -> float:
    """Seconds for ``count`` pipelined INCRs with a blocking socket and hiredis alone."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        reader = hiredis.Reader()
        started = time.perf_counter()
        sock.sendall(b"".join(hiredis.pack_command(("INCR", "floor")) for _ in range(count)))
        got = 0
        while got < count:
            reader.feed(sock.recv(65536))
            while reader.gets() is not False:
                got += 1
        return time.perf_counter() - started


async def ours(url: str, sequential: int, appends: int) -> dict[str, float]:
    redis = Redis(RedisAddress.from_url(url))
    log = RedisLog(redis)
    await redis.execute("SET", "k", "v")
    started = time.perf_counter()
    for _ in range(sequential):
        await redis.execute("GET", "k")
    per_get = (time.perf_counter() - started) / sequential

    started = time.perf_counter()
    await redis.pipeline([("INCR", "ours")] * 10_000)
    pipelined = time.perf_counter() - started

    def intent(game: int, version: int, move: Move, keys: tuple[str, str] | None) -> Append:
        logged = (Logged(version + 1, move, float(version)),)
        return Append(intent=0, game=GameId(game), expected=version, events=logged, keys=keys)

    ids = await log.reserve_ids(51)
    game = ids[0]
    started = time.perf_counter()
    for version in range(appends):
        move = Move(player=(Player.RED, Player.YELLOW)[version % 2], column=version % 7, row=0)
        keys = ("j", "w") if version == 0 else None
        await log.append(intent(game, version, move, keys), f"a{version}")
    per_append = (time.perf_counter() - started) / appends

    games = list(ids[1:])

    async def player(game: int) -> None:
        for version in range(appends // 50):
            move = Move(player=Player.RED, column=version % 7, row=0)
            keys = ("j", "w") if version == 0 else None
            await log.append(intent(game, version, move, keys), f"b{version}")

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for game in games:
            nursery.start_soon(player, game)
    concurrent = (time.perf_counter() - started) / (appends // 50 * 50)
    await redis.aclose()
    return {
        "get": per_get,
        "pipelined": pipelined,
        "append": per_append,
        "append_concurrent": concurrent,
    }


def measure(rounds: int = 3, sequential: int = 2000, appends: int = 2000) -> dict[str, float]:
    """Best of ``rounds`` for each figure (ours and the floor alternated)."""
    if REDIS_SERVER is None:
        raise RuntimeError("no redis-server (Debian: apt install redis-server)")
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory))
        server.start()
        try:
            results: dict[str, list[float]] = {}
            for _ in range(rounds):
                for name, value in trio.run(ours, server.url, sequential, appends).items():
                    results.setdefault(name, []).append(value)
                results.setdefault("floor_get", []).append(
                    floor_sequential(server.port, sequential)
                )
                results.setdefault("floor_pipelined", []).append(
                    floor_pipelined(server.port, 10_000)
                )
        finally:
            server.stop()
    return {name: min(values) for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    figures = measure(1, 200, 200) if args.quick else measure()
    get, floor = figures["get"] * 1e6, figures["floor_get"] * 1e6
    print(f"GET, one at a time: {get:.1f} us (floor {floor:.1f})")
    print(
        f"10,000 pipelined INCR: {figures['pipelined'] * 1e3:.1f} ms"
        f" (floor {figures['floor_pipelined'] * 1e3:.1f})"
    )
    print(f"append of one move, one at a time: {figures['append'] * 1e6:.1f} us")
    print(f"append of one move, 50 games at once: {figures['append_concurrent'] * 1e6:.1f} us each")


if __name__ == "__main__":
    main()
