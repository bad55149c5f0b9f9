"""The trio driver over socket pairs, with a wsproto client on the other end."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
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
    """A WebSocket client on one end of a socket pair; the driver has the other end."""

    def __init__(self, sock: socket.socket) -> None:
        self.stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
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

    async def read_to_end(self) -> bytes:
        """Everything until the server closes its side."""
        received = b""
        with trio.fail_after(5):
            while chunk := await self.stream.receive_some():
                received += chunk
        return received


@contextlib.asynccontextmanager
async def running(core: GameServer) -> AsyncIterator[tuple[Driver, Callable[[], Client]]]:
    """A driver pumping in the background, and a way to connect clients to it."""
    driver = Driver(core)
    clients: list[Client] = []

    def connect() -> Client:
        ours, theirs = socket.socketpair()
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
async def driver() -> AsyncIterator[tuple[Driver, Callable[[], Client]]]:
    async with running(GameServer(site=SITE, new_key=counting_keys())) as pair:
        yield pair


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
    # A key factory that fails on the second game: a bug inside the core's call.
    keys = counting_keys()
    calls = 0

    def flaky_keys() -> str:
        nonlocal calls
        calls += 1
        if calls == 3:
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
