"""Every refusal the game sends back, with a stable code beside the human text.

The text is for people (the tutorial's where it has one); the code is for programs, which must
not parse the text: a client tells "the seat is taken, offer to watch" from "the game is gone,
offer a new one" by the code. Versioned clients get both; a client of the tutorial's protocol
gets the text alone, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import game

__all__ = [
    "ALREADY_IN_GAME",
    "GAME_NOT_FOUND",
    "GAME_OVER",
    "INIT_FIRST",
    "JOIN_OR_WATCH",
    "NO_OPPONENT",
    "SEAT_TAKEN",
    "SPECTATORS_CANNOT_CLAIM",
    "SPECTATORS_CANNOT_PLAY",
    "TOKEN_ALONE",
    "UNKNOWN_TOKEN",
    "Refusal",
    "invalid_message",
    "opponent_connected",
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
#: The rules' own refusal, for a claim as for a move.
GAME_OVER = Refusal(code=game.GAME_OVER.code, message=game.GAME_OVER.reason)
NO_OPPONENT = Refusal(code="no_opponent", message="Nobody has joined this game yet.")


def opponent_connected(opponent: str) -> Refusal:
    return Refusal(code="opponent_connected", message=f"{opponent} is connected: play on.")


def too_early(opponent: str, seconds: int) -> Refusal:
    return Refusal(
        code="too_early",
        message=f"{opponent} may still come back: you can claim the win in {seconds} s.",
    )


def invalid_message(reason: str) -> Refusal:
    return Refusal(code="invalid_message", message=reason)


def too_many_messages(limit: int) -> Refusal:
    return Refusal(code="rate_limited", message=f"Too many messages: at most {limit} per second.")
