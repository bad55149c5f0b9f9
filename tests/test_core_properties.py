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
import math
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

from connect4proto import (
    Config,
    Ending,
    Event,
    Game,
    GameClosed,
    GameCreated,
    GameEnded,
    Move,
    Player,
)

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
    away_delay=2.5,
    watchers_interval=2.5,
    offer_interval=4.5,
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
HOT_SEAT = "This game is played on one device: only moves are possible."
SPECTATORS_CANNOT_ACT = "Spectators cannot take part in the game."
NO_DRAW_OFFER = "There is no draw offer to answer."
NO_REMATCH_OFFER = "There is no rematch offer to answer."
DRAW_PENDING = "You have offered a draw already: wait for the answer."
REMATCH_PENDING = "You have offered a rematch already: wait for the answer."
OWN_OFFER = "You cannot answer your own offer."
NOT_OVER = "A rematch can be offered once the game is over."
TOO_LATE_TO_ABORT = "Both players have moved: the game can no longer be aborted (you can resign)."
REMATCH_UNSUPPORTED = "A rematch needs both players on a client of the versioned protocol."
SPECTATORS_CANNOT_PLAY = "Spectators cannot play."
OUT_OF_RANGE = "Column must be between 0 and 6."
GAME_OVER = "The game is over."
NOT_YOUR_TURN = "It isn't your turn."
SLOT_FULL = "This slot is full."
UNKNOWN_TOKEN = "This game cannot be resumed: it has ended and expired, or the seat token is wrong."
SPECTATORS_CANNOT_CLAIM = "Spectators cannot claim a game."
NO_OPPONENT = "Nobody has joined this game yet."
#: The stable code of each refusal, sent beside the text to versioned clients.
CODES = {
    ALREADY_IN_GAME: "already_in_game",
    GAME_NOT_FOUND: "game_not_found",
    SEAT_TAKEN: "seat_taken",
    JOIN_OR_WATCH: "bad_init",
    INIT_FIRST: "init_first",
    HOT_SEAT: "hot_seat",
    SPECTATORS_CANNOT_ACT: "spectator",
    NO_DRAW_OFFER: "no_offer",
    NO_REMATCH_OFFER: "no_offer",
    DRAW_PENDING: "offer_pending",
    REMATCH_PENDING: "offer_pending",
    OWN_OFFER: "own_offer",
    NOT_OVER: "not_over",
    TOO_LATE_TO_ABORT: "too_late",
    REMATCH_UNSUPPORTED: "unsupported",
    SPECTATORS_CANNOT_PLAY: "spectator",
    SPECTATORS_CANNOT_CLAIM: "spectator",
    OUT_OF_RANGE: "bad_column",
    GAME_OVER: "game_over",
    NOT_YOUR_TURN: "not_your_turn",
    SLOT_FULL: "column_full",
    UNKNOWN_TOKEN: "unknown_token",
    NO_OPPONENT: "no_opponent",
}


def _match_refusal(phase: str, action: str) -> str | None:
    """The match's refusal of ``action`` in ``phase``, written out from PROTOCOL.md."""
    rematch = action.endswith("_rematch")
    if phase in ("over", "rematch_offered"):
        allowed = {"offer_rematch"} if phase == "over" else {
            "offer_rematch", "accept_rematch", "decline_rematch"
        }  # fmt: skip
        if action in allowed:
            return None
        return NO_REMATCH_OFFER if action in ("accept_rematch", "decline_rematch") else GAME_OVER
    if rematch:
        return NOT_OVER
    if action in ("accept_draw", "decline_draw") and phase != "draw_offered":
        return NO_DRAW_OFFER
    if phase == "waiting" and action in ("resign", "offer_draw"):
        return NO_OPPONENT
    return None


