"""Every limit of the server in one validated place."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Config"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Limits that bound what one peer can make the server hold."""

    #: Largest WebSocket message accepted, fragments reassembled (a move is about 30 bytes).
    max_message_size: int = 4096
    #: Most frames one message may arrive in (zero-byte continuations count).
    max_fragments: int = 64

    def __post_init__(self) -> None:
        for name in ("max_message_size", "max_fragments"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
