"""Games' logs and secrets in a real Redis (``connect4proto.driver.redis_log``): appends
decided once however many processes race, retries that never append twice, reads since a
version, secrets, expiry, durability, and following a game's events across processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio
import trio.testing
from redis_servers import RedisServer, needs_redis, running

from connect4proto.clock import Clocks
from connect4proto.driver.redis_log import Appended, Follower, GameGone, RedisLog
from connect4proto.driver.resp import Redis, RedisAddress, ReplyError, Subscription
from connect4proto.events import GameId
from connect4proto.game import Ending, Move, Player
from connect4proto.log import (
    GameEvent,
    GameOver,
    Logged,
    OfferDeclined,
    OfferKind,
    OfferMade,
    OfferWithdrawn,
    RematchStarted,
    SeatAway,
    SeatBack,
    SeatTaken,
    TimedMove,
)
from connect4proto.persistence import KINDS, decode_event, encode_event
from connect4proto.store import Conflict, Credential

CLOCKS = Clocks(red=59_500, yellow=60_000, running=Player.YELLOW)
#: One event of every kind, with every optional field set somewhere.
EVERY_KIND: list[GameEvent] = [
    SeatTaken(player=Player.RED),
    SeatTaken(player=Player.YELLOW, clock=CLOCKS, bot="perfect"),
    SeatAway(player=Player.YELLOW, since=12.5),
    SeatBack(player=Player.YELLOW),
    Move(player=Player.RED, column=3, row=0),
    TimedMove(player=Player.YELLOW, column=6, row=5, clock=CLOCKS),
    OfferMade(offer=OfferKind.DRAW, player=Player.RED),
    OfferDeclined(offer=OfferKind.DRAW, player=Player.YELLOW),
    OfferWithdrawn(offer=OfferKind.REMATCH, player=Player.RED),
    GameOver(
        winner=Player.RED,
        ending=Ending.FOUR_IN_A_ROW,
        cells=((0, 0), (1, 0), (2, 0), (3, 0)),
        record="4455667",
        clock=CLOCKS,
    ),
    GameOver(winner=None, ending=Ending.AGREED, by=Player.YELLOW),
    RematchStarted(round=2, clock=CLOCKS),
]


def test_every_kind_of_event_comes_back_as_it_was_logged() -> None:
    assert {type(event) for event in EVERY_KIND} == set(KINDS.values())
    for event in EVERY_KIND:
        assert decode_event(*encode_event(event)) == event


def test_bytes_that_are_no_event_are_refused() -> None:
    with pytest.raises(ValueError, match="not a kind of game event"):
        decode_event(b"Teleport", b"\x80")
    with pytest.raises(ValueError, match="not a Move event"):
        decode_event(b"Move", b"\x81\xa6player\xa4blue")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with running(tmp_path, durable=True) as started:
        yield started


@pytest.fixture
async def log(server: RedisServer) -> AsyncIterator[RedisLog]:
    redis = Redis(RedisAddress.from_url(server.url))
    try:
        yield RedisLog(redis, finished_ttl=600)
    finally:
        await redis.aclose()


def listening(
    follower: Follower, nursery: trio.Nursery
) -> trio.MemoryReceiveChannel[tuple[GameId, list[Logged]]]:
    """What ``follower`` gives, as it gives it, from a task in ``nursery``."""
    send, receive = trio.open_memory_channel[tuple[GameId, list[Logged]]](100)

    async def listen() -> None:
        async for item in follower.events():
            await send.send(item)

    nursery.start_soon(listen)
    return receive


def move(index: int) -> Move:
    return Move(player=(Player.RED, Player.YELLOW)[index % 2], column=index % 7, row=index // 7)


@needs_redis
async def test_appends_at_the_expected_version_and_a_conflict_otherwise(log: RedisLog) -> None:
    game = await log.new_game()
    first = await log.append(game, 0, [SeatTaken(player=Player.RED)], "i1")
    assert first == Appended((Logged(1, SeatTaken(player=Player.RED)),))
    both = await log.append(game, 1, [move(0), move(1)], "i2")
    assert isinstance(both, Appended)
    assert [logged.version for logged in both.logged] == [2, 3]
    assert await log.append(game, 1, [move(2)], "i3") == Conflict(3)
    assert [logged.event for logged in await log.since(game, 0)] == [
        SeatTaken(player=Player.RED), move(0), move(1),
    ]  # fmt: skip
    assert await log.since(game, 2) == [Logged(3, move(1))]
    assert await log.since(game, 3) == []
    assert await log.since(game, 4) is None  # ahead of the log: a snapshot, as in memory
    with pytest.raises(GameGone):
        await log.append(GameId(999), 0, [move(0)], "i4")
    with pytest.raises(GameGone):
        await log.since(GameId(999), 0)


@needs_redis
async def test_a_retry_with_the_same_intent_appends_nothing_and_answers_the_same(
    log: RedisLog,
) -> None:
    game = await log.new_game()
    once = await log.append(game, 0, [move(0), move(1)], "move-a")
    again = await log.append(game, 0, [move(0), move(1)], "move-a")
    assert once == again
    assert len(await log.since(game, 0)) == 2


@needs_redis
async def test_every_kind_of_event_goes_through_redis(log: RedisLog) -> None:
    game = await log.new_game()
    await log.append(game, 0, EVERY_KIND, "all")
    assert [logged.event for logged in await log.since(game, 0)] == EVERY_KIND


@needs_redis
async def test_processes_racing_for_one_version_are_decided_once(server: RedisServer) -> None:
    # Four clients (four connections, as four processes would have) append the next event
    # at the version each last saw, as fast as they can.
    logs = [RedisLog(Redis(RedisAddress.from_url(server.url))) for _ in range(4)]
    game = await logs[0].new_game()
    won: list[list[int]] = [[] for _ in logs]
    conflicts = [0] * len(logs)

    async def racer(index: int) -> None:
        log = logs[index]
        version = 0
        while version < 200:
            result = await log.append(game, version, [move(version)], f"racer{index}-{version}")
            if isinstance(result, Appended):
                won[index].append(result.version)
                version = result.version
            else:
                conflicts[index] += 1
                version = result.version

    async with trio.open_nursery() as nursery:
        for index in range(len(logs)):
            nursery.start_soon(racer, index)
    versions = sorted(version for wins in won for version in wins)
    assert versions == list(range(1, 201))  # each version won by exactly one
    assert sum(conflicts) > 0  # they did race
    assert [logged.event for logged in await logs[0].since(game, 0)] == [
        move(index) for index in range(200)
    ]
    for log in logs:
        await log.redis.aclose()


@needs_redis
async def test_game_ids_are_unique_across_processes(server: RedisServer) -> None:
    logs = [RedisLog(Redis(RedisAddress.from_url(server.url))) for _ in range(3)]
    ids: list[GameId] = []

    async def create(log: RedisLog) -> None:
        for _ in range(20):
            ids.append(await log.new_game())

    async with trio.open_nursery() as nursery:
        for log in logs:
            nursery.start_soon(create, log)
    assert len(set(ids)) == 60
    for log in logs:
        await log.redis.aclose()


@needs_redis
async def test_secrets_lead_to_their_game_and_expire_with_it(log: RedisLog) -> None:
    game = await log.new_game()
    join, watch, seat = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
    await log.add_secret(join, game, Credential.JOIN)
    await log.add_secret(watch, game, Credential.WATCH)
    await log.add_secret(seat, game, Credential.CREATOR)
    await log.add_secret(seat, game, Credential.CREATOR)  # a retry: the same, accepted
    assert await log.find(join) == (game, Credential.JOIN)
    assert await log.find(seat) == (game, Credential.CREATOR)
    assert await log.find(b"\x04" * 32) is None
    other = await log.new_game()
    with pytest.raises(ValueError, match="already in use"):
        await log.add_secret(join, other, Credential.JOIN)
    await log.drop_secret(seat, game)
    assert await log.find(seat) is None
    await log.append(game, 0, [SeatTaken(player=Player.RED)], "s")
    await log.finish(game)
    redis = log.redis
    for key in (b"c4:{%d}:meta" % game, b"c4:{%d}:log" % game, b"c4:secret:" + join.hex().encode()):
        assert 0 < await redis.execute("TTL", key) <= 600
    assert await redis.execute("TTL", b"c4:secret:" + seat.hex().encode()) == -2  # dropped


@needs_redis
async def test_an_acknowledged_append_survives_redis_being_killed(
    server: RedisServer, log: RedisLog
) -> None:
    game = await log.new_game()
    await log.append(game, 0, [move(0), move(1), move(2)], "before the crash")
    server.kill()  # SIGKILL: only what appendfsync always put on disk is left
    server.start()
    assert [logged.event for logged in await log.since(game, 0)] == [move(0), move(1), move(2)]
    assert await log.append(game, 3, [move(3)], "after") == Appended((Logged(4, move(3)),))


@needs_redis
async def test_a_follower_gets_every_event_once_in_order_and_reads_what_it_missed(
    server: RedisServer, log: RedisLog
) -> None:
    subscription = Subscription(RedisAddress.from_url(server.url), retry=0.5)
    follower = Follower(log, subscription)
    game = await log.new_game()
    await log.append(game, 0, [move(0), move(1)], "early")  # before it follows
    await follower.follow(game, 0)
    received: list[Logged] = []
    async with trio.open_nursery() as nursery:
        receive = listening(follower, nursery)
        # Until its subscription is in place, appends are not heard: append until one is;
        # the first heard shows a gap (it followed from 0), which it reads from the log.
        version = 2
        with trio.fail_after(5):
            while not received:
                result = await log.append(game, version, [move(version)], f"a{version}")
                assert isinstance(result, Appended)
                version = result.version
                with trio.move_on_after(0.05):
                    got_game, events = await receive.receive()
                    assert got_game == game
                    received.extend(events)
            while received[-1].version < version:
                received.extend((await receive.receive())[1])
        assert [logged.version for logged in received] == list(range(1, version + 1))

        # Its own appends come back too: marked seen, they are given at most once (if the
        # published copy was taken before the mark), and nothing is given twice.
        mine = await log.append(game, version, [move(version)], "mine")
        assert isinstance(mine, Appended)
        follower.seen(game, mine.version)
        theirs = await log.append(game, mine.version, [move(mine.version)], "theirs")
        assert isinstance(theirs, Appended)
        after: list[Logged] = []
        while not after or after[-1].version < theirs.version:
            after.extend((await receive.receive())[1])
        assert after in ([*mine.logged, *theirs.logged], list(theirs.logged))

        # Redis restarts (durable): events appended before the follower is back are read
        # from the log after it resubscribes, none twice.
        server.stop()
        await trio.testing.wait_all_tasks_blocked()  # it lost Redis, and waits to retry
        server.start()
        late = await log.append(game, theirs.version, [move(1), move(2)], "while away")
        assert isinstance(late, Appended)
        with trio.fail_after(5):
            caught: list[Logged] = []
            while len(caught) < 2:
                caught.extend((await receive.receive())[1])
        assert caught == list(late.logged)
        nursery.cancel_scope.cancel()


@needs_redis
async def test_an_unfollowed_game_is_heard_no_more(server: RedisServer, log: RedisLog) -> None:
    follower = Follower(log, Subscription(RedisAddress.from_url(server.url), retry=0.05))
    kept, dropped = await log.new_game(), await log.new_game()
    await follower.follow(kept, 0)
    await follower.follow(dropped, 0)
    follower.seen(GameId(12345), 7)  # a game it does not follow: nothing to remember
    async with trio.open_nursery() as nursery:
        receive = listening(follower, nursery)
        heard: list[tuple[GameId, int]] = []
        version = 0
        with trio.fail_after(5):
            while not heard:  # until its subscription is in place
                await log.append(kept, version, [move(version)], f"k{version}")
                version += 1
                with trio.move_on_after(0.05):
                    game, events = await receive.receive()
                    heard.append((game, events[-1].version))
            await follower.unfollow(dropped)
            await log.append(dropped, 0, [move(0)], "d0")
            await log.append(kept, version, [move(version)], "last")
            game, events = await receive.receive()
        assert (game, events[-1].version) == (kept, version + 1)  # nothing of the dropped one
        nursery.cancel_scope.cancel()


@needs_redis
async def test_a_key_that_is_not_a_games_is_an_error_not_a_conflict(log: RedisLog) -> None:
    game = await log.new_game()
    await log.redis.execute("DEL", b"c4:{%d}:meta" % game)
    await log.redis.execute("SET", b"c4:{%d}:meta" % game, "not a hash")
    with pytest.raises(ReplyError, match="WRONGTYPE"):
        await log.append(game, 0, [move(0)], "x")
