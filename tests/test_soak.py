"""Soak: hundreds of concurrent games against ``python server.py`` on loopback for about a minute.

Random abrupt disconnects (FIN without a close frame, or RST), refused messages and raw bad
bytes are mixed into the games. Half of the games speak the versioned protocol: most of their
dropped players and spectators come back on a new connection with their seat token (or the
watch key) and the last ``v`` they applied, and now and then a second connection takes a seat
over. Every client checks every event it receives against the moves actually sent (and, when
versioned, that each ``v`` is the next one), so a lost, repeated or reordered move fails the
test. At the end: no error in the server's log, the server's memory back near where it was
after a warm-up once the seat grace is over, ``/healthz`` answering, and a clean exit on
SIGTERM.

Each game runs in lock step (a move is sent once everyone connected has seen the previous
one), so what each client must receive is known exactly; the load comes from running
``GAME_SLOTS`` games side by side. Nothing is timed: on a slow machine fewer games are played.

Set ``SOAK_SEED`` to replay the random choices of a run (the seed is printed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis_servers import REDIS_SERVER, running
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

#: Linux only: the soak reads the server's memory and descriptors in /proc.
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc (Linux)")

ROOT = Path(__file__).resolve().parent.parent

#: Seconds of load after the warm-up; games still going then stop, everyone leaving.
SOAK_SECONDS = 20.0
#: The same, across two processes sharing their games through Redis.
SHARED_SOAK_SECONDS = 10.0
#: Games played side by side, each by 2 players and 0 to 3 spectators.
GAME_SLOTS = 250
#: Seconds of the same load before the memory baseline is taken.
WARM_UP_SECONDS = 5.0
#: Longest wait for one expected event: generous, the machine may be a loaded 2-core runner.
STEP_TIMEOUT = 20.0
#: Pause between moves of one game: keeps each player far under the 50 messages/s limit.
MOVE_PAUSE = (0.02, 0.1)
#: Memory the server may keep after the run, above its baseline: a fixed slack plus a little
#: per connection opened after the baseline. Measured on a 2-core machine, it grows by 1 to
#: 2.5 MiB and then stays (freed memory kept by the allocator for reuse, closed connections'
#: timers dropped lazily): 2.5 MiB after 37,000 connections as after 24,000, with no growth
#: of traced Python objects. A connection with its game holds about 3.5 KiB; a leak of 1 KiB
#: per connection (tried on purpose) exceeds the bound in any run of 6,000 connections or more.
RSS_SLACK_MIB = 4.0
RSS_PER_CONNECTION_BYTES = 256
#: The server's ``--seat-grace``: a game nobody is connected to is forgotten this long after
#: its last player dropped, so memory is measured once it has passed.
SEAT_GRACE = 2.0

Problems = list[str]


class Stats(Counter[str]):
    """Named counts printed at the end (games, moves, disconnects, bad messages...)."""


class GameFailed(Exception):
    """An expectation of one game failed: already recorded in the problems, stop the game."""


class Game:
    """The moves actually sent in one game, and what follows from them."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.moves: list[tuple[str, int, int]] = []  # (player, column, row)
        self.heights = [0] * 7
        self.grid: dict[tuple[int, int], str] = {}
        self.winner: str | None = None
        self.draw = False

    @property
    def over(self) -> bool:
        return self.winner is not None or self.draw

    @property
    def turn(self) -> str:
        return "red" if len(self.moves) % 2 == 0 else "yellow"

    def legal_columns(self) -> list[int]:
        return [column for column in range(7) if self.heights[column] < 6]

    def record(self, column: int) -> None:
        """A move about to be sent: it is the one every client must see next."""
        player, row = self.turn, self.heights[column]
        self.moves.append((player, column, row))
        self.heights[column] += 1
        self.grid[column, row] = player
        if self._connects_four(column, row, player):
            self.winner = player
        elif len(self.moves) == 42:
            self.draw = True

    def _connects_four(self, column: int, row: int, player: str) -> bool:
        for dc, dr in ((1, 0), (0, 1), (1, 1), (1, -1)):
            count = 1
            for sign in (1, -1):
                c, r = column + sign * dc, row + sign * dr
                while self.grid.get((c, r)) == player:
                    count += 1
                    c, r = c + sign * dc, r + sign * dr
            if count >= 4:
                return True
        return False


