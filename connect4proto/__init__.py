"""connect4proto: a sans-IO Connect Four server over WebSockets.

Bytes in, bytes and events out: ``GameServer`` is the whole message loop; a driver (see
``server.py``) moves bytes between sockets and it.
"""

from .config import Config
from .core import GameServer, Output
from .errors import LocalProtocolError
from .events import (
    ConnectionId,
    ConnectionRefused,
    Event,
    GameClosed,
    GameCreated,
    GameEnded,
    GameId,
    PlayerJoined,
    PlayerLeft,
    SpectatorJoined,
)
from .game import Game, IllegalMove, Move, Player
from .web import Site

__all__ = [
    "Config",
    "ConnectionId",
    "ConnectionRefused",
    "Event",
    "Game",
    "GameClosed",
    "GameCreated",
    "GameEnded",
    "GameId",
    "GameServer",
    "IllegalMove",
    "LocalProtocolError",
    "Move",
    "Output",
    "Player",
    "PlayerJoined",
    "PlayerLeft",
    "Site",
    "SpectatorJoined",
]
