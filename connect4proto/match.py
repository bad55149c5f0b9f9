"""A match between two players: what each of them may do, in which phase, and what it logs.

The rules of the board are ``game``'s; who is connected is ``seats``'. This module holds the
rest of a match: moves against the clock, resigning, draw offers, aborting, claims, a flag
when time runs out, and rematches. Every (phase, action) pair is in one of two tables, in the
style of h2's stream states: ``_TRANSITIONS`` maps it to ``(handler, next phase)``, and
``_REFUSALS`` to the refusal (a stable code and a text) a player gets for asking. A handler
may still refuse (a draw offer made again too soon) or choose another next phase than the
table's (a move that wins ends the game; an offer answered by offering back is accepted).

Handlers return the events to append to the game's log; the lobby appends and publishes them.
A match that did not decide them (another process did, or it is rebuilt from the log) gets the
same state by folding the events (``Match.fold``, one entry per kind in ``_FOLDS``): live play
and the fold are checked against each other on every kind of game by the tests.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import msgspec

from .clock import Clock, Clocks, TimeControl
from .errors import LocalProtocolError
from .game import Ending, Game, IllegalMove, Move, Player
from .log import (
    GameEvent,
    GameOver,
    MovePlayed,
    OfferDeclined,
    OfferKind,
    OfferMade,
    OfferWithdrawn,
    RematchStarted,
    SeatAway,
    SeatBack,
    SeatTaken,
    TimedMove,
)
from .refusals import (
    DRAW_PENDING,
    GAME_OVER,
    NO_DRAW_OFFER,
    NO_OPPONENT,
    NO_REMATCH_OFFER,
    NOT_OVER,
    OWN_OFFER,
    REMATCH_PENDING,
    TOO_LATE_TO_ABORT,
    Refusal,
    offer_too_soon,
)

__all__ = ["PLAYER_ACTIONS", "Action", "Match", "MatchRequest", "Phase", "Step", "refusal_for"]


class Phase(enum.Enum):
    #: Red is seated; the yellow seat has never been taken (red may already make its move).
    WAITING = "waiting"
    PLAYING = "playing"
    #: A draw offer waits for the other player's answer (the game goes on meanwhile).
    DRAW_OFFERED = "draw_offered"
    OVER = "over"
    #: After the game, a rematch offer waits for the other player's answer.
    REMATCH_OFFERED = "rematch_offered"

    # Enum.__hash__ is a Python function; members are singletons, so identity is equivalent
    # (and cheaper: (phase, action) pairs key the table on every move).
    __hash__ = object.__hash__


class Action(enum.Enum):
    # A player's, from the wire:
    MOVE = "play"
    RESIGN = "resign"
    OFFER_DRAW = "offer_draw"
    ACCEPT_DRAW = "accept_draw"
    DECLINE_DRAW = "decline_draw"
    ABORT = "abort"
    CLAIM = "claim"
    OFFER_REMATCH = "offer_rematch"
    ACCEPT_REMATCH = "accept_rematch"
    DECLINE_REMATCH = "decline_rematch"
    # The lobby's: yellow took the seat; the running clock reached zero; a player's absence
    # was told to the others.
    JOIN = "join"
    FLAG = "flag"
    LEAVE = "leave"

    __hash__ = object.__hash__  # as for ``Phase``


#: What players ask for: every (phase, action) pair of these is allowed or refused.
PLAYER_ACTIONS = frozenset(Action) - {Action.JOIN, Action.FLAG, Action.LEAVE}


# Requests and steps are msgspec Structs rather than frozen dataclasses for the reason given
# in ``game.Move``: one of each is made on every move, in a fifth of a dataclass's time.


class MatchRequest(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Who acts, when, and what the lobby knows that the match does not."""

    player: Player
    now: float
    column: int = -1  # for MOVE
    #: What the seats say against a claim (the opponent may still come back) or a rematch
    #: (the other player is reconnecting; a client that cannot follow one): None, nothing.
    seat_refusal: Refusal | None = None


