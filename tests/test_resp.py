"""The Redis client (``connect4proto.driver.resp``) against a real ``redis-server``: replies,
pipelining from many tasks, errors, logging in, and each way Redis can fail under it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing
from redis_servers import RedisServer, free_port, needs_redis, running

from connect4proto.driver.resp import (
    Ambiguous,
    Connection,
    ConnectionLost,
    Message,
    Redis,
    RedisAddress,
    ReplyError,
    Resubscribed,
    Subscription,
    TimedOut,
    Unavailable,
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with running(tmp_path) as started:
        yield started


@pytest.fixture
async def redis(server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis(RedisAddress.from_url(server.url + "?timeout=0.5"))
    try:
        yield client
    finally:
        await client.aclose()


@asynccontextmanager
async def listening(
    subscription: Subscription,
) -> AsyncIterator[trio.MemoryReceiveChannel[Message | Resubscribed]]:
    """What ``subscription`` hears, from a task of its own while the block runs."""
    send, receive = trio.open_memory_channel[Message | Resubscribed](100)

    async def listen() -> None:
        async for item in subscription.messages():
            await send.send(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(listen)
        yield receive
        nursery.cancel_scope.cancel()


def test_an_address_comes_from_a_url() -> None:
    assert RedisAddress.from_url("redis://cache.example:6380/2?timeout=2.5") == RedisAddress(
        host="cache.example", port=6380, db=2, timeout=2.5
    )
    secure = RedisAddress.from_url("rediss://games:p%40ss@[::1]/")
    assert (secure.host, secure.port, secure.tls) == ("::1", 6379, True)
    assert (secure.username, secure.password) == ("games", "p@ss")
    assert RedisAddress.from_url("redis://:secret@h").password == "secret"
    assert str(secure) == "rediss://::1:6379/0"  # never the password


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h:6379", "is not a redis:// or rediss:// URL"),
        ("redis://h:99999", "the port is not a number from 0 to 65535"),
        ("redis://h:6379/zero", "the database is a number"),
        ("redis:///0", "no host"),
        ("redis://h?timeout=0", "timeout= is a number of seconds above 0"),
        ("redis://h?timeout=soon", "timeout= is a number of seconds above 0"),
        ("redis://h?pool=3", "unknown option 'pool'"),
        ("redis://h?ca=/etc/ca.pem", "ca= is for TLS, in a rediss:// URL"),
    ],
)
def test_a_bad_url_says_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedisAddress.from_url(url)


@needs_redis
async def test_replies_and_error_replies(redis: Redis) -> None:
    assert await redis.execute("SET", "k", b"v\x00\xff") == b"OK"
    assert await redis.execute("GET", "k") == b"v\x00\xff"
    assert await redis.execute("INCR", "n") == 1
    with pytest.raises(ReplyError, match="WRONGTYPE"):
        await redis.execute("LPUSH", "k", "x")
    assert await redis.execute("INCR", "n") == 2  # the connection goes on
    replies = await redis.pipeline([("INCR", "n"), ("LPUSH", "k", "x"), ("GET", "missing")])
    assert replies[0] == 3
    assert isinstance(replies[1], ReplyError)
    assert replies[2] is None


@needs_redis
async def test_a_slow_reply_holds_back_the_later_ones_which_still_reach_their_callers(
    server: RedisServer, redis: Redis
) -> None:
    # BLPOP blocks in Redis until something is pushed: the PING sent after it on the same
    # connection is answered after it, and its caller waits for the BLPOP's caller to read.
    replies: dict[str, object] = {}

    async def ask(name: str, *command: str | int) -> None:
        replies[name] = await redis.execute(*command)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, "pop", "BLPOP", "queue", 0)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(ask, "ping", "PING")
        await trio.testing.wait_all_tasks_blocked()
        assert replies == {}  # the PING is answered, but behind the BLPOP
        pusher = Redis(RedisAddress.from_url(server.url))
        await pusher.execute("RPUSH", "queue", "item")
        await pusher.aclose()
    assert replies == {"pop": [b"queue", b"item"], "ping": b"PONG"}


@needs_redis
async def test_a_connection_that_broke_refuses_what_comes_after(server: RedisServer) -> None:
    connection = await Connection.open(RedisAddress.from_url(server.url))
    assert await connection.pipeline([("PING",)]) == [b"PONG"]
    server.stop()
    with pytest.raises(ConnectionLost):
        await connection.pipeline([("PING",)])
    with pytest.raises(Unavailable, match="the connection is broken"):
        await connection.pipeline([("PING",)])
    await connection.aclose()


@needs_redis
async def test_when_the_connection_breaks_every_caller_waiting_on_it_hears_so(
    server: RedisServer, redis: Redis
) -> None:
    failures: dict[str, type[BaseException]] = {}

    async def ask(name: str, *command: str | int) -> None:
        try:
            await redis.execute(*command)
        except Ambiguous as exc:
            failures[name] = type(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, "pop", "BLPOP", "queue", 0)  # it reads
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(ask, "ping", "PING")  # it waits for the reader
        await trio.testing.wait_all_tasks_blocked()
        server.stop()
    assert failures == {"pop": ConnectionLost, "ping": ConnectionLost}
    server.start()
    assert await redis.execute("PING") == b"PONG"


@needs_redis
async def test_a_write_cut_by_a_timeout_breaks_the_connection_for_those_behind_it(
    server: RedisServer, redis: Redis
) -> None:
    # Frozen, Redis reads nothing: a large value fills the socket's buffers, and the write
    # is still going when the timeout strikes. Half a command is out: the connection is done.
    server.freeze()
    outcomes: dict[str, str] = {}

    async def ask(name: str, *command: str | bytes | int) -> None:
        try:
            await redis.execute(*command)
        except (TimedOut, Unavailable) as exc:
            outcomes[name] = str(exc)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "big", "SET", "big", b"x" * 64_000_000)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ask, "behind", "PING")  # waits to write, behind the big one
    finally:
        server.thaw()
    assert outcomes["big"] == "no answer within 0.5 s"
    assert outcomes["behind"].startswith(("no answer within", "the connection is broken"))
    assert await redis.execute("PING") == b"PONG"  # a new connection
    assert await redis.execute("EXISTS", "big") == 0  # the half-sent command never ran


@needs_redis
async def test_a_subscription_started_while_redis_is_down_waits_for_it(
    server: RedisServer, redis: Redis
) -> None:
    server.stop()
    subscription = Subscription(RedisAddress.from_url(server.url + "?timeout=0.5"), retry=0.02)
    await subscription.subscribe(b"news")
    async with listening(subscription) as receive:
        await trio.testing.wait_all_tasks_blocked()  # it tried, and waits to try again
        server.start()
        with trio.fail_after(5):
            first = await receive.receive()
        assert isinstance(first, Resubscribed)
        assert "cannot connect" in first.why
        while True:
            await redis.execute("PUBLISH", "news", "up", idempotent=True)
            with trio.move_on_after(0.05):
                assert await receive.receive() == Message(b"news", b"up")
                break


@needs_redis
async def test_tls_with_the_servers_certificate_and_not_without(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, tls=True, password="pw")
    server.start()
    try:
        secure = Redis(RedisAddress.from_url(server.url))
        assert await secure.execute("PING") == b"PONG"
        await secure.aclose()
        untrusted = Redis(RedisAddress.from_url(f"rediss://:pw@127.0.0.1:{server.port}/0"))
        with pytest.raises(Unavailable, match="cannot connect to rediss://"):
            await untrusted.execute("PING")  # a self-signed certificate: refused
        plain = Redis(RedisAddress.from_url(f"redis://:pw@127.0.0.1:{server.port}/0"))
        with pytest.raises((Unavailable, Ambiguous)):
            await plain.execute("PING")  # not TLS: the server drops it
        await plain.aclose()
    finally:
        server.stop()


@needs_redis
async def test_many_tasks_share_one_connection_each_getting_its_own_replies(
    redis: Redis,
) -> None:
    results: dict[int, list[object]] = {}

    async def task(index: int) -> None:
        key = f"list{index}"
        results[index] = await redis.pipeline(
            [("RPUSH", key, index), ("RPUSH", key, index * 10), ("LRANGE", key, 0, -1)]
        )

    async with trio.open_nursery() as nursery:
        for index in range(200):
            nursery.start_soon(task, index)
    for index in range(200):
        assert results[index] == [1, 2, [str(index).encode(), str(index * 10).encode()]]


@needs_redis
async def test_ten_thousand_pipelined_commands(redis: Redis) -> None:
    replies = await redis.pipeline([("INCR", "counter")] * 10_000)
    assert replies == list(range(1, 10_001))


@needs_redis
async def test_a_password_and_a_database_from_the_url(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, password="s3cret")
    server.start()
    try:
        good = Redis(RedisAddress.from_url(f"redis://:s3cret@127.0.0.1:{server.port}/3"))
        await good.execute("SET", "where", "db3")
        assert await good.execute("CLIENT", "INFO") is not None
        assert b"db=3" in await good.execute("CLIENT", "INFO")
        await good.aclose()
        wrong = Redis(RedisAddress.from_url(f"redis://:nope@127.0.0.1:{server.port}/0"))
        with pytest.raises(ReplyError, match="WRONGPASS"):
            await wrong.execute("PING")
        anonymous = Redis(RedisAddress.from_url(f"redis://127.0.0.1:{server.port}/0"))
        with pytest.raises(ReplyError, match="NOAUTH"):
            await anonymous.execute("PING")
        await anonymous.aclose()
    finally:
        server.stop()


async def test_nobody_listening_is_unavailable_at_once() -> None:
    redis = Redis(RedisAddress.from_url(f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(Unavailable, match=r"cannot connect to redis://127\.0\.0\.1"):
        await redis.execute("PING")


@needs_redis
async def test_a_restart_breaks_the_connection_and_the_next_command_reconnects(
    server: RedisServer, redis: Redis
) -> None:
    assert await redis.execute("PING") == b"PONG"
    server.stop()
    with pytest.raises((Ambiguous, Unavailable)):
        await redis.execute("PING")
    with pytest.raises(Unavailable):  # still down: refused at once
        await redis.execute("PING")
    server.start()
    assert await redis.execute("PING") == b"PONG"


@needs_redis
async def test_an_idempotent_command_is_sent_again_on_a_connection_broken_meanwhile(
    server: RedisServer, redis: Redis
) -> None:
    await redis.execute("SET", "k", "kept")
    server.stop()
    server.start()  # the client's connection is gone, and it does not know yet
    assert await redis.execute("GET", "k", idempotent=True) is None  # no persistence
    server.stop()
    server.start()
    with pytest.raises(Ambiguous):  # not idempotent: the caller decides
        await redis.execute("INCR", "n")
    assert await redis.execute("INCR", "n") == 1


@needs_redis
async def test_a_frozen_redis_times_out_and_what_was_sent_may_still_be_applied(
    server: RedisServer, redis: Redis
) -> None:
    await redis.execute("SET", "n", 0)
    server.freeze()
    try:
        with pytest.raises(TimedOut, match=r"no answer within 0\.5 s"):
            await redis.execute("INCR", "n")
    finally:
        server.thaw()
    # The caller gave up, yet Redis applied it once it woke: a timeout is ambiguous.
    assert await redis.execute("GET", "n") == b"1"


@needs_redis
async def test_a_subscription_delivers_and_comes_back_after_a_restart(
    server: RedisServer, redis: Redis
) -> None:
    subscription = Subscription(RedisAddress.from_url(server.url + "?timeout=0.5"), retry=0.05)
    await subscription.subscribe(b"game:1", b"game:2")
    received: list[Message | Resubscribed] = []
    async with listening(subscription) as receive:
        # A publish before the subscription is in place reaches nobody: publish until heard.
        while not received:
            await redis.execute("PUBLISH", "game:1", "hello")
            with trio.move_on_after(0.05):
                received.append(await receive.receive())
        assert received[0] == Message(b"game:1", b"hello")
        assert await redis.execute("PUBLISH", "game:2", "two") == 1
        assert await receive.receive() == Message(b"game:2", b"two")
        await subscription.unsubscribe(b"game:2")
        await subscription.subscribe(b"game:3")
        await redis.execute("PUBLISH", "game:3", "three")
        assert await receive.receive() == Message(b"game:3", b"three")

        server.stop()
        server.start()
        back = await receive.receive()
        assert isinstance(back, Resubscribed)
        numsub = ("PUBSUB", "NUMSUB", "game:1", "game:2", "game:3")
        assert await redis.execute(*numsub, idempotent=True) == [
            b"game:1", 1, b"game:2", 0, b"game:3", 1,
        ]  # fmt: skip
        await redis.execute("PUBLISH", "game:1", "again")
        assert await receive.receive() == Message(b"game:1", b"again")


@needs_redis
async def test_subscribe_returns_once_redis_has_confirmed_it(
    server: RedisServer, redis: Redis
) -> None:
    # Redis reads its connections in no promised order: a SUBSCRIBE written before a PUBLISH
    # on another connection may take effect after it. ``subscribe`` says True only once
    # Redis has confirmed it, and a frozen Redis confirms nothing.
    subscription = Subscription(RedisAddress.from_url(server.url + "?timeout=0.5"), retry=0.05)
    assert await subscription.subscribe(b"ready") is False  # not connected yet
    async with listening(subscription) as receive:
        heard = None
        while heard is None:  # publish until the listener is connected and subscribed
            await redis.execute("PUBLISH", "ready", "up")
            with trio.move_on_after(0.05):
                heard = await receive.receive()
        for index in range(50):
            channel = b"game:%d" % index
            assert await subscription.subscribe(channel) is True
            assert await redis.execute("PUBLISH", channel, "first") == 1
        assert await subscription.subscribe(b"game:0") is True  # confirmed already
        await subscription.unsubscribe(b"never")  # nothing to undo: nothing sent
        server.freeze()
        try:
            assert await subscription.subscribe(b"frozen") is False  # after the timeout
        finally:
            server.thaw()


@needs_redis
async def test_large_writes_from_two_tasks_wait_for_the_socket_and_stay_whole(
    redis: Redis,
) -> None:
    # More than the kernel takes at once: the rest waits for the socket, and the second
    # request goes out behind the first, not into the middle of it.
    values = {b"a": b"a" * 8_000_000, b"b": bytes(range(256)) * 31_250}

    async def store(key: bytes) -> None:
        assert await redis.execute("SET", key, values[key]) == b"OK"

    async with trio.open_nursery() as nursery:
        for key in values:
            nursery.start_soon(store, key)
    for key, value in values.items():
        assert await redis.execute("GET", key) == value


@needs_redis
async def test_tls_to_a_redis_without_it_cannot_connect(server: RedisServer) -> None:
    address = RedisAddress.from_url(f"rediss://127.0.0.1:{server.port}/0?timeout=0.5")
    with pytest.raises(Unavailable, match="cannot connect to rediss://"):
        await Redis(address).execute("PING")
