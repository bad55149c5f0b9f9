"""The reference: the websockets tutorial's final Connect Four server, as a user would copy it.

This is the server of https://websockets.readthedocs.io/en/stable/intro/tutorial1.html to
tutorial3.html (parts 1-3, "app.py" and "connect4.py"), on the ``websockets`` library's asyncio
API: JOIN and WATCH dicts keyed by ``secrets.token_urlsafe`` keys, ``broadcast`` for play and
win events, a replay of past moves for joiners and watchers, the tutorial's rules, and the
``process_request`` health check at ``/healthz`` from the deployment part.

Only the start-up differs, so that the benchmark harness can treat it like ``server.py``: it
takes ``--host`` and ``--port`` (0 picks a free port), prints one line with its address once
listening, and exits 0 on SIGTERM or SIGINT. The speed comparison in ``benchmarks/run.py`` runs
both servers under the same load. Usage:

    python benchmarks/reference_server.py [--host 127.0.0.1] [--port 8001]
"""

from __future__ import annotations

import argparse
import asyncio
import http
import json
import os
import secrets
import signal
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

# --- connect4.py, the tutorial's rules ---------------------------------------------------------

PLAYER1, PLAYER2 = "red", "yellow"


class Connect4:
    """A Connect Four game: play moves with play(), past moves in moves, the winner in winner."""

    def __init__(self) -> None:
        self.moves: list[tuple[str, int, int]] = []
        self.top = [0 for _ in range(7)]
        self.winner: str | None = None

    @property
    def last_player(self) -> str:
        """Player who played the last move."""
        return PLAYER1 if len(self.moves) % 2 else PLAYER2

    @property
    def last_player_won(self) -> bool:
        """Whether the last move is winning."""
        b = sum(1 << (8 * column + row) for _, column, row in self.moves[::-2])
        return any(b & b >> v & b >> 2 * v & b >> 3 * v for v in [1, 7, 8, 9])

    def play(self, player: str, column: int) -> int:
        """Play a move in a column; return the row. Raise ValueError if the move is illegal."""
        if player == self.last_player:
            raise ValueError("It isn't your turn.")

        row = self.top[column]
        if row == 6:
            raise ValueError("This slot is full.")

        self.moves.append((player, column, row))
        self.top[column] += 1

        if self.winner is None and self.last_player_won:
            self.winner = self.last_player

        return row


# --- app.py, the tutorial's server -------------------------------------------------------------

Connected = set[ServerConnection]

JOIN: dict[str, tuple[Connect4, Connected]] = {}

WATCH: dict[str, tuple[Connect4, Connected]] = {}


async def error(websocket: ServerConnection, message: str) -> None:
    """Send an error message."""
    event = {
        "type": "error",
        "message": message,
    }
    await websocket.send(json.dumps(event))


async def replay(websocket: ServerConnection, game: Connect4) -> None:
    """Send previous moves."""
    # Make a copy to avoid an exception if game.moves changes while iteration is in progress.
    for player, column, row in game.moves.copy():
        event = {
            "type": "play",
            "player": player,
            "column": column,
            "row": row,
        }
        await websocket.send(json.dumps(event))


async def play(
    websocket: ServerConnection, game: Connect4, player: str, connected: Connected
) -> None:
    """Receive and process moves from a player."""
    async for message in websocket:
        # Parse a "play" event from the UI.
        event = json.loads(message)
        assert event["type"] == "play"
        column = event["column"]

        try:
            # Play the move.
            row = game.play(player, column)
        except ValueError as exc:
            # Send an "error" event if the move was illegal.
            await error(websocket, str(exc))
            continue

        # Send a "play" event to update the UI.
        event = {
            "type": "play",
            "player": player,
            "column": column,
            "row": row,
        }
        broadcast(connected, json.dumps(event))

        # If move is winning, send a "win" event.
        if game.winner is not None:
            event = {
                "type": "win",
                "player": game.winner,
            }
            broadcast(connected, json.dumps(event))


async def start(websocket: ServerConnection) -> None:
    """Handle a connection from the first player: start a new game."""
    # Initialize a Connect Four game, the set of WebSocket connections receiving moves from
    # this game, and secret access tokens.
    game = Connect4()
    connected = {websocket}

    join_key = secrets.token_urlsafe(12)
    JOIN[join_key] = game, connected

    watch_key = secrets.token_urlsafe(12)
    WATCH[watch_key] = game, connected

    try:
        # Send the secret access tokens to the browser of the first player, where they'll be
        # used for building "join" and "watch" links.
        event = {
            "type": "init",
            "join": join_key,
            "watch": watch_key,
        }
        await websocket.send(json.dumps(event))
        # Receive and process moves from the first player.
        await play(websocket, game, PLAYER1, connected)
    finally:
        del JOIN[join_key]
        del WATCH[watch_key]


async def join(websocket: ServerConnection, join_key: str) -> None:
    """Handle a connection from the second player: join an existing game."""
    # Find the Connect Four game.
    try:
        game, connected = JOIN[join_key]
    except KeyError:
        await error(websocket, "Game not found.")
        return

    # Register to receive moves from this game.
    connected.add(websocket)
    try:
        # Send the first move, in case the first player already played it.
        await replay(websocket, game)
        # Receive and process moves from the second player.
        await play(websocket, game, PLAYER2, connected)
    finally:
        connected.remove(websocket)


async def watch(websocket: ServerConnection, watch_key: str) -> None:
    """Handle a connection from a spectator: watch an existing game."""
    # Find the Connect Four game.
    try:
        game, connected = WATCH[watch_key]
    except KeyError:
        await error(websocket, "Game not found.")
        return

    # Register to receive moves from this game.
    connected.add(websocket)
    try:
        # Send previous moves, in case the game already started.
        await replay(websocket, game)
        # Keep the connection open, but don't receive any messages.
        await websocket.wait_closed()
    finally:
        connected.remove(websocket)


async def handler(websocket: ServerConnection) -> None:
    """Handle a connection and dispatch it according to who is connecting."""
    # Receive and parse the "init" event from the UI.
    message = await websocket.recv()
    event: dict[str, Any] = json.loads(message)
    assert event["type"] == "init"

    if "join" in event:
        # Second player joins an existing game.
        await join(websocket, event["join"])
    elif "watch" in event:
        # Spectator watches an existing game.
        await watch(websocket, event["watch"])
    else:
        # First player starts a new game.
        await start(websocket)


def health_check(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "OK\n")
    return None


async def main(host: str, port: int) -> None:
    async with serve(handler, host, port, process_request=health_check) as server:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, server.close)
        loop.add_signal_handler(signal.SIGINT, server.close)
        bound_host, bound_port = next(iter(server.sockets)).getsockname()[:2]
        display_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        print(f"Reference server is listening on http://{display_host}:{bound_port}/", flush=True)
        await server.wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The websockets tutorial's Connect Four server.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8001")),
        help="port to listen on (default: $PORT or 8001; 0 picks a free one)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