class Step(msgspec.Struct, frozen=True, gc=False):
    """What a handler did: the events to log, and the next phase if not the table's."""

    events: tuple[GameEvent, ...] = ()
    phase: Phase | None = None


_OPPONENT = {Player.RED: Player.YELLOW, Player.YELLOW: Player.RED}
_OVER = (Phase.OVER, Phase.REMATCH_OFFERED)


@dataclass(slots=True, kw_only=True)
class Match:
    """One match: the current game (a rematch starts the next one), its clocks, its offers.

    ``offer_interval``: seconds before a player may make the same kind of offer again (a
    declined draw offer cannot be repeated at every move).
    """

    control: TimeControl | None = None
    offer_interval: float = 30.0
    phase: Phase = Phase.WAITING
    game: Game = field(default_factory=Game)
    #: The games played in this match so far, this one included.
    round: int = 1
    clock: Clock | None = None
    #: Whether the yellow seat has ever been taken.
    joined: bool = False
    #: Who made the offer that waits for an answer (DRAW_OFFERED, REMATCH_OFFERED).
    offer_by: Player | None = None
    #: When each player last made each kind of offer.
    offered_at: dict[tuple[Player, OfferKind], float] = field(default_factory=dict)
    #: Who ended the current game off the board (resigned, agreed, claimed, aborted, flagged).
    ended_by: Player | None = None

    def __post_init__(self) -> None:
        if self.control is not None:
            self.clock = Clock(self.control)

    def apply(self, action: Action, request: MatchRequest) -> tuple[GameEvent, ...] | Refusal:
        """Do ``action``; the events to log, or why it is refused (then nothing changed)."""
        entry = _TRANSITIONS.get((self.phase, action))
        if entry is None:
            refusal = _REFUSALS.get((self.phase, action))
            if refusal is None:
                raise LocalProtocolError(
                    f"no match transition for {action.value} in {self.phase.value}"
                )
            return refusal
        handler, next_phase = entry
        step = handler(self, request)
        if isinstance(step, Refusal):
            return step
        events = step.events
        if events and type(events[-1]) is GameOver:
            self.phase = Phase.OVER  # however it ended
            self.offer_by = None
        else:
            self.phase = next_phase if step.phase is None else step.phase
        return events

    def copy(self) -> Match:
        """An independent copy, to go back to if what was decided is not logged."""
        other = replace(self, game=self.game.copy(), offered_at=dict(self.offered_at))
        other.clock = None if self.clock is None else self.clock.copy()
        return other

    def fold(self, event: GameEvent, at: float) -> None:
        """Take in ``event``, logged at ``at`` by whoever decided it: the state is then what
        deciding it here would have left (the clocks to the millisecond the event shows)."""
        _FOLDS[type(event)](self, event, at)

    def flag_due(self, now: float) -> bool:
        """Whether the running clock has run out at ``now`` (then apply ``FLAG``)."""
        flag_at = None if self.clock is None else self.clock.flag_at
        return flag_at is not None and now >= flag_at

    @property
    def deadline(self) -> float | None:
        """When the running clock runs out, if one runs."""
        return None if self.clock is None else self.clock.flag_at

    def clocks(self, now: float) -> Clocks | None:
        """The clocks as they stand at ``now`` (None: an untimed game)."""
        return None if self.clock is None else self.clock.clocks(now)

    @property
    def offer(self) -> tuple[OfferKind, Player] | None:
        """The offer waiting for an answer, and who made it."""
        by = self.offer_by
        if by is None:
            return None
        return (OfferKind.DRAW if self.phase is Phase.DRAW_OFFERED else OfferKind.REMATCH), by

    # -- the parts the handlers share --------------------------------------------------

    def _end(
        self, winner: Player | None, ending: Ending, now: float, by: Player | None = None
    ) -> GameOver:
        game = self.game
        if by is not None:  # decided off the board (the board has set its own ending)
            game.end(winner, ending)
            self.ended_by = by
        clock = self.clock
        if clock is not None:
            clock.stop(now)
        return GameOver(
            winner=winner,
            ending=ending,
            cells=game.winning_cells,
            record=game.record,
            by=by,
            clock=self.clocks(now),
        )

    def _offer(self, kind: OfferKind, request: MatchRequest) -> Step | Refusal:
        player, now = request.player, request.now
        last = self.offered_at.get((player, kind))
        if last is not None and now < last + self.offer_interval:
            return offer_too_soon(kind.value, math.ceil(last + self.offer_interval - now))
        self.offered_at[player, kind] = now
        self.offer_by = player
        return Step((OfferMade(offer=kind, player=player),))