class Client:
    """One WebSocket of a game; its reader checks every event as it arrives."""

    def __init__(
        self, game: Game, role: str, problems: Problems, stats: Stats, *, versioned: bool
    ) -> None:
        self.game = game
        self.role = role
        self.versioned = versioned
        self.last_v = 0  # the last version applied (versioned protocol)
        self.token: str | None = None  # the seat's token (versioned protocol)
        self.problems = problems
        self.stats = stats
        self.name = f"{game.label} {role}"
        self.kinds: list[str] = []  # the type of every event received, in order
        self.plays_seen = 0
        self.ended = False  # received win or draw
        self.presence: list[tuple[str, str]] = []  # ("joined" | "left", player)
        self.expected_presence: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.errors_checked = 0
        self.keys: dict[str, Any] | None = None
        self.gone = False  # our side ended the connection on purpose (or will)
        self.done = False  # the reader stopped
        self._changed = asyncio.Event()
        self._websocket: ClientConnection | None = None
        self.url = ""  # the process it connected to
        self._reader: asyncio.Task[None] | None = None

    @property
    def websocket(self) -> ClientConnection:
        assert self._websocket is not None
        return self._websocket

    def problem(self, text: str) -> None:
        self.problems.append(f"{self.name}: {text} (events: {self.kinds[-12:]})")

    async def open(self, url: str, live: set[Client]) -> None:
        self.url = url
        try:
            self._websocket = await connect(
                url, ping_interval=None, open_timeout=STEP_TIMEOUT, close_timeout=STEP_TIMEOUT
            )
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            self.problem(f"could not connect: {exc!r}")
            raise GameFailed from exc
        live.add(self)
        self.stats["connections"] += 1
        self.stats["peak client connections"] = max(
            self.stats["peak client connections"], len(live)
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.websocket:
                try:
                    self._receive(json.loads(message))
                except (ValueError, TypeError) as exc:
                    self.problem(f"received {message!r}: {exc}")
                self._changed.set()
            if not self.gone:
                self.problem(f"closed by the server: {self.websocket.close_code}")
        except ConnectionClosed:
            if not self.gone:
                self.problem(f"connection closed unexpectedly: {self.websocket.close_code}")
        finally:
            self.done = True
            self._changed.set()

    def _receive(self, event: Any) -> None:
        if not isinstance(event, dict):
            raise TypeError("not a JSON object")
        kind = event.get("type")
        self.kinds.append(str(kind))
        self.stats["events received"] += 1
        game = self.game
        if self.versioned and kind in ("play", "win", "draw", "joined", "away"):
            v = event.get("v")
            if v != self.last_v + 1:
                what = "a duplicate" if isinstance(v, int) and v <= self.last_v else "a gap"
                self.problem(f"{what}: v {v} after {self.last_v}")
            self.last_v = v if isinstance(v, int) else self.last_v
            self.stats["versions checked"] += 1
        if kind == "play":
            index = self.plays_seen
            self.plays_seen += 1
            got = (event.get("player"), event.get("column"), event.get("row"))
            if index >= len(game.moves):
                self.problem(f"move {index} {got} was never sent")
            elif got != game.moves[index]:
                self.problem(f"move {index} is {got}, sent {game.moves[index]}")
            elif self.ended:
                self.problem(f"move {index} after the end of the game")
        elif kind in ("win", "draw"):
            if self.ended:
                self.problem(f"a second {kind}")
            self.ended = True
            if self.plays_seen != len(game.moves) or not game.over:
                self.problem(f"{kind} after {self.plays_seen} of {len(game.moves)} moves")
            elif kind == "draw" and not game.draw:
                self.problem("draw, but the game was not drawn")
            elif kind == "win":
                self._check_win(event)
        elif kind in ("joined", "left", "away"):
            self.presence.append(("left" if kind == "away" else kind, str(event.get("player"))))
        elif kind == "seat" and self.versioned and event.get("player") == self.role:
            self.token = str(event.get("token"))
            self._check_catch_up_mark(event)
        elif kind == "watching" and self.versioned and self.role == "spectator":
            self._check_catch_up_mark(event)
        elif kind == "error":
            self.errors.append(str(event.get("message")))
        elif kind == "watchers" and self.versioned:
            count = event.get("count")
            if not isinstance(count, int) or count < 0:
                self.problem(f"a spectator count of {count!r}")
            self.stats["spectator counts"] += 1
        elif kind == "init" and self.keys is None and self.role == "red":
            self.keys = event
        else:
            self.problem(f"unexpected event {event}")

    def _check_catch_up_mark(self, event: dict[str, Any]) -> None:
        """``seat`` and ``watching`` say which version the catch-up reaches: the last one
        logged, so never behind what this page applied."""
        v = event.get("v")
        if not isinstance(v, int) or v < self.last_v:
            self.problem(f"{event.get('type')} at v {v}, behind the {self.last_v} applied")

    def _check_win(self, event: dict[str, Any]) -> None:
        game = self.game
        cells = event.get("cells")
        if event.get("player") != game.winner:
            self.problem(f"win for {event.get('player')}, expected {game.winner}")
        elif (
            not isinstance(cells, list)
            or len(cells) < 4
            or any(game.grid.get((c, r)) != game.winner for c, r in cells)
        ):
            self.problem(f"winning cells {cells} are not the winner's checkers")

    async def wait(self, predicate: Callable[[], bool], what: str) -> None:
        """Until ``predicate()`` holds; a timeout or a lost connection fails the game."""
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                while not predicate():
                    if self.done:
                        self.problem(f"connection ended while waiting for {what}")
                        raise GameFailed
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            self.problem(f"no {what} within {STEP_TIMEOUT} s")
            raise GameFailed from None

    async def send(self, text: str | bytes) -> None:
        try:
            await self.websocket.send(text)
        except ConnectionClosed as exc:
            self.problem(f"could not send: {exc!r}")
            raise GameFailed from exc

    async def caught_up(self) -> None:
        """Every move sent so far (and the end) received, and every presence change."""
        game = self.game

        def caught_up() -> bool:
            return (
                self.plays_seen >= len(game.moves)
                and self.ended == game.over
                and len(self.presence) >= len(self.expected_presence)
            )

        await self.wait(caught_up, f"move {len(game.moves)}")
        if self.presence != self.expected_presence:
            self.problem(f"presence {self.presence}, expected {self.expected_presence}")
            raise GameFailed

    async def refused(self, text: str | bytes, reason: str, kind: str) -> None:
        """Send a bad message: it must be answered with an error starting with ``reason``."""
        index = self.errors_checked
        await self.send(text)
        await self.wait(lambda: len(self.errors) > index, f"error for {kind}")
        self.errors_checked += 1
        if not self.errors[index].startswith(reason):
            self.problem(f"{kind}: error {self.errors[index]!r}, expected {reason!r}")
        self.stats[f"bad message: {kind}"] += 1

    async def close(self, live: set[Client]) -> None:
        """A clean close (close frame, code 1000); no error may be left unchecked."""
        self.gone = True
        if self._websocket is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STEP_TIMEOUT):
                    await self.websocket.close()
        await self._finish(live)
        if self.errors_checked != len(self.errors):
            self.problem(f"unexpected errors {self.errors[self.errors_checked :]}")

    async def drop(self, how: str, live: set[Client]) -> None:
        """End the TCP connection without a close frame: ``fin`` or ``rst``."""
        self.gone = True
        transport = self.websocket.transport
        if how == "rst":
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
        self.stats[f"disconnect: {self.role} {how}"] += 1
        await self._finish(live)

    async def send_binary(self, live: set[Client]) -> None:
        """A binary frame: the game refuses it with close code 1003."""
        self.gone = True
        await self.send(b"\x00\xff binary")
        await self._finish(live)
        if self.websocket.close_code != 1003:
            self.problem(f"binary frame closed with {self.websocket.close_code}, not 1003")
        self.stats[f"bad message: binary from {self.role}"] += 1

    def resumer(self) -> Client:
        """The same page on a new connection: it has applied what this one had."""
        client = Client(self.game, self.role, self.problems, self.stats, versioned=True)
        client.last_v, client.token = self.last_v, self.token
        client.plays_seen, client.ended = self.plays_seen, self.ended
        client.presence = list(self.presence)
        client.expected_presence = list(self.expected_presence)
        return client

    async def _finish(self, live: set[Client]) -> None:
        live.discard(self)
        if self._reader is not None:
            try:
                async with asyncio.timeout(STEP_TIMEOUT):
                    await self._reader
            except TimeoutError:
                self.problem("the connection did not end")
                self.websocket.transport.abort()
                await self._reader


