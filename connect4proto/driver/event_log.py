"""What the log says about the core's events: one line each, for the people who run it."""

from __future__ import annotations

import logging

from connect4proto import (
    ConnectionEnded,
    Event,
    GameClosed,
    GameCreated,
    GameEnded,
    PlayerJoined,
    PlayerLeft,
    PlayerReturned,
    RematchBegun,
    SeatReplaced,
    SpectatorJoined,
)

__all__ = ["log_event"]

log = logging.getLogger("connect4proto")


def log_event(event: Event) -> None:
    if isinstance(event, GameCreated):
        log.info("game %d: created by connection %d", event.game, event.connection)
    elif isinstance(event, PlayerJoined):
        log.info(
            "game %d: %s joined (connection %d)", event.game, event.player.value, event.connection
        )
    elif isinstance(event, SpectatorJoined):
        log.info("game %d: spectator joined (connection %d)", event.game, event.connection)
    elif isinstance(event, PlayerLeft):
        log.info(
            "game %d: %s away (connection %d ended)",
            event.game,
            event.player.value,
            event.connection,
        )
    elif isinstance(event, PlayerReturned):
        log.info(
            "game %d: %s back (connection %d)", event.game, event.player.value, event.connection
        )
    elif isinstance(event, SeatReplaced):
        log.info(
            "game %d: %s taken over from connection %d",
            event.game,
            event.player.value,
            event.connection,
        )
    elif isinstance(event, GameEnded):
        outcome = "draw" if event.winner is None else f"{event.winner.value} wins"
        log.info(
            "game %d: ended, %s (%s) after %d moves",
            event.game,
            outcome,
            event.reason.value,
            event.moves,
        )
    elif isinstance(event, RematchBegun):
        log.info("game %d: rematch, game %d of the match begins", event.game, event.round)
    elif isinstance(event, GameClosed):
        log.info("game %d: closed, nobody can come back to it", event.game)
    elif isinstance(event, ConnectionEnded):
        log.warning(
            "connection %d: closed (%s): %s", event.connection, event.fault.value, event.reason
        )
