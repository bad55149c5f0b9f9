"""Games and who is in them: creating, joining, watching, playing, leaving.

The lobby speaks in wire messages and connection numbers, never in bytes: it tells an
``Outbox`` to send a message to one connection or to everyone in a game, and the core turns
that into frames. "Everyone in game G" stays a single instruction, so fan-out can later be
done elsewhere (another process) without touching the rules of who gets what.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .errors import LocalProtocolError
from .events import (
    ConnectionId,
    Event,
    GameClosed,
    GameCreated,
    GameEnded,
    GameId,
    PlayerJoined,
    PlayerLeft,
    SpectatorJoined,
)
from .game import Game, IllegalMove, Player
from .messages import (
    ClientMessage,
    Draw,
    Error,
    GameKeys,
    Init,
    Joined,
    Left,
    Played,
    ServerMessage,
    Win,
)

__all__ = ["Lobby", "Outbox", "Role"]

GAME_NOT_FOUND = "Game not found."
SEAT_TAKEN = "This game already has a yellow player."
ALREADY_IN_GAME = "You are already in a game."
INIT_FIRST = "Send an init message first."
SPECTATORS_CANNOT_PLAY = "Spectators cannot play."
JOIN_OR_WATCH = "Send either join or watch, not both."


class Role(enum.Enum):
    RED = "red"
    YELLOW = "yellow"
    SPECTATOR = "spectator"

    # Enum.__hash__ is a Python function; members are singletons, so identity is equivalent
    # (and several times cheaper: members key dicts on every move).
    __hash__ = object.__hash__


_PLAYER_OF_ROLE = {Role.RED: Player.RED, Role.YELLOW: Player.YELLOW}


class Outbox(Protocol):
    """Where the lobby's answers go."""

    def send(self, connection: ConnectionId, message: ServerMessage) -> None: ...

    def broadcast(self, game: GameId, message: ServerMessage) -> None: ...

    def report(self, event: Event) -> None: ...


@dataclass(slots=True, kw_only=True)
class _Room:
    """One game and its audience; the game itself knows nothing of connections."""

    id: GameId
    join_key: str
    watch_key: str
    game: Game = field(default_factory=Game)
    players: dict[Player, ConnectionId] = field(default_factory=dict)
    # A dict as an ordered set: broadcasts reach spectators in the order they came.
    spectators: dict[ConnectionId, None] = field(default_factory=dict)

    def members(self) -> list[ConnectionId]:
        return [*self.players.values(), *self.spectators]

    def holds(self, key: str, role: Role) -> bool:
        """Whether ``key`` is this room's key for ``role``, compared in constant time."""
        expected = self.join_key if role is Role.YELLOW else self.watch_key
        return hmac.compare_digest(key.encode(), expected.encode())