class Table:
    """Plays one game: its clients, and the random things that happen to it."""

    def __init__(self, label: str, rng: random.Random, run: Run, until: float) -> None:
        self.until = until
        self.rng = rng
        self.run = run
        self.stats = run.stats
        self.game = Game(label)
        self.red: Client | None = None
        self.yellow: Client | None = None
        self.spectators: list[Client] = []
        self.opened: list[Client] = []
        #: Half of the games speak the versioned protocol (the web UI's), half the tutorial's.
        self.versioned = rng.random() < 0.5
        #: Seats whose holder dropped (they may come back with the token, if versioned).
        self.away: set[str] = set()
        #: Every presence event of the game's log, in order: what a versioned newcomer gets.
        self.presence_log: list[tuple[str, str]] = []

    @property
    def members(self) -> list[Client]:
        players = [client for client in (self.red, self.yellow) if client is not None]
        return players + self.spectators

    def player(self, color: str) -> Client | None:
        return self.red if color == "red" else self.yellow

    async def client(self, role: str, versioned: bool | None = None) -> Client:
        versioned = self.versioned if versioned is None else versioned
        client = Client(self.game, role, self.run.problems, self.stats, versioned=versioned)
        self.opened.append(client)
        await client.open(self.run.url_for(self.rng), self.run.live)
        return client

    def init(self, **fields: Any) -> dict[str, Any]:
        """An ``init`` message in this game's protocol."""
        return {"type": "init", **fields, **({"v": 0} if self.versioned else {})}

    async def everyone_caught_up(self) -> None:
        await asyncio.gather(*(client.caught_up() for client in self.members))

    def announce(self, kind: str, color: str) -> None:
        self.presence_log.append((kind, color))
        for client in self.members:
            client.expected_presence.append((kind, color))

    async def enter(self, client: Client, message: dict[str, Any]) -> None:
        """Join or watch: the replay, then who is here, then live events."""
        game = self.game
        replayed = len(game.moves)
        # The tutorial's replay says who is here now; the versioned one replays the log.
        presence = [("joined" if self.red is not None else "left", "red")]
        if self.yellow is not None:
            presence.append(("joined", "yellow"))
        elif "yellow" in self.away:
            presence.append(("left", "yellow"))
        client.expected_presence = list(self.presence_log if client.versioned else presence)
        if client.role == "yellow":
            self.yellow = client
            self.announce("joined", "yellow")
        else:
            self.spectators.append(client)
        start = len(client.kinds)
        await client.send(json.dumps(message))
        await self.everyone_caught_up()
        if client.versioned:
            # Every event once, in order of v (checked as they came): the log from the start.
            expected_v = len(self.presence_log) + replayed + (1 if game.over else 0)
            if client.last_v != expected_v:
                client.problem(f"joining: caught up to v {client.last_v}, expected {expected_v}")
                raise GameFailed
        else:
            ending = ["win" if game.winner else "draw"] if game.over else []
            expected = ["play"] * replayed + ending + [kind for kind, _ in presence]
            if client.role == "yellow":
                expected.append("joined")
            if client.kinds[start:] != expected:
                client.problem(f"joining: received {client.kinds[start:]}, expected {expected}")
                raise GameFailed
        self.stats["replayed moves"] += replayed

    async def add_spectator(self, keys: dict[str, Any]) -> None:
        spectator = await self.client("spectator")
        # A few spectators stumble before they get it right.
        stumble = self.rng.random()
        if stumble < 0.1:
            await spectator.refused(
                '{"type": "claim"}', "Send an init message first.", "claim before init"
            )
        elif stumble < 0.15:
            await spectator.refused(
                json.dumps({"type": "init", "watch": keys["join"] + "x"}),
                "Game not found.",
                "unknown key",
            )
        elif stumble < 0.2:
            both = {"type": "init", "join": keys["join"], "watch": keys["watch"]}
            await spectator.refused(
                json.dumps(both), "Send either join or watch, not both.", "join and watch"
            )
        await self.enter(spectator, self.init(watch=keys["watch"]))
        if self.game.moves:
            self.stats["late spectators"] += 1

    async def play(self) -> None:
        rng, game, stats = self.rng, self.game, self.stats
        red = self.red = await self.client("red")
        await red.send(json.dumps(self.init()))
        await red.wait(lambda: red.keys is not None, "keys")
        keys = red.keys
        assert keys is not None
        self.presence_log.append(("joined", "red"))  # v 1, seen by versioned clients only
        if self.versioned:
            red.expected_presence.append(("joined", "red"))
            stats["games started: versioned"] += 1
        stats["games started"] += 1

        # Spectators come before yellow, or at some move (late: they get the replay).
        arrivals = [rng.choice([-1, rng.randrange(30)]) for _ in range(rng.choice([0, 1, 2, 3]))]
        late = sorted(move for move in arrivals if move >= 0)
        for _ in range(len(arrivals) - len(late)):
            await self.add_spectator(keys)
        await self.enter(await self.client("yellow"), self.init(join=keys["join"]))

        disrupt_at = rng.randrange(0, 42) if rng.random() < 0.3 else -1
        while not game.over:
            if time.monotonic() >= self.until:  # time is up: everyone leaves
                stats["games stopped at the end of the run"] += 1
                return
            if self.red is None:  # red left: nobody can move any more
                stats["games abandoned (red left)"] += 1
                return
            while late and late[0] <= len(game.moves):
                late.pop(0)
                await self.add_spectator(keys)
            if rng.random() < 0.06:
                await self.bad_message()
            if len(game.moves) == disrupt_at:
                disrupt_at = -1
                await self.disrupt(keys)
                continue
            mover = self.player(game.turn)
            if mover is None:  # yellow left for good
                stats["games abandoned (yellow left)"] += 1
                return
            column = rng.choice(game.legal_columns())
            move: dict[str, Any] = {"type": "play", "column": column}
            if rng.random() < 0.02:
                # Unknown keys are ignored (forward compatibility, PROTOCOL.md): a move.
                move["hint"] = "extra key"
                stats["moves with an unknown key, accepted"] += 1
            game.record(column)
            await mover.send(json.dumps(move))
            await self.everyone_caught_up()
            stats["moves"] += 1
            await asyncio.sleep(rng.uniform(*MOVE_PAUSE))
        stats["games completed: draw" if game.draw else "games completed: win"] += 1
        if rng.random() < 0.1:
            player = self.player(rng.choice(["red", "yellow"]))
            if player is not None:
                column = rng.randrange(7)
                await player.refused(
                    json.dumps({"type": "play", "column": column}),
                    "The game is over.",
                    "play after the end",
                )

    async def bad_message(self) -> None:
        """A refused message from one of the game's clients; the game must go on."""
        rng, game = self.rng, self.game
        mover = self.player(game.turn)
        other = self.player("yellow" if game.turn == "red" else "red")
        if mover is None or other is None:
            return
        choices: list[tuple[Client, str, str, str]] = [
            (mover, '{"type": "play", "column": ', "Invalid message:", "invalid JSON"),
            (
                mover,
                '{"type": "play", "column": "3"}',
                "Invalid message: Expected `int`, got `str` - at `$.column`",
                "wrong type",
            ),
            (mover, '{"type": "surrender"}', "Invalid message:", "unknown type"),
            (mover, "[1, 2, 3]", "Invalid message:", "not an object"),
            (mover, "", "Invalid message:", "empty text"),
            (mover, '{"type": "play", "column": 7}', "Column must be between 0 and 6.", "column"),
            (mover, '{"type": "init"}', "You are already in a game.", "second init"),
            (
                other,
                json.dumps({"type": "play", "column": rng.randrange(7)}),
                "It isn't your turn.",
                "out of turn",
            ),
        ]
        full = [column for column in range(7) if game.heights[column] == 6]
        if full:
            play_full = json.dumps({"type": "play", "column": rng.choice(full)})
            choices.append((mover, play_full, "This slot is full.", "full column"))
        if self.spectators:
            spectator = rng.choice(self.spectators)
            spectator_play = '{"type": "play", "column": 0}'
            choices.append((spectator, spectator_play, "Spectators cannot play.", "spectator play"))
        client, text, reason, kind = rng.choice(choices)
        await client.refused(text, reason, kind)

    async def disrupt(self, keys: dict[str, Any]) -> None:
        """Somebody goes away mid-game, most often without a close frame; in a versioned
        game most come back, and now and then a second tab takes a seat over."""
        rng = self.rng
        victims = ["red", "yellow", "yellow"] + ["spectator"] * len(self.spectators)
        victim = rng.choice(victims)
        how = rng.choice(["fin", "rst", "rst", "binary", "close"])
        if self.versioned and victim != "spectator" and rng.random() < 0.15:
            await self.take_over(victim)
            return
        if victim == "spectator":
            client = rng.choice(self.spectators)
            self.spectators.remove(client)
        else:
            player = self.player(victim)
            if player is None:
                return
            client = player
            if victim == "red":
                self.red = None
            else:
                self.yellow = None
            self.away.add(victim)
            # Everyone still in the game hears it (the leaver is out of the members now).
            self.announce("left", victim)
        if how == "binary":
            await client.send_binary(self.run.live)
        elif how == "close":
            self.stats[f"disconnect: {victim} clean close"] += 1
            await client.close(self.run.live)
        else:
            await client.drop(how, self.run.live)
        await self.everyone_caught_up()
        if self.versioned and how in ("fin", "rst") and rng.random() < 0.8:
            await self.resume(client, keys)
        elif victim == "yellow" and rng.random() < 0.7:
            # The join link again: the seat belongs to its token's holder, so it is refused;
            # its holder may watch with it instead (it gets the replay).
            newcomer = await self.client("spectator")
            await newcomer.refused(
                json.dumps(self.init(join=keys["join"])),
                "This game already has two players.",
                "join a taken seat",
            )
            await self.enter(newcomer, self.init(watch=keys["join"]))
        elif victim == "red" and rng.random() < 0.5:
            await self.add_spectator(keys)  # hears that red left, after the replay

    async def resume(self, gone: Client, keys: dict[str, Any]) -> None:
        """``gone``'s page comes back on a new connection, from the last ``v`` it applied."""
        client = gone.resumer()
        self.opened.append(client)
        await client.open(self.run.url_for(self.rng), self.run.live)  # any process
        if client.role == "spectator":
            self.spectators.append(client)
            message = {"type": "init", "watch": keys["watch"], "v": client.last_v}
        else:
            assert client.token is not None
            message = {"type": "init", "token": client.token, "v": client.last_v}
            client.expected_presence.append(("left", client.role))  # its own away, caught up
            if client.role == "red":
                self.red = client
            else:
                self.yellow = client
            self.away.discard(client.role)
            self.announce("joined", client.role)
        await client.send(json.dumps(message))
        await self.everyone_caught_up()
        if "sync" in client.kinds:
            client.problem("a snapshot, though its v could be caught up event by event")
        self.stats[f"resumed: {client.role}"] += 1

    async def take_over(self, color: str) -> None:
        """A second tab opens the seat: it takes it; the first is closed with 4000."""
        old = self.player(color)
        if old is None or old.token is None:
            return
        old.gone = True  # the server ends it: expected
        new = old.resumer()
        self.opened.append(new)
        # The same process (a second tab brought to another one is logged: see PROTOCOL.md).
        await new.open(old.url, self.run.live)
        if color == "red":
            self.red = new
        else:
            self.yellow = new
        await new.send(json.dumps({"type": "init", "token": old.token, "v": old.last_v}))
        await old.wait(lambda: old.done, "the close of the replaced connection")
        await old._finish(self.run.live)
        if old.websocket.close_code != 4000:
            old.problem(f"replaced, but closed with {old.websocket.close_code}, not 4000")
        await self.everyone_caught_up()
        self.stats[f"taken over by a second tab: {color}"] += 1

    async def close(self) -> None:
        """Everyone still here leaves; now and then without a close frame."""
        members = self.members
        self.red = self.yellow = None
        self.spectators = []
        for client in members:
            if self.rng.random() < 0.1 and not client.done:
                await client.drop(self.rng.choice(["fin", "rst"]), self.run.live)
            else:
                await client.close(self.run.live)
        for client in self.opened:  # any left half-way by a failed game
            if not client.gone:
                await client.close(self.run.live)