_Handler: TypeAlias = Callable[[Match, MatchRequest], "Step | Refusal"]


def _move(match: Match, request: MatchRequest) -> Step | Refusal:
    player, now = request.player, request.now
    game = match.game
    result = game.play(player, request.column)
    if type(result) is not Move:
        assert isinstance(result, IllegalMove)
        return Refusal(code=result.code, message=result.reason)
    clock = match.clock
    if clock is None and match.phase is Phase.PLAYING and game.ending is None:
        return Step((result,))  # the common move: nothing else to say
    events: list[GameEvent] = []
    phase = None
    if match.phase is Phase.DRAW_OFFERED and player is not match.offer_by:
        # Playing on is the answer to a draw offer: no.
        events.append(OfferDeclined(offer=OfferKind.DRAW, player=player))
        match.offer_by = None
        phase = Phase.PLAYING
    if clock is None:
        events.append(result)
    else:
        clock.moved(player, now)
        clocks = clock.clocks(now)
        events.append(TimedMove(player=player, column=result.column, row=result.row, clock=clocks))
    ending = game.ending
    if ending is not None:
        events.append(match._end(game.winner, ending, now))
    return Step(tuple(events), phase)


def _resign(match: Match, request: MatchRequest) -> Step:
    player = request.player
    return Step((match._end(_OPPONENT[player], Ending.RESIGNATION, request.now, by=player),))


def _offer_draw(match: Match, request: MatchRequest) -> Step | Refusal:
    return match._offer(OfferKind.DRAW, request)


def _offer_draw_back(match: Match, request: MatchRequest) -> Step | Refusal:
    # Offering a draw to a player who offers one is agreeing to it.
    if request.player is match.offer_by:
        return DRAW_PENDING
    return _accept_draw(match, request)


def _accept_draw(match: Match, request: MatchRequest) -> Step | Refusal:
    player = request.player
    if player is match.offer_by:
        return OWN_OFFER
    return Step((match._end(None, Ending.AGREED, request.now, by=player),))


def _decline(match: Match, request: MatchRequest) -> Step | Refusal:
    """The other player's offer, of a draw or a rematch, declined."""
    player, offer = request.player, match.offer
    assert offer is not None  # only an offered phase has this transition
    if player is offer[1]:
        return OWN_OFFER
    match.offer_by = None
    return Step((OfferDeclined(offer=offer[0], player=player),))


def _abort(match: Match, request: MatchRequest) -> Step | Refusal:
    if len(match.game.moves) >= 2:
        return TOO_LATE_TO_ABORT
    return Step((match._end(None, Ending.ABORTED, request.now, by=request.player),))


def _claim(match: Match, request: MatchRequest) -> Step | Refusal:
    if request.seat_refusal is not None:
        return request.seat_refusal
    player = request.player
    return Step((match._end(player, Ending.CLAIM, request.now, by=player),))


def _flag(match: Match, request: MatchRequest) -> Step:
    clock = match.clock
    assert clock is not None
    loser = clock.running
    assert loser is not None
    return Step((match._end(_OPPONENT[loser], Ending.TIME, request.now, by=loser),))


def _join(match: Match, request: MatchRequest) -> Step:
    match.joined = True
    clock = match.clock
    if clock is not None and not match.game.is_over:
        clock.start(match.game.turn, request.now)  # both are here: the game is on
    return Step()


