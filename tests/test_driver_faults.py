"""The driver when things go wrong around a socket: a bug in a timer, in failing a connection,
a reader that falls behind and catches up. Each costs at most the connection it happened on."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from peers import SITE, counting_keys
from test_server import Client, running, start_game
from wsproto.events import Ping, Pong, TextMessage

from connect4proto import ConnectionId, GameServer, Output


@pytest.fixture(autouse=True, params=["epoll", "portable"])
def poller(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CONNECT4_POLLER", request.param)
    return str(request.param)


class _TimerBugOnce(GameServer):
    """A core whose timers fail once, on the first deadline after ``armed`` (one is due at
    once: the pump calls ``advance`` only when one is)."""

    armed = False

    @property
    def next_deadline(self) -> float | None:
        return 0.0 if self.armed else super().next_deadline

    def advance(self, now: float) -> Output:
        if self.armed:
            self.armed = False
            raise RuntimeError("bug in a timer")
        return super().advance(now)


async def test_a_bug_in_a_timer_is_logged_and_everyone_is_still_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = _TimerBugOnce(site=SITE, new_key=counting_keys())
    async with running(core) as (_, connect):
        red, yellow = await start_game(connect)
        with caplog.at_level(logging.ERROR):
            core.armed = True
            await red.send({"type": "play", "column": 3})  # the turn begins with the timers
            expected = {"type": "play", "player": "red", "column": 3, "row": 0}
            assert await red.receive() == expected
            assert await yellow.receive() == expected
        assert "timers: unexpected error" in caplog.text
        assert "bug in a timer" in caplog.text


class _FailsToFail(GameServer):
    """A core with a bug in the messages of the connection ``doomed``, and another in
    closing it for that."""

    doomed: ConnectionId | None = None

    def receive_data(self, connection: ConnectionId, data: bytes | None, now: float) -> Output:
        if connection == self.doomed:
            raise RuntimeError("bug in receive_data")
        return super().receive_data(connection, data, now)

    def fail(self, connection: ConnectionId, now: float) -> Output:
        raise RuntimeError("bug in fail")


async def test_a_connection_that_cannot_even_be_failed_is_dropped_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = _FailsToFail(site=SITE, new_key=counting_keys())
    async with running(core) as (server, connect):
        red, yellow = await start_game(connect)
        doomed = connect()
        await doomed.connect()
        core.doomed = ConnectionId(3)  # after red and yellow
        with caplog.at_level(logging.ERROR):
            await doomed.send({"type": "init"})
            assert await doomed.read_to_end() == b""  # dropped: no close frame, no bytes
        assert "could not fail it cleanly" in caplog.text
        assert server.open_connections == 2
        await red.send({"type": "play", "column": 0})
        assert (await yellow.receive())["column"] == 0


def messages_of(received: bytes, client: Client, parts: list[str]) -> Iterator[dict[str, Any]]:
    """The whole messages ``received`` completes (``parts``: a message begun, not ended)."""
    client.ws.receive_data(received)
    for event in client.ws.events():
        assert isinstance(event, TextMessage | Pong), event
        if isinstance(event, TextMessage):
            parts.append(event.data)
            if event.message_finished:
                yield json.loads("".join(parts))
                parts.clear()


async def test_a_reader_that_falls_behind_and_catches_up_gets_every_frame_whole() -> None:
    core = GameServer(site=SITE, new_key=counting_keys())
    async with running(core) as (_, connect):
        red, yellow = await start_game(connect)
        watcher = connect(send_buffer=1024)  # the kernel's least: the backlog stays with us
        await watcher.connect()
        await watcher.send({"type": "init", "watch": red.keys["watch"]})
        columns = [0, 1] * 3 + [2, 3] * 3 + [4, 5] * 3 + [6]
        for index, column in enumerate(columns):  # the watcher reads nothing meanwhile
            mover = red if index % 2 == 0 else yellow
            await mover.send({"type": "play", "column": column})
            for player in (red, yellow):
                assert (await player.receive())["column"] == column
            # More backlog: the watcher also asks for pongs it does not read yet.
            for _ in range(4):
                await watcher.stream.send_all(watcher.ws.send(Ping(payload=b"x" * 125)))
        # Now it reads everything, a little at a time: the driver writes what waited as the
        # socket drains, in pieces that split queued frames.
        seen: list[int] = []
        parts: list[str] = []
        with trio.fail_after(5):
            while len(seen) < len(columns):
                data = await watcher.stream.receive_some(512)
                assert data
                messages = messages_of(data, watcher, parts)
                seen.extend(m["column"] for m in messages if m["type"] == "play")
        assert seen == columns
