"""What a recipient sees of a game: the one place where the log becomes wire messages.

Live broadcast, replay to a late comer, resume after a drop and snapshots all go through
here, so they cannot drift apart. Each connection speaks one ``Profile``: the websockets
tutorial's protocol (byte for byte what this server always sent), or the versioned protocol,
where every event carries its ``v``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from .game import Ending, Player
from .log import (
    GameOver,
    Logged,
    MovePlayed,
    OfferDeclined,
    OfferMade,
    OfferWithdrawn,
    RematchStarted,
    SeatAway,
    SeatBack,
    SeatTaken,
    TimedMove,
)
from .match import Match
from .messages import (
    Aborted,
    Away,
    Declined,
    Draw,
    Error,
    Joined,
    Left,
    MoveView,
    Offered,
    OfferView,
    Played,
    Rematch,
    ResultView,
    SeatView,
    ServerMessage,
    Sync,
    Win,
    Withdrawn,
)
from .seats import Away as SeatAwayState
from .seats import Computer, Seat, present

__all__ = ["Profile", "project", "snapshot"]


class Profile(enum.Enum):
    """Which protocol a connection speaks, chosen by its ``init`` (see PROTOCOL.md)."""

    #: The websockets tutorial's messages and this server's first extensions; no versions.
    TUTORIAL = "tutorial"
    #: Every event with its ``v``; seat tokens; resume; ``away``; ``sync``; error codes.
    VERSIONED = "versioned"

    __hash__ = object.__hash__


def grace_left(since: float, grace: float, now: float) -> float:
    """Seconds until a seat away since ``since`` may be claimed (0 once it may)."""
    return round(max(0.0, since + grace - now), 3)


def project(logged: Logged, profile: Profile, now: float, grace: float) -> ServerMessage | None:
    """The message ``profile`` gets for one logged event (None: nothing for it), sent at
    ``now`` (an ``away`` says how much of the ``grace`` is left)."""
    event = logged.event
    versioned = profile is Profile.VERSIONED
    v = logged.version if versioned else None
    if type(event) is MovePlayed:
        return Played(player=event.player, column=event.column, row=event.row, v=v)
    if type(event) is TimedMove:
        clock = event.clock if versioned else None
        return Played(player=event.player, column=event.column, row=event.row, clock=clock, v=v)
    if type(event) is GameOver:
        return _result(event, versioned, v)
    if type(event) is SeatAway:
        if versioned:
            return Away(
                player=event.player, grace=grace_left(event.since, grace, now), v=logged.version
            )
        return Left(player=event.player)
    if type(event) is SeatTaken:
        if not versioned and event.player is Player.RED:
            # The tutorial's protocol never says that red joined: ``init`` tells the creator,
            # and a late comer hears who is here in its replay (``snapshot``).
            return None
        if not versioned:
            return Joined(player=event.player)
        return Joined(player=event.player, clock=event.clock, bot=event.bot, v=v)
    if type(event) is SeatBack:
        return Joined(player=event.player, v=v)
    # What the tutorial's protocol has no message for: its clients never see it.
    if not versioned:
        return None
    version = logged.version
    if type(event) is OfferMade:
        return Offered(offer=event.offer, player=event.player, v=version)
    if type(event) is OfferDeclined:
        return Declined(offer=event.offer, player=event.player, v=version)
    if type(event) is OfferWithdrawn:
        return Withdrawn(offer=event.offer, player=event.player, v=version)
    assert type(event) is RematchStarted
    return Rematch(round=event.round, clock=event.clock, v=version)


def _result(event: GameOver, versioned: bool, v: int | None) -> ServerMessage:
    winner, ending = event.winner, event.ending
    if not versioned:
        if winner is not None:
            return Win(player=winner, cells=event.cells)
        if ending is Ending.ABORTED:
            # The tutorial's protocol has no message for it; its pages show errors.
            by = event.by
            assert by is not None
            return Error(message=f"{by.value.capitalize()} aborted the game.")
        return Draw()
    reason, record, clock, by = ending.value, event.record, event.clock, event.by
    if winner is not None:
        cells = event.cells
        return Win(
            player=winner, cells=cells, reason=reason, record=record, by=by, clock=clock, v=v
        )
    if ending is Ending.ABORTED:
        assert by is not None
        return Aborted(player=by, record=record, clock=clock, v=v)
    return Draw(reason=reason, record=record, by=by, clock=clock, v=v)


def snapshot(
    match: Match,
    seats: Mapping[Player, Seat],
    version: int,
    profile: Profile,
    *,
    now: float,
    grace: float,
) -> list[ServerMessage]:
    """The current game as one recipient should first see it, as of ``version``.

    Versioned: one ``sync``. The tutorial's protocol: every move as ``play``, the result, then
    who is here (red always, yellow once seated), as this server always replayed a game.
    """
    game = match.game
    ending = game.ending
    if profile is Profile.VERSIONED:
        offer = match.offer
        return [
            Sync(
                v=version,
                moves=tuple(
                    MoveView(player=m.player, column=m.column, row=m.row) for m in game.moves
                ),
                red=_seat_view(seats[Player.RED], now, grace),
                yellow=_seat_view(seats[Player.YELLOW], now, grace),
                result=None
                if ending is None
                else ResultView(
                    winner=game.winner,
                    reason=ending.value,
                    cells=game.winning_cells,
                    record=game.record,
                    by=match.ended_by,
                ),
                round=match.round,
                control=match.control,
                clock=match.clocks(now),
                offer=None if offer is None else OfferView(offer=offer[0], player=offer[1]),
            )
        ]
    messages: list[ServerMessage] = [
        Played(player=m.player, column=m.column, row=m.row) for m in game.moves
    ]
    if ending is not None:
        result = GameOver(
            winner=game.winner, ending=ending, cells=game.winning_cells, by=match.ended_by
        )
        messages.append(_result(result, False, None))
    for player in (Player.RED, Player.YELLOW):
        seat = seats[player]
        if present(seat):
            messages.append(Joined(player=player))
        elif type(seat) is SeatAwayState:
            messages.append(Left(player=player))
    return messages


def _seat_view(seat: Seat, now: float, grace: float) -> SeatView:
    if type(seat) is Computer:
        return SeatView(state="here", bot=seat.level)
    if present(seat):
        return SeatView(state="here")
    if type(seat) is SeatAwayState:
        return SeatView(state="away", grace=grace_left(seat.since, grace, now))
    return SeatView(state="vacant")
