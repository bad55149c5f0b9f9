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
import itertools
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol

from .clock import TimeControl
from .errors import LocalProtocolError
from .events import (
    ComputeMove,
    ConnectionId,
    Event,
    GameClosed,
    GameCreated,
    GameEnded,
    GameId,
    PlayerJoined,
    PlayerLeft,
    PlayerReturned,
    RematchBegun,
    SeatReplaced,
    SpectatorJoined,
)
from .game import Game, Player
from .hotseat import HotSeats
from .log import (
    GameEvent,
    GameOver,
    Logged,
    MovePlayed,
    OfferKind,
    RematchStarted,
    SeatAway,
    SeatBack,
    SeatTaken,
    TimedMove,
)
from .match import Action, Match, MatchRequest, Phase
from .messages import (
    Abort,
    Accept,
    Claim,
    ClientMessage,
    ClientPing,
    ClockNow,
    Decline,
    Error,
    GameKeys,
    Init,
    Offer,
    Play,
    Played,
    Pong,
    Resign,
    Seat,
    ServerMessage,
    Watchers,
    Watching,
)
from .projection import Profile, project, snapshot
from .refusals import (
    ALREADY_IN_GAME,
    BOT_ON_CREATE,
    CLOCK_ON_CREATE,
    COLOR_NEEDS_BOT,
    GAME_NOT_FOUND,
    HOT_SEAT,
    INIT_FIRST,
    JOIN_OR_WATCH,
    NO_OPPONENT,
    REMATCH_UNSUPPORTED,
    SEAT_TAKEN,
    SPECTATORS_CANNOT_ACT,
    SPECTATORS_CANNOT_CLAIM,
    SPECTATORS_CANNOT_PLAY,
    STORE_UNAVAILABLE,
    TOKEN_ALONE,
    UNKNOWN_TOKEN,
    Refusal,
    level_unavailable,
    opponent_connected,
    opponent_reconnecting,
    too_early,
)
from .seats import (
    Away,
    Computer,
    Elsewhere,
    Held,
    SeatChange,
    SeatEvent,
    SeatInput,
    SeatRequest,
    Vacant,
    present,
    transition,
)
from .seats import Seat as SeatState
from .shared import Follow, Found, Lookup, SharedStore, StoreIntent, Unfollow, Writes
from .solver.bots import Level
from .statistics import Statistics
from .store import Conflict, Credential, GameStore
from .timers import Timers
from .watchers import SpectatorCount, Telling

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
_SEAT_CREDENTIALS = (Credential.CREATOR, Credential.JOINER)


class Outbox(Protocol):
    """Where the lobby's answers go."""

    def send(self, connection: ConnectionId, message: ServerMessage) -> None:
        """One message to one connection."""

    def publish(self, game: GameId, logged: Logged) -> None:
        """A new event of ``game``'s log, to everyone in it, as each one's profile sees it."""

    def announce(self, game: GameId, message: ServerMessage) -> None:
        """A message that is not in the log (a spectator count), to every versioned member."""

    def compute(self, request: ComputeMove) -> None:
        """Ask for the computer's move (the driver thinks off the event loop)."""

    def disconnect(self, connection: ConnectionId, code: int, reason: str) -> None:
        """Close ``connection``'s WebSocket with ``code`` (it is already out of its game)."""

    def report(self, event: Event) -> None:
        """Something to log or count."""

    def store(self, intent: StoreIntent) -> None:
        """Ask the store outside the process (games shared with other processes)."""