def pieces(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """``data`` cut into pieces of the given sizes, in turn; whole if there are none."""
    position, turn = 0, 0
    while position < len(data):
        size = sizes[turn % len(sizes)] if sizes else len(data)
        yield data[position : position + size]
        position += size
        turn += 1


def error(text: str, code: str | None = None) -> dict[str, Any]:
    if code is None:
        return {"type": "error", "message": text}
    return {"type": "error", "message": text, "code": code}


class _AnyInvalidMessageError:
    """Equal to any ``error`` whose text is the decoder's reason: its exact words are msgspec's."""

    def __init__(self, versioned: bool = False) -> None:
        self.versioned = versioned

    def __eq__(self, other: object) -> bool:
        keys = {"type", "message", "code"} if self.versioned else {"type", "message"}
        return (
            isinstance(other, dict)
            and other.keys() == keys
            and other["type"] == "error"
            and isinstance(other["message"], str)
            and other["message"].startswith("Invalid message: ")
            and other.get("code", "invalid_message") == "invalid_message"
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "{'type': 'error', 'message': 'Invalid message: ...'}"


def strip_grace(message: dict[str, Any]) -> dict[str, Any]:
    """An event as logged: an ``away``'s ``grace`` is the time left when it was sent."""
    if message["type"] == "away":
        return {k: v for k, v in message.items() if k != "grace"}
    return message


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
    .filter(lambda kind: kind not in ("init", "play", "claim", "ping", "resign", "abort"))
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
    #: Away seats nobody was told of yet: their page closed with 1001 (a reload).
    quiet: set[str] = field(default_factory=set)
    spectators: list[Client] = field(default_factory=list)
    #: When the game is forgotten, while nobody is connected to it.
    forget_at: float | None = None
    #: The versioned events, in order (``log[i]`` has ``v`` i + 1), without an away's grace;
    #: and when each away began, by its ``v``.
    log: list[dict[str, Any]] = field(default_factory=list)
    away_at: dict[int, float] = field(default_factory=dict)
    #: Each seat's token, once taken.
    tokens: dict[str, str] = field(default_factory=dict)
    #: How the game ended off the board: the winner (None: no winner), the reason, and who
    #: ended it (claimed, resigned, agreed, aborted, ran out of time).
    ended: tuple[str | None, str, str] | None = None
    #: The offer waiting for an answer: its kind and its maker; when each player last made
    #: each kind of offer.
    offer: tuple[str, str] | None = None
    offered_at: dict[tuple[str, str], float] = field(default_factory=dict)
    round: int = 1
    #: The creator's colour (swapped at each rematch): its page is given the keys again.
    creator: str = "red"
    #: A timed game's seconds per move; whose clock runs, since when; each one's time left.
    control: int | None = None
    running: str | None = None
    running_since: float = 0.0
    left: dict[str, float] = field(default_factory=dict)
    #: The spectator count last told to everyone, and when; newcomers told another since.
    watchers_told: int = 0
    watchers_told_at: float = -math.inf
    watchers_stale: list[Client] = field(default_factory=list)
    # The scan is slow: cached along with the number of moves it was made for.
    _winner: tuple[int, tuple[str, list[list[int]]] | None] = (0, None)

    def members(self) -> list[Client]:
        seated = [c for c in (self.red, self.yellow) if c is not None]
        return [*seated, *self.spectators]

    def presence(self, player: str) -> list[dict[str, Any]]:
        """What a replay says of ``player``'s seat: here, away, or nothing while vacant."""
        if (self.red if player == "red" else self.yellow) is not None or player in self.quiet:
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
        return self.ended is not None or self.winner() is not None or len(self.moves) == 42

    def ending(self) -> tuple[str | None, str, list[list[int]]] | None:
        """The winner, the reason and the cells; None while the game goes on."""
        if self.ended is not None:
            return self.ended[0], self.ended[1], []
        winner = self.winner()
        if winner is not None:
            return winner[0], "four", winner[1]
        if len(self.moves) == 42:
            return None, "full", []
        return None

    def result(self, versioned: bool = False) -> list[dict[str, Any]]:
        """What follows the moves in a replay, or a move that ends the game: ``win``,
        ``draw`` or nothing (in the tutorial's protocol; versioned: with ``reason``)."""
        ending = self.ending()
        if ending is None:
            return []
        winner, reason, cells = ending
        if reason == "aborted" and not versioned:
            assert self.ended is not None
            return [error(f"{self.ended[2].capitalize()} aborted the game.")]
        message: dict[str, Any] = (
            {"type": "draw"}
            if winner is None
            else {"type": "win", "player": winner, "cells": cells}
        )
        if versioned:
            message["reason"] = reason
            message["record"] = self.record()
        return [message]

    def record(self) -> str:
        """The columns played, as digits 1-7."""
        return "".join(str(column + 1) for _, column, _ in self.moves)

    def phase(self) -> str:
        """The match's phase (``match.Phase``), from what the model knows."""
        if self.is_over():
            return "rematch_offered" if self.offer is not None else "over"
        if "yellow" not in self.tokens:
            return "waiting"
        return "draw_offered" if self.offer is not None else "playing"

    @property
    def control_view(self) -> dict[str, Any]:
        return {"kind": "move", "seconds": self.control}

    def start_clock(self, player: str, now: float) -> None:
        assert self.control is not None
        self.left = {"red": float(self.control), "yellow": float(self.control)}
        self.running, self.running_since = player, now

    def stop_clock(self, now: float) -> None:
        if self.running is not None:
            self.left[self.running] = self.time_left(self.running, now)
            self.running = None

    def time_left(self, player: str, now: float) -> float:
        left = self.left.get(player, float(self.control or 0))
        if player == self.running:
            left -= now - self.running_since
        return max(0.0, left)

    def clock(self, now: float) -> dict[str, Any]:
        return {
            "red": int(self.time_left("red", now) * 1000),
            "yellow": int(self.time_left("yellow", now) * 1000),
            "running": self.running,
        }

    def with_clock(self, message: dict[str, Any], now: float) -> dict[str, Any]:
        """``message`` with the clocks of a timed game (an untimed one has none)."""
        return message if self.control is None else {**message, "clock": self.clock(now)}

    def seat_view(self, player: str, now: float, grace: float) -> dict[str, Any]:
        if (self.red if player == "red" else self.yellow) is not None or player in self.quiet:
            return {"state": "here"}
        if player in self.away:
            return {"state": "away", "grace": round(max(0.0, self.away[player] + grace - now), 3)}
        return {"state": "vacant"}


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
    #: Speaks the versioned protocol (its init carried ``v`` or a token).
    versioned: bool = False
    #: The part of the game's log this page had applied before this connection (a resumer).
    base: list[dict[str, Any]] = field(default_factory=list)
    pings: int = 0  # how many pings from the server the model expects so far
    moves_when_left: list[tuple[str, int, int]] = field(default_factory=list)
    #: Sent an ``init`` (a ``play`` before any starts a hot-seat game: the tutorial's part 1).
    greeted: bool = False
    #: The hot-seat game this connection plays, both colours.
    hot_seat: GameModel | None = None

    @property
    def in_game(self) -> bool:
        return self.game is not None or self.hot_seat is not None

    def __repr__(self) -> str:
        return f"client{self.number}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis's reports: a name, not every field

    @property
    def websocket(self) -> WebSocketPeer | None:
        return self.peer if isinstance(self.peer, WebSocketPeer) else None

    def expected_plays(self) -> list[tuple[str, int, int]]:
        if self.hot_seat is not None:
            return self.hot_seat.moves
        return self.game.moves if self.game is not None else self.moves_when_left


class CoreMachine(RuleBasedStateMachine):
    """Clients connect, create, join, watch, play, misbehave, idle and leave; the model follows.

    Every rule starts with ``_tick`` (the clock moves, timers run) and ends with
    ``_check_step``; in between it tells the model what it expects with ``_expect``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.network = Network(config=TIMERS)
        #: Clients whose connection the server ends in this tick, before its game timers run.
        self.dropping: set[Client] = set()
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
            if client not in self.dropping:
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
        if isinstance(message, dict) and message.get("type") == "init":
            client.greeted = True
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

    def _refuse(self, client: Client, text: str) -> None:
        self._expect({client: [error(text, CODES[text] if client.versioned else None)]})

    def _publish(
        self,
        game: GameModel,
        tutorial: dict[str, Any] | None,
        versioned: dict[str, Any],
        since: float | None = None,
    ) -> None:
        """A new event of ``game``'s log: each member hears it as its protocol shows it
        (an ``away`` with the grace left of an absence that began at ``since``)."""
        logged = {**versioned, "v": len(game.log) + 1}
        game.log.append(logged)
        live = dict(logged)
        if logged["type"] == "away":
            began = self.now if since is None else since
            game.away_at[logged["v"]] = began
            live["grace"] = round(max(0.0, began + self.config.seat_grace - self.now), 3)
        for member in game.members():
            if member.versioned:
                self._expect({member: [live]})
            elif tutorial is not None:
                self._expect({member: [tutorial]})

    def _catch_up(self, client: Client, game: GameModel, since: int) -> list[dict[str, Any]]:
        """What a versioned newcomer gets before anything live: the events after ``since``,
        or a snapshot if it is ahead of the log (this model's logs are never trimmed)."""
        grace, now = self.config.seat_grace, self.now
        if since > len(game.log):
            event("resumed from ahead of the log: a snapshot")
            snapshot: dict[str, Any] = {
                "type": "sync",
                "v": len(game.log),
                "moves": [{"player": p, "column": c, "row": r} for p, c, r in game.moves],
                "red": game.seat_view("red", now, grace),
                "yellow": game.seat_view("yellow", now, grace),
            }
            if game.round != 1:
                snapshot["round"] = game.round
            if game.control is not None:
                snapshot["control"] = game.control_view
                snapshot["clock"] = game.clock(now)
            if game.offer is not None:
                snapshot["offer"] = {"offer": game.offer[0], "player": game.offer[1]}
            ending = game.ending()
            if ending is not None:
                winner, reason, cells = ending
                result = {"winner": winner, "reason": reason, "cells": cells}
                if game.record():
                    result["record"] = game.record()
                if game.ended is not None:
                    result["by"] = game.ended[2]
                snapshot["result"] = result
            client.base = list(game.log)
            return [snapshot]
        client.base = game.log[:since]
        events = []
        for logged in game.log[since:]:
            message = dict(logged)
            if message["type"] == "away":
                left = game.away_at[message["v"]] + grace - now
                message["grace"] = round(max(0.0, left), 3)
            events.append(message)
        return events

    def _leave(self, client: Client, *, silently: bool = False, going_away: bool = False) -> None:
        """The server took ``client`` out of its game: the others hear it if it played
        (unless a newer connection took its seat: then nothing changed for them; or its
        page closed with 1001, a reload: they hear of it only if it is not back in time)."""
        game = client.game
        if game is None:
            return
        if client in game.watchers_stale:
            game.watchers_stale.remove(client)
        client.moves_when_left = list(game.moves)
        client.game = client.role = None
        if client is game.red:
            game.red, player = None, "red"
        elif client is game.yellow:
            game.yellow, player = None, "yellow"
        else:
            game.spectators.remove(client)
            player = None
            self._count_watchers(game)
        if silently:
            return
        if player is not None:
            game.away[player] = self.now  # the seat waits for its token
            if going_away and client.versioned:
                event("a page went away (1001): its absence not told yet")
                game.quiet.add(player)
            else:
                self._publish(
                    game, {"type": "left", "player": player}, {"type": "away", "player": player}
                )
                self._withdraw(game, player)
        if not game.members():
            # Forgotten once nobody can come back any more: every away seat's grace is over.
            grace = self.config.seat_grace
            forget_at = max((since + grace for since in game.away.values()), default=self.now)
            if forget_at <= self.now:
                self._forget(game)
            else:
                game.forget_at = forget_at

    def _gone(self, client: Client) -> None:
        """The server forgot ``client``."""
        assert client.peer.transport_closed, client
        self.clients.remove(client)
        self.gone.append(client)
        # The server echoes the code of a close frame the peer sent first (RFC 6455 section
        # 5.5.1), and never sends 1001 itself here: 1001 says the peer's page went away.
        peer = client.websocket
        self._leave(client, going_away=peer is not None and peer.close_code == 1001)

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
        # The server ends the connections whose timers ran out first, then runs the games'
        # timers: what those tell reaches everyone but them.
        self.dropping = {client for client, _ in due}
        for game in self.games.values():
            running = game.running
            if running is not None and now >= game.running_since + game.left[running]:
                event("timer: a flag fell")
                self._end(game, "yellow" if running == "red" else "red", "time", running)
            for player in sorted(game.quiet, key=["red", "yellow"].index):
                if now >= game.away[player] + config.away_delay:
                    event("timer: an absence told after the away delay")
                    game.quiet.discard(player)
                    since = game.away[player]
                    left, away = (
                        {"type": "left", "player": player},
                        {"type": "away", "player": player},
                    )
                    self._publish(game, left, away, since)
                    self._withdraw(game, player)
            self._count_watchers(game)
        for game in list(self.games.values()):
            if game.forget_at is not None and now >= game.forget_at:
                event("timer: a game nobody came back to forgotten")
                self._forget(game)
        self.dropping = set()
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

    def _create(self, client: Client, versioned: bool = False, control: int | None = None) -> None:
        """``client``, in no game, sends ``init``: a new game (timed: ``control`` seconds per
        move, which implies the versioned protocol)."""
        message: dict[str, Any] = {"type": "init", "v": 0} if versioned else {"type": "init"}
        if control is not None:
            message = {"type": "init", "clock": {"kind": "move", "seconds": control}}
            versioned = True
        self._send(client, message)
        client.versioned = versioned
        self.created += 1
        game = GameModel(id=self.created, join=self._new_key(), watch=self._new_key())
        game.control = control
        game.tokens["red"] = self._new_key()
        game.red, client.game, client.role = client, game, "red"
        self.games[game.id] = game
        self._expect({client: [{"type": "init", "join": game.join, "watch": game.watch}]})
        if versioned:
            seat = {"type": "seat", "player": "red", "token": game.tokens["red"], "v": 0}
            self._expect({client: [self._with_control(game, seat)]})
        self._publish(game, None, {"type": "joined", "player": "red"})

    def _enter(self, client: Client, key: str, role: str, since: int | None = None) -> None:
        """``init`` with a join key (``role`` yellow) or a watch key (spectator); ``since``
        (the last ``v`` applied) asks for the versioned protocol."""
        message = {"type": "init", "join" if role == "yellow" else "watch": key}
        if since is not None:
            message["v"] = since
        self._send(client, message)
        if client.in_game:
            self._refuse(client, ALREADY_IN_GAME)
            return
        client.versioned = since is not None
        found = self._keys().get(key)
        # The join key lets its holder watch, too.
        if found is None or (found[1] != role and role != "spectator"):
            self._refuse(client, GAME_NOT_FOUND)
            return
        game = found[0]
        if role == "yellow" and (game.yellow is not None or "yellow" in game.away):
            self._refuse(client, SEAT_TAKEN)
            return
        if since is not None:
            replay = self._catch_up(client, game, since)
        else:
            replay = [
                {"type": "play", "player": player, "column": column, "row": row}
                for player, column, row in game.moves
            ]
            replay += game.result()
            replay += game.presence("red")
            if role == "spectator":
                replay += game.presence("yellow")
        client.game, client.role = game, role
        game.forget_at = None
        event(f"{role} entered a game " + ("in progress" if game.moves else "with no moves"))
        if role == "spectator":
            game.spectators.append(client)
            if since is not None:
                watching = {"type": "watching", "v": len(game.log)}
                self._expect({client: [self._with_control(game, watching)]})
            self._expect({client: replay})
            self._tell_clock(game, client)
            self._count_watchers(game, newcomer=client)
            return
        game.tokens["yellow"] = self._new_key()
        if since is not None:
            seat = {"type": "seat", "player": "yellow", "token": game.tokens["yellow"]}
            self._expect({client: [self._with_control(game, {**seat, "v": len(game.log)})]})
        self._expect({client: replay})
        self._tell_clock(game, client)
        self._tell_watchers(game, client)
        game.yellow = client
        if game.control is not None and not game.is_over():
            event("a timed game's clocks started")
            game.start_clock(game.turn, self.now)
        joined_yellow = {"type": "joined", "player": "yellow"}
        self._publish(game, joined_yellow, game.with_clock(joined_yellow, self.now))

    def _resume(self, client: Client, token: str, since: int) -> None:
        """``init`` with a seat token: the seat back, the events after ``since``, then live."""
        self._send(client, {"type": "init", "token": token, "v": since})
        if client.in_game:
            self._refuse(client, ALREADY_IN_GAME)
            return
        client.versioned = True
        found = [
            (game, player)
            for game in self.games.values()
            for player, seat_token in game.tokens.items()
            if seat_token == token
        ]
        if not found:
            self._refuse(client, UNKNOWN_TOKEN)
            return
        ((game, player),) = found
        if player == game.creator:
            self._expect({client: [{"type": "init", "join": game.join, "watch": game.watch}]})
        seat = {"type": "seat", "player": player, "token": token, "v": len(game.log)}
        self._expect({client: [self._with_control(game, seat)]})
        self._expect({client: self._catch_up(client, game, since)})
        self._tell_clock(game, client)
        self._tell_watchers(game, client, returning=True)
        holder = game.red if player == "red" else game.yellow
        game.forget_at = None
        quiet = False
        if holder is not None:
            # A second tab: the newest connection takes the seat; the older one is closed
            # with 4000 and leaves the game without a word to the others.
            event("a seat taken over by a newer connection")
            self._leave(holder, silently=True)
            peer = holder.websocket
            assert peer is not None
            assert peer.close_code == 4000, holder
            if peer.transport_closed:
                self._gone_quietly(holder)
            else:
                holder.closing, holder.since = True, self.now  # it plays dead: the close timer
        else:
            event("a seat taken back after a drop")
            del game.away[player]
            quiet = player in game.quiet
            game.quiet.discard(player)
        client.game, client.role = game, player
        if player == "red":
            game.red = client
        else:
            game.yellow = client
        if holder is None and not quiet:
            joined = {"type": "joined", "player": player}
            self._publish(game, joined, joined)

    def _with_control(self, game: GameModel, message: dict[str, Any]) -> dict[str, Any]:
        return message if game.control is None else {**message, "control": game.control_view}

    def _tell_clock(self, game: GameModel, client: Client) -> None:
        """A versioned newcomer to a game whose clock runs gets the clocks as they stand."""
        if client.versioned and game.running is not None:
            self._expect({client: [{"type": "clock", "clock": game.clock(self.now)}]})

    def _withdraw(self, game: GameModel, player: str) -> None:
        """``player``'s absence was told: a rematch offer it made lapses."""
        if game.offer == ("rematch", player):
            event("a rematch offer withdrawn by its maker's absence")
            game.offer = None
            withdrawn = {"type": "withdrawn", "offer": "rematch", "player": player}
            self._publish(game, None, withdrawn)

    def _end(self, game: GameModel, winner: str | None, reason: str, by: str) -> None:
        """The game ends off the board."""
        game.ended, game.offer = (winner, reason, by), None
        game.stop_clock(self.now)
        record = game.record()
        if reason == "aborted":
            tutorial: dict[str, Any] = error(f"{by.capitalize()} aborted the game.", None)
            versioned = {"type": "aborted", "player": by, "record": record}
        elif winner is None:
            tutorial = {"type": "draw"}
            versioned = {"type": "draw", "reason": reason, "record": record, "by": by}
        else:
            tutorial = {"type": "win", "player": winner, "cells": []}
            versioned = {**tutorial, "reason": reason, "record": record, "by": by}
        self._publish(game, tutorial, game.with_clock(versioned, self.now))
        self.ended_games.add((game.id, None if winner is None else Player(winner), len(game.moves)))

    def _tell_watchers(self, game: GameModel, client: Client, returning: bool = False) -> None:
        """A versioned player who enters a watched game, or comes back to any, is told how
        many watch."""
        if client.versioned and (returning or game.spectators):
            count = len(game.spectators)
            if count != game.watchers_told:
                game.watchers_stale.append(client)
            self._expect({client: [{"type": "watchers", "count": count}]})

    def _count_watchers(self, game: GameModel, newcomer: Client | None = None) -> None:
        """The spectator count changed (or is due): told to every versioned member at most
        once per interval, to a versioned newcomer at once; a newcomer told another count
        than the others is told again when the interval ends."""
        count = len(game.spectators)
        message = {"type": "watchers", "count": count}
        due = self.now >= game.watchers_told_at + self.config.watchers_interval
        if count != game.watchers_told and due:
            event("spectator count told")
            game.watchers_told, game.watchers_told_at = count, self.now
            game.watchers_stale = []
            self._expect({c: [message] for c in game.members() if c.versioned})
            return
        if due and game.watchers_stale:
            event("spectator count corrected for a newcomer")
            self._expect({c: [message] for c in game.watchers_stale})
            game.watchers_stale = []
        if newcomer is not None and newcomer.versioned:
            if count != game.watchers_told:
                game.watchers_stale.append(newcomer)
            self._expect({newcomer: [message]})

    def _gone_quietly(self, client: Client) -> None:
        assert client.peer.transport_closed, client
        self.clients.remove(client)
        self.gone.append(client)

    def _claim(self, client: Client) -> None:
        self._send(client, {"type": "claim"})
        game = client.game
        if game is None:
            self._refuse(client, HOT_SEAT if client.hot_seat is not None else INIT_FIRST)
            return
        if client.role == "spectator":
            self._refuse(client, SPECTATORS_CANNOT_CLAIM)
            return
        assert client.role is not None
        opponent = "yellow" if client.role == "red" else "red"
        name = opponent.capitalize()
        grace = self.config.seat_grace
        if game.is_over():
            self._refuse(client, GAME_OVER)
        elif (game.red if opponent == "red" else game.yellow) is not None or opponent in game.quiet:
            text = f"{name} is connected: play on."
            self._expect(
                {client: [error(text, "opponent_connected" if client.versioned else None)]}
            )
        elif opponent not in game.away:
            self._refuse(client, NO_OPPONENT)
        elif self.now < game.away[opponent] + grace:
            seconds = math.ceil(game.away[opponent] + grace - self.now)
            text = f"{name} may still come back: you can claim the win in {seconds} s."
            self._expect({client: [error(text, "too_early" if client.versioned else None)]})
        else:
            event("a game won by a claim")
            self._end(game, client.role, "claim", client.role)

    def _play(self, client: Client, column: int) -> None:
        """Send a play message; the model says who hears what."""
        greeted = client.greeted
        self._send(client, {"type": "play", "column": column})
        game = client.game
        if game is None and (client.hot_seat is not None or not greeted):
            self._play_hot_seat(client, column)
        elif game is None:
            self._refuse(client, INIT_FIRST)
        elif client.role == "spectator":
            self._refuse(client, SPECTATORS_CANNOT_PLAY)
        elif not 0 <= column < 7:
            self._refuse(client, OUT_OF_RANGE)
        elif game.is_over():
            self._refuse(client, GAME_OVER)
        elif client.role != game.turn:
            self._refuse(client, NOT_YOUR_TURN)
        elif game.height(column) == 6:
            self._refuse(client, SLOT_FULL)
        else:
            if game.offer is not None and game.offer[1] != client.role:
                event("a draw offer declined by a move")
                game.offer = None
                declined = {"type": "declined", "offer": "draw", "player": client.role}
                self._publish(game, None, declined)
            row = game.height(column)
            mover = game.turn
            game.moves.append((mover, column, row))
            if game.running is not None:
                game.left[mover] = float(game.control or 0)
                game.running = "yellow" if mover == "red" else "red"
                game.running_since = self.now
            played = {"type": "play", "player": client.role, "column": column, "row": row}
            self._publish(game, played, game.with_clock(played, self.now))
            if game.is_over():
                game.offer = None
                game.stop_clock(self.now)
                (tutorial,) = game.result()
                (versioned,) = game.result(versioned=True)
                self._publish(game, tutorial, game.with_clock(versioned, self.now))
                event("a game ended in a " + ("draw" if len(game.moves) == 42 else "win"))
                winner = game.winner()
                player = None if winner is None else Player(winner[0])
                self.ended_games.add((game.id, player, len(game.moves)))

    def _act(self, client: Client, kind: str, offer: str | None = None) -> None:
        """``resign``, ``abort``, or an ``offer``, ``accept`` or ``decline`` of ``offer``:
        the match's table (``match.py``), as the model knows it."""
        message = {"type": kind} if offer is None else {"type": kind, "offer": offer}
        self._send(client, message)
        game = client.game
        if game is None:
            self._refuse(client, HOT_SEAT if client.hot_seat is not None else INIT_FIRST)
            return
        if client.role == "spectator":
            self._refuse(client, SPECTATORS_CANNOT_ACT)
            return
        player = client.role
        assert player is not None
        opponent = "yellow" if player == "red" else "red"
        action = kind if offer is None else f"{kind}_{offer}"
        phase = game.phase()
        maker = None if game.offer is None else game.offer[1]
        refusal = _match_refusal(phase, action)
        if refusal is not None:
            self._refuse(client, refusal)
        elif action == "resign":
            event("a resignation")
            self._end(game, opponent, "resign", player)
        elif action == "abort":
            if len(game.moves) >= 2:
                self._refuse(client, TOO_LATE_TO_ABORT)
            else:
                event("an abort")
                self._end(game, None, "aborted", player)
        elif action in ("offer_draw", "offer_rematch") and maker == player:
            self._refuse(client, DRAW_PENDING if offer == "draw" else REMATCH_PENDING)
        elif action in ("offer_draw", "offer_rematch") and maker is None:
            assert offer is not None
            self._offer(client, game, offer)
        elif maker == player:
            self._refuse(client, OWN_OFFER)  # answering one's own offer
        elif action == "decline_draw" or action == "decline_rematch":
            event(f"a {offer} offer declined")
            game.offer = None
            self._publish(game, None, {"type": "declined", "offer": offer, "player": player})
        elif offer == "draw":  # accepted, or offered back
            event("a draw agreed")
            self._end(game, None, "agreed", player)
        else:
            self._accept_rematch(client, game)

    def _offer(self, client: Client, game: GameModel, offer: str) -> None:
        player = client.role
        assert player is not None
        if offer == "rematch":
            if "yellow" not in game.tokens:
                self._refuse(client, NO_OPPONENT)
                return
            if not self._versioned_seats(game):
                self._refuse(client, REMATCH_UNSUPPORTED)
                return
        last = game.offered_at.get((player, offer))
        interval = self.config.offer_interval
        if last is not None and self.now < last + interval:
            seconds = math.ceil(last + interval - self.now)
            text = f"You can offer a {offer} again in {seconds} s."
            self._expect({client: [error(text, "offer_too_soon" if client.versioned else None)]})
            return
        event(f"a {offer} offer")
        game.offered_at[player, offer] = self.now
        game.offer = (offer, player)
        self._publish(game, None, {"type": "offer", "offer": offer, "player": player})

    def _versioned_seats(self, game: GameModel) -> bool:
        """No seat is held by a client of the tutorial's protocol."""
        return all(c.versioned for c in (game.red, game.yellow) if c is not None)

    def _accept_rematch(self, client: Client, game: GameModel) -> None:
        assert game.offer is not None
        maker = game.offer[1]
        if not self._versioned_seats(game):
            self._refuse(client, REMATCH_UNSUPPORTED)
            return
        if (game.red if maker == "red" else game.yellow) is None:
            text = f"{maker.capitalize()} is reconnecting: try again in a moment."
            self._expect({client: [error(text, "opponent_away")]})
            return
        event("a rematch")
        red, yellow = game.red, game.yellow
        assert red is not None
        assert yellow is not None
        moves = list(game.moves)
        game.round += 1
        game.moves, game.ended, game.offer, game.offered_at = [], None, None, {}
        game._winner = (0, None)
        if game.control is not None:
            game.start_clock("red", self.now)
        # Each token stays with its person, and leads to the other colour now.
        game.tokens = {"red": game.tokens["yellow"], "yellow": game.tokens["red"]}
        rematch: dict[str, Any] = {"type": "rematch", "round": game.round}
        self._publish(game, None, game.with_clock(rematch, self.now))
        game.red, game.yellow = yellow, red
        yellow.role, red.role = "red", "yellow"
        game.creator = "yellow" if game.creator == "red" else "red"
        for player, holder in (("red", yellow), ("yellow", red)):
            seat = {"type": "seat", "player": player, "v": len(game.log)}
            self._expect({holder: [self._with_control(game, seat)]})
        for spectator in [c for c in game.spectators if not c.versioned]:
            event("a spectator of the tutorial's protocol let go at a rematch")
            game.spectators.remove(spectator)
            spectator.game = spectator.role = None
            spectator.moves_when_left = moves
            peer = spectator.websocket
            assert peer is not None
            assert peer.close_code == 1000, spectator
            if peer.transport_closed:
                self._gone_quietly(spectator)
            else:
                spectator.closing, spectator.since = True, self.now
        self._count_watchers(game)

    def _play_hot_seat(self, client: Client, column: int) -> None:
        """The tutorial's part 1: both colours on one connection, its messages only."""
        if client.hot_seat is None:
            event("a hot-seat game")
            client.hot_seat = GameModel(id=0, join="", watch="")
        game = client.hot_seat
        if not 0 <= column < 7:
            self._refuse(client, OUT_OF_RANGE)
        elif game.is_over():
            self._refuse(client, GAME_OVER)
        elif game.height(column) == 6:
            self._refuse(client, SLOT_FULL)
        else:
            player, row = game.turn, game.height(column)
            game.moves.append((player, column, row))
            played = {"type": "play", "player": player, "column": column, "row": row}
            self._expect({client: [played, *game.result()]})

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

    @initialize(
        games=st.lists(st.sampled_from(["tutorial", "versioned", "timed"]), max_size=2),
        sizes=st.lists(st.integers(1, 40), max_size=3),
    )
    def start_games(self, games: list[str], sizes: list[int]) -> None:
        """Cut what the peers send into pieces of ``sizes`` (in turn; none: whole) and begin
        with games whose two players are seated, so that play starts early: of the tutorial's
        protocol, the versioned one, or timed (3 s per move)."""
        self.network.chunker = lambda data: pieces(data, sizes)
        for kind in games:
            red, yellow = self._connect(), self._connect()
            self._create(red, kind != "tutorial", 3 if kind == "timed" else None)
            assert red.game is not None
            self._enter(yellow, red.game.join, "yellow", None if kind == "tutorial" else 0)
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
    @rule(data=st.data(), versioned=st.booleans(), control=st.sampled_from([None, None, 3, 7]))
    def create_game(self, data: st.DataObject, versioned: bool, control: int | None) -> None:
        self._tick()
        client = self._pick_talker(data)
        if client.in_game:
            self._send(client, {"type": "init"})
            self._refuse(client, ALREADY_IN_GAME)
            self._check_step()
            return
        self._create(client, versioned, control)
        self._check_step()
        created = [e for e in self.network.events if isinstance(e, GameCreated)]
        assert created[-1] == GameCreated(game=self.created, connection=client.peer.id)

    @precondition(lambda self: self.talkers())
    @rule(
        data=st.data(),
        role=st.sampled_from(["yellow", "spectator"]),
        since=st.none() | st.just(0),
    )
    def join_or_watch(self, data: st.DataObject, role: str, since: int | None) -> None:
        self._tick()
        client = self._pick_talker(data)
        keys = [*self._keys(), *self.dead_keys, "no-such-key", ""]
        self._enter(client, data.draw(st.sampled_from(keys), label="key"), role, since)
        self._check_step()

    @precondition(lambda self: self.games)
    @rule(
        data=st.data(),
        role=st.sampled_from(["yellow", "spectator"]),
        since=st.none() | st.just(0),
    )
    def newcomer_joins_or_watches(self, data: st.DataObject, role: str, since: int | None) -> None:
        """A new tab opens a join or watch link of a live game: it gets the replay first."""
        self._tick()
        if not self.games:
            return self._check_step()  # the timers forgot the last one
        client = self._connect()
        game = data.draw(st.sampled_from(list(self.games.values())), label="game")
        self._enter(client, game.join if role == "yellow" else game.watch, role, since)
        self._check_step()

    def _seats_with_tokens(self) -> list[tuple[GameModel, str]]:
        return [(g, player) for g in self.games.values() for player in g.tokens]

    @precondition(lambda self: self._seats_with_tokens() or self.dead_keys)
    @rule(data=st.data(), where=st.sampled_from(["zero", "middle", "latest", "ahead"]))
    def resume_a_seat(self, data: st.DataObject, where: str) -> None:
        """A page comes back with its seat's token (after a drop, or as a second tab), from
        the last ``v`` it applied; or a token that leads nowhere any more."""
        self._tick()
        seats = self._seats_with_tokens()
        client = self._connect()
        if not seats:
            self._resume(client, "no-such-token", 0)
            return self._check_step()
        game, player = data.draw(st.sampled_from(seats), label="seat")
        latest = len(game.log)
        since = {"zero": 0, "middle": latest // 2, "latest": latest, "ahead": latest + 3}[where]
        self._resume(client, game.tokens[player], since)
        self._check_step()

    @precondition(lambda self: self.games)
    @rule(data=st.data(), where=st.sampled_from(["zero", "middle", "latest", "ahead"]))
    def resume_watching(self, data: st.DataObject, where: str) -> None:
        """A spectator's page comes back with the watch key and the last ``v`` it applied."""
        self._tick()
        if not self.games:
            return self._check_step()  # the timers forgot the last one
        client = self._connect()
        game = data.draw(st.sampled_from(list(self.games.values())), label="game")
        latest = len(game.log)
        since = {"zero": 0, "middle": latest // 2, "latest": latest, "ahead": latest + 3}[where]
        self._enter(client, game.watch, "spectator", since)
        self._check_step()

    @precondition(lambda self: self.talkers())
    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        self._tick()
        self._claim(self._pick_talker(data))
        self._check_step()

    @precondition(lambda self: self.talkers())
    @rule(
        data=st.data(),
        kind=st.sampled_from(["resign", "abort", "offer", "accept", "decline"]),
        offer=st.sampled_from(["draw", "rematch"]),
    )
    def resign_abort_offer_or_answer(self, data: st.DataObject, kind: str, offer: str) -> None:
        self._tick()
        self._act(
            self._pick_talker(data), kind, offer if kind in ("offer", "accept", "decline") else None
        )
        self._check_step()

    @precondition(lambda self: self._seated_pairs())
    @rule(
        data=st.data(),
        kind=st.sampled_from(["offer", "accept", "decline", "resign", "abort"]),
        offer=st.sampled_from(["draw", "rematch"]),
    )
    def a_player_acts(self, data: st.DataObject, kind: str, offer: str) -> None:
        """Offers, answers, resignations from the players of a game (a random talker rarely
        is one)."""
        self._tick()
        pairs = self._seated_pairs()
        if pairs:
            client = data.draw(st.sampled_from([c for pair in pairs for c in pair]), label="player")
            self._act(client, kind, offer if kind in ("offer", "accept", "decline") else None)
        self._check_step()

    @precondition(lambda self: any(g.is_over() for g, _ in self._seated_games()))
    @rule(data=st.data(), red_offers=st.booleans(), how=st.sampled_from(["accept", "offer"]))
    def a_finished_game_is_rematched(self, data: st.DataObject, red_offers: bool, how: str) -> None:
        """One player offers a rematch; the other accepts (or offers back)."""
        self._tick()
        games = [(g, pair) for g, pair in self._seated_games() if g.is_over()]
        if games:
            _, (red, yellow) = data.draw(st.sampled_from(games), label="game")
            maker, other = (red, yellow) if red_offers else (yellow, red)
            self._act(maker, "offer", "rematch")
            self._act(other, how, "rematch")
        self._check_step()

    def _seated_games(self) -> list[tuple[GameModel, tuple[Client, Client]]]:
        talkers = self.talkers()
        return [
            (game, (game.red, game.yellow))
            for game in self.games.values()
            if game.red in talkers and game.yellow in talkers
        ]

    def _seated_pairs(self) -> list[tuple[Client, Client]]:
        return [pair for _, pair in self._seated_games()]

    @precondition(lambda self: self.talkers())
    @rule(data=st.data())
    def init_with_both_keys(self, data: st.DataObject) -> None:
        self._tick()
        client = self._pick_talker(data)
        keys = [*self._keys(), "no-such-key"]
        join, watch = (data.draw(st.sampled_from(keys), label=name) for name in ("join", "watch"))
        self._send(client, {"type": "init", "join": join, "watch": watch})
        if not client.in_game:
            client.versioned = False  # the init had no ``v``
        self._refuse(client, ALREADY_IN_GAME if client.in_game else JOIN_OR_WATCH)
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
        self._expect({client: [_AnyInvalidMessageError(client.versioned)]})
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
        """In the tutorial's protocol (versioned clients: the invariant below)."""
        for client in self.clients:
            if client.websocket is None or client.versioned:
                continue
            plays = [
                (message["player"], message["column"], message["row"])
                for message in client.websocket.messages
                if message["type"] == "play"
            ]
            assert plays == client.expected_plays(), client

    @invariant()
    def each_versioned_member_holds_exactly_its_games_log(self) -> None:
        """Applying each event once, in order of ``v`` (as a page does), after what it had
        before this connection: no gap, no duplicate, nothing missing."""
        for client in self.clients:
            peer = client.websocket
            if peer is None or not client.versioned or client.game is None:
                continue
            applied = list(client.base)
            for message in peer.messages:
                if message["type"] in ("seat", "watching"):
                    continue  # the version its catch-up reaches, not an event
                if message["type"] == "sync":
                    assert message["v"] == len(applied), client
                elif "v" in message and message["v"] > len(applied):
                    assert message["v"] == len(applied) + 1, (client, message)
                    applied.append(strip_grace(message))
            assert applied == client.game.log, client

    @invariant()
    def each_board_is_the_replay_of_its_moves(self) -> None:
        for game in self.games.values():
            replay = Game()
            for player, column, row in game.moves:
                move = replay.play(Player(player), column)
                assert move == Move(player=Player(player), column=column, row=row)
            if game.ended is not None:
                winner = game.ended[0]
                replay.end(None if winner is None else Player(winner), Ending(game.ended[1]))
            board = self.server.lobby.game(game.id)
            assert board.moves == replay.moves
            assert board.winner == replay.winner
            assert board.ending == replay.ending
            assert board.winning_cells == replay.winning_cells
            assert board.is_draw == replay.is_draw
            ending = game.ending()
            assert board.winner == (
                None if ending is None or ending[0] is None else Player(ending[0])
            )


CoreMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=50, deadline=None)
TestManyClientsAndGamesFollowTheModel = CoreMachine.TestCase
