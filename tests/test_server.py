"""The trio driver over socket pairs, with a wsproto client on the other end."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import multiprocessing
import os
import signal
import socket
import struct
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing
from peers import SITE, counting_keys
from prometheus_client.parser import text_string_to_metric_families
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Message,
    Ping,
    Request,
    TextMessage,
)

from connect4proto import Config, ConnectionId, GameServer, Site
from connect4proto.driver import Driver, load_site, serve
from connect4proto.driver.cli import LIMIT_FLAGS, config_from_args, new_key, parse_args
from connect4proto.driver.metrics import METRICS_PATH, ServerMetrics
from connect4proto.driver.pump import ACCEPT_PAUSE
from connect4proto.driver.thinkers import offer_perfect_level
from connect4proto.solver.bots import Level


class Client:
    """A WebSocket client on one end of a socket pair; the driver has the other end."""

    def __init__(self, sock: socket.socket) -> None:
        self.raw = sock  # for the tests that must act without yielding to the driver
        self.stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.events: list[Event] = []
        self.keys: dict[str, Any] = {}  # the join and watch keys, for red

    async def connect(self) -> None:
        await self.stream.send_all(self.ws.send(Request(host="localhost", target="/")))
        assert isinstance(await self.next_event(), AcceptConnection)

    async def next_event(self, within: float = 5) -> Event:
        with trio.fail_after(within):
            while not self.events:
                data = await self.stream.receive_some()
                self.ws.receive_data(data or None)
                self.events.extend(self.ws.events())
            return self.events.pop(0)

    async def send(self, message: dict[str, Any]) -> None:
        await self.stream.send_all(self.ws.send(Message(data=json.dumps(message))))

    async def receive(self) -> dict[str, Any]:
        event = await self.next_event()
        assert isinstance(event, TextMessage), event
        result: dict[str, Any] = json.loads(event.data)
        return result

    async def read_to_end(self, within: float = 5) -> bytes:
        """Everything until the server closes its side."""
        received = b""
        with trio.fail_after(within):
            while chunk := await self.stream.receive_some():
                received += chunk
        return received


@pytest.fixture(autouse=True, params=["epoll", "portable"])
def poller(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every driver test, with each of the driver's pollers (``make_poller`` reads it)."""
    monkeypatch.setenv("CONNECT4_POLLER", request.param)
    return str(request.param)


@contextlib.asynccontextmanager
async def running(
    core: GameServer, **driver_options: Any
) -> AsyncIterator[tuple[Driver, Callable[..., Client]]]:
    """A driver pumping in the background, and a way to connect clients to it."""
    driver = Driver(core, **driver_options)
    clients: list[Client] = []

    def connect(send_buffer: int | None = None) -> Client:
        ours, theirs = socket.socketpair()
        if send_buffer is not None:  # a peer that reads slowly fills a small buffer soon
            theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        driver.add_socket(theirs)
        clients.append(Client(ours))
        return clients[-1]

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(driver.run)
            yield driver, connect
            nursery.cancel_scope.cancel()
    finally:
        driver.close()
        for client in clients:
            await client.stream.aclose()


@pytest.fixture
async def driver() -> AsyncIterator[tuple[Driver, Callable[..., Client]]]:
    async with running(GameServer(site=SITE, new_key=counting_keys())) as pair:
        yield pair


async def start_game(connect: Callable[..., Client]) -> tuple[Client, Client]:
    """Red creates a game and yellow joins it, over the driver."""
    red, yellow = connect(), connect()
    await red.connect()
    await yellow.connect()
    await red.send({"type": "init"})
    keys = red.keys = await red.receive()
    await yellow.send({"type": "init", "join": keys["join"]})
    assert await yellow.receive() == {"type": "joined", "player": "red"}
    assert await yellow.receive() == {"type": "joined", "player": "yellow"}
    assert await red.receive() == {"type": "joined", "player": "yellow"}
    return red, yellow


