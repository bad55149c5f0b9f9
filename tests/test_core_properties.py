"""Many clients and games against the core at once, checked after every step against a model.

A Hypothesis state machine drives one ``GameServer`` through its public API only, with real
wsproto and h11 clients as peers (``peers.py``). It keeps its own model of who is connected,
who sits where and which moves each game has; after every step each client must have received
exactly the messages the model predicts, and the server must hold exactly the connections,
seats and games of the model, with boards that are the replay of the model's moves.

The clock moves before every step (``GameServer.advance``), so idle keep-alive connections,
pings of idle WebSockets, silent peers and unanswered close frames all meet their timers in
the middle of the games, and the model predicts those too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from peers import HttpPeer, Network, WebSocketPeer
from test_game import DRAW_COLUMNS, reference_fours
from wsproto.events import Message

from connect4proto import Config, Event, Game, GameClosed, GameCreated, GameEnded, Move, Player

# The clock moves by this much before every step: each step starts a new second of the
# per-connection rate limit (no step sends more than 21 messages on one connection), and
# over a run the keep-alive, idle-ping and close timers all come due.
TICK = 1.0
# Timers that never fall due exactly on a step (which one wins a tie is no promise).
TIMERS = Config(
    request_timeout=9.5,
    close_timeout=4.5,
    ping_interval=19.5,
    ping_timeout=19.5,
    seat_grace=29.5,
)

# Columns played in turn from an empty board, to each kind of end of a game.
SCRIPTS: tuple[tuple[int, ...], ...] = (
    tuple(DRAW_COLUMNS),
    (3, 4, 3, 4, 3, 4, 3),  # red, vertical
    (6, 0, 6, 1, 5, 2, 6, 3),  # yellow, horizontal
    (0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3),  # red, diagonal
    (0, 0, 1, 1, 3, 3, 4, 4, 2),  # red, five in a row
)

# A masked binary frame, b"\x00" masked with 0x01020304.
BINARY_FRAME = b"\x82\x81\x01\x02\x03\x04\x01"

ALREADY_IN_GAME = "You are already in a game."
GAME_NOT_FOUND = "Game not found."
SEAT_TAKEN = "This game already has two players."
JOIN_OR_WATCH = "Send either join or watch, not both."
INIT_FIRST = "Send an init message first."
SPECTATORS_CANNOT_PLAY = "Spectators cannot play."
OUT_OF_RANGE = "Column must be between 0 and 6."
GAME_OVER = "The game is over."
NOT_YOUR_TURN = "It isn't your turn."
SLOT_FULL = "This slot is full."


def pieces(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """``data`` cut into pieces of the given sizes, in turn; whole if there are none."""
    position, turn = 0, 0
    while position < len(data):
        size = sizes[turn % len(sizes)] if sizes else len(data)
        yield data[position : position + size]
        position += size
        turn += 1


def error(text: str) -> dict[str, Any]:
    return {"type": "error", "message": text}


class _AnyInvalidMessageError:
    """Equal to any ``error`` whose text is the decoder's reason: its exact words are msgspec's."""

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, dict)
            and other.keys() == {"type", "message"}
            and other["type"] == "error"
            and isinstance(other["message"], str)
            and other["message"].startswith("Invalid message: ")
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "{'type': 'error', 'message': 'Invalid message: ...'}"


INVALID_MESSAGE_ERROR = _AnyInvalidMessageError()


def _is_not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_SCALARS = st.none() | st.booleans() | st.integers() | _FLOATS | st.text(max_size=8)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
_ARRAYS = st.lists(_JSON, max_size=3)
_OBJECTS = st.dictionaries(st.text(max_size=6), _JSON, max_size=3)
_NOT_AN_OBJECT = _SCALARS | _ARRAYS
_NOT_AN_INT = st.none() | st.booleans() | _FLOATS | st.text(max_size=8) | _ARRAYS | _OBJECTS
_NOT_A_KEY = st.booleans() | st.integers() | _FLOATS | _ARRAYS | _OBJECTS

#: Texts that are not a valid client message: each gets one "Invalid message: ..." error.
INVALID_TEXTS = st.one_of(
    st.text(max_size=30).filter(_is_not_json),
    _NOT_AN_OBJECT.map(json.dumps),
    st.builds(lambda column: {"type": "play", "column": column}, _NOT_AN_INT).map(json.dumps),
    st.sampled_from(["join", "watch"])
    .flatmap(lambda name: st.fixed_dictionaries({"type": st.just("init"), name: _NOT_A_KEY}))
    .map(json.dumps),
    st.text(max_size=10)
    .filter(lambda kind: kind not in ("init", "play"))
    .map(lambda kind: json.dumps({"type": kind, "column": 3})),
    st.sampled_from(["{}", '{"type": "play"}', '{"column": 3}', '{"type": null}']),
)


@dataclass(eq=False)
class GameModel:
    id: int
    join: str
    watch: str
    moves: list[tuple[str, int, int]] = field(default_factory=list)
    red: Client | None = None
    yellow: Client | None = None
    #: Since when each seat whose holder dropped is away (a seat is held, away or vacant).
    away: dict[str, float] = field(default_factory=dict)
    spectators: list[Client] = field(default_factory=list)
    #: When the game is forgotten, while nobody is connected to it.
    forget_at: float | None = None
    # The scan is slow: cached along with the number of moves it was made for.
    _winner: tuple[int, tuple[str, list[list[int]]] | None] = (0, None)

    def members(self) -> list[Client]:
        seated = [c for c in (self.red, self.yellow) if c is not None]
        return [*seated, *self.spectators]

    def presence(self, player: str) -> list[dict[str, Any]]:
        """What a replay says of ``player``'s seat: here, away, or nothing while vacant."""
        if (self.red if player == "red" else self.yellow) is not None:
            return [{"type": "joined", "player": player}]
        if player in self.away:
            return [{"type": "left", "player": player}]
        return []

    @property
    def turn(self) -> str:
        return "red" if len(self.moves) % 2 == 0 else "yellow"

    def height(self, column: int) -> int:
        return sum(1 for _, c, _ in self.moves if c == column)

    def winner(self) -> tuple[str, list[list[int]]] | None:
        """The winner and its cells, by the naive grid scan of ``test_game``."""
        if self._winner[0] != len(self.moves):
            grid = {(column, row): Player(player) for player, column, row in self.moves}
            found = None
            for player in Player:
                cells = reference_fours(grid, player)
                if cells:
                    found = player.value, [list(cell) for cell in sorted(cells)]
            self._winner = len(self.moves), found
        return self._winner[1]

    def is_over(self) -> bool:
        return self.winner() is not None or len(self.moves) == 42

    def result(self) -> list[dict[str, Any]]:
        """What follows the moves in a replay: ``win``, ``draw`` or nothing."""
        winner = self.winner()
        if winner is not None:
            return [{"type": "win", "player": winner[0], "cells": winner[1]}]
        if len(self.moves) == 42:
            return [{"type": "draw"}]
        return []


