"""The trio driver over in-memory streams, with a wsproto client on the other end."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing
from peers import SITE, counting_keys
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Message,
    Request,
    TextMessage,
)

from connect4proto import GameServer
from server import Driver, load_site


class Client:
    """A WebSocket client on one end of a memory stream pair."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.events: list[Event] = []

    async def connect(self) -> None:
        await self.stream.send_all(self.ws.send(Request(host="localhost", target="/")))
        assert isinstance(await self.next_event(), AcceptConnection)

    async def next_event(self) -> Event:
        with trio.fail_after(5):
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


@pytest.fixture
async def driver() -> AsyncIterator[tuple[Driver, Callable[[], Client], trio.Nursery]]:
    driver = Driver(GameServer(site=SITE, new_key=counting_keys()))
    async with trio.open_nursery() as nursery:

        def connect() -> Client:
            client_stream, server_stream = trio.testing.memory_stream_pair()
            nursery.start_soon(driver.serve_connection, server_stream)
            return Client(client_stream)

        yield driver, connect, nursery
        nursery.cancel_scope.cancel()


async def start_game(connect: Callable[[], Client]) -> tuple[Client, Client]:
    """Red creates a game and yellow joins it, over the driver."""
    red, yellow = connect(), connect()
    await red.connect()
    await yellow.connect()
    await red.send({"type": "init"})
    keys = await red.receive()
    await yellow.send({"type": "init", "join": keys["join"]})
    assert await yellow.receive() == {"type": "joined", "player": "red"}
    assert await yellow.receive() == {"type": "joined", "player": "yellow"}
    assert await red.receive() == {"type": "joined", "player": "yellow"}
    return red, yellow


async def test_two_players_play_over_the_driver(driver: Any) -> None:
    _, connect, _ = driver
    red, yellow = await start_game(connect)
    await red.send({"type": "play", "column": 3})
    expected = {"type": "play", "player": "red", "column": 3, "row": 0}
    assert await red.receive() == expected
    assert await yellow.receive() == expected


async def test_closing_handshake_ends_the_connection_task(driver: Any) -> None:
    server, connect, _ = driver
    red = connect()
    await red.connect()
    await red.stream.send_all(red.ws.send(CloseConnection(code=1000)))
    event = await red.next_event()
    assert isinstance(event, CloseConnection)
    assert event.code == 1000
    await trio.testing.wait_all_tasks_blocked()
    assert server.open_connections == 0
    assert server.core.connection_count == 0


async def test_peer_vanishing_tells_the_opponent(driver: Any) -> None:
    server, connect, _ = driver
    red, yellow = await start_game(connect)
    await yellow.stream.aclose()  # no close frame
    assert await red.receive() == {"type": "left", "player": "yellow"}
    await trio.testing.wait_all_tasks_blocked()
    assert server.open_connections == 1


async def test_shutdown_sends_1001_and_waits_for_the_close(driver: Any) -> None:
    server, connect, _ = driver
    red = connect()
    await red.connect()
    server.shutdown()
    event = await red.next_event()
    assert isinstance(event, CloseConnection)
    assert event.code == 1001
    await red.stream.send_all(red.ws.send(event.response()))
    with trio.fail_after(5):
        await server.wait_all_closed()
    assert server.core.connection_count == 0


async def test_unexpected_error_closes_only_that_connection_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A key factory that fails on the second game: a bug inside the core's call.
    keys = counting_keys()
    calls = 0

    def flaky_keys() -> str:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("entropy ran out")
        return keys()

    driver = Driver(GameServer(site=SITE, new_key=flaky_keys))
    async with trio.open_nursery() as nursery:
        clients = []
        for _ in range(2):
            client_stream, server_stream = trio.testing.memory_stream_pair()
            nursery.start_soon(driver.serve_connection, server_stream)
            clients.append(Client(client_stream))
        first, second = clients
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
        nursery.cancel_scope.cancel()


async def test_http_over_the_driver_serves_the_real_static_files() -> None:
    site = load_site()
    assert "/" in site.files
    assert "/app.js" in site.files
    driver = Driver(GameServer(site=site, new_key=counting_keys()))
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver.serve_connection, server_stream)
        await client_stream.send_all(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        received = b""
        with trio.fail_after(5):
            while chunk := await client_stream.receive_some():
                received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert received.endswith(b"\r\n\r\nOK\n")