class Run:
    """The shared state of a soak run: the server, the counts, the problems seen."""

    def __init__(self, urls: list[str], pid: int, seed: int) -> None:
        self.url = urls[0]
        self.ws_urls = [url.replace("http://", "ws://") for url in urls]
        self.pid = pid
        self.seed = seed
        self.stats = Stats()
        self.problems: Problems = []
        self.live: set[Client] = set()
        self.games = 0

    def url_for(self, rng: random.Random) -> str:
        """The process a new connection goes to: any of them (as a load balancer picks)."""
        urls = self.ws_urls
        return urls[0] if len(urls) == 1 else rng.choice(urls)

    async def one_game(self, slot: int, until: float) -> None:
        self.games += 1
        rng = random.Random(f"{self.seed}-{slot}-{self.games}")
        table = Table(f"game {slot}.{self.games}", rng, self, until)
        try:
            await table.play()
        except GameFailed:
            self.stats["games failed"] += 1
        finally:
            await table.close()

    async def slot(self, slot: int, until: float) -> None:
        await asyncio.sleep(random.Random(f"{self.seed}-{slot}").uniform(0, 2))  # ramp up
        while time.monotonic() < until and len(self.problems) < 50:
            await self.one_game(slot, until)

    async def vandal(self, index: int, until: float) -> None:
        """Raw bad bytes on fresh connections, now and then."""
        rng = random.Random(f"{self.seed}-vandal-{index}")
        while time.monotonic() < until and len(self.problems) < 50:
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            kind, expected = rng.choice(
                [
                    ("not HTTP", 400),
                    ("unmasked frame", 1002),
                    ("unknown opcode", 1002),
                    ("invalid UTF-8", 1007),
                ]
            )
            try:
                async with asyncio.timeout(STEP_TIMEOUT):
                    got = await raw_bad_bytes(self.url, kind)
            except (OSError, TimeoutError, ValueError, IndexError) as exc:
                self.problems.append(f"raw bad bytes, {kind}: {exc!r}")
                continue
            if got != expected:
                self.problems.append(f"raw bad bytes, {kind}: answered {got}, not {expected}")
            self.stats[f"raw bad bytes: {kind}"] += 1

    async def monitor(self) -> None:
        while True:
            self.stats["peak RSS KiB"] = max(self.stats["peak RSS KiB"], rss_kib(self.pid))
            await asyncio.sleep(0.25)