@dataclass(eq=False)
class Client:
    number: int
    peer: WebSocketPeer | HttpPeer
    #: When the server last heard from this peer (WebSocket) or answered it (HTTP).
    since: float
    game: GameModel | None = None
    role: str | None = None  # "red", "yellow" or "spectator" while in a game
    #: False once raw bytes were sent: the server's parser may be anywhere in a frame. The
    #: peer then plays dead (answers no ping and no close frame): the bytes the server gets
    #: stay those Hypothesis chose, not wsproto's randomly masked answers.
    synced: bool = True
    #: When the server pinged this silent peer (it drops it ``ping_timeout`` later).
    ping_sent: float | None = None
    #: The server sent its close frame and left the game; it waits for the peer's close.
    closing: bool = False
    checked: int = 0  # how many of peer.messages were already compared with the model
    pings: int = 0  # how many pings from the server the model expects so far
    moves_when_left: list[tuple[str, int, int]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"client{self.number}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis's reports: a name, not every field

    @property
    def websocket(self) -> WebSocketPeer | None:
        return self.peer if isinstance(self.peer, WebSocketPeer) else None

    def expected_plays(self) -> list[tuple[str, int, int]]:
        return self.game.moves if self.game is not None else self.moves_when_left


class CoreMachine(RuleBasedStateMachine):
    """Clients connect, create, join, watch, play, misbehave, idle and leave; the model follows.

    Every rule starts with ``_tick`` (the clock moves, timers run) and ends with
    ``_check_step``; in between it tells the model what it expects with ``_expect``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.network = Network(config=TIMERS)
        self.server = self.network.server
        self.config = self.server.config
        self.now = 0.0
        self.clients: list[Client] = []  # connections the server must still hold
        self.games: dict[int, GameModel] = {}
        self.dead_keys: list[str] = []
        self.created = 0
        self.keys_used = 0  # the key factory's count: keys, then seat tokens
        self.numbers = 0
        self.events_checked = 0
        # What the current step must produce.
        self.expected: dict[Client, list[Any]] = {}
        self.unpredictable: set[Client] = set()  # sent garbage: its replies are unknown
        self.gone: list[Client] = []  # forgotten during this step: their last messages
        self.closed_games: set[int] = set()
        self.ended_games: set[tuple[int, Player | None, int]] = set()

    # -- the model ------------------------------------------------------------------------

    def _expect(self, messages: dict[Client, list[Any]]) -> None:
        for client, more in messages.items():
            self.expected.setdefault(client, []).extend(more)

    def _new_client(self, peer: WebSocketPeer | HttpPeer) -> Client:
        self.numbers += 1
        client = Client(number=self.numbers, peer=peer, since=self.now)
        self.clients.append(client)
        return client

    def talkers(self) -> list[Client]:
        """WebSocket clients whose stream is intact: they can send messages."""
        return [c for c in self.clients if c.websocket is not None and c.synced and not c.closing]

    def _raw_senders(self) -> list[Client]:
        """WebSocket clients, in sync or not, that can still send bytes."""
        return [c for c in self.clients if c.websocket is not None]

    def _pick_talker(self, data: st.DataObject) -> Client:
        return data.draw(st.sampled_from(self.talkers()), label="client")

    def _send(self, client: Client, message: dict[str, Any] | str) -> None:
        assert client.websocket is not None
        client.since = self.now
        client.websocket.send(message)

    def _new_key(self) -> str:
        self.keys_used += 1
        return f"key-{self.keys_used}"

    def _keys(self) -> dict[str, tuple[GameModel, str]]:
        keys: dict[str, tuple[GameModel, str]] = {}
        for game in self.games.values():
            keys[game.join] = (game, "yellow")
            keys[game.watch] = (game, "spectator")
        return keys

    def _forget(self, game: GameModel) -> None:
        del self.games[game.id]
        self.dead_keys += [game.join, game.watch]
        self.closed_games.add(game.id)

    def _leave(self, client: Client) -> None:
        """The server took ``client`` out of its game: the others hear it if it played."""
        game = client.game
        if game is None:
            return
        client.moves_when_left = list(game.moves)
        client.game = client.role = None
        if client is game.red:
            game.red, player = None, "red"
        elif client is game.yellow:
            game.yellow, player = None, "yellow"
        else:
            game.spectators.remove(client)
            player = None
        if player is not None:
            game.away[player] = self.now  # the seat waits for its token
        remaining = game.members()
        if not remaining:
            # Forgotten once nobody can come back any more: every away seat's grace is over.
            grace = self.config.seat_grace
            forget_at = max((since + grace for since in game.away.values()), default=self.now)
            if forget_at <= self.now:
                self._forget(game)
            else:
                game.forget_at = forget_at
        elif player is not None:
            self._expect({member: [{"type": "left", "player": player}] for member in remaining})

    def _gone(self, client: Client) -> None:
        """The server forgot ``client``."""
        assert client.peer.transport_closed, client
        self.clients.remove(client)
        self.gone.append(client)
        self._leave(client)

    def _after_raw_bytes(self, client: Client) -> None:
        """``client`` sent garbage: learn from the peer how its bytes parsed."""
        peer = client.websocket
        assert peer is not None
        if peer.transport_closed:
            event(f"out of sync: closed with {peer.close_code}")
            self._gone(client)
        elif client.closing:
            event("out of sync: still closing")
        elif peer.close_code is not None:
            # The server sent its close frame, left the game and waits for the peer's.
            event(f"out of sync: closing with {peer.close_code}")
            client.closing, client.since = True, self.now
            self._leave(client)
        else:
            event("out of sync: still open")

    def _tick(self, seconds: float = TICK) -> None:
        """Move the clock; check that exactly the timers that are due did their work."""
        self.now += seconds
        now, config = self.now, self.config
        due: list[tuple[Client, str]] = []
        pinged: list[Client] = []
        for client in self.clients:
            if client.websocket is None:
                if now >= client.since + config.request_timeout:
                    due.append((client, "idle keep-alive closed"))
            elif client.closing:
                if now >= client.since + config.close_timeout:
                    due.append((client, "no close frame came back"))
            elif client.ping_sent is not None:
                if now >= client.ping_sent + config.ping_timeout:
                    due.append((client, "silent since the ping: dropped"))
            elif now >= client.since + config.ping_interval:
                pinged.append(client)
        self.network.advance(now)
        for game in list(self.games.values()):
            if game.forget_at is not None and now >= game.forget_at:
                event("timer: a game nobody came back to forgotten")
                self._forget(game)
        for client, why in due:
            event(f"timer: {why}")
            self._gone(client)
        for client in pinged:
            event("timer: idle WebSocket pinged")
            client.pings += 1
            if client.synced:
                client.since = now  # the peer answered with a pong at once
            else:
                client.ping_sent = now
        for client in self.clients:
            peer = client.websocket
            if peer is not None:
                assert len(peer.pings) == client.pings, client

    def _check_step(self) -> None:
        """Every client received exactly what the model says during this step, no more."""
        for client in [*self.clients, *self.gone]:
            if client.websocket is None:
                continue
            messages = client.websocket.messages
            new, client.checked = messages[client.checked :], len(messages)
            if client not in self.unpredictable:
                assert new == self.expected.get(client, []), client
        events: list[Event] = self.network.events[self.events_checked :]
        self.events_checked = len(self.network.events)
        closed = {e.game for e in events if isinstance(e, GameClosed)}
        assert closed == self.closed_games
        ended = {(e.game, e.winner, e.moves) for e in events if isinstance(e, GameEnded)}
        assert ended == self.ended_games
        self.expected, self.unpredictable, self.gone = {}, set(), []
        self.closed_games, self.ended_games = set(), set()

    def _connect(self) -> Client:
        peer = self.network.websocket()
        assert peer.accepted
        return self._new_client(peer)

    def _create(self, client: Client) -> None:
        """``client``, in no game, sends ``init``: a new game."""
        self._send(client, {"type": "init"})
        self.created += 1
        game = GameModel(id=self.created, join=self._new_key(), watch=self._new_key())
        self._new_key()  # red's seat token
        game.red, client.game, client.role = client, game, "red"
        self.games[game.id] = game
        self._expect({client: [{"type": "init", "join": game.join, "watch": game.watch}]})

    def _enter(self, client: Client, key: str, role: str) -> None:
        """``init`` with a join key (``role`` yellow) or a watch key (spectator)."""
        self._send(client, {"type": "init", "join" if role == "yellow" else "watch": key})
        if client.game is not None:
            self._expect({client: [error(ALREADY_IN_GAME)]})
            return
        found = self._keys().get(key)
        # The join key lets its holder watch, too.
        if found is None or (found[1] != role and role != "spectator"):
            self._expect({client: [error(GAME_NOT_FOUND)]})
            return
        game = found[0]
        if role == "yellow" and (game.yellow is not None or "yellow" in game.away):
            self._expect({client: [error(SEAT_TAKEN)]})
            return
        replay: list[dict[str, Any]] = [
            {"type": "play", "player": player, "column": column, "row": row}
            for player, column, row in game.moves
        ]
        replay += game.result()
        replay += game.presence("red")
        client.game, client.role = game, role
        game.forget_at = None
        event(f"{role} entered a game " + ("in progress" if game.moves else "with no moves"))
        joined_yellow = {"type": "joined", "player": "yellow"}
        if role == "spectator":
            replay += game.presence("yellow")
            game.spectators.append(client)
            self._expect({client: replay})
            return
        self._new_key()  # yellow's seat token
        self._expect({member: [joined_yellow] for member in game.members()})
        game.yellow = client
        self._expect({client: [*replay, joined_yellow]})

    def _play(self, client: Client, column: int) -> None:
        """Send a play message; the model says who hears what."""
        self._send(client, {"type": "play", "column": column})
        game = client.game
        if game is None:
            self._expect({client: [error(INIT_FIRST)]})
        elif client.role == "spectator":
            self._expect({client: [error(SPECTATORS_CANNOT_PLAY)]})
        elif not 0 <= column < 7:
            self._expect({client: [error(OUT_OF_RANGE)]})
        elif game.is_over():
            self._expect({client: [error(GAME_OVER)]})
        elif client.role != game.turn:
            self._expect({client: [error(NOT_YOUR_TURN)]})
        elif game.height(column) == 6:
            self._expect({client: [error(SLOT_FULL)]})
        else:
            row = game.height(column)
            game.moves.append((game.turn, column, row))
            played = {"type": "play", "player": client.role, "column": column, "row": row}
            self._expect({member: [played, *game.result()] for member in game.members()})
            if game.is_over():
                event("a game ended in a " + ("draw" if len(game.moves) == 42 else "win"))
                winner = game.winner()
                player = None if winner is None else Player(winner[0])
                self.ended_games.add((game.id, player, len(game.moves)))

    def _legal_moves(self) -> list[tuple[Client, int]]:
        talkers = self.talkers()
        moves = []
        for game in self.games.values():
            player = game.red if game.turn == "red" else game.yellow
            if player is None or player not in talkers or game.is_over():
                continue
            moves += [(player, column) for column in range(7) if game.height(column) < 6]
        return moves

    def _scripted(self) -> list[tuple[GameModel, tuple[int, ...]]]:
        """Games played so far as in one of ``SCRIPTS``, whose players can both go on."""
        talkers = self.talkers()
        return [
            (game, script)
            for game in self.games.values()
            if game.red in talkers and game.yellow in talkers
            for script in SCRIPTS
            if len(game.moves) < len(script)
            and tuple(column for _, column, _ in game.moves) == script[: len(game.moves)]
        ]

    # -- rules ------------------------------------------------------------------------------

    @initialize(games=st.integers(0, 2), sizes=st.lists(st.integers(1, 40), max_size=3))
    def start_games(self, games: int, sizes: list[int]) -> None:
        """Cut what the peers send into pieces of ``sizes`` (in turn; none: whole) and begin
        with games whose two players are seated, so that play starts early."""
        self.network.chunker = lambda data: pieces(data, sizes)
        for _ in range(games):
            red, yellow = self._connect(), self._connect()
            self._create(red)
            assert red.game is not None
            self._enter(yellow, red.game.join, "yellow")
        self._check_step()

    @rule()
    def connect(self) -> None:
        self._tick()
        self._connect()
        self._check_step()

    @rule()
    def check_health_over_keep_alive_http(self) -> None:
        self._tick()
        peer = self.network.http()
        response, body = peer.get("/healthz")
        assert response.status_code == 200
        assert body == b"OK\n"
        self._new_client(peer)  # keep-alive: the connection stays open until idle too long
        self._check_step()

    @precondition(lambda self: self.talkers())
    @rule(data=st.data())
    def create_game(self, data: st.DataObject) -> None:
        self._tick()
        client = self._pick_talker(data)
        if client.game is not None:
            self._send(client, {"type": "init"})
            self._expect({client: [error(ALREADY_IN_GAME)]})
            self._check_step()
            return
        self._create(client)
        self._check_step()
        created = [e for e in self.network.events if isinstance(e, GameCreated)]
        assert created[-1] == GameCreated(game=self.created, connection=client.peer.id)

    @precondition(lambda self: self.talkers())
    @rule(data=st.data(), role=st.sampled_from(["yellow", "spectator"]))
    def join_or_watch(self, data: st.DataObject, role: str) -> None:
        self._tick()
        client = self._pick_talker(data)
        keys = [*self._keys(), *self.dead_keys, "no-such-key", ""]
        self._enter(client, data.draw(st.sampled_from(keys), label="key"), role)
        self._check_step()

    @precondition(lambda self: self.games)
    @rule(data=st.data(), role=st.sampled_from(["yellow", "spectator"]))
    def newcomer_joins_or_watches(self, data: st.DataObject, role: str) -> None:
        """A new tab opens a join or watch link of a live game: it gets the replay first."""
        self._tick()
        if not self.games:
            return self._check_step()  # the timers forgot the last one
        client = self._connect()
        game = data.draw(st.sampled_from(list(self.games.values())), label="game")
        self._enter(client, game.join if role == "yellow" else game.watch, role)
        self._check_step()

    @precondition(lambda self: self.talkers())
    @rule(data=st.data())
    def init_with_both_keys(self, data: st.DataObject) -> None:
        self._tick()
        client = self._pick_talker(data)
        keys = [*self._keys(), "no-such-key"]
        join, watch = (data.draw(st.sampled_from(keys), label=name) for name in ("join", "watch"))
        self._send(client, {"type": "init", "join": join, "watch": watch})
        in_game = client.game is not None
        self._expect({client: [error(ALREADY_IN_GAME if in_game else JOIN_OR_WATCH)]})
        self._check_step()

    @precondition(lambda self: self.talkers())
    @rule(data=st.data(), column=st.integers(-1, 7) | st.integers())
    def play_any_column(self, data: st.DataObject, column: int) -> None:
        """Right or wrong player, spectator or nobody, any column: the model says who hears."""
        self._tick()
        self._play(self._pick_talker(data), column)
        self._check_step()

    @precondition(lambda self: self._legal_moves())
    @rule(data=st.data(), count=st.integers(1, 12))
    def play_legal_moves(self, data: st.DataObject, count: int) -> None:
        self._tick()
        for _ in range(count):
            moves = self._legal_moves()
            if not moves:
                break
            self._play(*data.draw(st.sampled_from(moves), label="move"))
        self._check_step()

    @precondition(lambda self: self._scripted())
    @rule(data=st.data(), count=st.integers(1, 42) | st.just(42))
    def play_on_along_a_script(self, data: st.DataObject, count: int) -> None:
        """Known lines to each kind of end: random moves rarely get that far in one run."""
        self._tick()
        game, script = data.draw(st.sampled_from(self._scripted()), label="script")
        for column in script[len(game.moves) : len(game.moves) + count]:
            player = game.red if game.turn == "red" else game.yellow
            assert player is not None
            self._play(player, column)
        self._check_step()

    @precondition(lambda self: self.talkers())
    @rule(data=st.data(), text=INVALID_TEXTS)
    def send_an_invalid_message(self, data: st.DataObject, text: str) -> None:
        self._tick()
        client = self._pick_talker(data)
        self._send(client, text)
        self._expect({client: [INVALID_MESSAGE_ERROR]})
        self._check_step()

    @precondition(lambda self: self.talkers())
    @rule(data=st.data(), payload=st.binary(max_size=125))
    def ping(self, data: st.DataObject, payload: bytes) -> None:
        self._tick()
        client = self._pick_talker(data)
        peer = client.websocket
        assert peer is not None
        pongs = len(peer.pongs)
        client.since = self.now
        peer.ping(payload)
        assert peer.pongs[pongs:] == [payload]
        self._check_step()

    @precondition(lambda self: self.clients)
    @rule(
        data=st.data(),
        how=st.sampled_from(["end of stream", "connection lost", "close frame", "binary frame"]),
    )
    def leave(self, data: st.DataObject, how: str) -> None:
        """Abruptly (end of stream, transport lost) or with a frame that ends the WebSocket."""
        self._tick()
        if how in ("end of stream", "connection lost"):
            if not self.clients:
                return self._check_step()  # the timers took them all
            client = data.draw(st.sampled_from(self.clients), label="client")
            connection = client.peer.id
            if how == "end of stream":
                output = self.server.receive_data(connection, None, self.network.now)
            else:
                output = self.server.connection_lost(connection, self.network.now)
            assert connection in output.close
            self.network.apply(output)
            self._gone(client)
            return self._check_step()
        client = self._pick_talker(data) if self.talkers() else None
        if client is None:
            return self._check_step()
        peer = client.websocket
        assert peer is not None
        if how == "close frame":
            code = data.draw(st.sampled_from([1000, 1001, 3000, 4999]), label="code")
            peer.close(code)
            assert peer.close_code == code  # echoed (RFC 6455 section 5.5.1)
        else:
            peer.send_bytes(peer.ws.send(Message(data=b"\x00\x01")))
            # Refused with 1003; the peer's answering close frame ends the connection.
            assert peer.close_code == 1003
        self._gone(client)
        return self._check_step()

    @precondition(lambda self: self._raw_senders())
    @rule(
        data=st.data(),
        garbage=st.binary(min_size=1, max_size=64)
        # A whole binary frame first: the server closes with 1003 and waits for the peer's
        # close frame, which then lands after whatever bytes follow.
        | st.binary(max_size=16).map(lambda tail: BINARY_FRAME + tail)
        # ... or before the start of another binary frame: then it waits for the rest.
        | st.binary(max_size=3).map(lambda tail: BINARY_FRAME + b"\x82\xfe" + tail),
    )
    def send_random_bytes(self, data: st.DataObject, garbage: bytes) -> None:
        self._tick()
        senders = self._raw_senders()
        if senders:
            client = data.draw(st.sampled_from(senders), label="client")
            peer = client.websocket
            assert peer is not None
            client.synced = peer.answer_pings = peer.answer_close = False
            if not client.closing:  # bytes prove it alive; a close timer runs on regardless
                client.since, client.ping_sent = self.now, None
            peer.send_bytes(garbage)
            # What the sender itself got depends on how its bytes parsed (an error, a pong...).
            self.unpredictable.add(client)
            self._after_raw_bytes(client)
        self._check_step()

    @rule(seconds=st.sampled_from([4.0, 9.0, 19.0, 45.0]))
    def let_time_pass(self, seconds: float) -> None:
        """On top of the tick: time enough for the keep-alive, close and ping timers."""
        self._tick(seconds)
        self._check_step()

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def server_holds_the_connections_seats_and_games_of_the_model(self) -> None:
        lobby = self.server.lobby
        assert self.server.connection_count == len(self.clients)
        assert lobby.member_count == sum(1 for c in self.clients if c.game is not None)
        assert lobby.game_count == len(self.games)
        for client in self.clients:
            assert not client.peer.transport_closed, client
            seat = lobby.seat(client.peer.id)
            actual = None if seat is None else (seat[0], seat[1].value)
            expected = None if client.game is None else (client.game.id, client.role)
            assert actual == expected, client

    @invariant()
    def every_member_received_every_move_once_and_in_order(self) -> None:
        for client in self.clients:
            if client.websocket is None:
                continue
            plays = [
                (message["player"], message["column"], message["row"])
                for message in client.websocket.messages
                if message["type"] == "play"
            ]
            assert plays == client.expected_plays(), client

    @invariant()
    def each_board_is_the_replay_of_its_moves(self) -> None:
        for game in self.games.values():
            replay = Game()
            for player, column, row in game.moves:
                move = replay.play(Player(player), column)
                assert move == Move(player=Player(player), column=column, row=row)
            board = self.server.lobby.game(game.id)
            assert board.moves == replay.moves
            assert board.winner == replay.winner
            assert board.winning_cells == replay.winning_cells
            assert board.is_draw == replay.is_draw
            winner = game.winner()
            assert board.winner == (None if winner is None else Player(winner[0]))


CoreMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=50, deadline=None)
TestManyClientsAndGamesFollowTheModel = CoreMachine.TestCase
