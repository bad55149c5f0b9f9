"""The JSON messages of the wire protocol, as frozen, typed classes (see PROTOCOL.md).

``msgspec`` decodes a text frame straight into the tagged union of client messages, checking
every field's type on the way, and its error texts say exactly what is wrong and where
(``Expected `int`, got `str` - at `$.column```). It also encodes server messages in one call.

Fields added by the versioned protocol (``v``, ``code``, ``reason``) default to None and are
left out when None (``omit_defaults``): a client of the tutorial's protocol receives exactly
the bytes it always did.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

import msgspec

from .game import Player

__all__ = [
    "Away",
    "Claim",
    "ClientMessage",
    "ClientPing",
    "Draw",
    "Error",
    "GameKeys",
    "Init",
    "InvalidMessage",
    "Joined",
    "Left",
    "MoveView",
    "Play",
    "Played",
    "Pong",
    "ResultView",
    "Seat",
    "SeatView",
    "ServerMessage",
    "Sync",
    "Watching",
    "Win",
    "decode_client_message",
    "encode_server_message",
]


class _Message(msgspec.Struct, frozen=True, tag_field="type", omit_defaults=True):
    pass


# Client -> server

#: A version a client has applied: 0 before the first event.
Version = Annotated[int, msgspec.Meta(ge=0)]


class Init(_Message, frozen=True, tag="init"):
    """Create a game (no key), join it as yellow (``join``), watch it (``watch``), or take a
    seat back (``token``). ``v``, the last version the client applied (0: none), asks for
    the versioned protocol; a ``token`` implies it."""

    join: str | None = None
    watch: str | None = None
    token: str | None = None
    v: Version | None = None


class Play(_Message, frozen=True, tag="play"):
    """Drop a checker in ``column``."""

    column: int


class Claim(_Message, frozen=True, tag="claim"):
    """Claim the win: the opponent stayed away longer than the grace period."""


class ClientPing(_Message, frozen=True, tag="ping"):
    """Is this connection alive? (A page cannot send WebSocket pings.) Answered ``pong``."""


ClientMessage: TypeAlias = Init | Play | Claim | ClientPing


# Server -> client


class GameKeys(_Message, frozen=True, tag="init"):
    """Sent to a game's creator: the secret keys to join and to watch it."""

    join: str
    watch: str


class Seat(_Message, frozen=True, tag="seat"):
    """Sent to whoever takes or takes back a seat: its colour, its token (keep it secret),
    and ``v``, the version the catch-up that follows reaches: later events are live."""

    player: Player
    token: str
    v: int


class Watching(_Message, frozen=True, tag="watching"):
    """Sent to a versioned spectator: the catch-up that follows reaches version ``v``."""

    v: int


class Pong(_Message, frozen=True, tag="pong"):
    """The answer to a client's ``ping``."""


class Played(_Message, frozen=True, tag="play"):
    """A move was played (``row`` 0 is the bottom)."""

    player: Player
    column: int
    row: int
    v: int | None = None


class Win(_Message, frozen=True, tag="win"):
    """``player`` won; ``cells`` are the ``[column, row]`` of the winning line(s)."""

    player: Player
    cells: tuple[tuple[int, int], ...]
    reason: str | None = None
    v: int | None = None


class Draw(_Message, frozen=True, tag="draw"):
    """The game ended without a winner (the board is full)."""

    reason: str | None = None
    v: int | None = None


class Joined(_Message, frozen=True, tag="joined"):
    """``player`` is connected to the game."""

    player: Player
    v: int | None = None


class Left(_Message, frozen=True, tag="left"):
    """``player`` disconnected from the game (the tutorial's protocol; versioned: ``away``)."""

    player: Player


class Away(_Message, frozen=True, tag="away"):
    """``player``'s connection dropped; they may come back for ``grace`` more seconds, after
    which the opponent may claim the win."""

    player: Player
    grace: float
    v: int


class SeatView(msgspec.Struct, frozen=True, omit_defaults=True):
    state: Literal["vacant", "here", "away"]
    grace: float | None = None  # for "away": seconds left before the opponent may claim


class MoveView(msgspec.Struct, frozen=True):
    player: Player
    column: int
    row: int


class ResultView(msgspec.Struct, frozen=True):
    winner: Player | None
    reason: str
    cells: tuple[tuple[int, int], ...]


class Sync(_Message, frozen=True, tag="sync"):
    """The whole game as of version ``v``, for a client whose version cannot be caught up
    event by event (ahead of the log, or older than what it keeps)."""

    v: int
    moves: tuple[MoveView, ...]
    red: SeatView
    yellow: SeatView
    result: ResultView | None = None


class Error(_Message, frozen=True, tag="error"):
    """A refused message; nothing changed. ``code`` is stable, for programs."""

    message: str
    code: str | None = None


ServerMessage: TypeAlias = (
    GameKeys | Seat | Watching | Played | Win | Draw | Joined | Left | Away | Sync | Pong | Error
)


class InvalidMessage(msgspec.Struct, frozen=True):
    """A text frame that is not a valid client message; ``reason`` is meant for the sender."""

    reason: str


_decoder: msgspec.json.Decoder[ClientMessage] = msgspec.json.Decoder(ClientMessage)
_encoder = msgspec.json.Encoder()


def decode_client_message(text: str) -> ClientMessage | InvalidMessage:
    """Decode one text frame; never raises for bad input."""
    try:
        return _decoder.decode(text)
    except msgspec.DecodeError as exc:
        return InvalidMessage(reason=f"Invalid message: {exc}")
    except RecursionError:
        # msgspec refuses to skip unknown fields nested deeper than the interpreter's limit.
        return InvalidMessage(reason="Invalid message: JSON nested too deeply.")


def encode_server_message(message: ServerMessage) -> bytes:
    """The UTF-8 JSON text of ``message``."""
    return _encoder.encode(message)
