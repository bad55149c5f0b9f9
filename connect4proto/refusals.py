"""Every refusal the game sends back, with a stable code beside the human text.

The text is for people (the tutorial's where it has one); the code is for programs, which must
not parse the text: a client tells "the seat is taken, offer to watch" from "the game is gone,
offer a new one" by the code. Versioned clients get both; a client of the tutorial's protocol
gets the text alone, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import game
from .solver.bots import Level

__all__ = [
    "ALREADY_IN_GAME",
    "BOT_ON_CREATE",
    "CLOCK_ON_CREATE",
    "COLOR_NEEDS_BOT",
    "DRAW_PENDING",
    "GAME_NOT_FOUND",
    "GAME_OVER",
    "HOT_SEAT",
    "INIT_FIRST",
    "JOIN_OR_WATCH",
    "NOT_OVER",
    "NO_DRAW_OFFER",
    "NO_OPPONENT",
    "NO_REMATCH_OFFER",
    "OWN_OFFER",
    "REMATCH_PENDING",
    "REMATCH_UNSUPPORTED",
    "SEAT_TAKEN",
    "SPECTATORS_CANNOT_ACT",
    "SPECTATORS_CANNOT_CLAIM",
    "SPECTATORS_CANNOT_PLAY",
    "STORE_UNAVAILABLE",
    "TOKEN_ALONE",
    "TOO_LATE_TO_ABORT",
    "UNKNOWN_TOKEN",
    "Refusal",
    "invalid_message",
    "level_unavailable",
    "offer_too_soon",
    "opponent_connected",
    "opponent_reconnecting",
    "too_early",
    "too_many_messages",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """A message that was not acted on: nothing changed."""

    code: str
    message: str


GAME_NOT_FOUND = Refusal(code="game_not_found", message="Game not found.")
SEAT_TAKEN = Refusal(code="seat_taken", message="This game already has two players.")
ALREADY_IN_GAME = Refusal(code="already_in_game", message="You are already in a game.")
INIT_FIRST = Refusal(code="init_first", message="Send an init message first.")
SPECTATORS_CANNOT_PLAY = Refusal(code="spectator", message="Spectators cannot play.")
SPECTATORS_CANNOT_CLAIM = Refusal(code="spectator", message="Spectators cannot claim a game.")
JOIN_OR_WATCH = Refusal(code="bad_init", message="Send either join or watch, not both.")
TOKEN_ALONE = Refusal(code="bad_init", message="Send a seat token alone, without join or watch.")
UNKNOWN_TOKEN = Refusal(
    code="unknown_token",
    message="This game cannot be resumed: it has ended and expired, or the seat token is wrong.",
)
#: Processes that share their games cannot reach the store that holds them: nothing was done
#: (nothing is accepted into one process's memory only), and the server reconnects by itself.
STORE_UNAVAILABLE = Refusal(
    code="reconnecting",
    message="The server is reconnecting to its database: try again in a moment.",
)
#: The rules' own refusal, for a claim as for a move.
GAME_OVER = Refusal(code=game.GAME_OVER.code, message=game.GAME_OVER.reason)
NO_OPPONENT = Refusal(code="no_opponent", message="Nobody has joined this game yet.")
SPECTATORS_CANNOT_ACT = Refusal(
    code="spectator", message="Spectators cannot take part in the game."
)
CLOCK_ON_CREATE = Refusal(
    code="bad_init",
    message=(
        "A time control is chosen when a game is created: send clock without join, watch or token."
    ),
)
BOT_ON_CREATE = Refusal(
    code="bad_init",
    message=(
        "A computer opponent is chosen when a game is created: send bot (and color) without "
        "join, watch or token."
    ),
)
COLOR_NEEDS_BOT = Refusal(
    code="bad_init", message="A color is chosen only against the computer: send bot too."
)


def level_unavailable(level: Level, offered: Iterable[Level]) -> Refusal:
    """The computer's ``level`` is not offered by this server (the perfect one needs a
    compiled search that is not installed everywhere)."""
    others = ", ".join(other.value for other in Level if other in offered) or "none"
    return Refusal(
        code="level_unavailable",
        message=f"This server does not offer the {level.value} level; choose another: {others}.",
    )


NO_DRAW_OFFER = Refusal(code="no_offer", message="There is no draw offer to answer.")
NO_REMATCH_OFFER = Refusal(code="no_offer", message="There is no rematch offer to answer.")
DRAW_PENDING = Refusal(
    code="offer_pending", message="You have offered a draw already: wait for the answer."
)
REMATCH_PENDING = Refusal(
    code="offer_pending", message="You have offered a rematch already: wait for the answer."
)
OWN_OFFER = Refusal(code="own_offer", message="You cannot answer your own offer.")
NOT_OVER = Refusal(code="not_over", message="A rematch can be offered once the game is over.")
TOO_LATE_TO_ABORT = Refusal(
    code="too_late",
    message="Both players have moved: the game can no longer be aborted (you can resign).",
)
HOT_SEAT = Refusal(
    code="hot_seat",
    message="This game is played on one device: only moves are possible.",
)
REMATCH_UNSUPPORTED = Refusal(
    code="unsupported",
    message="A rematch needs both players on a client of the versioned protocol.",
)


def opponent_connected(opponent: str) -> Refusal:
    return Refusal(code="opponent_connected", message=f"{opponent} is connected: play on.")


def opponent_reconnecting(opponent: str) -> Refusal:
    return Refusal(
        code="opponent_away", message=f"{opponent} is reconnecting: try again in a moment."
    )


def offer_too_soon(offer: str, seconds: int) -> Refusal:
    return Refusal(code="offer_too_soon", message=f"You can offer a {offer} again in {seconds} s.")


def too_early(opponent: str, seconds: int) -> Refusal:
    return Refusal(
        code="too_early",
        message=f"{opponent} may still come back: you can claim the win in {seconds} s.",
    )


def invalid_message(reason: str) -> Refusal:
    return Refusal(code="invalid_message", message=reason)


def too_many_messages(limit: int) -> Refusal:
    return Refusal(code="rate_limited", message=f"Too many messages: at most {limit} per second.")
