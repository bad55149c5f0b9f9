"""The JSON messages of the wire protocol, as frozen, typed classes (see PROTOCOL.md).

``msgspec`` decodes a text frame straight into the tagged union of client messages, checking
every field's type on the way, and its error texts say exactly what is wrong and where
(``Expected `int`, got `str` - at `$.column```). It also encodes server messages in one call.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from .game import Player

__all__ = [
    "ClientMessage",
    "Draw",
    "Error",
    "GameKeys",
    "Init",
    "InvalidMessage",
    "Joined",
    "Left",
    "Play",
    "Played",
    "ServerMessage",
    "Win",
    "decode_client_message",
    "encode_server_message",
]


class _Message(msgspec.Struct, frozen=True, tag_field="type"):
    pass


# Client -> server


class Init(_Message, frozen=True, tag="init"):
    """Create a game (no key), join it as yellow (``join``) or watch it (``watch``)."""

    join: str | None = None
    watch: str | None = None


class Play(_Message, frozen=True, tag="play"):
    """Drop a checker in ``column``."""

    column: int


ClientMessage: TypeAlias = Init | Play


# Server -> client


class GameKeys(_Message, frozen=True, tag="init"):
    """Sent to a game's creator: the secret keys to join and to watch it."""

    join: str
    watch: str


class Played(_Message, frozen=True, tag="play"):
    """A move was played (``row`` 0 is the bottom)."""

    player: Player
    column: int
    row: int


class Win(_Message, frozen=True, tag="win"):
    """``player`` won; ``cells`` are the ``[column, row]`` of the winning line(s)."""

    player: Player
    cells: tuple[tuple[int, int], ...]


class Draw(_Message, frozen=True, tag="draw"):
    """The board is full and nobody won."""


class Joined(_Message, frozen=True, tag="joined"):
    """``player`` is connected to the game."""

    player: Player


class Left(_Message, frozen=True, tag="left"):
    """``player`` disconnected from the game."""

    player: Player


class Error(_Message, frozen=True, tag="error"):
    """A refused message; nothing changed."""

    message: str


ServerMessage: TypeAlias = GameKeys | Played | Win | Draw | Joined | Left | Error


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
