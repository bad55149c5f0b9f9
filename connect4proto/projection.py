"""What a recipient sees of a game: the one place where the log becomes wire messages.

Live broadcast, replay to a late comer, resume after a drop and snapshots all go through
here, so they cannot drift apart. Each connection speaks one ``Profile``: the websockets
tutorial's protocol (byte for byte what this server always sent), or the versioned protocol,
where every event carries its ``v``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from .game import Game, Player
from .log import GameOver, Logged, MovePlayed, SeatAway, SeatBack, SeatTaken
from .messages import (
    Away,
    Draw,
    Joined,
    Left,
    MoveView,
    Played,
    ResultView,
    SeatView,
    ServerMessage,
    Sync,
    Win,
)
from .seats import Away as SeatAwayState
from .seats import Seat, present

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
    if type(event) is GameOver:
        reason = event.ending.value if versioned else None
        if event.winner is None:
            return Draw(reason=reason, v=v)
        return Win(player=event.winner, cells=event.cells, reason=reason, v=v)
    if type(event) is SeatAway:
        if versioned:
            return Away(
                player=event.player, grace=grace_left(event.since, grace, now), v=logged.version
            )
        return Left(player=event.player)
    if type(event) is SeatTaken and not versioned and event.player is Player.RED:
        # The tutorial's protocol never says that red joined: ``init`` tells the creator,
        # and a late comer hears who is here in its replay (``snapshot``).
        return None
    assert type(event) is SeatTaken or type(event) is SeatBack
    return Joined(player=event.player, v=v)


def snapshot(
    game: Game,
    seats: Mapping[Player, Seat],
    version: int,
    profile: Profile,
    *,
    now: float,
    grace: float,
) -> list[ServerMessage]:
    """The whole game as one recipient should first see it, as of ``version``.

    Versioned: one ``sync``. The tutorial's protocol: every move as ``play``, the result, then
    who is here (red always, yellow once seated), as this server always replayed a game.
    """
    ending = game.ending
    if profile is Profile.VERSIONED:
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
                else ResultView(winner=game.winner, reason=ending.value, cells=game.winning_cells),
            )
        ]
    messages: list[ServerMessage] = [
        Played(player=m.player, column=m.column, row=m.row) for m in game.moves
    ]
    if ending is not None:
        winner = game.winner
        messages.append(Draw() if winner is None else Win(player=winner, cells=game.winning_cells))
    for player in (Player.RED, Player.YELLOW):
        seat = seats[player]
        if present(seat):
            messages.append(Joined(player=player))
        elif type(seat) is SeatAwayState:
            messages.append(Left(player=player))
    return messages


def _seat_view(seat: Seat, now: float, grace: float) -> SeatView:
    if present(seat):
        return SeatView(state="here")
    if type(seat) is SeatAwayState:
        return SeatView(state="away", grace=grace_left(seat.since, grace, now))
    return SeatView(state="vacant")