def _offer_rematch(match: Match, request: MatchRequest) -> Step | Refusal:
    if not match.joined:
        return NO_OPPONENT
    if request.seat_refusal is not None:
        return request.seat_refusal
    return match._offer(OfferKind.REMATCH, request)


def _offer_rematch_back(match: Match, request: MatchRequest) -> Step | Refusal:
    if request.player is match.offer_by:
        return REMATCH_PENDING
    return _accept_rematch(match, request)


def _accept_rematch(match: Match, request: MatchRequest) -> Step | Refusal:
    if request.player is match.offer_by:
        return OWN_OFFER
    if request.seat_refusal is not None:
        return request.seat_refusal
    match.round += 1
    match.game = Game()
    match.offer_by = None
    match.ended_by = None
    match.offered_at.clear()
    clock = None
    if match.control is not None:
        match.clock = Clock(match.control)
        match.clock.start(Player.RED, request.now)  # both are here: red moves first
        clock = match.clock.clocks(request.now)
    return Step((RematchStarted(round=match.round, clock=clock),))


def _maker_left(match: Match, request: MatchRequest) -> Step:
    player = request.player
    if player is not match.offer_by:
        return Step()  # the other player's absence withdraws nothing
    match.offer_by = None
    return Step((OfferWithdrawn(offer=OfferKind.REMATCH, player=player),), Phase.OVER)


def _nothing(match: Match, request: MatchRequest) -> Step:
    return Step()


_W, _P, _D = Phase.WAITING, Phase.PLAYING, Phase.DRAW_OFFERED
_O, _R = Phase.OVER, Phase.REMATCH_OFFERED
_A = Action

_TRANSITIONS: dict[tuple[Phase, Action], tuple[_Handler, Phase]] = {
    # Red may make the first move before anyone has joined, as in the tutorial.
    (_W, _A.MOVE): (_move, _W),
    (_W, _A.ABORT): (_abort, _O),
    (_W, _A.JOIN): (_join, _P),
    (_W, _A.LEAVE): (_nothing, _W),
    (_P, _A.MOVE): (_move, _P),
    (_P, _A.RESIGN): (_resign, _O),
    (_P, _A.OFFER_DRAW): (_offer_draw, _D),
    (_P, _A.ABORT): (_abort, _O),
    (_P, _A.CLAIM): (_claim, _O),
    (_P, _A.FLAG): (_flag, _O),
    (_P, _A.LEAVE): (_nothing, _P),
    # A draw offer stands while its maker plays on; the other player's move declines it.
    (_D, _A.MOVE): (_move, _D),
    (_D, _A.RESIGN): (_resign, _O),
    (_D, _A.OFFER_DRAW): (_offer_draw_back, _O),
    (_D, _A.ACCEPT_DRAW): (_accept_draw, _O),
    (_D, _A.DECLINE_DRAW): (_decline, _P),
    (_D, _A.ABORT): (_abort, _O),
    (_D, _A.CLAIM): (_claim, _O),
    (_D, _A.FLAG): (_flag, _O),
    (_D, _A.LEAVE): (_nothing, _D),
    # The rules answer a move after the game ("The game is over.", or a bad column).
    (_O, _A.MOVE): (_move, _O),
    (_O, _A.OFFER_REMATCH): (_offer_rematch, _R),
    # A late joiner of a game red aborted: seated, nothing else changes.
    (_O, _A.JOIN): (_join, _O),
    (_O, _A.LEAVE): (_nothing, _O),
    (_R, _A.MOVE): (_move, _R),
    (_R, _A.OFFER_REMATCH): (_offer_rematch_back, _P),
    (_R, _A.ACCEPT_REMATCH): (_accept_rematch, _P),
    (_R, _A.DECLINE_REMATCH): (_decline, _O),
    # A rematch offer lapses when its maker leaves (then the phase is over again).
    (_R, _A.LEAVE): (_maker_left, _R),
}