def masked_frame(opcode: int, payload: bytes, *, mask: bool = True) -> bytes:
    """One final frame, written by hand: the point is to send what a library would not."""
    assert len(payload) < 126
    if not mask:
        return bytes([0x80 | opcode, len(payload)]) + payload
    key = b"\x01\x02\x03\x04"
    masked = bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + key + masked


async def raw_bad_bytes(url: str, kind: str) -> int:
    """The HTTP status, or the close code, that the server answers ``kind`` with."""
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        if kind == "not HTTP":
            writer.write(b"hello there\r\n\r\n")
            answer = await reader.read()  # the server answers, then ends the connection
            return int(answer.split(b" ", 2)[1])
        writer.write(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101 "):
            return int(head.split(b" ", 2)[1])
        frame = {
            "unmasked frame": masked_frame(0x1, b"hi", mask=False),
            "unknown opcode": masked_frame(0x3, b"hi"),
            "invalid UTF-8": masked_frame(0x1, b"\xff\xfe"),
        }[kind]
        writer.write(frame)
        answer = await reader.read()
        if len(answer) < 4 or answer[0] != 0x88:
            return -1
        code: int = struct.unpack("!H", answer[2:4])[0]
        return code
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed between the listing and the look
            count += os.readlink(fd).startswith("socket:")
    return count


async def settle(run: Run, listeners: int) -> int:
    """Wait for the server to close every client socket; then its RSS, in KiB."""
    # Polled: the server has no endpoint that counts connections, /proc has its descriptors.
    for _ in range(int(STEP_TIMEOUT / 0.1)):
        if open_sockets(run.pid) <= listeners:
            break
        await asyncio.sleep(0.1)
    else:
        open_now = open_sockets(run.pid) - listeners
        run.problems.append(f"the server still has {open_now} client sockets open")
    # Games are kept for their players' comeback until the grace is over (no timing is
    # asserted: this only lets the server forget them before memory is read).
    await asyncio.sleep(SEAT_GRACE + 0.5)
    return rss_kib(run.pid)


async def load(run: Run, seconds: float) -> None:
    """Every game slot and a few vandals, for ``seconds``; then games in progress stop."""
    until = time.monotonic() + seconds
    await asyncio.gather(
        *(run.slot(slot, until) for slot in range(GAME_SLOTS)),
        *(run.vandal(index, until) for index in range(4)),
    )
    if run.live:
        run.problems.append(f"{len(run.live)} client connections left open")


async def soak(run: Run, listeners: int, seconds: float) -> None:
    stats = run.stats
    stats["RSS after start-up KiB"] = rss_kib(run.pid)
    monitor = asyncio.create_task(run.monitor())
    # The warm-up reaches the run's peak of concurrent connections, so that the memory the
    # interpreter keeps for reuse after a peak is already in the baseline.
    await load(run, WARM_UP_SECONDS)
    stats["RSS after warm-up KiB"] = await settle(run, listeners)
    stats["connections in warm-up"] = stats["connections"]

    started = time.monotonic()
    await load(run, seconds)
    stats["load seconds"] = round(time.monotonic() - started)
    monitor.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await monitor

    # Memory once everything is closed: freed memory may take a moment to be given back.
    stats["RSS at the end KiB"] = await settle(run, listeners)
    for _ in range(10):
        if stats["RSS at the end KiB"] <= rss_bound_kib(stats):
            break
        await asyncio.sleep(0.3)
        stats["RSS at the end KiB"] = rss_kib(run.pid)


def rss_bound_kib(stats: Stats) -> int:
    """The most the server may hold at the end without it counting as a leak."""
    connections = stats["connections"] - stats["connections in warm-up"]
    slack = RSS_SLACK_MIB * 1024 + connections * RSS_PER_CONNECTION_BYTES / 1024
    return stats["RSS after warm-up KiB"] + int(slack)


@pytest.mark.soak
def test_hundreds_of_concurrent_games_with_disconnects_and_bad_messages(tmp_path: Path) -> None:
    soak_servers(tmp_path, [], SOAK_SECONDS)


@pytest.mark.soak
def test_the_soak_across_two_processes_sharing_their_games_through_redis(tmp_path: Path) -> None:
    """The same games with both processes on one Redis, every connection (a resume too) to
    either: every move of every game reaches each page once, in order, from whichever."""
    if REDIS_SERVER is None:
        pytest.skip("no redis-server (Debian: apt install redis-server)")
    with running(tmp_path) as redis:
        soak_servers(tmp_path, ["--redis", redis.url], SHARED_SOAK_SECONDS, processes=2)


def soak_servers(tmp_path: Path, options: list[str], seconds: float, *, processes: int = 1) -> None:
    """Soak ``processes`` servers started with ``options``; the first one's memory and
    descriptors are watched."""
    started = time.monotonic()
    seed = int(os.environ.get("SOAK_SEED", random.randrange(2**32)))
    print(f"soak seed: {seed} (SOAK_SEED={seed} replays the random choices)")
    servers: list[subprocess.Popen[str]] = []
    logs_of = [tmp_path / f"server{index}.log" for index in range(processes)]
    finished = False
    try:
        urls = []
        for log_path in logs_of:
            with log_path.open("w") as log:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "server.py",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        "0",
                        "--log-level=INFO",
                        "--seat-grace",
                        str(SEAT_GRACE),
                        *options,
                    ],
                    cwd=ROOT,
                    # A load test: not traced by coverage (it would run at half speed).
                    env={k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")},
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            servers.append(process)
            assert process.stdout is not None
            line = process.stdout.readline()  # the server prints its address once it listens
            assert line.startswith("Connect Four is ready: open http://127.0.0.1:"), line
            urls.append(line.split("open ", 1)[1].split()[0])
        run = Run(urls, servers[0].pid, seed)
        listeners = open_sockets(servers[0].pid)
        asyncio.run(soak(run, listeners, seconds))
        for url in urls:
            with urllib.request.urlopen(url + "healthz", timeout=STEP_TIMEOUT) as response:
                assert response.status == 200
                assert response.read() == b"OK\n"
        finished = True
    finally:
        returncodes = []
        for process in servers:
            process.send_signal(signal.SIGTERM)
        for process in servers:
            returncodes.append(process.wait(timeout=STEP_TIMEOUT))
            assert process.stdout is not None
            process.stdout.close()
        logs = "".join(log_path.read_text() for log_path in logs_of)
        if not finished:
            print("server log, last lines:", *logs.splitlines()[-40:], sep="\n")

    stats = run.stats
    stats["RSS bound KiB"] = rss_bound_kib(stats)
    stats["test seconds"] = round(time.monotonic() - started)
    levels = Counter(line.split()[2] for line in logs.splitlines() if len(line.split()) > 2)
    for key, value in sorted(stats.items()):
        print(f"{key}: {value}")
    print(f"server log lines by level: {dict(levels)}")
    warnings = Counter(line.split(": ", 2)[-1] for line in logs.splitlines() if " WARNING " in line)
    for text, count in warnings.most_common(10):
        print(f"  {count} x WARNING {text}")
    unexpected = [
        line for line in logs.splitlines() if " WARNING " not in line and " INFO " not in line
    ]

    assert run.problems == [], "\n".join(run.problems[:20])
    assert returncodes == [0] * processes
    assert "Traceback" not in logs, "\n".join(unexpected[:40])
    assert "unexpected error" not in logs
    assert levels["ERROR"] == levels["CRITICAL"] == 0, "\n".join(unexpected[:40])
    # Games do finish (a stalled one is a problem above): at least one per slot in the
    # 20 s soak, the same rate in a shorter one (the one across processes).
    completed = stats["games completed: win"] + stats["games completed: draw"]
    assert completed > GAME_SLOTS * seconds / SOAK_SECONDS
    assert stats["RSS at the end KiB"] <= stats["RSS bound KiB"]