class Lobby:
    """All games in progress, found by id or by secret key."""

    def __init__(self, new_key: Callable[[], str]) -> None:
        self._new_key = new_key
        self._next_id = 1
        self._rooms: dict[GameId, _Room] = {}
        # By a digest of the key, not the key: a dict lookup compares the given string with
        # stored ones, and how long that takes must not tell how much of a key was right.
        self._keys: dict[bytes, tuple[_Room, Role]] = {}
        self._seats: dict[ConnectionId, tuple[_Room, Role]] = {}

    @property
    def game_count(self) -> int:
        return len(self._rooms)

    @property
    def member_count(self) -> int:
        return len(self._seats)

    def members(self, game: GameId) -> list[ConnectionId]:
        """Every connection in ``game``: players first, then spectators in arrival order."""
        return self._rooms[game].members()

    def game(self, game: GameId) -> Game:
        return self._rooms[game].game

    def seat(self, connection: ConnectionId) -> tuple[GameId, Role] | None:
        """The game and role of ``connection``, if it is in one."""
        seat = self._seats.get(connection)
        return None if seat is None else (seat[0].id, seat[1])

    def receive(self, connection: ConnectionId, message: ClientMessage, outbox: Outbox) -> None:
        """Act on one valid message from ``connection``."""
        if isinstance(message, Init):
            self._init(connection, message, outbox)
        else:
            self._play(connection, message.column, outbox)

    def leave(self, connection: ConnectionId, outbox: Outbox) -> None:
        """``connection`` is gone: free its seat, tell the others, forget empty games."""
        seat = self._seats.pop(connection, None)
        if seat is None:
            return
        room, role = seat
        if role is Role.SPECTATOR:
            del room.spectators[connection]
        else:
            player = _PLAYER_OF_ROLE[role]
            del room.players[player]
            outbox.report(PlayerLeft(game=room.id, player=player, connection=connection))
        if room.players or room.spectators:
            if role is not Role.SPECTATOR:
                outbox.broadcast(room.id, Left(player=_PLAYER_OF_ROLE[role]))
            return
        del self._rooms[room.id]
        del self._keys[_digest(room.join_key)]
        del self._keys[_digest(room.watch_key)]
        outbox.report(GameClosed(game=room.id))

    def _init(self, connection: ConnectionId, message: Init, outbox: Outbox) -> None:
        if connection in self._seats:
            outbox.send(connection, Error(message=ALREADY_IN_GAME))
        elif message.join is not None and message.watch is not None:
            outbox.send(connection, Error(message=JOIN_OR_WATCH))
        elif message.join is not None:
            self._enter(connection, message.join, Role.YELLOW, outbox)
        elif message.watch is not None:
            self._enter(connection, message.watch, Role.SPECTATOR, outbox)
        else:
            self._create(connection, outbox)

    def _create(self, connection: ConnectionId, outbox: Outbox) -> None:
        join_key, watch_key = self._new_key(), self._new_key()
        join_digest, watch_digest = _digest(join_key), _digest(watch_key)
        if join_key == watch_key or join_digest in self._keys or watch_digest in self._keys:
            raise LocalProtocolError("the key factory returned a key that is already in use")
        room = _Room(id=GameId(self._next_id), join_key=join_key, watch_key=watch_key)
        self._next_id += 1
        self._rooms[room.id] = room
        self._keys[join_digest] = (room, Role.YELLOW)
        self._keys[watch_digest] = (room, Role.SPECTATOR)
        room.players[Player.RED] = connection
        self._seats[connection] = (room, Role.RED)
        outbox.report(GameCreated(game=room.id, connection=connection))
        outbox.send(connection, GameKeys(join=join_key, watch=watch_key))

    def _enter(self, connection: ConnectionId, key: str, role: Role, outbox: Outbox) -> None:
        found = self._keys.get(_digest(key))
        if found is None or found[1] is not role or not found[0].holds(key, role):
            outbox.send(connection, Error(message=GAME_NOT_FOUND))
            return
        room = found[0]
        if role is Role.YELLOW and Player.YELLOW in room.players:
            outbox.send(connection, Error(message=SEAT_TAKEN))
            return
        # Replay first, so that the newcomer's board is complete before anything live.
        game = room.game
        for move in game.moves:
            outbox.send(connection, Played(player=move.player, column=move.column, row=move.row))
        if game.winner is not None:
            outbox.send(connection, Win(player=game.winner, cells=game.winning_cells))
        elif game.is_draw:
            outbox.send(connection, Draw())
        # Who is here. Red created the game, so an empty red seat means red left: saying so
        # also means a newcomer always hears something, even with no moves and nobody seated.
        red_presence = Joined if Player.RED in room.players else Left
        outbox.send(connection, red_presence(player=Player.RED))
        if Player.YELLOW in room.players:
            outbox.send(connection, Joined(player=Player.YELLOW))
        self._seats[connection] = (room, role)
        if role is Role.SPECTATOR:
            room.spectators[connection] = None
            outbox.report(SpectatorJoined(game=room.id, connection=connection))
        else:
            room.players[Player.YELLOW] = connection
            outbox.report(PlayerJoined(game=room.id, player=Player.YELLOW, connection=connection))
            outbox.broadcast(room.id, Joined(player=Player.YELLOW))

    def _play(self, connection: ConnectionId, column: int, outbox: Outbox) -> None:
        seat = self._seats.get(connection)
        if seat is None:
            outbox.send(connection, Error(message=INIT_FIRST))
            return
        room, role = seat
        if role is Role.SPECTATOR:
            outbox.send(connection, Error(message=SPECTATORS_CANNOT_PLAY))
            return
        game = room.game
        result = game.play(_PLAYER_OF_ROLE[role], column)
        if isinstance(result, IllegalMove):
            outbox.send(connection, Error(message=result.reason))
            return
        outbox.broadcast(
            room.id, Played(player=result.player, column=result.column, row=result.row)
        )
        if not game.is_over:
            return
        if game.winner is not None:
            outbox.broadcast(room.id, Win(player=game.winner, cells=game.winning_cells))
        else:
            outbox.broadcast(room.id, Draw())
        outbox.report(GameEnded(game=room.id, winner=game.winner, moves=len(game.moves)))


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()