async def test_two_players_play_over_the_driver(driver: Any) -> None:
    _, connect = driver
    red, yellow = await start_game(connect)
    await red.send({"type": "play", "column": 3})
    expected = {"type": "play", "player": "red", "column": 3, "row": 0}
    assert await red.receive() == expected
    assert await yellow.receive() == expected


async def test_closing_handshake_ends_the_connection(driver: Any) -> None:
    server, connect = driver
    red = connect()
    await red.connect()
    await red.stream.send_all(red.ws.send(CloseConnection(code=1000)))
    event = await red.next_event()
    assert isinstance(event, CloseConnection)
    assert event.code == 1000
    assert server.core.connection_count == 0
    # The server closes the TCP connection first (RFC 6455 section 7.1.1).
    assert await red.read_to_end() == b""
    await red.stream.aclose()
    await trio.testing.wait_all_tasks_blocked()
    assert server.open_connections == 0
    assert server.core.connection_count == 0


async def test_peer_vanishing_tells_the_opponent(driver: Any) -> None:
    server, connect = driver
    red, yellow = await start_game(connect)
    await yellow.stream.aclose()  # no close frame
    assert await red.receive() == {"type": "left", "player": "yellow"}
    await trio.testing.wait_all_tasks_blocked()
    await trio.testing.wait_all_tasks_blocked()
    assert server.open_connections == 1


async def test_shutdown_sends_1001_and_waits_for_the_close(driver: Any) -> None:
    server, connect = driver
    red = connect()
    await red.connect()
    server.shutdown()
    event = await red.next_event()
    assert isinstance(event, CloseConnection)
    assert event.code == 1001
    await red.stream.send_all(red.ws.send(event.response()))
    assert await red.read_to_end() == b""
    await red.stream.aclose()
    with trio.fail_after(5):
        await server.wait_all_closed()
    assert server.core.connection_count == 0


