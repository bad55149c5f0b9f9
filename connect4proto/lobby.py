"""Games and who is in them: creating, joining, watching, playing, dropping, resuming.

A game is a log of domain events (``log``) kept by a ``GameStore``; its seats belong to the
holders of their tokens (``seats``), and what each connection sees is a projection of the log
(``projection``). The lobby appends and tells an ``Outbox`` to publish: it never builds a
frame, and "everyone in game G" stays one instruction, so fan-out can later be done in
another process without touching the rules of who gets what.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
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
    PlayerReturned,
    SeatReplaced,
    SpectatorJoined,
)
from .game import Ending, Game, IllegalMove, Player
from .log import GameEvent, GameOver, Logged, MovePlayed, SeatAway, SeatBack, SeatTaken
from .messages import (
    Claim,
    ClientMessage,
    ClientPing,
    Error,
    GameKeys,
    Init,
    Play,
    Pong,
    Seat,
    ServerMessage,
    Watching,
)
from .projection import Profile, project, snapshot
from .refusals import (
    ALREADY_IN_GAME,
    GAME_NOT_FOUND,
    GAME_OVER,
    INIT_FIRST,
    JOIN_OR_WATCH,
    NO_OPPONENT,
    SEAT_TAKEN,
    SPECTATORS_CANNOT_CLAIM,
    SPECTATORS_CANNOT_PLAY,
    TOKEN_ALONE,
    UNKNOWN_TOKEN,
    Refusal,
    opponent_connected,
    too_early,
)
from .seats import (
    Away,
    SeatChange,
    SeatEvent,
    SeatInput,
    SeatRequest,
    Vacant,
    present,
    transition,
)
from .seats import Seat as SeatState
from .store import Conflict, Credential, GameStore
from .timers import Timers

__all__ = ["RECONNECTING", "SEAT_REPLACED", "Lobby", "Outbox", "Role"]

#: The close code for a connection whose seat was taken over by a newer one (a second tab):
#: from the range RFC 6455 section 7.4.2 leaves to applications.
SEAT_REPLACED = 4000
#: The close code with which a page says it is reconnecting at once (a script cannot send
#: 1001, which a browser sends when the page goes away): treated as 1001.
RECONNECTING = 4001


class Role(enum.Enum):
    RED = "red"
    YELLOW = "yellow"
    SPECTATOR = "spectator"

    # Enum.__hash__ is a Python function; members are singletons, so identity is equivalent
    # (and several times cheaper: members key dicts on every move).
    __hash__ = object.__hash__


_PLAYER_OF_ROLE = {Role.RED: Player.RED, Role.YELLOW: Player.YELLOW}
_ROLE_OF_PLAYER = {Player.RED: Role.RED, Player.YELLOW: Role.YELLOW}
_OPPONENT = {Player.RED: Player.YELLOW, Player.YELLOW: Player.RED}
_SEAT_CREDENTIAL = {Player.RED: Credential.RED_SEAT, Player.YELLOW: Credential.YELLOW_SEAT}
_PLAYER_OF_CREDENTIAL = {Credential.RED_SEAT: Player.RED, Credential.YELLOW_SEAT: Player.YELLOW}


class Outbox(Protocol):
    """Where the lobby's answers go."""

    def send(self, connection: ConnectionId, message: ServerMessage) -> None:
        """One message to one connection."""

    def publish(self, game: GameId, logged: Logged) -> None:
        """A new event of ``game``'s log, to everyone in it, as each one's profile sees it."""

    def disconnect(self, connection: ConnectionId, code: int, reason: str) -> None:
        """Close ``connection``'s WebSocket with ``code`` (it is already out of its game)."""

    def report(self, event: Event) -> None:
        """Something to log or count."""


@dataclass(slots=True, kw_only=True)
class _Room:
    """One game: its board, its seats, and who is connected to it."""

    id: GameId
    join_key: str
    watch_key: str
    game: Game = field(default_factory=Game)
    seats: dict[Player, SeatState] = field(
        default_factory=lambda: {Player.RED: Vacant(), Player.YELLOW: Vacant()}
    )
    #: Everyone connected (players and spectators), in arrival order, with their profile.
    members: dict[ConnectionId, Profile] = field(default_factory=dict)
    #: The version of the last event in the log.
    version: int = 0
    #: When the game is forgotten, if nobody comes back before (set while nobody is here).
    forget_at: float | None = None


