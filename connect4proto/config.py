"""Every limit of the server in one validated place."""

from __future__ import annotations

from dataclasses import dataclass

from .solver.bots import Level

__all__ = ["Config"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Limits that bound what one peer can make the server hold, and its timers.

    Every field has a safe default for a public server; ``server.py`` has a flag for each.
    """

    #: Largest WebSocket message accepted, fragments reassembled (a move is about 30 bytes).
    max_message_size: int = 4096
    #: Most frames one message may arrive in (zero-byte continuations count).
    max_fragments: int = 64
    #: Largest HTTP request head (request line and headers), in bytes: 431 beyond.
    max_head_size: int = 16384
    #: Longest line of a request head: 414 for the request line, 431 for a header.
    max_line_size: int = 8192
    #: Most header fields in a request head: 431 beyond.
    max_headers: int = 128
    #: Seconds for a request head to arrive complete (slowloris), or for the next request
    #: on an idle keep-alive connection: 408 if one was started, else a quiet close.
    request_timeout: float = 10.0
    #: Seconds of silence from a WebSocket peer before we send a ping.
    ping_interval: float = 20.0
    #: Seconds to wait for any sign of life (the pong) after that ping, then drop the peer.
    ping_timeout: float = 20.0
    #: Seconds to wait for the peer's close frame after ours (RFC 6455 section 7.1.1).
    close_timeout: float = 5.0
    #: Bytes the driver may hold unsent for one connection; a peer that reads slower than
    #: its game moves is closed with 1013 instead of growing the server's memory.
    max_output_buffer: int = 65536
    #: Most connections open at once; beyond it, new ones get HTTP 503 and are closed.
    max_connections: int = 10000
    #: Messages (and pings) per connection per second; beyond it each message gets an
    #: ``error`` and is dropped, and at twice the rate the connection is closed with 1008.
    #: ``None`` turns the limit off (the conformance suite floods on purpose).
    max_messages_per_second: int | None = 50
    #: Origins (``scheme://host[:port]``) whose pages may open a WebSocket; empty allows any,
    #: which suits local play. Set it when deploying: a page of another site is then refused
    #: with 403 (cross-site WebSocket hijacking).
    allowed_origins: tuple[str, ...] = ()
    #: Seconds a player whose connection dropped keeps the seat before the opponent may
    #: claim the win (they may still come back until then, or until it is claimed). A game
    #: nobody is connected to is forgotten once every absent player's grace has run out.
    seat_grace: float = 60.0
    #: Seconds before the others are told that a player's page went away on purpose (close
    #: code 1001: a reload, a navigation): back within it, nobody sees it leave. 0: at once.
    away_delay: float = 2.0
    #: Events of one game's log kept for resuming event by event; a client further behind
    #: gets a snapshot (``sync``) instead. A whole game is at most 45 events.
    max_log_events: int = 256
    #: Seconds before a player may make the same offer again (a declined draw offer cannot
    #: be repeated at every move).
    offer_interval: float = 30.0
    #: The least time between two spectator counts told to a game, in seconds: a crowd
    #: coming and going costs one message per second per game, not one per arrival.
    watchers_interval: float = 1.0
    #: Seconds the computer waits before it plays (a natural pause; 0 in tests).
    bot_delay: float = 0.5
    #: The computer's levels this server offers; asking for another is refused
    #: (``level_unavailable``). The driver leaves out ``perfect`` where it cannot run.
    computer_levels: frozenset[Level] = frozenset(Level)

    def __post_init__(self) -> None:
        for name in (
            "max_message_size",
            "max_fragments",
            "max_head_size",
            "max_line_size",
            "max_headers",
            "max_output_buffer",
            "max_connections",
            "max_log_events",
        ):
            _check_positive_int(name, getattr(self, name))
        if self.max_messages_per_second is not None:
            _check_positive_int("max_messages_per_second", self.max_messages_per_second)
        for name in (
            "request_timeout",
            "ping_interval",
            "ping_timeout",
            "close_timeout",
            "seat_grace",
            "offer_interval",
            "watchers_interval",
        ):
            value = getattr(self, name)
            if type(value) not in (int, float) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        for name in ("away_delay", "bot_delay"):
            delay = getattr(self, name)
            if type(delay) not in (int, float) or not 0 <= delay < float("inf"):
                raise ValueError(f"{name} must be a number of seconds, 0 or more, not {delay!r}")
        levels = self.computer_levels
        if type(levels) is not frozenset or not all(type(level) is Level for level in levels):
            raise ValueError(f"computer_levels must be a frozenset of levels, not {levels!r}")
        origins = self.allowed_origins
        if type(origins) is not tuple or not all(
            type(origin) is str and origin for origin in origins
        ):
            raise ValueError(f"allowed_origins must be a tuple of origins, not {origins!r}")


def _check_positive_int(name: str, value: object) -> None:
    if type(value) is not int or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