# -- folding what was decided elsewhere ---------------------------------------------------


def _fold_seat_taken(match: Match, event: SeatTaken, at: float) -> None:
    if event.player is Player.YELLOW:  # as ``_join``
        match.joined = True
        if match.phase is Phase.WAITING:
            match.phase = Phase.PLAYING
        if event.clock is not None and match.clock is not None:
            match.clock.show(event.clock, at)


def _fold_move(match: Match, event: MovePlayed | TimedMove, at: float) -> None:
    played = match.game.play(event.player, event.column)
    if played != MovePlayed(player=event.player, column=event.column, row=event.row):
        raise LocalProtocolError(f"the log's move {event!r} is not the board's: {played!r}")
    if type(event) is TimedMove and match.clock is not None:
        match.clock.show(event.clock, at)


def _fold_game_over(match: Match, event: GameOver, at: float) -> None:
    game = match.game
    if event.by is not None:  # decided off the board (the board has ended it itself)
        game.end(event.winner, event.ending)
        match.ended_by = event.by
    if event.clock is not None and match.clock is not None:
        match.clock.show(event.clock, at)
    match.phase = Phase.OVER
    match.offer_by = None


def _fold_offer_made(match: Match, event: OfferMade, at: float) -> None:
    match.offered_at[event.player, event.offer] = at
    match.offer_by = event.player
    match.phase = Phase.DRAW_OFFERED if event.offer is OfferKind.DRAW else Phase.REMATCH_OFFERED


def _fold_offer_ended(match: Match, event: OfferDeclined | OfferWithdrawn, at: float) -> None:
    match.offer_by = None
    match.phase = Phase.PLAYING if event.offer is OfferKind.DRAW else Phase.OVER


def _fold_rematch(match: Match, event: RematchStarted, at: float) -> None:
    match.round = event.round
    match.game = Game()
    match.offer_by = None
    match.ended_by = None
    match.offered_at.clear()
    match.phase = Phase.PLAYING
    if match.control is not None:
        match.clock = Clock(match.control)
        if event.clock is not None:
            match.clock.show(event.clock, at)


def _fold_seat_only(match: Match, event: SeatAway | SeatBack, at: float) -> None:
    """Seats are the lobby's: the match changes by what an absence made it log (a lapsed
    offer is an event of its own)."""


_FOLDS: dict[type[GameEvent], Callable[[Match, Any, float], None]] = {
    SeatTaken: _fold_seat_taken,
    MovePlayed: _fold_move,
    TimedMove: _fold_move,
    GameOver: _fold_game_over,
    OfferMade: _fold_offer_made,
    OfferDeclined: _fold_offer_ended,
    OfferWithdrawn: _fold_offer_ended,
    RematchStarted: _fold_rematch,
    SeatAway: _fold_seat_only,
    SeatBack: _fold_seat_only,
}


def _refusal(phase: Phase, action: Action) -> Refusal:
    """Why a player may not do ``action`` in ``phase``."""
    rematch = action in (Action.OFFER_REMATCH, Action.ACCEPT_REMATCH, Action.DECLINE_REMATCH)
    if phase in _OVER:
        return NO_REMATCH_OFFER if rematch else GAME_OVER
    if rematch:
        return NOT_OVER
    if action in (Action.ACCEPT_DRAW, Action.DECLINE_DRAW):
        return NO_DRAW_OFFER
    assert phase is Phase.WAITING
    return NO_OPPONENT  # resign, offer a draw, claim: there is nobody to do it against


#: Every pair a player may ask for that is not a transition.
_REFUSALS: dict[tuple[Phase, Action], Refusal] = {
    (phase, action): _refusal(phase, action)
    for phase in Phase
    for action in PLAYER_ACTIONS
    if (phase, action) not in _TRANSITIONS
}


def refusal_for(phase: Phase, action: Action) -> Refusal | None:
    """The refusal of the table for ``(phase, action)``: None if it is a transition."""
    return _REFUSALS.get((phase, action))
