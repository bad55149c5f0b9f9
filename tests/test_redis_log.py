"""Games' logs and secrets in a real Redis (``connect4proto.driver.redis_log``): appends
decided once however many processes race, retries that never append twice, reads since a
version, secrets, expiry, durability, and following a game's events across processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
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
from connect4proto.shared import Append
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
        yield RedisLog(redis, ttl=600)
    finally:
        await redis.aclose()


def appending(
    game: GameId,
    expected: int,
    events: Sequence[GameEvent],
    *,
    keys: tuple[str, str] | None = None,
    secrets: tuple[tuple[bytes, Credential], ...] = (),
) -> Append:
    """The core's intent to append ``events`` at ``expected`` (``keys``: a new game's)."""
    logged = tuple(
        Logged(expected + 1 + i, event, 1000.0 + expected + i) for i, event in enumerate(events)
    )
    return Append(intent=0, game=game, expected=expected, events=logged, secrets=secrets, keys=keys)


def new(game: int, events: Sequence[GameEvent] = (), **options: object) -> Append:
    return appending(GameId(game), 0, events, keys=("join-key", "watch-key"), **options)  # type: ignore[arg-type]


def listening(
    log: RedisLog, subscription: Subscription
) -> tuple[Follower, trio.MemoryReceiveChannel[tuple[GameId, list[Logged]]]]:
    """A follower, and what it gives, as it gives it."""
    send, receive = trio.open_memory_channel[tuple[GameId, list[Logged]]](100)
    follower = Follower(log, subscription, lambda game, events: send.send_nowait((game, events)))
    return follower, receive


def move(index: int) -> Move:
    return Move(player=(Player.RED, Player.YELLOW)[index % 2], column=index % 7, row=index // 7)


@needs_redis
async def test_appends_at_the_expected_version_and_a_conflict_otherwise(log: RedisLog) -> None:
    (game,) = await log.reserve_ids(1)
    game = GameId(game)
    taken = SeatTaken(player=Player.RED)
    assert await log.append(new(game, [taken]), "i1") == Appended(1)
    assert await log.append(appending(game, 1, [move(0), move(1)]), "i2") == Appended(3)
    assert await log.append(appending(game, 1, [move(2)]), "i3") == Conflict(3)
    assert await log.since(game, 0) == [
        Logged(1, taken, 1000.0), Logged(2, move(0), 1001.0), Logged(3, move(1), 1002.0),
    ]  # fmt: skip
    assert await log.since(game, 2) == [Logged(3, move(1), 1002.0)]
    assert await log.since(game, 3) == []
    assert await log.since(game, 4) is None  # ahead of the log: a snapshot, as in memory
    with pytest.raises(GameGone):  # not created (no keys): not in Redis
        await log.append(appending(GameId(999), 0, [move(0)]), "i4")
    with pytest.raises(GameGone):
        await log.since(GameId(999), 0)


@needs_redis
async def test_a_retry_with_the_same_intent_appends_nothing_and_answers_the_same(
    log: RedisLog,
) -> None:
    once = await log.append(new(5, [move(0), move(1)]), "move-a")
    again = await log.append(new(5, [move(0), move(1)]), "move-a")
    assert once == again == Appended(2)
    assert len(await log.since(GameId(5), 0) or []) == 2


@needs_redis
async def test_every_kind_of_event_goes_through_redis(log: RedisLog) -> None:
    await log.append(new(6, EVERY_KIND), "all")
    assert [logged.event for logged in await log.since(GameId(6), 0) or []] == EVERY_KIND


@needs_redis
async def test_processes_racing_for_one_version_are_decided_once(server: RedisServer) -> None:
    # Four clients (four connections, as four processes would have) append the next event
    # at the version each last saw, as fast as they can.
    logs = [RedisLog(Redis(RedisAddress.from_url(server.url))) for _ in range(4)]
    game = GameId(7)
    await logs[0].append(new(game), "created")
    won: list[list[int]] = [[] for _ in logs]
    conflicts = [0] * len(logs)

    async def racer(index: int) -> None:
        log = logs[index]
        version = 0
        while version < 200:
            intent = appending(game, version, [move(version)])
            result = await log.append(intent, f"racer{index}-{version}")
            if isinstance(result, Appended):
                won[index].append(result.version)
            else:
                conflicts[index] += 1
            version = result.version

    async with trio.open_nursery() as nursery:
        for index in range(len(logs)):
            nursery.start_soon(racer, index)
    versions = sorted(version for wins in won for version in wins)
    assert versions == list(range(1, 201))  # each version won by exactly one
    assert sum(conflicts) > 0  # they did race
    assert [logged.event for logged in await logs[0].since(game, 0) or []] == [
        move(index) for index in range(200)
    ]
    for log in logs:
        await log.redis.aclose()


@needs_redis
async def test_game_ids_are_unique_across_processes(server: RedisServer) -> None:
    logs = [RedisLog(Redis(RedisAddress.from_url(server.url))) for _ in range(3)]
    ids: list[int] = []

    async def reserve(log: RedisLog) -> None:
        for _ in range(20):
            ids.extend(await log.reserve_ids(5))

    async with trio.open_nursery() as nursery:
        for log in logs:
            nursery.start_soon(reserve, log)
    assert len(set(ids)) == 300
    for log in logs:
        await log.redis.aclose()


@needs_redis
async def test_a_secret_leads_to_its_game_with_its_log_and_keys(log: RedisLog) -> None:
    join, watch, seat = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
    secrets = ((join, Credential.JOIN), (watch, Credential.WATCH), (seat, Credential.CREATOR))
    taken = SeatTaken(player=Player.RED)
    await log.append(new(8, [taken], secrets=secrets), "created")
    found = await log.lookup(seat)
    assert found is not None
    assert (found.game, found.credential) == (8, Credential.CREATOR)
    assert found.events == (Logged(1, taken, 1000.0),)
    assert found.keys == ("join-key", "watch-key")
    watched = await log.lookup(watch)
    assert watched is not None
    assert watched.credential is Credential.WATCH
    assert await log.lookup(b"\x04" * 32) is None
    # A retry's own secrets are accepted; another game's are not.
    await log.append(new(8, [taken], secrets=secrets), "created")
    with pytest.raises(ValueError, match="already in use"):
        await log.append(new(9, [taken], secrets=((join, Credential.JOIN),)), "other")
    # The game's keys, and its secrets, expire (each append and lookup pushes it back).
    redis = log.redis
    for key in (
        b"c4:{8}:meta",
        b"c4:{8}:log",
        b"c4:{8}:intents",
        b"c4:secret:" + join.hex().encode(),
    ):
        assert 0 < await redis.execute("TTL", key) <= 600


@needs_redis
async def test_a_secret_whose_game_never_got_its_first_event_leads_nowhere(log: RedisLog) -> None:
    digest = b"\x05" * 32
    # The secret is written first; the append itself then fails (no such game here).
    with pytest.raises(GameGone):
        await log.append(
            appending(GameId(10), 0, [move(0)], secrets=((digest, Credential.JOIN),)), "x"
        )
    assert await log.lookup(digest) is None


@needs_redis
async def test_an_acknowledged_append_survives_redis_being_killed(
    server: RedisServer, log: RedisLog
) -> None:
    await log.append(new(11, [move(0), move(1), move(2)]), "before the crash")
    server.kill()  # SIGKILL: only what appendfsync always put on disk is left
    server.start()
    assert [logged.event for logged in await log.since(GameId(11), 0) or []] == [
        move(0), move(1), move(2),
    ]  # fmt: skip
    assert await log.append(appending(GameId(11), 3, [move(3)]), "after") == Appended(4)


@needs_redis
async def test_a_follower_gets_every_event_once_in_order_and_reads_what_it_missed(
    server: RedisServer, log: RedisLog
) -> None:
    subscription = Subscription(RedisAddress.from_url(server.url), retry=0.05)
    follower, receive = listening(log, subscription)
    game = GameId(12)
    await log.append(new(game, [move(0), move(1)]), "early")  # before it follows
    received: list[Logged] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(follower.run)
        await follower.follow(game, 0)  # reads what came before from the log
        with trio.fail_after(5):
            received.extend((await receive.receive())[1])
        assert [logged.version for logged in received] == [1, 2]
        # Appends by others come as they are published (or from the log, at a gap).
        version = 2
        for index in range(2, 6):
            result = await log.append(appending(game, version, [move(index)]), f"a{index}")
            assert isinstance(result, Appended)
            version = result.version
        with trio.fail_after(5):
            while received[-1].version < version:
                received.extend((await receive.receive())[1])
        assert [logged.version for logged in received] == list(range(1, version + 1))

        # Its own appends come back too: marked seen, they are given at most once (if the
        # published copy was taken before the mark), and nothing is given twice.
        mine = await log.append(appending(game, version, [move(6)]), "mine")
        assert mine == Appended(version + 1)
        follower.seen(game, mine.version)
        theirs = await log.append(appending(game, mine.version, [move(7)]), "theirs")
        assert isinstance(theirs, Appended)
        after: list[Logged] = []
        with trio.fail_after(5):
            while not after or after[-1].version < theirs.version:
                after.extend((await receive.receive())[1])
        assert [logged.version for logged in after] in (
            [mine.version, theirs.version],
            [theirs.version],
        )

        # Redis restarts (durable): events appended before the follower is back are read
        # from the log after it resubscribes, none twice.
        server.stop()
        await trio.testing.wait_all_tasks_blocked()  # it lost Redis, and waits to retry
        server.start()
        late = await log.append(appending(game, theirs.version, [move(8), move(9)]), "away")
        assert isinstance(late, Appended)
        with trio.fail_after(5):
            caught: list[Logged] = []
            while len(caught) < 2:
                caught.extend((await receive.receive())[1])
        assert [logged.version for logged in caught] == [late.version - 1, late.version]
        nursery.cancel_scope.cancel()


@needs_redis
async def test_an_unfollowed_game_is_heard_no_more(server: RedisServer, log: RedisLog) -> None:
    follower, receive = listening(log, Subscription(RedisAddress.from_url(server.url), retry=0.05))
    kept, dropped = GameId(13), GameId(14)
    await log.append(new(kept), "k")
    await log.append(new(dropped), "d")
    follower.seen(GameId(12345), 7)  # a game it does not follow: nothing to remember
    async with trio.open_nursery() as nursery:
        nursery.start_soon(follower.run)
        await follower.follow(kept, 0)
        await follower.follow(dropped, 0)
        await follower.follow(dropped, 0)  # once is enough
        assert follower.following == 2
        heard: list[tuple[GameId, int]] = []
        version = 0
        with trio.fail_after(5):
            while not heard:  # until its subscription is in place
                await log.append(appending(kept, version, [move(version)]), f"k{version}")
                version += 1
                with trio.move_on_after(0.05):
                    game, events = await receive.receive()
                    heard.append((game, events[-1].version))
            while heard[-1][1] < version:
                game, events = await receive.receive()
                heard.append((game, events[-1].version))
            await follower.unfollow(dropped)
            await log.append(appending(dropped, 0, [move(0)]), "d0")
            await log.append(appending(kept, version, [move(version)]), "last")
            game, events = await receive.receive()
        assert (game, events[-1].version) == (kept, version + 1)  # nothing of the dropped one
        nursery.cancel_scope.cancel()


@needs_redis
async def test_a_key_that_is_not_a_games_is_an_error_not_a_conflict(log: RedisLog) -> None:
    await log.redis.execute("SET", b"c4:{15}:meta", "not a hash")
    with pytest.raises(ReplyError, match="WRONGTYPE"):
        await log.append(appending(GameId(15), 0, [move(0)]), "x")  # (the script is loaded)
    with pytest.raises(ReplyError, match="WRONGTYPE"):
        await log.append(appending(GameId(15), 0, [move(0)]), "y")  # (it was loaded)