@dataclass(slots=True)
class _Member:
    room: _Room
    role: Role


@dataclass(frozen=True, slots=True)
class _Arrival:
    """A connection's ``init``: who, in which protocol, caught up to which version, when."""

    connection: ConnectionId
    profile: Profile
    since: int
    now: float


class Lobby:
    """All games in progress, found by id or by the digest of a secret."""

    def __init__(
        self,
        new_key: Callable[[], str],
        *,
        store: GameStore,
        seat_grace: float,
        away_delay: float = 0.0,
    ) -> None:
        self._new_key = new_key
        self._store = store
        self._grace = seat_grace
        self._away_delay = away_delay
        self._next_id = 1
        self._rooms: dict[GameId, _Room] = {}
        self._members: dict[ConnectionId, _Member] = {}
        # Connections that asked for the versioned protocol (members or not): their errors
        # carry a code.
        self._versioned: set[ConnectionId] = set()
        self._timers: Timers[GameId] = Timers()

    # -- read-only views, for the core, tests, metrics and health checks ---------------

    @property
    def game_count(self) -> int:
        return len(self._rooms)

    @property
    def member_count(self) -> int:
        return len(self._members)

    def members(self, game: GameId) -> Mapping[ConnectionId, Profile]:
        """Every connection in ``game``, in arrival order, with the protocol it speaks."""
        return self._rooms[game].members

    def game(self, game: GameId) -> Game:
        return self._rooms[game].game

    def seats(self, game: GameId) -> Mapping[Player, SeatState]:
        return self._rooms[game].seats

    def version(self, game: GameId) -> int:
        """The version of ``game``'s last event (0 before the first)."""
        return self._rooms[game].version

    def seat(self, connection: ConnectionId) -> tuple[GameId, Role] | None:
        """The game and role of ``connection``, if it is in one."""
        member = self._members.get(connection)
        return None if member is None else (member.room.id, member.role)

    def profile(self, connection: ConnectionId) -> Profile:
        """The protocol ``connection`` speaks (the tutorial's until its ``init`` says)."""
        return Profile.VERSIONED if connection in self._versioned else Profile.TUTORIAL

    # -- input ---------------------------------------------------------------------------

    def receive(
        self, connection: ConnectionId, message: ClientMessage, outbox: Outbox, now: float
    ) -> None:
        """Act on one valid message from ``connection``."""
        if type(message) is Play:
            self._play(connection, message.column, outbox)
        elif type(message) is Init:
            self._init(connection, message, outbox, now)
        elif type(message) is Claim:
            self._claim(connection, outbox, now)
        else:
            assert type(message) is ClientPing
            outbox.send(connection, Pong())

    def refuse(self, connection: ConnectionId, refusal: Refusal, outbox: Outbox) -> None:
        """Send ``refusal`` as ``connection``'s protocol shows it (with its code, if versioned)."""
        code = refusal.code if connection in self._versioned else None
        outbox.send(connection, Error(message=refusal.message, code=code))

    def leave(
        self, connection: ConnectionId, outbox: Outbox, now: float, *, going_away: bool = False
    ) -> None:
        """``connection`` is gone. A player's seat waits for its token (a drop is not a
        leave); a game nobody can come back to any more is forgotten.

        ``going_away``: the page closed with 1001 (a reload, a navigation) or
        ``RECONNECTING``. A versioned page is then most likely back in a moment: the others
        hear of it after ``away_delay``.
        """
        quietly = going_away and connection in self._versioned and self._away_delay > 0
        self._versioned.discard(connection)
        member = self._members.pop(connection, None)
        if member is None:
            return
        room = member.room
        del room.members[connection]
        if member.role is not Role.SPECTATOR:
            player = _PLAYER_OF_ROLE[member.role]
            request = SeatRequest(now=now, quietly=quietly)
            self._change_seat(room, player, SeatInput.DROP, request, outbox)
            outbox.report(PlayerLeft(game=room.id, player=player, connection=connection))
        if not room.members:
            self._schedule_forget(room, now, outbox)
        elif quietly:
            self._reschedule(room)

    # -- time ----------------------------------------------------------------------------

    @property
    def next_deadline(self) -> float | None:
        return self._timers.next_deadline

    def advance(self, now: float, outbox: Outbox) -> None:
        """Tell of absences that lasted; forget the games nobody came back to."""
        # A game's deadline is cancelled when it is forgotten: every game due is in play.
        for game in self._timers.pop_due(now):
            room = self._rooms[game]
            for player, seat in room.seats.items():
                tell_at = self._tell_at(seat)
                if tell_at is not None and tell_at <= now:
                    request = SeatRequest(now=now)
                    self._change_seat(room, player, SeatInput.ANNOUNCE, request, outbox)
            if room.forget_at is not None:
                self._schedule_forget(room, now, outbox)
            else:
                self._reschedule(room)

    def _tell_at(self, seat: SeatState) -> float | None:
        """When the others are to be told of a quiet absence (None: nothing to tell)."""
        if type(seat) is Away and not seat.announced:
            return seat.since + self._away_delay
        return None

    def _reschedule(self, room: _Room) -> None:
        """Wake for ``room`` at its next deadline: an absence to tell, or its forgetting."""
        deadlines = [
            tell_at for seat in room.seats.values() if (tell_at := self._tell_at(seat)) is not None
        ]
        if room.forget_at is not None:
            deadlines.append(room.forget_at)
        self._timers.cancel(room.id)
        if deadlines:
            self._timers.schedule(room.id, min(deadlines))

    def _schedule_forget(self, room: _Room, now: float, outbox: Outbox) -> None:
        """Nobody is connected to ``room``: forget it now, or when the last grace runs out."""
        forget_at = max(
            (seat.since + self._grace for seat in room.seats.values() if type(seat) is Away),
            default=now,
        )
        if forget_at > now:
            room.forget_at = forget_at
            self._reschedule(room)
            return
        del self._rooms[room.id]
        self._timers.cancel(room.id)
        self._store.drop(room.id)
        outbox.report(GameClosed(game=room.id))

    # -- messages ------------------------------------------------------------------------

    def _init(self, connection: ConnectionId, message: Init, outbox: Outbox, now: float) -> None:
        token = message.token
        if connection in self._members:
            # Its protocol was chosen when it entered its game, and stays.
            self.refuse(connection, ALREADY_IN_GAME, outbox)
            return
        if message.v is not None or token is not None:
            self._versioned.add(connection)
        else:
            self._versioned.discard(connection)
        arrival = _Arrival(connection, self.profile(connection), message.v or 0, now)
        if message.join is not None and message.watch is not None:
            self.refuse(connection, JOIN_OR_WATCH, outbox)
        elif token is not None:
            if message.join is not None or message.watch is not None:
                self.refuse(connection, TOKEN_ALONE, outbox)
            else:
                self._resume(arrival, token, outbox)
        elif message.join is not None:
            self._join(arrival, message.join, outbox)
        elif message.watch is not None:
            self._watch(arrival, message.watch, outbox)
        else:
            self._create(arrival, outbox)

    def _create(self, arrival: _Arrival, outbox: Outbox) -> None:
        # Every secret first: a factory that fails leaves nothing half made.
        join_key, watch_key, token = self._new_key(), self._new_key(), self._new_key()
        room = _Room(id=GameId(self._next_id), join_key=join_key, watch_key=watch_key)
        self._next_id += 1
        self._store.create(room.id)
        self._store.add_secret(_digest(room.join_key), room.id, Credential.JOIN)
        self._store.add_secret(_digest(room.watch_key), room.id, Credential.WATCH)
        self._rooms[room.id] = room
        outbox.report(GameCreated(game=room.id, connection=arrival.connection))
        outbox.send(arrival.connection, GameKeys(join=room.join_key, watch=room.watch_key))
        self._take_seat(arrival, room, Player.RED, token, outbox)

    def _join(self, arrival: _Arrival, key: str, outbox: Outbox) -> None:
        room = self._find(key, (Credential.JOIN,))
        if room is None:
            self.refuse(arrival.connection, GAME_NOT_FOUND, outbox)
        elif type(room.seats[Player.YELLOW]) is not Vacant:
            self.refuse(arrival.connection, SEAT_TAKEN, outbox)
        else:
            self._take_seat(arrival, room, Player.YELLOW, self._new_key(), outbox)

    def _take_seat(
        self, arrival: _Arrival, room: _Room, player: Player, token: str, outbox: Outbox
    ) -> None:
        connection = arrival.connection
        digest = _digest(token)
        request = SeatRequest(connection=connection, token=digest, now=arrival.now)
        change = transition(room.seats[player], SeatInput.TAKE, request)
        assert isinstance(change, SeatChange)  # the caller saw the seat vacant
        self._store.add_secret(digest, room.id, _SEAT_CREDENTIAL[player])
        if arrival.profile is Profile.VERSIONED:
            outbox.send(connection, Seat(player=player, token=token, v=room.version))
        if room.version:  # the creator of a fresh game has nothing to catch up with
            self._catch_up(arrival, room, outbox)
        self._enter(arrival, room, _ROLE_OF_PLAYER[player])
        self._apply_seat_change(room, player, change, outbox, arrival.now)
        if player is Player.YELLOW:  # the creator's seat is reported as ``GameCreated``
            outbox.report(PlayerJoined(game=room.id, player=player, connection=connection))

    def _watch(self, arrival: _Arrival, key: str, outbox: Outbox) -> None:
        # The join key lets its holder watch too: whoever could have taken the seat may see
        # the game (the page of a join link whose seat is taken offers to).
        room = self._find(key, (Credential.WATCH, Credential.JOIN))
        if room is None:
            self.refuse(arrival.connection, GAME_NOT_FOUND, outbox)
            return
        if arrival.profile is Profile.VERSIONED:
            outbox.send(arrival.connection, Watching(v=room.version))
        self._catch_up(arrival, room, outbox)
        self._enter(arrival, room, Role.SPECTATOR)
        outbox.report(SpectatorJoined(game=room.id, connection=arrival.connection))

    def _resume(self, arrival: _Arrival, token: str, outbox: Outbox) -> None:
        connection = arrival.connection
        digest = _digest(token)
        found = self._store.find(digest)
        player = None if found is None else _PLAYER_OF_CREDENTIAL.get(found[1])
        room = None if found is None else self._rooms.get(found[0])
        if player is None or room is None:
            self.refuse(connection, UNKNOWN_TOKEN, outbox)
            return
        request = SeatRequest(connection=connection, token=digest, now=arrival.now)
        change = transition(room.seats[player], SeatInput.RESUME, request)
        if isinstance(change, Refusal):  # pragma: no cover - a found token is the seat's
            self.refuse(connection, change, outbox)
            return
        if player is Player.RED:
            # The creator's page shows the invite links: a reloaded page needs them again.
            outbox.send(connection, GameKeys(join=room.join_key, watch=room.watch_key))
        outbox.send(connection, Seat(player=player, token=token, v=room.version))
        self._catch_up(arrival, room, outbox)
        displaced = change.displaced
        if displaced is not None:
            del self._members[displaced]
            del room.members[displaced]
            outbox.disconnect(
                displaced, SEAT_REPLACED, "This seat was taken over by a newer connection."
            )
            outbox.report(SeatReplaced(game=room.id, player=player, connection=displaced))
        self._enter(arrival, room, _ROLE_OF_PLAYER[player])
        self._apply_seat_change(room, player, change, outbox, arrival.now)
        outbox.report(PlayerReturned(game=room.id, player=player, connection=connection))

    def _player(
        self, connection: ConnectionId, spectator_refusal: Refusal, outbox: Outbox
    ) -> tuple[_Room, Player] | None:
        """The game and colour of a player's connection; None (refused) for anybody else."""
        member = self._members.get(connection)
        if member is None:
            self.refuse(connection, INIT_FIRST, outbox)
            return None
        role = member.role
        if role is Role.SPECTATOR:
            self.refuse(connection, spectator_refusal, outbox)
            return None
        return member.room, _PLAYER_OF_ROLE[role]

    def _play(self, connection: ConnectionId, column: int, outbox: Outbox) -> None:
        seated = self._player(connection, SPECTATORS_CANNOT_PLAY, outbox)
        if seated is None:
            return
        room, player = seated
        game = room.game
        result = game.play(player, column)
        if type(result) is IllegalMove:
            self.refuse(connection, Refusal(code=result.code, message=result.reason), outbox)
            return
        assert type(result) is MovePlayed  # the rules' Move is the logged event
        self._append(room, result, outbox)
        if game.ending is not None:
            self._game_over(room, outbox)

    def _game_over(self, room: _Room, outbox: Outbox) -> None:
        """Log and report how ``room``'s game ended (on the board, or by a claim)."""
        game = room.game
        ending = game.ending
        assert ending is not None
        event = GameOver(winner=game.winner, ending=ending, cells=game.winning_cells)
        self._append(room, event, outbox)
        outbox.report(
            GameEnded(game=room.id, winner=game.winner, moves=len(game.moves), reason=ending)
        )

    def _claim(self, connection: ConnectionId, outbox: Outbox, now: float) -> None:
        seated = self._player(connection, SPECTATORS_CANNOT_CLAIM, outbox)
        if seated is None:
            return
        room, player = seated
        game = room.game
        opponent = _OPPONENT[player]
        seat = room.seats[opponent]
        name = opponent.value.capitalize()
        if game.is_over:
            self.refuse(connection, GAME_OVER, outbox)
        elif type(seat) is Vacant:
            self.refuse(connection, NO_OPPONENT, outbox)
        elif present(seat):
            self.refuse(connection, opponent_connected(name), outbox)
        elif type(seat) is Away and now < seat.since + self._grace:
            seconds = math.ceil(seat.since + self._grace - now)
            self.refuse(connection, too_early(name, seconds), outbox)
        else:
            game.end(player, Ending.CLAIM)
            self._game_over(room, outbox)

    # -- the parts -------------------------------------------------------------------------

    def _find(self, key: str, credentials: tuple[Credential, ...]) -> _Room | None:
        found = self._store.find(_digest(key))
        if found is None or found[1] not in credentials:
            return None
        return self._rooms.get(found[0])

    def _catch_up(self, arrival: _Arrival, room: _Room, outbox: Outbox) -> None:
        """Bring a newcomer up to the game's current version, before anything live.

        Versioned: every event after the version it gave, or a snapshot if they cannot all
        be given. The tutorial's protocol: its replay of the game.
        """
        now, grace, profile = arrival.now, self._grace, arrival.profile
        events = None if profile is Profile.TUTORIAL else self._store.since(room.id, arrival.since)
        messages: Sequence[ServerMessage | None]
        if events is None:
            messages = snapshot(room.game, room.seats, room.version, profile, now=now, grace=grace)
        else:
            messages = [project(logged, profile, now=now, grace=grace) for logged in events]
        for message in messages:
            assert message is not None  # the versioned protocol sees every event
            outbox.send(arrival.connection, message)

    def _enter(self, arrival: _Arrival, room: _Room, role: Role) -> None:
        self._members[arrival.connection] = _Member(room, role)
        room.members[arrival.connection] = arrival.profile
        if room.forget_at is not None:
            room.forget_at = None  # somebody is here: the game is not forgotten
            self._reschedule(room)

    def _change_seat(
        self,
        room: _Room,
        player: Player,
        seat_input: SeatInput,
        request: SeatRequest,
        outbox: Outbox,
    ) -> None:
        change = transition(room.seats[player], seat_input, request)
        assert isinstance(change, SeatChange)  # a drop is never refused
        self._apply_seat_change(room, player, change, outbox, request.now)

    def _apply_seat_change(
        self, room: _Room, player: Player, change: SeatChange, outbox: Outbox, now: float
    ) -> None:
        room.seats[player] = change.seat
        logged = change.logged
        if logged is SeatEvent.TAKEN:
            self._append(room, SeatTaken(player=player), outbox)
        elif logged is SeatEvent.AWAY:
            seat = change.seat
            assert type(seat) is Away
            self._append(room, SeatAway(player=player, since=seat.since), outbox)
        elif logged is SeatEvent.BACK:
            self._append(room, SeatBack(player=player), outbox)

    def _append(self, room: _Room, event: GameEvent, outbox: Outbox) -> None:
        logged = self._store.append(room.id, room.version, event)
        if type(logged) is not Logged:
            # One process owns its games in memory: nobody else appends.
            assert type(logged) is Conflict
            raise LocalProtocolError(f"game {room.id}: log at {logged.version}, not {room.version}")
        room.version = logged.version
        outbox.publish(room.id, logged)


def _digest(secret: str) -> bytes:
    # Secrets are stored and found by digest, not as given: a dict lookup compares the given
    # string with stored ones, and how long that takes must not tell how much of a key was
    # right (a digest's prefix tells nothing). Tokens are then compared in constant time.
    return hashlib.sha256(secret.encode()).digest()
