"""The driver's side of sharing games (``driver/sharing.py``), against a real Redis, in one
trio run: each "process" is a core with its own in-memory peers (``peers.Network``) whose
store intents ``SharedGames`` carries out, and whose answers come back as a driver's would.

These are the paths the process tests cannot force at will: two processes deciding at one
version, Redis gone before the first game id, a game gone from Redis under a process, ids
reserved again, a game forgotten and unfollowed, a process whose heartbeat stops.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from peers import Network
from redis_servers import RedisServer, needs_redis, running
from tabs import Tab, log_of, read_all

from connect4proto import Config, Output
from connect4proto.driver.redis_log import RedisLog
from connect4proto.driver.resp import Redis, RedisAddress, Subscription
from connect4proto.driver.sharing import SharedGames
from connect4proto.shared import SharedStore

pytestmark = needs_redis


class Process(Network):
    """A server process: a core sharing its games through Redis, and its peers."""

    def __init__(self, processes: Processes, shared: SharedGames, **config: Any) -> None:
        self.processes = processes
        self.shared = shared
        self.scope = trio.CancelScope()  # what stops it (``Processes.start``)
        configured = Config(**config)
        counter = itertools.count(1)
        super().__init__(
            config=configured,
            store=SharedStore(max_events=configured.max_log_events),
            new_game_id=shared.new_game_id,
            process=shared.process,
            new_key=lambda: f"{shared.process}-key-{next(counter)}",
        )
        self.now = trio.current_time()
        shared.attach(self.server, self.answer)

    def answer(self, call: Callable[[float], Output]) -> None:
        """An answer from Redis, handed to the core as the driver does."""
        self.now = max(self.now, trio.current_time())
        self.apply(call(self.now))
        self.processes.changed()

    def apply(self, output: Output) -> None:
        super().apply(output)
        if output.store:
            self.shared.submit(output.store)


class Processes:
    """The processes of one test, in one nursery, on one Redis."""

    def __init__(self, redis: RedisServer, nursery: trio.Nursery) -> None:
        self.url = redis.url + "?timeout=0.2"
        self.nursery = nursery
        self._change = trio.Event()

    async def start(self, **options: Any) -> Process:
        shared = self.shared(**{k: options.pop(k) for k in ("id_block",) if k in options})
        process = Process(self, shared, **options)
        process.scope = await self.nursery.start(self._run, shared)
        return process

    @staticmethod
    async def _run(shared: SharedGames, *, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(shared.run)
                task_status.started(scope)

    def shared(self, **options: Any) -> SharedGames:
        address = RedisAddress.from_url(self.url)
        log = RedisLog(Redis(address), ttl=600)
        return SharedGames(
            log, Subscription(address, retry=0.05), give_up_after=0.5, retry=0.05,
            ping_interval=0.1, **options,
        )  # fmt: skip

    def changed(self) -> None:
        self._change.set()
        self._change = trio.Event()

    async def until(self, done: Callable[[], bool]) -> None:
        """Wait for answers from Redis until ``done`` says so, for 5 s at most (looking again
        at least every 50 ms: what the heartbeat and the subscription change is no answer
        to a core)."""
        with trio.fail_after(5):
            while not done():
                with trio.move_on_after(0.05):
                    await self._change.wait()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with running(tmp_path, durable=True) as server:
        yield server


@pytest.fixture
async def processes(redis: RedisServer) -> AsyncIterator[Processes]:
    async with trio.open_nursery() as nursery:
        yield Processes(redis, nursery)
        nursery.cancel_scope.cancel()


def seated(*tabs: Tab) -> Callable[[], bool]:
    def done() -> bool:
        read_all(*tabs)
        return all(tab.seat is not None for tab in tabs)

    return done


def moves(count: int, *tabs: Tab) -> Callable[[], bool]:
    def done() -> bool:
        read_all(*tabs)
        return all([m["type"] for m in log_of(tab)].count("play") >= count for tab in tabs)

    return done


async def game(processes: Processes, a: Process, b: Process, **init: Any) -> tuple[Tab, Tab]:
    """Red on ``a``, yellow on ``b``."""
    red = Tab(a, **init)
    await processes.until(seated(red))
    assert red.keys is not None
    yellow = Tab(b, join=red.keys["join"])
    await processes.until(seated(yellow))

    def joined() -> bool:  # red's process has heard it
        red.read()
        return any(m["type"] == "joined" and m["player"] == "yellow" for m in red.applied)

    await processes.until(joined)
    return red, yellow


async def test_two_processes_flagging_at_once_log_one_result(processes: Processes) -> None:
    a, b = await processes.start(), await processes.start()
    red, yellow = await game(processes, a, b, clock={"kind": "bank", "initial": 1})
    assert a.server.held_elsewhere() == {b.shared.process}
    await trio.sleep(1.1)  # red's clock runs out, on both processes' clocks
    for process in (a, b):
        process.advance(trio.current_time())  # both decide the flag at the same version

    def over() -> bool:
        read_all(red, yellow)
        return all(log_of(tab)[-1]["type"] == "win" for tab in (red, yellow))

    await processes.until(over)
    assert [m["type"] for m in log_of(red)].count("win") == 1
    assert log_of(red) == log_of(yellow)
    assert a.shared.outcomes["conflict"] + b.shared.outcomes["conflict"] == 1


async def test_a_process_started_before_redis_waits_for_it(
    redis: RedisServer, processes: Processes
) -> None:
    redis.stop()
    shared = processes.shared()
    process = Process(processes, shared)
    async with trio.open_nursery() as waiting:

        async def start() -> None:
            await processes.nursery.start(shared.run)
            waiting.cancel_scope.cancel()

        waiting.start_soon(start)
        await trio.sleep(0.3)  # it keeps trying: not started while Redis is away
        assert shared.health() is not None
        redis.start()
    assert shared.health() is None
    red = Tab(process)
    await processes.until(seated(red))


async def test_while_redis_is_away_moves_and_lookups_are_refused(
    redis: RedisServer, processes: Processes
) -> None:
    a, b = await processes.start(), await processes.start()
    red, yellow = await game(processes, a, b)
    spectator_key = red.keys["watch"] if red.keys else ""
    redis.stop()
    red.play(3)
    await processes.until(lambda: bool(red.read() or red.errors))
    assert red.errors[-1]["code"] == "reconnecting"
    watcher = Tab(b, watch=spectator_key)  # b has not looked this secret up: Redis is away
    await processes.until(lambda: bool(watcher.read() or watcher.errors))
    assert watcher.errors[-1]["code"] == "reconnecting"
    await processes.until(lambda: a.shared.health() is not None)
    redis.start()
    await processes.until(lambda: a.shared.health() is None)
    red.play(3)
    await processes.until(moves(1, red, yellow))


async def test_a_game_gone_from_redis_refuses_its_moves(
    redis: RedisServer, processes: Processes
) -> None:
    a = await processes.start()
    red = Tab(a)
    await processes.until(seated(red))
    gone = Redis(RedisAddress.from_url(redis.url))
    await gone.execute("DEL", "c4:{1}:meta", "c4:{1}:log", "c4:{1}:intents")
    await gone.aclose()
    red.play(3)
    await processes.until(lambda: bool(red.read() or red.errors))
    assert red.errors[-1]["code"] == "reconnecting"


async def test_game_ids_are_reserved_again_before_they_run_out(processes: Processes) -> None:
    a = await processes.start(id_block=2)
    tabs = []
    for _ in range(5):
        tab = Tab(a)
        await processes.until(seated(tab))
        tabs.append(tab)
    games = {a.server.lobby.seat(tab.peer.id) for tab in tabs}
    assert len(games) == 5


async def test_a_game_forgotten_here_is_followed_no_more(processes: Processes) -> None:
    a, b = await processes.start(), await processes.start()
    red, yellow = await game(processes, a, a)
    assert red.keys is not None
    watcher = Tab(b, watch=red.keys["watch"])
    await processes.until(lambda: b.shared.following == 1)
    b.lose(watcher.peer)  # b's only member: b forgets the game, and unfollows it
    assert b.server.lobby.game_count == 0
    red.play(3)
    await processes.until(moves(1, red, yellow))
    await processes.until(lambda: b.shared.following == 0)


async def test_the_seats_of_a_process_whose_heartbeat_stops_are_away(
    redis: RedisServer, processes: Processes
) -> None:
    a, b = await processes.start(), await processes.start()
    _, yellow = await game(processes, a, b)
    # a stops (its tasks end; its heartbeat expires): b logs red away.
    a.scope.cancel()

    def away() -> bool:
        read_all(yellow)
        return bool(log_of(yellow)) and log_of(yellow)[-1]["type"] == "away"

    await processes.until(away)
    assert log_of(yellow)[-1]["player"] == "red"
