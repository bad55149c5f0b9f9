"""connect4proto: a sans-IO Connect Four server over WebSockets.

Bytes in, bytes and events out: ``GameServer`` is the whole message loop; a driver (see
``server.py``) moves bytes between sockets and it.
"""

from .config import Config
from .core import Application, GameServer, Output, Replies
from .errors import LocalProtocolError
from .events import (
    ComputeMove,
    ConnectionEnded,
    ConnectionId,
    Event,
    Fault,
    GameClosed,
    GameCreated,
    GameEnded,
    GameId,
    PlayerJoined,
    PlayerLeft,
    PlayerReturned,
    RematchBegun,
    SeatReplaced,
    SpectatorJoined,
)
from .game import Ending, Game, IllegalMove, Move, Player
from .lobby import RECONNECTING, SEAT_REPLACED
from .statistics import Statistics
from .store import GameStore, MemoryStore
from .web import Page, Site

__all__ = [
    "RECONNECTING",
    "SEAT_REPLACED",
    "Application",
    "ComputeMove",
    "Config",
    "ConnectionEnded",
    "ConnectionId",
    "Ending",
    "Event",
    "Fault",
    "Game",
    "GameClosed",
    "GameCreated",
    "GameEnded",
    "GameId",
    "GameServer",
    "GameStore",
    "IllegalMove",
    "LocalProtocolError",
    "MemoryStore",
    "Move",
    "Output",
    "Page",
    "Player",
    "PlayerJoined",
    "PlayerLeft",
    "PlayerReturned",
    "RematchBegun",
    "Replies",
    "SeatReplaced",
    "Site",
    "SpectatorJoined",
    "Statistics",
]