async def test_unexpected_error_closes_only_that_connection_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A key factory that fails on the second game (each takes three keys: join, watch, and
    # red's seat token): a bug inside the core's call.
    keys = counting_keys()
    calls = 0

    def flaky_keys() -> str:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise RuntimeError("entropy ran out")
        return keys()

    async with running(GameServer(site=SITE, new_key=flaky_keys)) as (_, connect):
        first, second = connect(), connect()
        await first.connect()
        await second.connect()
        await first.send({"type": "init"})
        assert (await first.receive())["type"] == "init"
        with caplog.at_level(logging.ERROR):
            await second.send({"type": "init"})
            event = await second.next_event()
        assert isinstance(event, CloseConnection)
        assert event.code == 1011
        assert "entropy ran out" in caplog.text
        # The other game goes on.
        await first.send({"type": "play", "column": 0})
        assert (await first.receive())["type"] == "play"


async def test_http_over_the_driver_serves_the_real_static_files() -> None:
    site = load_site()
    assert "/" in site.files
    assert "/app.js" in site.files
    async with running(GameServer(site=site, new_key=counting_keys())) as (_, connect):
        client = connect()
        await client.stream.send_all(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        received = await client.read_to_end()
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert received.endswith(b"\r\n\r\nOK\n")


async def scrape(connect: Callable[..., Client]) -> dict[str, float]:
    """``GET /metrics`` over the driver, parsed by prometheus_client's own parser: every
    sample's value by its name and labels (``name{label="value"}``)."""
    client = connect()
    await client.stream.send_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    received = await client.read_to_end()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def test_metrics_follow_a_game_played_over_the_driver() -> None:
    metrics = ServerMetrics()
    site = SITE.with_pages({METRICS_PATH: metrics.page()})
    core = GameServer(site=site, new_key=counting_keys())
    async with running(core, metrics=metrics) as (_, connect):
        before = await scrape(connect)
        assert before["connect4_moves_total"] == 0
        assert before["connect4_connections_open"] == 1  # the scrape's own
        red, yellow = await start_game(connect)
        after_start = await scrape(connect)
        assert after_start['connect4_games{phase="playing"}'] == 1
        for index, column in enumerate([0, 1, 0, 1, 0, 1, 0]):
            await (red if index % 2 == 0 else yellow).send({"type": "play", "column": column})
            for player in (red, yellow):
                await player.receive()
        assert (await red.receive())["type"] == "win"
        await yellow.receive()
        samples = await scrape(connect)
    assert samples["connect4_moves_total"] == 7
    assert samples["connect4_handshakes_total"] == 2
    assert samples["connect4_connections_open"] == 3  # red, yellow, the scrape
    assert samples['connect4_games{phase="over"}'] == 1
    assert samples['connect4_games{phase="playing"}'] == 0
    assert samples["connect4_messages_received_total"] == 2 + 7
    assert samples["connect4_messages_sent_total"] == 4 + 7 * 2 + 2
    assert samples['connect4_connections_closed_total{reason="normal"}'] == 2  # the scrapes
    assert samples['connect4_processing_seconds_count{kind="handshake"}'] == 2
    assert samples['connect4_processing_seconds_count{kind="message"}'] >= 9
    assert samples['connect4_processing_seconds_count{kind="http"}'] == 2  # earlier scrapes
    assert samples['connect4_processing_seconds_bucket{kind="message",le="+Inf"}'] >= 9
    assert 0 < samples['connect4_processing_seconds_sum{kind="message"}'] < 1
    assert samples['connect4_computer_moves_total{how="searched",level="strong"}'] == 0
    assert samples["connect4_output_overflows_total"] == 0
    assert samples["process_cpu_seconds_total"] > 0  # prometheus_client's own, from /proc


DRAW = [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 2, 3, 2, 3, 2, 3, 3, 2, 3, 2, 3, 2,
        4, 5, 4, 5, 4, 5, 5, 4, 5, 4, 5, 4, 6, 6, 6, 6, 6, 6]  # fmt: skip


def core_with(**limits: Any) -> GameServer:
    return GameServer(site=SITE, new_key=counting_keys(), config=Config(**limits))


async def test_a_spectator_who_does_not_read_is_cut_off_with_1013_and_the_game_goes_on() -> None:
    async with running(core_with(max_output_buffer=512)) as (server, connect):
        red, yellow = await start_game(connect)
        watcher = connect(send_buffer=1024)
        await watcher.connect()
        await watcher.send({"type": "init", "watch": red.keys["watch"]})
        for index, column in enumerate(DRAW):  # the watcher reads nothing meanwhile
            await (red if index % 2 == 0 else yellow).send({"type": "play", "column": column})
            expected = {
                "type": "play",
                "player": "red" if index % 2 == 0 else "yellow",
                "column": column,
            }
            for player in (red, yellow):
                assert (await player.receive()).items() >= expected.items()
        assert await red.receive() == await yellow.receive() == {"type": "draw"}
        assert server.core.lobby.member_count == 2
        # The watcher got whole frames up to the cut, then the close frame.
        seen: list[int] = []
        while isinstance(event := await watcher.next_event(), TextMessage):
            message = json.loads(event.data)
            if message["type"] == "play":
                seen.append(message["column"])
        assert isinstance(event, CloseConnection)
        assert event.code == 1013
        assert seen == DRAW[: len(seen)]
        assert len(seen) < len(DRAW)
        assert server.metrics.overflows == 1


async def test_beyond_max_connections_a_new_connection_gets_503() -> None:
    async with running(core_with(max_connections=2)) as (server, connect):
        first, second = connect(), connect()
        await first.connect()
        await second.connect()
        refused = connect()
        response = await refused.read_to_end()
        assert response.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"Retry-After: 5\r\n" in response
        assert server.core.connection_count == 2
        # A place freed is a place taken.
        await first.stream.send_all(first.ws.send(CloseConnection(code=1000)))
        assert isinstance(await first.next_event(), CloseConnection)
        third = connect()
        await third.connect()
        assert server.core.connection_count == 2


async def test_a_silent_peer_is_pinged_then_dropped_and_its_opponent_told(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(core_with()) as (server, connect):
        red, yellow = await start_game(connect)
        start = trio.current_time()
        # Red answers pings (wsproto's client does, as browsers do); yellow reads but never
        # answers, as a frozen tab would.
        event = await yellow.next_event(within=60)
        assert isinstance(event, Ping), event
        assert trio.current_time() - start == pytest.approx(20, abs=0.1)
        while isinstance(event := await red.next_event(within=60), Ping):
            await red.stream.send_all(red.ws.send(event.response()))
        assert isinstance(event, TextMessage)
        assert json.loads(event.data) == {"type": "left", "player": "yellow"}
        assert trio.current_time() - start == pytest.approx(40, abs=0.1)
        assert await yellow.read_to_end(within=60) == b""
        assert server.core.connection_count == 1


async def test_a_request_head_that_never_completes_gets_408(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(core_with()) as (server, connect):
        slow, idle = connect(), connect()
        await slow.stream.send_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: sl")
        start = trio.current_time()
        response = await slow.read_to_end(within=60)
        assert response.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert trio.current_time() - start == pytest.approx(10, abs=0.1)
        # A connection that never sent anything is closed without a word.
        assert await idle.read_to_end(within=60) == b""
        assert server.core.connection_count == 0


async def test_a_connection_reset_mid_frame_tells_the_opponent() -> None:
    driver = Driver(core_with())
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve, driver, "127.0.0.1", 0)
        port = int(address.rsplit(":", 1)[1].rstrip("/"))

        def connect() -> Client:
            sock = socket.create_connection(("127.0.0.1", port))
            return Client(sock)

        red, yellow = await start_game(connect)
        frame = yellow.ws.send(Message(data=json.dumps({"type": "play", "column": 3})))
        await yellow.stream.send_all(frame[:5])
        # SO_LINGER with a zero timeout: close() sends a TCP reset, not a FIN.
        yellow.stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await yellow.stream.aclose()
        assert await red.receive() == {"type": "left", "player": "yellow"}
        # Mid-handshake too: nothing is left of that connection.
        half = connect()
        await half.stream.send_all(b"GET / HTTP/1.1\r\nHost: localh")
        half.stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await half.stream.aclose()
        await red.stream.send_all(red.ws.send(CloseConnection(code=1000)))
        assert isinstance(await red.next_event(), CloseConnection)
        await red.stream.aclose()
        with trio.fail_after(5):
            await driver.wait_all_closed()
        assert driver.core.connection_count == 0
        nursery.cancel_scope.cancel()


class _FailsOnSecondOpen(GameServer):
    """A core with a bug that strikes when the second connection is opened."""

    opened = 0

    def open_connection(self, now: float, site: Site | None = None) -> ConnectionId:
        self.opened += 1
        if self.opened == 2:
            raise RuntimeError("bug in open_connection")
        return super().open_connection(now, site)


async def test_an_error_while_opening_a_connection_costs_only_that_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = _FailsOnSecondOpen(site=SITE, new_key=counting_keys())
    async with running(core) as (server, connect):
        first = connect()
        with caplog.at_level(logging.ERROR):
            second = connect()
        assert "bug in open_connection" in caplog.text
        assert await second.read_to_end() == b""
        third = connect()
        for client in (first, third):
            await client.connect()
            await client.send({"type": "init"})
            assert (await client.receive())["type"] == "init"
        assert server.open_connections == 2


async def test_keys_and_seat_tokens_never_reach_the_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(GameServer(site=SITE, new_key=new_key)) as (_, connect):
        with caplog.at_level(logging.DEBUG):
            red, yellow = await start_game(connect)
            watcher = connect()
            await watcher.connect()
            await watcher.send({"type": "init", "watch": red.keys["watch"]})
            assert await watcher.receive() == {"type": "joined", "player": "red"}
            assert await watcher.receive() == {"type": "joined", "player": "yellow"}
            await watcher.send({"type": "init", "watch": red.keys["watch"]})  # refused
            assert (await watcher.receive())["type"] == "error"
            await yellow.stream.aclose()
            assert await red.receive() == {"type": "left", "player": "yellow"}
            # A versioned page takes a seat, drops, comes back with its token, and a second
            # tab takes the seat over: seat tokens must not reach the logs either.
            page = connect()
            await page.connect()
            await page.send({"type": "init", "v": 0})
            assert (await page.receive())["type"] == "init"
            seat = await page.receive()
            await page.stream.aclose()
            again, tab = connect(), connect()
            for client in (again, tab):
                await client.connect()
                await client.send({"type": "init", "token": seat["token"], "v": 1})
                assert (await client.receive())["type"] == "init"
                assert (await client.receive())["token"] == seat["token"]
            await tab.send({"type": "init", "token": "wrong", "v": 0})
            kinds = [(await tab.receive())["type"] for _ in range(4)]
            assert kinds == ["away", "joined", "watchers", "error"]  # caught up, then refused
    assert "game 1: created" in caplog.text  # the logs do speak of the game
    assert "game 2: red back" in caplog.text
    assert "game 2: red taken over" in caplog.text
    for key in (red.keys["join"], red.keys["watch"], seat["token"]):
        assert len(key) >= 22  # 128 bits from the OS CSPRNG, URL-safe
        assert key[:8] not in caplog.text


class _OutOfDescriptorsOnce(socket.socket):
    """A listener whose first ``accept`` fails as if the process had no descriptor left."""

    calls: list[float]

    def accept(self) -> tuple[socket.socket, Any]:
        self.calls.append(trio.current_time())
        if len(self.calls) == 1:
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


async def test_out_of_descriptors_pauses_accepting_instead_of_spinning(
    autojump_clock: trio.testing.MockClock,
) -> None:
    listener = _OutOfDescriptorsOnce(socket.AF_INET, socket.SOCK_STREAM)
    listener.calls = []
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    driver = Driver(core_with())
    driver.add_listener(listener)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(driver.run)
            client = Client(socket.create_connection(listener.getsockname()))
            request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            await client.stream.send_all(request)
            assert (await client.read_to_end()).endswith(b"\r\n\r\nOK\n")
            await client.stream.aclose()
            # The listener stayed readable, yet the next try came only after the pause.
            assert listener.calls[1] - listener.calls[0] >= ACCEPT_PAUSE
            nursery.cancel_scope.cancel()
    finally:
        driver.close()


async def test_sends_that_fail_while_a_move_is_broadcast_cost_only_the_dead_peers() -> None:
    async with running(core_with()) as (server, connect):
        red, yellow = await start_game(connect)
        watcher = connect()
        await watcher.connect()
        await watcher.send({"type": "init", "watch": red.keys["watch"]})
        assert [(await watcher.receive())["player"] for _ in range(2)] == ["red", "yellow"]
        # Without yielding to the driver: red's move arrives, then yellow and the watcher
        # vanish, so the move's broadcast meets two dead sockets.
        red.raw.send(red.ws.send(Message(data=json.dumps({"type": "play", "column": 3}))))
        yellow.raw.close()
        watcher.raw.close()
        assert await red.receive() == {"type": "play", "player": "red", "column": 3, "row": 0}
        assert await red.receive() == {"type": "left", "player": "yellow"}
        await red.send({"type": "play", "column": 4})
        assert await red.receive() == {"type": "error", "message": "It isn't your turn."}
        assert server.core.connection_count == 1


def test_every_limit_has_a_flag_whose_default_is_the_configs() -> None:
    # The levels offered are the driver's to set, from what can run here.
    names = {field.name for field in dataclasses.fields(Config)} - {
        "allowed_origins",
        "computer_levels",
    }
    assert set(LIMIT_FLAGS) == names
    assert config_from_args(parse_args([])) == Config() == parse_args([]).config
    args = parse_args(
        [
            "--max-messages-per-second=0",
            "--ping-interval=7.5",
            "--allowed-origin=https://a.example",
            "--allowed-origin=https://b.example",
        ]
    )
    assert config_from_args(args) == Config(
        max_messages_per_second=None,
        ping_interval=7.5,
        allowed_origins=("https://a.example", "https://b.example"),
    )
    assert args.config == config_from_args(args)
    # A bad limit: see tests/test_command_line.py (one line, exit status 2).
    with pytest.raises(SystemExit):
        parse_args(["--max-headers=0"])


async def test_the_computer_moves_from_a_worker_process_that_may_die(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = GameServer(site=SITE, new_key=counting_keys(), config=Config(bot_delay=0.0))
    async with running(core) as (server, connect):
        page = connect()
        await page.connect()
        # The casual level thinks in the worker process, started by the first move.
        await page.send({"type": "init", "v": 0, "bot": "casual"})
        assert [(await page.receive())["type"] for _ in range(4)] == [
            "init", "seat", "joined", "joined"
        ]  # fmt: skip
        await page.send({"type": "play", "column": 3})
        assert (await page.receive())["player"] == "red"
        answer = await page.receive()
        assert answer["type"] == "play"
        assert answer["player"] == "yellow"

        # The worker process dies (killed here): the server and the game go on, the
        # computer plays a safe move, and a new process thinks the next one.
        (worker,) = multiprocessing.active_children()
        os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
        with caplog.at_level(logging.ERROR):
            await page.send({"type": "play", "column": 3})
            assert (await page.receive())["player"] == "red"
            fallback = await page.receive()
        assert fallback["player"] == "yellow"
        assert fallback["column"] == 3  # the centre, which has room
        assert "the computer failed to move" in caplog.text
        await page.send({"type": "play", "column": 0})
        assert (await page.receive())["player"] == "red"
        assert (await page.receive())["player"] == "yellow"
        (new_worker,) = multiprocessing.active_children()
        assert new_worker.pid != worker.pid
        computed = server.metrics.computed
        assert (computed["casual", "searched"], computed["casual", "failed"]) == (2, 1)
        assert sum(server.metrics.thinking["casual"].counts) == 3


async def test_the_perfect_computer_thinks_in_the_worker_process_from_the_first_move() -> None:
    core = GameServer(site=SITE, new_key=counting_keys(), config=Config(bot_delay=0.0))
    async with running(core) as (driver, connect):
        driver.start_thinking()  # as the server does: the perfect player loads meanwhile
        page = connect()
        await page.connect()
        await page.send({"type": "init", "v": 0, "bot": "perfect", "color": "yellow"})
        events = [await page.receive() for _ in range(5)]
        assert [event["type"] for event in events] == ["init", "seat", "joined", "joined", "play"]
        # Moving first, it plays the centre: the only move that wins.
        assert events[-1] == {"type": "play", "player": "red", "column": 3, "row": 0, "v": 3}


async def test_a_full_queue_of_the_computers_moves_plays_quick_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = GameServer(site=SITE, new_key=counting_keys(), config=Config(bot_delay=0.0))
    async with running(core, max_thinking=0) as (server, connect):
        page = connect()
        await page.connect()
        with caplog.at_level(logging.WARNING):
            await page.send({"type": "init", "v": 0, "bot": "strong", "color": "yellow"})
            events = [await page.receive() for _ in range(5)]
        assert events[-1]["type"] == "play"
        assert events[-1]["player"] == "red"
        assert "moves of the computer wait to be worked out; it plays a quick one" in caplog.text
        assert server.metrics.computed["strong", "hurried"] == 1


def test_without_numba_the_perfect_level_is_off_and_said_so(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a machine without numba (None in sys.modules hides a module).
    monkeypatch.setitem(sys.modules, "numba", None)
    with caplog.at_level(logging.WARNING):
        config = offer_perfect_level(Config())
    assert config.computer_levels == frozenset(Level) - {Level.PERFECT}
    assert "the perfect level is off: numba not installed" in caplog.text
    assert "pip install 'connect4proto[perfect]'" in caplog.text
    monkeypatch.delitem(sys.modules, "numba")
    assert offer_perfect_level(Config()) == Config()  # here it is installed
