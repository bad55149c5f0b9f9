"""A game's events as bytes, for a store outside the process (Redis), and back.

The log's events are untagged msgspec structs (a tag would be on every event of every game,
in memory too); here each becomes two byte strings, its kind (the struct's name) and its
fields in MessagePack, so that another process, or the same one after a restart, reads back
exactly the event that was logged. Nothing here does I/O.
"""

from __future__ import annotations

import typing

import msgspec

from .log import GameEvent

__all__ = ["KINDS", "decode_event", "encode_event"]

#: Every kind of logged event, by the name it is stored under.
KINDS: dict[bytes, type[GameEvent]] = {
    kind.__name__.encode(): kind for kind in typing.get_args(GameEvent)
}
_ENCODER = msgspec.msgpack.Encoder()
_DECODERS = {name: msgspec.msgpack.Decoder(kind) for name, kind in KINDS.items()}


def encode_event(event: GameEvent) -> tuple[bytes, bytes]:
    """``event``'s kind and its fields."""
    return type(event).__name__.encode(), _ENCODER.encode(event)


def decode_event(kind: bytes, fields: bytes) -> GameEvent:
    """The event ``encode_event`` made these of; ValueError if they are not one."""
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise ValueError(f"not a kind of game event: {kind!r}")
    try:
        event: GameEvent = decoder.decode(fields)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a {kind.decode()} event: {exc}") from None
    return event