class _HeldOutbox:
    """An ``Outbox`` that keeps what it is given, to pass it on once the shared store has
    taken the decision it came from (or to drop it if the store did not)."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def send(self, connection: ConnectionId, message: ServerMessage) -> None:
        self.calls.append(("send", (connection, message)))

    def publish(self, game: GameId, logged: Logged) -> None:
        self.calls.append(("publish", (game, logged)))

    def announce(self, game: GameId, message: ServerMessage) -> None:
        self.calls.append(("announce", (game, message)))

    def compute(self, request: ComputeMove) -> None:
        self.calls.append(("compute", (request,)))

    def disconnect(self, connection: ConnectionId, code: int, reason: str) -> None:
        self.calls.append(("disconnect", (connection, code, reason)))

    def report(self, event: Event) -> None:
        self.calls.append(("report", (event,)))

    def store(self, intent: StoreIntent) -> None:
        self.calls.append(("store", (intent,)))

    def release(self, outbox: Outbox) -> None:
        for method, arguments in self.calls:
            getattr(outbox, method)(*arguments)


@dataclass(slots=True, kw_only=True)
class _Room:
    """One game: its match (board, clocks, offers), its seats, and who is connected to it."""

    id: GameId
    join_key: str
    watch_key: str
    match: Match
    seats: dict[Player, SeatState] = field(
        default_factory=lambda: {Player.RED: Vacant(), Player.YELLOW: Vacant()}
    )
    #: Everyone connected (players and spectators), in arrival order, with their profile.
    members: dict[ConnectionId, Profile] = field(default_factory=dict)
    #: The version of the last event in the log.
    version: int = 0
    #: When the game is forgotten, if nobody comes back before (set while nobody is here).
    forget_at: float | None = None
    #: How many watch, and what the members were told of it.
    watchers: SpectatorCount
    #: The creator's colour: red, then swapped at each rematch. Its page shows the invite
    #: links, so it is given the keys again when it comes back.
    creator: Player = Player.RED
    #: Against the computer: what it was asked (an answer to anything else is stale: the
    #: position changed since), asked as soon as it is its turn; the end of its natural
    #: pause, before which it does not play; and its answer, if it came before that.
    bot_asked: ComputeMove | None = None
    bot_at: float | None = None
    bot_answer: int | None = None
    #: Shared games: the decision the store outside has not answered yet, the work waiting
    #: behind it (in order), and when to try again after the store could not be reached.
    pending: _Pending | None = None
    parked: list[_Work] = field(default_factory=list)
    retry_at: float | None = None


@dataclass(slots=True)
class _Work:
    """Something to do in one shared game, that can be done again (after a conflict: on the
    log as it is now). ``actor``: the connection whose message it is, told if the store
    cannot be reached; without one, the work is tried again later, or ``fallback`` is done
    instead. ``cancelled``: its connection left before it could be done."""

    run: Callable[[Outbox, float], None]
    actor: ConnectionId | None = None
    fallback: Callable[[Outbox, float], None] | None = None
    cancelled: bool = False
    #: It only takes in what the log has (events another process appended): it decides
    #: nothing, so there is nothing to undo, and no snapshot is taken (a ``Match.copy``).
    folds: bool = False


@dataclass(slots=True)
class _Snapshot:
    """What a shared game was before a decision, to go back to if it is not logged."""

    match: Match
    seats: dict[Player, SeatState]
    members: dict[ConnectionId, Profile]
    roles: dict[ConnectionId, Role]
    version: int
    forget_at: float | None
    watchers: SpectatorCount
    creator: Player
    bot: tuple[ComputeMove | None, float | None, int | None]
    moves: int


@dataclass(slots=True)
class _Pending:
    """A decision sent to the store outside: what it wrote, what it held back, how to undo
    it, and the members it let go of (``left``: those of them whose connection ended
    meanwhile, not to be brought back)."""

    intent: int
    writes: Writes
    snapshot: _Snapshot | None
    held: _HeldOutbox
    work: _Work
    removed: list[ConnectionId]
    left: set[ConnectionId] = field(default_factory=set)


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


#: A player's message, as the match's action.
_ACTIONS: dict[tuple[type[ClientMessage], OfferKind | None], Action] = {
    (Claim, None): Action.CLAIM,
    (Resign, None): Action.RESIGN,
    (Abort, None): Action.ABORT,
    (Offer, OfferKind.DRAW): Action.OFFER_DRAW,
    (Offer, OfferKind.REMATCH): Action.OFFER_REMATCH,
    (Accept, OfferKind.DRAW): Action.ACCEPT_DRAW,
    (Accept, OfferKind.REMATCH): Action.ACCEPT_REMATCH,
    (Decline, OfferKind.DRAW): Action.DECLINE_DRAW,
    (Decline, OfferKind.REMATCH): Action.DECLINE_REMATCH,
}
#: Events after which the computer's pending move is for a position that is gone. (A player's
#: drop or return is logged too, but changes nothing on the board.)
_POSITION_CHANGES = frozenset({MovePlayed, TimedMove, GameOver, RematchStarted})
#: The logged events that are a move (counted for the metrics).
_MOVES = frozenset({MovePlayed, TimedMove})
_NOBODY: Mapping[ConnectionId, Profile] = {}
#: Seats whose holder is connected, here or to another process sharing the game.
_CONNECTED = (Held, Elsewhere)
_SPECTATOR_REFUSALS = {Action.MOVE: SPECTATORS_CANNOT_PLAY, Action.CLAIM: SPECTATORS_CANNOT_CLAIM}


class Lobby:
    """All games in progress, found by id or by the digest of a secret.

    ``offer_interval``: seconds before a player may make the same offer again;
    ``watchers_interval``: the least time between two spectator counts told to a game.
    """

    def __init__(
        self,
        new_key: Callable[[], str],
        *,
        store: GameStore,
        seat_grace: float,
        away_delay: float = 0.0,
        offer_interval: float = 30.0,
        watchers_interval: float = 1.0,
        bot_delay: float = 0.0,
        computer_levels: frozenset[Level] = frozenset(Level),
        statistics: Statistics | None = None,
        new_game_id: Callable[[], GameId | None] | None = None,
        store_retry: float = 1.0,
        process: str | None = None,
    ) -> None:
        self._new_key = new_key
        self._new_game_id: Callable[[], GameId | None] = (
            self._count_games if new_game_id is None else new_game_id
        )
        self._statistics = Statistics() if statistics is None else statistics
        self._store = store
        self._grace = seat_grace
        self._away_delay = away_delay
        self._offer_interval = offer_interval
        self._watchers_interval = watchers_interval
        self._bot_delay = bot_delay
        self._computer_levels = computer_levels
        self._next_id = 1
        self._rooms: dict[GameId, _Room] = {}
        self._members: dict[ConnectionId, _Member] = {}
        # Connections that asked for the versioned protocol (members or not): their errors
        # carry a code.
        self._versioned: set[ConnectionId] = set()
        # Connections that sent an ``init`` (a ``play`` without one starts a hot-seat game),
        # and the hot-seat games: the tutorial's part 1, both colours on one connection.
        self._greeted: set[ConnectionId] = set()
        self._hot_seats = HotSeats()
        self._timers: Timers[GameId] = Timers()
        # Games shared with other processes (``shared``): the decisions the store outside
        # has not answered, by intent; the ``init``s waiting for a secret to be looked up;
        # the members let go of by a decision not answered yet.
        self._replica = store if isinstance(store, SharedStore) else None
        self._intents = itertools.count(1)
        self._in_flight: dict[int, _Room] = {}
        self._lookups: dict[bytes, list[_Work]] = {}
        self._waiting_inits: dict[ConnectionId, list[_Work]] = {}
        self._behind_init: dict[ConnectionId, list[ClientMessage]] = {}
        self._removed: dict[ConnectionId, _Room] = {}
        self._store_retry = store_retry
        self._process = process

    def _count_games(self) -> GameId:
        """Game ids of one process: 1, 2, 3... (processes sharing a store give their own)."""
        game = GameId(self._next_id)
        self._next_id += 1
        return game

    # -- read-only views, for the core, tests, metrics and health checks ---------------

    @property
    def game_count(self) -> int:
        return len(self._rooms)

    @property
    def member_count(self) -> int:
        return len(self._members)

    @property
    def hot_seat_count(self) -> int:
        """Hot-seat games being played (the tutorial's part 1: both colours on one page)."""
        return len(self._hot_seats)

    def phases(self) -> Counter[Phase]:
        """How many games are in each phase of their match."""
        return Counter(room.match.phase for room in self._rooms.values())

    def members(self, game: GameId) -> Mapping[ConnectionId, Profile]:
        """Every connection in ``game``, in arrival order, with the protocol it speaks (none:
        a shared game forgotten here before what was held back for it was sent)."""
        room = self._rooms.get(game)
        return _NOBODY if room is None else room.members

    def game(self, game: GameId) -> Game:
        """The game on ``game``'s board now (a rematch puts a new one there)."""
        return self._rooms[game].match.game

    def match(self, game: GameId) -> Match:
        """``game``'s match: its phase, its clocks, a pending offer."""
        return self._rooms[game].match

    def hot_seat(self, connection: ConnectionId) -> Game | None:
        """The hot-seat game ``connection`` plays, if it plays one."""
        return self._hot_seats.game(connection)

    def seats(self, game: GameId) -> Mapping[Player, SeatState]:
        """Who holds each of ``game``'s seats (``seats.Seat``)."""
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
        if self._replica is None:
            if type(message) is Play:  # the most common message: one call fewer
                self._play(connection, message.column, outbox, now)
            else:
                self._receive(connection, message, outbox, now)
            return
        # A shared game: the message is a decision in its game, done once the game can take
        # one (the store outside has answered the last), and undone if the store refuses it.
        if connection in self._waiting_inits:
            # Its init waits for the store outside: what it sends next waits behind it.
            self._behind_init.setdefault(connection, []).append(message)
            return
        work = _Work(partial(self._receive, connection, message), actor=connection)
        member = self._members.get(connection)
        if member is not None:
            self._in_room(member.room, work, outbox, now)
        elif type(message) is Init and connection not in self._hot_seats:
            # Its protocol is chosen now: a refusal before the init is done shows it.
            self._choose_profile(connection, message)
            digest = _init_digest(message)
            if digest is None:  # a new game (or a refused init)
                self._transact(None, work, outbox, now)
                return
            self._waiting_inits.setdefault(connection, []).append(work)
            found = self._replica.find(digest)
            if found is None:  # not known here: ask the store outside
                waiting = self._lookups.setdefault(digest, [])
                if not waiting:
                    outbox.store(Lookup(digest))
                waiting.append(work)
            else:
                self._in_room(self._rooms[found[0]], work, outbox, now)
        else:
            self._receive(connection, message, outbox, now)

    def _receive(
        self, connection: ConnectionId, message: ClientMessage, outbox: Outbox, now: float
    ) -> None:
        kind = type(message)
        if kind is Play:
            assert type(message) is Play
            self._play(connection, message.column, outbox, now)
        elif kind is Init:
            assert type(message) is Init
            self._init(connection, message, outbox, now)
        elif kind is ClientPing:
            outbox.send(connection, Pong())
        else:
            offer = getattr(message, "offer", None)
            self._act(connection, _ACTIONS[kind, offer], outbox, now)

    def refuse(self, connection: ConnectionId, refusal: Refusal, outbox: Outbox) -> None:
        """Send ``refusal`` as ``connection``'s protocol shows it (with its code, if versioned)."""
        code = refusal.code if connection in self._versioned else None
        self._statistics.refusals[refusal.code] += 1
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
        self._greeted.discard(connection)
        self._hot_seats.end(connection)
        if self._replica is None:
            self._leave_game(connection, quietly, outbox, now)
            return
        for work in self._waiting_inits.pop(connection, ()):
            work.cancelled = True  # it will not join a game now
        self._behind_init.pop(connection, None)
        member = self._members.get(connection)
        if member is None:
            room = self._removed.get(connection)
            if room is not None and room.pending is not None:
                room.pending.left.add(connection)  # not to be brought back if undone
            return
        # If the store cannot be reached, the seat is left quietly, as by a reload: the
        # others are told when the store can log it.
        work = _Work(
            partial(self._leave_game, connection, quietly),
            fallback=partial(self._leave_game, connection, True),
        )
        self._in_room(member.room, work, outbox, now)

    def _leave_game(
        self, connection: ConnectionId, quietly: bool, outbox: Outbox, now: float
    ) -> None:
        member = self._members.pop(connection, None)
        if member is None:
            return
        room = member.room
        self._settle_clock(room, now, outbox)  # a flag that fell came first
        del room.members[connection]
        if member.role is Role.SPECTATOR:
            self._tell(room, room.watchers.left((connection,), now), outbox)
        else:
            room.watchers.forget(connection)
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
        """Flag a player whose time ran out; tell of absences that lasted and of a changed
        spectator count; forget the games nobody came back to."""
        # A game's deadline is cancelled when it is forgotten: every game due is in play.
        for game in self._timers.pop_due(now):
            room = self._rooms[game]
            if self._replica is None:
                self._timer_due(room, outbox, now)
                continue
            if room.pending is not None:
                continue  # it is rescheduled when the store answers
            if room.retry_at is not None and room.retry_at <= now:
                room.retry_at = None
                self._drain(room, outbox, now)
            self._in_room(room, _Work(partial(self._timer_due, room)), outbox, now)

    def _timer_due(self, room: _Room, outbox: Outbox, now: float) -> None:
        """Whatever of ``room``'s is due at ``now``."""
        self._settle_clock(room, now, outbox)
        if room.bot_at is not None and room.bot_at <= now:
            room.bot_at = None
            if room.bot_answer is not None:
                self._computer_plays(room, now, outbox)
        for player, seat in room.seats.items():
            tell_at = self._tell_at(seat)
            if tell_at is not None and tell_at <= now:
                request = SeatRequest(now=now)
                self._change_seat(room, player, SeatInput.ANNOUNCE, request, outbox)
        self._tell(room, room.watchers.due(now), outbox)
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
        """Wake for ``room`` at its next deadline: a flag, an absence or a spectator count to
        tell, or its forgetting."""
        deadlines = [
            tell_at for seat in room.seats.values() if (tell_at := self._tell_at(seat)) is not None
        ]
        if room.forget_at is not None:
            deadlines.append(room.forget_at)
        if room.retry_at is not None:
            deadlines.append(room.retry_at)
        flag_at = room.match.deadline
        if flag_at is not None:
            deadlines.append(flag_at)
        if room.bot_at is not None:
            deadlines.append(room.bot_at)
        watchers_at = room.watchers.deadline
        if watchers_at is not None:
            deadlines.append(watchers_at)
        self._timers.cancel(room.id)
        if deadlines:
            self._timers.schedule(room.id, min(deadlines))

    def _schedule_forget(self, room: _Room, now: float, outbox: Outbox) -> None:
        """Nobody is connected to ``room``: forget it now, or when the last grace runs out."""
        forget_at = max(
            (seat.since + self._grace for seat in room.seats.values() if type(seat) is Away),
            default=now,
        )
        replica = self._replica
        if forget_at > now or (replica is not None and room.id in replica.written()):
            # (A shared game is not forgotten with a decision on its way to the store: once
            # it is logged, the timer forgets it.)
            room.forget_at = max(forget_at, now)
            self._reschedule(room)
            return
        del self._rooms[room.id]
        self._timers.cancel(room.id)
        self._store.drop(room.id)
        if replica is not None:
            # Forgotten here only: the store outside keeps it for the other processes and
            # for whoever comes back (until it expires).
            outbox.store(Unfollow(room.id))
        outbox.report(GameClosed(game=room.id))

    # -- messages ------------------------------------------------------------------------

    def _init(self, connection: ConnectionId, message: Init, outbox: Outbox, now: float) -> None:
        token, clock, bot, color = message.token, message.clock, message.bot, message.color
        if connection in self._members or connection in self._hot_seats:
            # Its protocol was chosen when it entered its game, and stays.
            self.refuse(connection, ALREADY_IN_GAME, outbox)
            return
        self._greeted.add(connection)
        self._choose_profile(connection, message)
        arrival = _Arrival(connection, self.profile(connection), message.v or 0, now)
        keys = message.join is not None or message.watch is not None
        if message.join is not None and message.watch is not None:
            self.refuse(connection, JOIN_OR_WATCH, outbox)
        elif clock is not None and (keys or token is not None):
            self.refuse(connection, CLOCK_ON_CREATE, outbox)
        elif (bot is not None or color is not None) and (keys or token is not None):
            self.refuse(connection, BOT_ON_CREATE, outbox)
        elif color is not None and bot is None:
            self.refuse(connection, COLOR_NEEDS_BOT, outbox)
        elif bot is not None and bot not in self._computer_levels:
            self.refuse(connection, level_unavailable(bot, self._computer_levels), outbox)
        elif token is not None:
            if keys:
                self.refuse(connection, TOKEN_ALONE, outbox)
            else:
                self._resume(arrival, token, outbox)
        elif message.join is not None:
            self._join(arrival, message.join, outbox)
        elif message.watch is not None:
            self._watch(arrival, message.watch, outbox)
        else:
            self._create(arrival, clock, outbox, bot, color or Player.RED)

    def _choose_profile(self, connection: ConnectionId, message: Init) -> None:
        """An ``init`` chooses its connection's protocol (see PROTOCOL.md)."""
        asks = (message.v, message.token, message.clock, message.bot)
        if any(field is not None for field in asks):
            self._versioned.add(connection)
        else:
            self._versioned.discard(connection)

    def _create(
        self,
        arrival: _Arrival,
        control: TimeControl | None,
        outbox: Outbox,
        bot: Level | None = None,
        color: Player = Player.RED,
    ) -> None:
        game = self._new_game_id()
        if game is None:  # processes sharing games take ids from the store outside
            self.refuse(arrival.connection, STORE_UNAVAILABLE, outbox)
            return
        # Every secret first: a factory that fails leaves nothing half made.
        join_key, watch_key, token = self._new_key(), self._new_key(), self._new_key()
        match = Match(control=control, offer_interval=self._offer_interval)
        room = _Room(
            id=game,
            join_key=join_key,
            watch_key=watch_key,
            match=match,
            watchers=SpectatorCount(self._watchers_interval),
        )
        self._store.create(room.id)
        self._store.add_secret(_digest(room.join_key), room.id, Credential.JOIN)
        self._store.add_secret(_digest(room.watch_key), room.id, Credential.WATCH)
        self._rooms[room.id] = room
        outbox.report(GameCreated(game=room.id, connection=arrival.connection))
        outbox.send(arrival.connection, GameKeys(join=room.join_key, watch=room.watch_key))
        if bot is None:
            self._take_seat(arrival, room, Player.RED, token, outbox)
            return
        room.creator = color
        if color is Player.RED:
            self._take_seat(arrival, room, Player.RED, token, outbox)
            self._seat_computer(room, Player.YELLOW, bot, arrival.now, outbox)
        else:
            self._seat_computer(room, Player.RED, bot, arrival.now, outbox)
            self._take_seat(arrival, room, Player.YELLOW, token, outbox)
        self._computer_turn(room, arrival.now, outbox)

    def _seat_computer(
        self, room: _Room, player: Player, level: Level, now: float, outbox: Outbox
    ) -> None:
        room.seats[player] = Computer(level=level.value)
        self._seat_taken(room, player, now, outbox, bot=level.value)

    def _seat_taken(
        self, room: _Room, player: Player, now: float, outbox: Outbox, bot: str | None = None
    ) -> None:
        """Log that ``player``'s seat got its owner (a person, or the computer at ``bot``)."""
        clock = None
        if player is Player.YELLOW:  # both are here: a timed game's clocks start
            self._apply(room, Action.JOIN, MatchRequest(player=player, now=now), outbox)
            clock = room.match.clocks(now)
        # The first seat taken carries the time control: the log then says all of the game.
        control = room.match.control if room.version == 0 else None
        process = self._process if bot is None else None
        taken = SeatTaken(player=player, clock=clock, bot=bot, control=control, process=process)
        self._append(room, taken, now, outbox)

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
        self._settle_clock(room, arrival.now, outbox)
        digest = _digest(token)
        request = SeatRequest(connection=connection, token=digest, now=arrival.now)
        change = transition(room.seats[player], SeatInput.TAKE, request)
        assert isinstance(change, SeatChange)  # the caller saw the seat vacant
        credential = Credential.CREATOR if player is room.creator else Credential.JOINER
        self._store.add_secret(digest, room.id, credential)
        if arrival.profile is Profile.VERSIONED:
            control = room.match.control
            outbox.send(
                connection, Seat(player=player, token=token, v=room.version, control=control)
            )
        if room.version:  # the creator of a fresh game has nothing to catch up with
            self._catch_up(arrival, room, outbox)
        self._enter(arrival, room, _ROLE_OF_PLAYER[player], outbox)
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
        self._settle_clock(room, arrival.now, outbox)
        if arrival.profile is Profile.VERSIONED:
            outbox.send(arrival.connection, Watching(v=room.version, control=room.match.control))
        self._catch_up(arrival, room, outbox)
        self._enter(arrival, room, Role.SPECTATOR, outbox)
        outbox.report(SpectatorJoined(game=room.id, connection=arrival.connection))

    def _resume(self, arrival: _Arrival, token: str, outbox: Outbox) -> None:
        connection = arrival.connection
        digest = _digest(token)
        found = self._store.find(digest)
        room = None if found is None else self._rooms.get(found[0])
        if found is None or room is None or found[1] not in _SEAT_CREDENTIALS:
            self.refuse(connection, UNKNOWN_TOKEN, outbox)
            return
        # The token is its person's: their colour is the creator's now, or the other one.
        creator = found[1] is Credential.CREATOR
        player = room.creator if creator else _OPPONENT[room.creator]
        self._settle_clock(room, arrival.now, outbox)
        request = SeatRequest(connection=connection, token=digest, now=arrival.now)
        change = transition(room.seats[player], SeatInput.RESUME, request)
        if isinstance(change, Refusal):  # pragma: no cover - a found token is the seat's
            self.refuse(connection, change, outbox)
            return
        if player is room.creator:
            # The creator's page shows the invite links: a reloaded page needs them again.
            outbox.send(connection, GameKeys(join=room.join_key, watch=room.watch_key))
        control = room.match.control
        outbox.send(connection, Seat(player=player, token=token, v=room.version, control=control))
        self._catch_up(arrival, room, outbox)
        displaced = change.displaced
        if displaced is not None:
            self._displace(room, player, displaced, outbox)
        self._enter(arrival, room, _ROLE_OF_PLAYER[player], outbox, returning=True)
        self._apply_seat_change(room, player, change, outbox, arrival.now)
        outbox.report(PlayerReturned(game=room.id, player=player, connection=connection))
        # Against the computer, in a game this process holds since it came back: its move
        # was asked for elsewhere, if at all.
        self._computer_turn(room, arrival.now, outbox)

    def _displace(
        self, room: _Room, player: Player, displaced: ConnectionId, outbox: Outbox
    ) -> None:
        """``displaced`` holds ``player``'s seat no more: a newer connection took it over."""
        del self._members[displaced]
        del room.members[displaced]
        room.watchers.forget(displaced)
        outbox.disconnect(
            displaced, SEAT_REPLACED, "This seat was taken over by a newer connection."
        )
        outbox.report(SeatReplaced(game=room.id, player=player, connection=displaced))

    def _play(self, connection: ConnectionId, column: int, outbox: Outbox, now: float) -> None:
        member = self._members.get(connection)
        if member is not None:
            self._act_as(member, connection, Action.MOVE, outbox, now, column)
        elif connection in self._hot_seats or connection not in self._greeted:
            # A ``play`` before any ``init``: the tutorial's part 1, a game on one device.
            for message in self._hot_seats.play(connection, column):
                if type(message) is Played:
                    self._statistics.moves += 1
                outbox.send(connection, message)
        else:
            self.refuse(connection, INIT_FIRST, outbox)  # its ``init`` was refused

    def _act(self, connection: ConnectionId, action: Action, outbox: Outbox, now: float) -> None:
        """A player's claim, resignation, offer or answer, as the match rules."""
        member = self._members.get(connection)
        if member is None:
            refusal = HOT_SEAT if connection in self._hot_seats else INIT_FIRST
            self.refuse(connection, refusal, outbox)
        else:
            self._act_as(member, connection, action, outbox, now)

    def _act_as(
        self,
        member: _Member,
        connection: ConnectionId,
        action: Action,
        outbox: Outbox,
        now: float,
        column: int = -1,
    ) -> None:
        role = member.role
        if role is Role.SPECTATOR:
            self.refuse(connection, _SPECTATOR_REFUSALS.get(action, SPECTATORS_CANNOT_ACT), outbox)
            return
        room, player = member.room, _PLAYER_OF_ROLE[role]
        if room.match.clock is not None:  # an untimed game has none: a call saved per move
            self._settle_clock(room, now, outbox)  # a clock that ran out is settled first
        seat_refusal = None
        if action is Action.CLAIM:
            seat_refusal = self._claim_refusal(room, player, now)
        elif action is Action.OFFER_REMATCH or action is Action.ACCEPT_REMATCH:
            seat_refusal = self._rematch_refusal(room, player)
        request = MatchRequest(player=player, now=now, column=column, seat_refusal=seat_refusal)
        self._apply(room, action, request, outbox, connection)
        if type(room.seats[_OPPONENT[player]]) is Computer:
            self._computer_answers(room, now, outbox)
            self._computer_turn(room, now, outbox)

    # -- the computer ------------------------------------------------------------------------

    def computed(self, request: ComputeMove, column: int, now: float, outbox: Outbox) -> None:
        """The computer's move, asked for by ``request``: played if its game is still where
        it was asked at (a resignation, a rematch or a flag meanwhile make it stale), once
        its pause is over (the thinking is done within the pause, not after it)."""
        room = self._rooms.get(request.game)
        if room is None:
            return
        if self._replica is not None:
            work = _Work(partial(self._computer_answered, room, request, column))
            self._in_room(room, work, outbox, now)
        else:
            self._computer_answered(room, request, column, outbox, now)

    def _computer_answered(
        self, room: _Room, request: ComputeMove, column: int, outbox: Outbox, now: float
    ) -> None:
        if room.bot_asked != request:
            return
        if type(column) is not int or not room.match.game.can_play(column):
            raise LocalProtocolError(f"game {room.id}: the computer cannot play {column!r}")
        room.bot_answer = column
        if room.bot_at is None:
            self._computer_plays(room, now, outbox)

    def _computer_plays(self, room: _Room, now: float, outbox: Outbox) -> None:
        """Play the computer's answer, its pause over."""
        column = room.bot_answer
        assert column is not None
        room.bot_asked = room.bot_answer = None
        self._settle_clock(room, now, outbox)
        if self._computer_to_move(room) is None:
            return  # its time ran out meanwhile
        move = MatchRequest(player=room.match.game.turn, now=now, column=column)
        self._apply(room, Action.MOVE, move, outbox)

    def _computer_answers(self, room: _Room, now: float, outbox: Outbox) -> None:
        """The computer declines every draw offer and accepts every rematch, at once."""
        match = room.match
        offer = match.offer
        if offer is None:
            return
        kind, maker = offer
        computer = _OPPONENT[maker]
        action = Action.DECLINE_DRAW if kind is OfferKind.DRAW else Action.ACCEPT_REMATCH
        seat_refusal = self._rematch_refusal(room, computer) if kind is OfferKind.REMATCH else None
        # Never refused (the maker is here: it just asked), so nobody to tell a refusal to.
        request = MatchRequest(player=computer, now=now, seat_refusal=seat_refusal)
        self._apply(room, action, request, outbox)

    def _computer_turn(self, room: _Room, now: float, outbox: Outbox) -> None:
        """If the computer is to move, ask for its move at once (once per position), to be
        played when its pause is over."""
        seat = self._computer_to_move(room)
        if seat is None or room.bot_asked is not None:
            return
        if self._bot_delay > 0:
            room.bot_at = now + self._bot_delay
            self._reschedule(room)
        record = room.match.game.record
        request = ComputeMove(game=room.id, version=room.version, level=seat.level, record=record)
        room.bot_asked = request
        outbox.compute(request)

    @staticmethod
    def _computer_to_move(room: _Room) -> Computer | None:
        """The computer's seat, if the game goes on and it is the computer's turn."""
        game = room.match.game
        seat = room.seats[game.turn]
        return None if game.is_over or type(seat) is not Computer else seat

    def _apply(
        self,
        room: _Room,
        action: Action,
        request: MatchRequest,
        outbox: Outbox,
        connection: ConnectionId | None = None,
    ) -> None:
        """Let the match do ``action``; log and publish what it did, or refuse ``connection``
        (the lobby's own actions, ``connection`` None, are never refused)."""
        events = room.match.apply(action, request)
        if type(events) is not tuple:
            assert isinstance(events, Refusal)
            assert connection is not None
            self.refuse(connection, events, outbox)
            return
        self._log(room, events, request.now, outbox)

    def _log(self, room: _Room, events: tuple[GameEvent, ...], now: float, outbox: Outbox) -> None:
        """Append what the match did, and follow it up (report an end, start a rematch)."""
        if room.bot_asked is not None and any(type(e) in _POSITION_CHANGES for e in events):
            # What the computer works out is for a position gone by.
            room.bot_asked = room.bot_at = room.bot_answer = None
        for event in events:
            self._append(room, event, now, outbox)
        last = events[-1] if events else None  # an ending or a rematch is always the last
        if type(last) is GameOver:
            game = room.match.game
            outbox.report(
                GameEnded(
                    game=room.id, winner=last.winner, moves=len(game.moves), reason=last.ending
                )
            )
        elif type(last) is RematchStarted:
            self._start_rematch(room, last.round, now, outbox)
        if room.match.clock is not None:
            # Only a clock's deadline moves with the match: a flag comes at another time.
            self._reschedule(room)

    def _settle_clock(self, room: _Room, now: float, outbox: Outbox) -> None:
        """A clock that ran out by ``now`` loses its player the game before anything else
        happens in it (the timer may not have run yet: ``advance`` may come later)."""
        match = room.match
        clock = match.clock
        if clock is not None and match.flag_due(now):
            running = clock.running
            assert running is not None
            self._apply(room, Action.FLAG, MatchRequest(player=running, now=now), outbox)

    def _claim_refusal(self, room: _Room, player: Player, now: float) -> Refusal | None:
        """What the opponent's seat says against ``player`` claiming the win now."""
        opponent = _OPPONENT[player]
        seat = room.seats[opponent]
        name = opponent.value.capitalize()
        if type(seat) is Vacant:
            return NO_OPPONENT
        if present(seat):
            return opponent_connected(name)
        if type(seat) is Away and now < seat.since + self._grace:
            return too_early(name, math.ceil(seat.since + self._grace - now))
        return None

    def _rematch_refusal(self, room: _Room, player: Player) -> Refusal | None:
        """What the seats say against a rematch offer or its acceptance by ``player``."""
        for seat in room.seats.values():
            if type(seat) is Held and room.members[seat.connection] is not Profile.VERSIONED:
                return REMATCH_UNSUPPORTED  # its page could not follow to the next game
        opponent = _OPPONENT[player]
        offer = room.match.offer
        accepting = offer is not None and offer[1] is opponent  # offering back accepts, too
        if accepting and type(room.seats[opponent]) not in _CONNECTED:
            # Its maker is reconnecting (quietly): the next game waits for it to be here.
            return opponent_reconnecting(opponent.value.capitalize())
        return None

    def _start_rematch(self, room: _Room, number: int, now: float, outbox: Outbox) -> None:
        """The next game of the match: the colours swap; each seat is new, and its token is
        its new holder's old one, now leading to the other colour.

        The token stays with its person, not with the colour: a page that reloads as the
        rematch begins (its ``seat`` lost in flight) still comes back, to its new colour. Each
        player is told its colour in a ``seat`` without a token (keep the one you have).
        Spectators stay: the game they watch is the next one. A member of the tutorial's
        protocol cannot tell one game from the next, so it is let go (its page shows the
        result it has).
        """
        _swap_seats(room)
        self._rematch_here(room, now, outbox)
        outbox.report(RematchBegun(game=room.id, round=number))

    def _rematch_here(self, room: _Room, now: float, outbox: Outbox) -> None:
        """The next game, for the members connected here (the seats have swapped)."""
        control = room.match.control
        for player, seat in room.seats.items():
            if type(seat) is not Held:
                continue  # the computer, or a player connected elsewhere (or reconnecting)
            self._members[seat.connection].role = _ROLE_OF_PLAYER[player]
            outbox.send(seat.connection, Seat(player=player, v=room.version, control=control))
        let_go = [c for c, profile in room.members.items() if profile is Profile.TUTORIAL]
        for connection in let_go:
            del room.members[connection]
            del self._members[connection]
            outbox.disconnect(connection, 1000, "The game is over.")
        self._tell(room, room.watchers.left(let_go, now), outbox)

    # -- games shared with other processes ---------------------------------------------------
    #
    # With a ``SharedStore``, a decision is made on this process's replica of its game, and
    # what it would send is held back until the store outside has logged what it wrote: one
    # decision at a time per game, the work that comes meanwhile waiting behind it in order.
    # A conflict (another process appended first) undoes the decision, takes in what the
    # other appended, and does the work again on that; a store that cannot be reached undoes
    # it and says so (a message's sender is told to try again; the lobby's own work is tried
    # again later). Nothing is ever sent that the log does not have.

    def appended(self, intent: int, outbox: Outbox, now: float) -> None:
        """The store outside logged the decision sent as ``intent``."""
        room, pending = self._answered(intent)
        assert self._replica is not None
        self._replica.commit(pending.writes)
        if pending.writes.created:
            outbox.store(Follow(room.id, room.version))
        pending.held.release(outbox)
        self._reschedule(room)  # a timer that came due meanwhile waited for this
        self._drain(room, outbox, now)

    def conflicted(self, intent: int, events: Sequence[Logged], outbox: Outbox, now: float) -> None:
        """Another process appended to the game first: ``events`` are what it appended
        since the version the decision was made at. The decision is made again on them."""
        room, pending = self._answered(intent)
        assert pending.snapshot is not None  # a new game's id is its own: nobody else appends
        self._undo(room, pending)
        # What the other appended first (folding it may be a decision too), then this again.
        folding = _Work(partial(self._fold_all, room, tuple(events)), folds=True)
        room.parked[:0] = [folding, pending.work]
        self._drain(room, outbox, now)

    def store_unavailable(self, intent: int, outbox: Outbox, now: float) -> None:
        """The store outside could not log the decision sent as ``intent`` (it cannot be
        reached, or did not answer in time and the driver gave up on it)."""
        room, pending = self._answered(intent)
        work = pending.work
        if pending.snapshot is None:  # a new game: it never was
            self._unmake(room, pending)
        else:
            self._undo(room, pending)
        if work.actor is not None:
            self.refuse(work.actor, STORE_UNAVAILABLE, outbox)
        elif work.fallback is not None:
            self._transact(room, _Work(work.fallback), outbox, now)
        else:
            room.parked.insert(0, work)
            room.retry_at = now + self._store_retry
            self._reschedule(room)
        if pending.snapshot is not None:
            self._drain(room, outbox, now)

    def remote(self, game: GameId, events: Sequence[Logged], outbox: Outbox, now: float) -> None:
        """``events`` were appended to ``game``'s log (by another process, or this one: what
        this process has already is skipped)."""
        room = self._rooms.get(game)
        if room is None:
            return  # forgotten here meanwhile
        work = _Work(partial(self._fold_all, room, tuple(events)), folds=True)
        self._in_room(room, work, outbox, now)

    def looked_up(self, digest: bytes, found: Found | None, outbox: Outbox, now: float) -> None:
        """What the secret of ``digest`` leads to, as the store outside says (None: nothing):
        the ``init``s that wait for it go on."""
        assert self._replica is not None
        works = self._lookups.pop(digest, [])
        room = None
        if found is not None:
            room = self._rooms.get(found.game)
            if room is None:
                room = self._install(found, outbox, now)
            self._replica.learn_secret(digest, found.game, found.credential)
        for work in works:
            if room is None:
                self._transact(None, work, outbox, now)  # it finds nothing: "not found"
            else:
                self._in_room(room, work, outbox, now)

    def lookup_unavailable(self, digest: bytes, outbox: Outbox, now: float) -> None:
        """The store outside could not be reached to look ``digest`` up: the ``init``s that
        wait for it are refused (their pages try again)."""
        for work in self._lookups.pop(digest, []):
            actor = work.actor
            if not work.cancelled and actor is not None:
                self._forget_init(work)
                self._greeted.add(actor)  # it sent an init: a play now is no hot-seat game
                self.refuse(actor, STORE_UNAVAILABLE, outbox)
                self._after_init(actor, outbox, now)

    def _forget_init(self, work: _Work) -> bool:
        """``work`` waits no more; whether it was an ``init`` that waited."""
        assert work.actor is not None
        waiting = self._waiting_inits.get(work.actor)
        if waiting is None or work not in waiting:
            return False
        waiting.remove(work)
        if not waiting:
            del self._waiting_inits[work.actor]
        return True

    def _after_init(self, connection: ConnectionId, outbox: Outbox, now: float) -> None:
        """Its init is done (or refused): what ``connection`` sent meanwhile, in order."""
        if connection in self._waiting_inits:
            return  # another init of its waits still
        for message in self._behind_init.pop(connection, ()):
            self.receive(connection, message, outbox, now)

    def _in_room(self, room: _Room, work: _Work, outbox: Outbox, now: float) -> None:
        """Do ``work`` in ``room`` now, or after what waits there already."""
        if room.pending is not None or room.parked:
            room.parked.append(work)
        else:
            self._transact(room, work, outbox, now)
            self._drain(room, outbox, now)  # what the work left to do next (``_still_here``)

    def _drain(self, room: _Room, outbox: Outbox, now: float) -> None:
        """Do the work that waited in ``room``, until a decision must wait for the store."""
        while room.pending is None and room.parked:
            if room.retry_at is not None:
                return  # the store could not be reached: try again at ``retry_at``
            self._transact(room, room.parked.pop(0), outbox, now)

    def _transact(self, room: _Room | None, work: _Work, outbox: Outbox, now: float) -> None:
        """Do ``work`` (in ``room``; None: it may create a game), holding back what it sends
        until the store outside has logged what it wrote, if it wrote anything."""
        if work.cancelled or (room is not None and self._rooms.get(room.id) is not room):
            return  # its connection left, or its game was forgotten here while it waited
        actor = work.actor
        was_init = actor is not None and self._forget_init(work)
        self._decide(room, work, outbox, now)
        if was_init:
            assert actor is not None
            self._after_init(actor, outbox, now)

    def _decide(self, room: _Room | None, work: _Work, outbox: Outbox, now: float) -> None:
        """``_transact``'s decision: done, and either sent, or held back for the store."""
        replica = self._replica
        assert replica is not None
        snapshot = None if room is None or work.folds else self._snapshot(room)
        held = _HeldOutbox()
        work.run(held, now)
        written = replica.written()
        if not written:
            held.release(outbox)
            return
        assert not work.folds  # (a decision it leads to is work of its own: ``_still_here``)
        # A decision is made in one game (a new one, if ``room`` is None).
        assert len(written) == 1
        assert room is None or written[0] == room.id
        writes = replica.take(written[0])
        target = self._rooms[writes.game]
        removed = (
            [] if snapshot is None else [c for c in snapshot.members if c not in target.members]
        )
        intent = next(self._intents)
        target.pending = _Pending(intent, writes, snapshot, held, work, removed)
        self._in_flight[intent] = target
        for connection in removed:
            self._removed[connection] = target
        keys = (target.join_key, target.watch_key) if writes.created else None
        outbox.store(writes.intent(intent, keys))

    def _answered(self, intent: int) -> tuple[_Room, _Pending]:
        room = self._in_flight.pop(intent, None)
        if room is None or room.pending is None:
            raise LocalProtocolError(f"no decision is waiting for the store as intent {intent}")
        pending, room.pending = room.pending, None
        for connection in pending.removed:
            self._removed.pop(connection, None)
        return room, pending

    def _snapshot(self, room: _Room) -> _Snapshot:
        members = self._members
        return _Snapshot(
            match=room.match.copy(),
            seats=dict(room.seats),
            members=dict(room.members),
            roles={connection: members[connection].role for connection in room.members},
            version=room.version,
            forget_at=room.forget_at,
            watchers=replace(room.watchers, stale=dict(room.watchers.stale)),
            creator=room.creator,
            bot=(room.bot_asked, room.bot_at, room.bot_answer),
            moves=self._statistics.moves,
        )

    def _undo(self, room: _Room, pending: _Pending) -> None:
        """Back to what ``room`` was before the decision the store did not log."""
        assert self._replica is not None
        assert pending.snapshot is not None
        self._replica.discard(pending.writes)
        snapshot = pending.snapshot
        for connection in room.members:
            if connection not in snapshot.members:
                del self._members[connection]  # came in by the decision
        room.members = {
            connection: profile
            for connection, profile in snapshot.members.items()
            if connection not in pending.left
        }
        for connection in room.members:
            member = self._members.get(connection)
            if member is None:  # let go of by the decision: back
                self._members[connection] = _Member(room, snapshot.roles[connection])
            else:
                member.role = snapshot.roles[connection]
        room.match = snapshot.match
        room.seats = snapshot.seats
        room.version = snapshot.version
        room.forget_at = snapshot.forget_at
        room.watchers = snapshot.watchers
        room.creator = snapshot.creator
        room.bot_asked, room.bot_at, room.bot_answer = snapshot.bot
        self._statistics.moves = snapshot.moves
        self._reschedule(room)

    def _unmake(self, room: _Room, pending: _Pending) -> None:
        """A new game the store did not log: it never was."""
        assert self._replica is not None
        self._replica.discard(pending.writes)
        for connection in room.members:
            self._members.pop(connection, None)
        self._rooms.pop(room.id, None)
        self._timers.cancel(room.id)

    def _install(self, found: Found, outbox: Outbox, now: float) -> _Room:
        """A game held elsewhere until now, built from its log."""
        assert self._replica is not None
        first = found.events[0].event if found.events else None
        control = first.control if type(first) is SeatTaken else None
        join_key, watch_key = found.keys or ("", "")
        room = _Room(
            id=found.game,
            join_key=join_key,
            watch_key=watch_key,
            match=Match(control=control, offer_interval=self._offer_interval),
            watchers=SpectatorCount(self._watchers_interval),
        )
        if type(first) is SeatTaken and first.bot is not None:
            room.creator = _OPPONENT[first.player]  # the computer took its seat first
        self._replica.install(found.game)
        for logged in found.events:
            self._fold_state(room, logged)
        self._rooms[room.id] = room
        # Nobody is here yet: forgotten at the next timer unless the ``init`` that looked
        # it up enters it.
        room.forget_at = now
        self._reschedule(room)
        outbox.store(Follow(room.id, room.version))
        return room

    def _fold_all(
        self, room: _Room, events: tuple[Logged, ...], outbox: Outbox, now: float
    ) -> None:
        for logged in events:
            self._fold_remote(room, logged, outbox, now)

    def _fold_remote(self, room: _Room, logged: Logged, outbox: Outbox, now: float) -> None:
        """Take in an event another process decided, and tell it to the members here."""
        if logged.version <= room.version:
            return  # known here already (this process appended it)
        event = logged.event
        kind = type(event)
        if type(event) is SeatBack:
            seat = room.seats[event.player]
            if type(seat) is Held:  # the seat was brought to another process
                self._displace(room, event.player, seat.connection, outbox)
        self._fold_state(room, logged)
        if room.bot_asked is not None and kind in _POSITION_CHANGES:
            room.bot_asked = room.bot_at = room.bot_answer = None
        outbox.publish(room.id, logged)
        if kind is RematchStarted:
            self._rematch_here(room, now, outbox)
        elif type(event) is SeatAway and type(room.seats[event.player]) is Held:
            # Another process found this one gone (it could not reach Redis for a while),
            # yet its player is here: that is logged too, a decision of its own, next.
            room.parked.insert(0, _Work(partial(self._still_here, room, event.player)))
        self._reschedule(room)

    def _still_here(self, room: _Room, player: Player, outbox: Outbox, now: float) -> None:
        """Log that ``player``'s seat is back, held here, if the log says it is away while
        a connection here holds it (decided again on the log as it is, after a conflict)."""
        if type(room.seats[player]) is Held and self._logged_away(room, player):
            self._append(room, SeatBack(player=player, process=self._process), now, outbox)

    def _logged_away(self, room: _Room, player: Player) -> bool:
        """Whether the log's last word on ``player``'s seat is that it is away."""
        assert self._replica is not None
        for logged in reversed(self._replica.since(room.id, 0) or ()):
            event = logged.event
            if type(event) is RematchStarted:
                player = _OPPONENT[player]  # before it, the colours were the other way
            elif isinstance(event, SeatAway | SeatBack | SeatTaken) and event.player is player:
                return type(event) is SeatAway
        return False

    def held_elsewhere(self) -> set[str]:
        """The other processes that hold seats of the games held here."""
        return {
            seat.process
            for room in self._rooms.values()
            for seat in room.seats.values()
            if type(seat) is Elsewhere and seat.process is not None
        }

    def process_gone(self, process: str, outbox: Outbox, now: float) -> None:
        """``process`` is gone (its heartbeat in Redis expired): the seats it held are away
        from now on, as after a drop, and the game goes on (decided once, by whichever
        process logs it first)."""
        for room in list(self._rooms.values()):
            if any(_held_by(seat, process) for seat in room.seats.values()):
                work = _Work(partial(self._vanished, room, process))
                self._in_room(room, work, outbox, now)

    def _vanished(self, room: _Room, process: str, outbox: Outbox, now: float) -> None:
        for player, seat in list(room.seats.items()):
            if _held_by(seat, process):
                request = SeatRequest(now=now)
                self._change_seat(room, player, SeatInput.VANISH, request, outbox)
        self._reschedule(room)

    def _fold_state(self, room: _Room, logged: Logged) -> None:
        """What ``logged`` changes in ``room``, whoever decided it."""
        assert self._replica is not None
        self._replica.remember(room.id, logged)  # (checks that nothing is missing before it)
        event = logged.event
        room.match.fold(event, logged.at)
        room.version = logged.version
        kind = type(event)
        if kind is SeatTaken:
            assert type(event) is SeatTaken
            bot = event.bot
            seat: SeatState = Elsewhere(event.process) if bot is None else Computer(level=bot)
            room.seats[event.player] = seat
        elif kind is SeatAway:
            assert type(event) is SeatAway
            if type(room.seats[event.player]) is not Held:  # (held here: see _fold_remote)
                room.seats[event.player] = Away(token=b"", since=event.since)
        elif kind is SeatBack:
            assert type(event) is SeatBack
            room.seats[event.player] = Elsewhere(event.process)
        elif kind is RematchStarted:
            _swap_seats(room)

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
            messages = snapshot(room.match, room.seats, room.version, profile, now=now, grace=grace)
        else:
            messages = [project(logged, profile, now=now, grace=grace) for logged in events]
        for message in messages:
            assert message is not None  # the versioned protocol sees every event
            outbox.send(arrival.connection, message)

    def _enter(
        self,
        arrival: _Arrival,
        room: _Room,
        role: Role,
        outbox: Outbox,
        *,
        returning: bool = False,
    ) -> None:
        connection = arrival.connection
        self._members[connection] = _Member(room, role)
        room.members[connection] = arrival.profile
        if arrival.profile is Profile.VERSIONED:
            # What is not in the log: the running clocks as they stand now (events carry
            # them as of their time), and who watches.
            clocks = room.match.clocks(arrival.now)
            if clocks is not None and clocks.running is not None:
                outbox.send(connection, ClockNow(clock=clocks))
            if role is not Role.SPECTATOR and (returning or room.watchers.count):
                # A page that comes back may hold an older count; a new one holds 0.
                self._tell(room, room.watchers.newcomer(connection), outbox)
        if role is Role.SPECTATOR:
            versioned = arrival.profile is Profile.VERSIONED
            telling = room.watchers.arrived(connection if versioned else None, arrival.now)
            self._tell(room, telling, outbox)
        if room.forget_at is not None:
            room.forget_at = None  # somebody is here: the game is not forgotten
            self._reschedule(room)

    def _tell(self, room: _Room, telling: Telling, outbox: Outbox) -> None:
        """Tell the spectator count as ``telling`` says; wake when it is due again."""
        message = Watchers(count=telling.count)
        if telling.everyone:
            outbox.announce(room.id, message)
        for connection in telling.privately:
            outbox.send(connection, message)
        if room.watchers.deadline is not None:
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
            self._seat_taken(room, player, now, outbox)
        elif logged is SeatEvent.AWAY:
            seat = change.seat
            assert type(seat) is Away
            self._append(room, SeatAway(player=player, since=seat.since), now, outbox)
            # The others know it left: an offer it made lapses.
            self._apply(room, Action.LEAVE, MatchRequest(player=player, now=now), outbox)
        elif logged is SeatEvent.BACK:
            self._append(room, SeatBack(player=player, process=self._process), now, outbox)

    def _append(self, room: _Room, event: GameEvent, now: float, outbox: Outbox) -> None:
        logged = self._store.append(room.id, room.version, event, now)
        if type(logged) is not Logged:
            # One process owns its games in memory: nobody else appends.
            assert type(logged) is Conflict
            raise LocalProtocolError(f"game {room.id}: log at {logged.version}, not {room.version}")
        room.version = logged.version
        if type(event) in _MOVES:
            self._statistics.moves += 1
        outbox.publish(room.id, logged)


def _held_by(seat: SeatState, process: str) -> bool:
    """Whether ``seat``'s holder is connected to ``process`` (another one than this)."""
    return type(seat) is Elsewhere and seat.process == process


def _swap_seats(room: _Room) -> None:
    """A rematch: the colours swap, and so does whose page shows the invite links."""
    seats = room.seats
    seats[Player.RED], seats[Player.YELLOW] = seats[Player.YELLOW], seats[Player.RED]
    room.creator = _OPPONENT[room.creator]


def _init_digest(message: Init) -> bytes | None:
    """The digest of the secret an ``init`` presents (None: it creates a game)."""
    secret = message.token or message.join or message.watch
    return None if secret is None else _digest(secret)


def _digest(secret: str) -> bytes:
    # Secrets are stored and found by digest, not as given: a dict lookup compares the given
    # string with stored ones, and how long that takes must not tell how much of a key was
    # right (a digest's prefix tells nothing). Tokens are then compared in constant time.
    return hashlib.sha256(secret.encode()).digest()
