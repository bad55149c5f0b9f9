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

from .clock import Clocks, TimeControl
from .game import Player
from .log import OfferKind
from .solver.bots import Level

__all__ = [
    "Abort",
    "Aborted",
    "Accept",
    "Away",
    "Claim",
    "ClientMessage",
    "ClientPing",
    "ClockNow",
    "Decline",
    "Declined",
    "Draw",
    "Error",
    "GameKeys",
    "Init",
    "InvalidMessage",
    "Joined",
    "Left",
    "MoveView",
    "Offer",
    "OfferView",
    "Offered",
    "Play",
    "Played",
    "Pong",
    "Rematch",
    "Resign",
    "ResultView",
    "Seat",
    "SeatView",
    "ServerMessage",
    "Sync",
    "Watchers",
    "Watching",
    "Win",
    "Withdrawn",
    "decode_client_message",
    "encode_server_message",
]


class _Message(msgspec.Struct, frozen=True, tag_field="type", omit_defaults=True):
    pass


# Client -> server

#: A version a client has applied: 0 before the first event.
Version = Annotated[int, msgspec.Meta(ge=0)]


class Init(_Message, frozen=True, tag="init"):
    """Create a game (no key; ``clock``: its time control), join it as yellow (``join``),
    watch it (``watch``), or take a seat back (``token``). ``v``, the last version the client
    applied (0: none), asks for the versioned protocol; a ``token`` or a ``clock`` implies it."""

    join: str | None = None
    watch: str | None = None
    token: str | None = None
    v: Version | None = None
    clock: TimeControl | None = None
    #: Against the computer, at this level; the creator plays ``color`` (red by default).
    bot: Level | None = None
    color: Player | None = None


class Play(_Message, frozen=True, tag="play"):
    """Drop a checker in ``column``."""

    column: int


class Claim(_Message, frozen=True, tag="claim"):
    """Claim the win: the opponent stayed away longer than the grace period."""


class ClientPing(_Message, frozen=True, tag="ping"):
    """Is this connection alive? (A page cannot send WebSocket pings.) Answered ``pong``."""


class Resign(_Message, frozen=True, tag="resign"):
    """Give up the game: the opponent wins."""


class Abort(_Message, frozen=True, tag="abort"):
    """Call the game off before both players have moved: no result."""


class Offer(_Message, frozen=True, tag="offer"):
    """Offer a draw (during the game) or a rematch (after it) to the opponent."""

    offer: OfferKind


class Accept(_Message, frozen=True, tag="accept"):
    """Accept the opponent's offer."""

    offer: OfferKind


class Decline(_Message, frozen=True, tag="decline"):
    """Decline the opponent's offer."""

    offer: OfferKind


ClientMessage: TypeAlias = (
    Init | Play | Claim | ClientPing | Resign | Abort | Offer | Accept | Decline
)


# Server -> client


class GameKeys(_Message, frozen=True, tag="init"):
    """Sent to a game's creator: the secret keys to join and to watch it."""

    join: str
    watch: str


class Seat(_Message, frozen=True, tag="seat"):
    """Sent to whoever takes or takes back a seat: its colour, its token (keep it secret),
    and ``v``, the version the catch-up that follows reaches: later events are live. At a
    rematch, the new colour alone: the token stays."""

    player: Player
    v: int
    token: str | None = None
    control: TimeControl | None = None


class Watching(_Message, frozen=True, tag="watching"):
    """Sent to a versioned spectator: the catch-up that follows reaches version ``v``."""

    v: int
    control: TimeControl | None = None


class Pong(_Message, frozen=True, tag="pong"):
    """The answer to a client's ``ping``."""


class Played(_Message, frozen=True, tag="play"):
    """A move was played (``row`` 0 is the bottom)."""

    player: Player
    column: int
    row: int
    clock: Clocks | None = None
    v: int | None = None


class Win(_Message, frozen=True, tag="win"):
    """``player`` won; ``cells`` are the ``[column, row]`` of the winning line(s); ``record``
    the columns played, as digits 1-7."""

    player: Player
    cells: tuple[tuple[int, int], ...]
    reason: str | None = None
    record: str | None = None
    #: Who ended it off the board: resigned, ran out of time, claimed.
    by: Player | None = None
    clock: Clocks | None = None
    v: int | None = None


class Draw(_Message, frozen=True, tag="draw"):
    """The game ended without a winner (the board is full, or the players agreed)."""

    reason: str | None = None
    record: str | None = None
    #: Who accepted the draw offer.
    by: Player | None = None
    clock: Clocks | None = None
    v: int | None = None


class Aborted(_Message, frozen=True, tag="aborted"):
    """``player`` called the game off before both had moved: no result."""

    player: Player
    record: str
    clock: Clocks | None = None
    v: int | None = None


class Joined(_Message, frozen=True, tag="joined"):
    """``player`` is connected to the game (yellow's arrival starts a timed game's clocks)."""

    player: Player
    clock: Clocks | None = None
    bot: str | None = None  # the computer took this seat, at this level
    v: int | None = None


class Offered(_Message, frozen=True, tag="offer"):
    """``player`` offers a draw or a rematch: the other player may accept or decline."""

    offer: OfferKind
    player: Player
    v: int


class Declined(_Message, frozen=True, tag="declined"):
    """``player`` declined the other's offer (playing on declines a draw offer)."""

    offer: OfferKind
    player: Player
    v: int


class Withdrawn(_Message, frozen=True, tag="withdrawn"):
    """``player``'s offer lapsed: they left before it was answered."""

    offer: OfferKind
    player: Player
    v: int


class Rematch(_Message, frozen=True, tag="rematch"):
    """Game number ``round`` of the match begins: an empty board, the colours swapped (each
    player then gets a ``seat`` with a new colour and token), the clocks reset."""

    round: int
    clock: Clocks | None = None
    v: int | None = None


class Watchers(_Message, frozen=True, tag="watchers"):
    """How many spectators watch the game (sent as it changes, at most about once a second)."""

    count: int


class ClockNow(_Message, frozen=True, tag="clock"):
    """The clocks as they stand, for a newcomer (events carry them as of the event)."""

    clock: Clocks


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
    bot: str | None = None  # the computer's seat: its level


class MoveView(msgspec.Struct, frozen=True):
    player: Player
    column: int
    row: int


class ResultView(msgspec.Struct, frozen=True, omit_defaults=True):
    winner: Player | None
    reason: str
    cells: tuple[tuple[int, int], ...]
    record: str = ""
    by: Player | None = None


class OfferView(msgspec.Struct, frozen=True):
    offer: OfferKind
    player: Player


class Sync(_Message, frozen=True, tag="sync"):
    """The whole game as of version ``v``, for a client whose version cannot be caught up
    event by event (ahead of the log, or older than what it keeps)."""

    v: int
    moves: tuple[MoveView, ...]
    red: SeatView
    yellow: SeatView
    result: ResultView | None = None
    round: int = 1
    control: TimeControl | None = None
    clock: Clocks | None = None
    offer: OfferView | None = None


class Error(_Message, frozen=True, tag="error"):
    """A refused message; nothing changed. ``code`` is stable, for programs."""

    message: str
    code: str | None = None


ServerMessage: TypeAlias = (
    GameKeys
    | Seat
    | Watching
    | Played
    | Win
    | Draw
    | Aborted
    | Joined
    | Left
    | Away
    | Offered
    | Declined
    | Withdrawn
    | Rematch
    | Watchers
    | ClockNow
    | Sync
    | Pong
    | Error
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
