"""A seat belongs to a person (the holder of its token), not to a socket.

``Vacant`` until somebody takes it; ``Held`` while its holder is connected; ``Away`` when that
connection drops, until the token comes back; ``Elsewhere`` while its holder is connected to
another process serving the same game. Every (seat, input) pair that can happen is in
``_TRANSITIONS``; a pair missing from it is the lobby's mistake (``LocalProtocolError``), and
a refused pair is a ``Refusal`` to send back, never a forgotten branch.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from .errors import LocalProtocolError
from .events import ConnectionId
from .refusals import SEAT_TAKEN, UNKNOWN_TOKEN, Refusal

__all__ = [
    "Away",
    "Computer",
    "Elsewhere",
    "Held",
    "Seat",
    "SeatChange",
    "SeatEvent",
    "SeatInput",
    "SeatRequest",
    "Vacant",
    "present",
    "transition",
]


@dataclass(frozen=True, slots=True)
class Vacant:
    """Nobody holds the seat yet."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Held:
    """``connection`` acts for the seat; ``token`` is the digest of its token."""

    connection: ConnectionId
    token: bytes


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """The holder is connected to another process (``process``, as the game's log says):
    its token, presented here, brings the seat here."""

    process: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Away:
    """The holder's connection dropped at ``since``; the token may bring them back.

    Not ``announced`` yet when the page went away on purpose (a reload, a navigation): it is
    most likely back within a moment, and the others need not see it leave and return.
    ``token`` is empty when the seat was left on another process: the shared store, which
    found the game by the token's digest, vouches for it then.
    """

    token: bytes
    since: float
    announced: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Computer:
    """The computer plays this seat, at ``level`` (a ``solver.bots.Level`` value): nobody
    can take it, and it never goes away."""

    level: str


Seat: TypeAlias = Vacant | Held | Away | Computer | Elsewhere


def present(seat: Seat) -> bool:
    """Held, or away so briefly that nobody was told: as far as the game's log says, here."""
    kind = type(seat)
    if kind is Away:
        assert type(seat) is Away
        return not seat.announced
    return kind is Held or kind is Computer or kind is Elsewhere


class SeatInput(enum.Enum):
    TAKE = "take"  # a newcomer asks for the seat (create, join)
    DROP = "drop"  # the holder's connection ended
    RESUME = "resume"  # somebody presents the seat's token
    ANNOUNCE = "announce"  # a quiet absence lasted: the others are told now
    VANISH = "vanish"  # the process that held the seat is gone (it died, or was cut off)

    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatRequest:
    """Who asks, when, with which token digest (a new one for TAKE)."""

    connection: ConnectionId | None = None
    token: bytes = b""
    now: float = 0.0
    #: For DROP: the page went away on purpose (close code 1001); announce it later.
    quietly: bool = False


class SeatEvent(enum.Enum):
    """What the game's log records of a change (``log.SeatTaken``, ...), if anything."""

    TAKEN = "taken"
    AWAY = "away"
    BACK = "back"

    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatChange:
    """The seat's next state, what to log, and a connection that no longer holds it."""

    seat: Seat
    logged: SeatEvent | None = None
    displaced: ConnectionId | None = None


def _take(seat: Seat, request: SeatRequest) -> SeatChange:
    assert request.connection is not None
    return SeatChange(
        seat=Held(connection=request.connection, token=request.token), logged=SeatEvent.TAKEN
    )


def _refuse_taken(seat: Seat, request: SeatRequest) -> Refusal:
    return SEAT_TAKEN


def _drop(seat: Seat, request: SeatRequest) -> SeatChange:
    assert isinstance(seat, Held)
    away = Away(token=seat.token, since=request.now, announced=not request.quietly)
    return SeatChange(seat=away, logged=None if request.quietly else SeatEvent.AWAY)


def _announce(seat: Seat, request: SeatRequest) -> SeatChange:
    assert isinstance(seat, Away)
    if seat.announced:
        return SeatChange(seat=seat)  # told already: nothing to log
    return SeatChange(seat=Away(token=seat.token, since=seat.since), logged=SeatEvent.AWAY)


def _take_over(seat: Seat, request: SeatRequest) -> SeatChange | Refusal:
    # A second tab, or another device: the newest connection wins, and the older one is
    # told and stops acting, so that two sockets never act for one seat.
    assert isinstance(seat, Held)
    assert request.connection is not None
    if not hmac.compare_digest(seat.token, request.token):
        return UNKNOWN_TOKEN
    return SeatChange(
        seat=Held(connection=request.connection, token=seat.token), displaced=seat.connection
    )


def _come_back(seat: Seat, request: SeatRequest) -> SeatChange | Refusal:
    assert isinstance(seat, Away)
    assert request.connection is not None
    if seat.token and not hmac.compare_digest(seat.token, request.token):
        return UNKNOWN_TOKEN
    # Back before anybody was told it had gone: nothing happened, as far as the log goes.
    logged = SeatEvent.BACK if seat.announced else None
    # An empty token: the seat was left on another process, and the store found it by this one.
    token = seat.token or request.token
    return SeatChange(seat=Held(connection=request.connection, token=token), logged=logged)


def _bring_here(seat: Seat, request: SeatRequest) -> SeatChange:
    # The store found the seat by this token. The log says the seat came back, so that the
    # process that held it lets its connection go (as a second tab's would be).
    assert request.connection is not None
    return SeatChange(
        seat=Held(connection=request.connection, token=request.token), logged=SeatEvent.BACK
    )


def _vanish(seat: Seat, request: SeatRequest) -> SeatChange:
    # Its holder's connection went with its process: away from now, as after a drop (the
    # token, which only the store outside knows, brings it back anywhere).
    return SeatChange(seat=Away(token=b"", since=request.now), logged=SeatEvent.AWAY)


_Handler: TypeAlias = Callable[[Seat, SeatRequest], "SeatChange | Refusal"]

#: Every pair that can happen. Not here, because the lobby never asks for them: dropping a seat
#: nobody holds, resuming a vacant seat or the computer's (they have no token to be found by),
#: and announcing the absence of a seat that is not away.
_TRANSITIONS: dict[tuple[type[Seat], SeatInput], _Handler] = {
    (Vacant, SeatInput.TAKE): _take,
    (Held, SeatInput.TAKE): _refuse_taken,
    (Away, SeatInput.TAKE): _refuse_taken,
    (Computer, SeatInput.TAKE): _refuse_taken,
    (Elsewhere, SeatInput.TAKE): _refuse_taken,
    (Elsewhere, SeatInput.RESUME): _bring_here,
    (Elsewhere, SeatInput.VANISH): _vanish,
    (Held, SeatInput.DROP): _drop,
    (Held, SeatInput.RESUME): _take_over,
    (Away, SeatInput.RESUME): _come_back,
    (Away, SeatInput.ANNOUNCE): _announce,
}


def transition(seat: Seat, seat_input: SeatInput, request: SeatRequest) -> SeatChange | Refusal:
    """What ``seat_input`` does to ``seat``."""
    handler = _TRANSITIONS.get((type(seat), seat_input))
    if handler is None:
        raise LocalProtocolError(
            f"no seat transition for {type(seat).__name__} on {seat_input.value}"
        )
    return handler(seat, request)
