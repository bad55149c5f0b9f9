"""How much one move costs through the sans-IO core, in memory (no sockets, no trio).

Plays full 42-move games (the draw sequence) between two in-memory clients per game, with
pre-encoded masked frames, and prints microseconds per move; beside it the floor: the same
frames through bare wsproto (parse each inbound frame, frame the same outbound messages), no
JSON, no game. Also times the JSON candidates on one small message. Usage:

    python benchmarks/core.py [--games N] [--spectators S] [--rounds R] [--grid]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable

import h11
import msgspec
import orjson
from wsproto.connection import SERVER, Connection
from wsproto.events import AcceptConnection, TextMessage
from wsproto.frame_protocol import FrameProtocol
from wsproto.handshake import H11Handshake
from wsproto.utilities import generate_accept_token

from connect4proto import Config, GameServer, Player, Site
from connect4proto.messages import Played, decode_client_message, encode_server_message

DRAW = [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 2, 3, 2, 3, 2, 3, 3, 2, 3, 2, 3, 2,
        4, 5, 4, 5, 4, 5, 5, 4, 5, 4, 5, 4, 6, 6, 6, 6, 6, 6]  # fmt: skip
HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def client_frame(text: str) -> bytes:
    return bytes(FrameProtocol(client=True, extensions=[]).send_data(text))


PLAY_FRAMES = [client_frame(json.dumps({"type": "play", "column": c})) for c in range(7)]


def set_up(games: int, spectators: int) -> tuple[GameServer, list[tuple[int, int]]]:
    """A core with ``games`` games begun (red and yellow in each, ``spectators`` watching):
    the server, and each game's red and yellow connections."""
    keys = itertools.count()
    server = GameServer(
        site=Site.from_files({}),
        new_key=lambda: f"k{next(keys)}",
        config=Config(max_connections=10**7),  # the grid's largest cell has 102,000
    )
    pairs = []
    for game in range(games):
        red, yellow = server.open_connection(0.0), server.open_connection(0.0)
        server.receive_data(red, HANDSHAKE, 0.0)
        server.receive_data(red, client_frame('{"type": "init"}'), 0.0)
        server.receive_data(yellow, HANDSHAKE, 0.0)
        # Each game takes four keys: join, watch, then red's and yellow's seat tokens.
        join = client_frame(json.dumps({"type": "init", "join": f"k{4 * game}"}))
        server.receive_data(yellow, join, 0.0)
        for _ in range(spectators):
            watcher = server.open_connection(0.0)
            server.receive_data(watcher, HANDSHAKE, 0.0)
            watch = json.dumps({"type": "init", "watch": f"k{4 * game + 1}"})
            server.receive_data(watcher, client_frame(watch), 0.0)
        pairs.append((red, yellow))
    return server, pairs


def play(server: GameServer, pairs: list[tuple[int, int]]) -> int:
    """Every game of ``pairs`` played to its end (a draw), move by move across the games:
    the messages delivered."""
    delivered = 0
    for index, column in enumerate(DRAW):
        frame = PLAY_FRAMES[column]
        for red, yellow in pairs:
            output = server.receive_data(red if index % 2 == 0 else yellow, frame, 0.0)
            delivered += len(output.data)
    return delivered


def core_run(games: int, spectators: int) -> tuple[float, int]:
    """Seconds spent in the core for ``games`` full games, and messages delivered."""
    server, pairs = set_up(games, spectators)
    start = time.perf_counter()
    delivered = play(server, pairs)
    return time.perf_counter() - start, delivered


def floor_run(games: int, spectators: int) -> float:
    """The same frames through bare wsproto: parse, then frame one reply per recipient."""
    connections = [Connection(SERVER) for _ in range(2 * games)]
    framer = FrameProtocol(client=False, extensions=[])
    reply = '{"type":"play","player":"red","column":3,"row":0}'
    start = time.perf_counter()
    for index, column in enumerate(DRAW):
        frame = PLAY_FRAMES[column]
        for game in range(games):
            connection = connections[2 * game + index % 2]
            connection.receive_data(frame)
            for event in connection.events():
                assert isinstance(event, TextMessage)
                framer.send_data(reply)
    return time.perf_counter() - start


def frame_layer_floor_run(games: int) -> float:
    """The floor on wsproto's frame layer (``FrameProtocol``), which the core drives: the
    same frames without ``Connection``'s events. The ratio is against ``floor_run``."""
    layers = [FrameProtocol(client=False, extensions=[]) for _ in range(2 * games)]
    framer = FrameProtocol(client=False, extensions=[])
    reply = '{"type":"play","player":"red","column":3,"row":0}'
    start = time.perf_counter()
    for index, column in enumerate(DRAW):
        frame = PLAY_FRAMES[column]
        for game in range(games):
            layer = layers[2 * game + index % 2]
            layer.receive_bytes(frame)
            for received in layer.received_frames():
                assert type(received.payload) is str
                framer.send_data(reply)
    return time.perf_counter() - start


GRID_GAMES = (1, 100, 1000)
GRID_SPECTATORS = (0, 10, 100)


def grid_cell(games: int, spectators: int, rounds: int) -> dict[str, float]:
    """One cell of the grid: per-move cost and message rates, best of ``rounds``.

    Messages in: one ``play`` per move. Messages out: each move's ``play`` to every member of
    its game, plus the final ``draw``. Writes: the connection writes the core asked for.
    """
    best = float("inf")
    writes = 0
    for _ in range(rounds):
        seconds, writes = core_run(games, spectators)
        best = min(best, seconds)
    moves = 42 * games
    members = 2 + spectators
    return {
        "games": games,
        "spectators": spectators,
        "us_per_move": best / moves * 1e6,
        "moves_per_s": moves / best,
        "messages_in_per_s": moves / best,
        "messages_out_per_s": games * members * 43 / best,
        "writes_per_s": writes / best,
    }


def grid(rounds: int = 3, largest: int | None = None) -> list[dict[str, float]]:
    """Every cell of games x spectators (cells over ``largest`` connections run once)."""
    cells = []
    for games in GRID_GAMES:
        for spectators in GRID_SPECTATORS:
            connections = games * (2 + spectators)
            if largest is not None and connections > largest:
                continue
            cell_rounds = 1 if connections > 20_000 else rounds
            cells.append(grid_cell(games, spectators, cell_rounds))
    return cells


def per_call(function: Callable[[], object], repeat: int = 100_000) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - start) / repeat * 1e6


def json_table() -> None:
    text = '{"type": "play", "column": 3}'
    data = text.encode()
    played = Played(player=Player.RED, column=3, row=0)
    as_dict = {"type": "play", "player": "red", "column": 3, "row": 0}
    print("JSON, one small message (us per call):")
    print(f"  decode  stdlib json {per_call(lambda: json.loads(text)):6.2f}")
    print(f"  decode  orjson      {per_call(lambda: orjson.loads(data)):6.2f}")
    print(f"  decode  msgspec     {per_call(lambda: msgspec.json.decode(data)):6.2f}")
    typed = per_call(lambda: decode_client_message(text))
    print(f"  decode  msgspec typed, validated (ours) {typed:6.2f}")
    print(f"  encode  stdlib json {per_call(lambda: json.dumps(as_dict)):6.2f}")
    print(f"  encode  orjson      {per_call(lambda: orjson.dumps(as_dict)):6.2f}")
    print(f"  encode  msgspec typed (ours) {per_call(lambda: encode_server_message(played)):6.2f}")


#: A browser's upgrade request (Chromium's headers), for the handshake table.
BROWSER_HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Origin: http://127.0.0.1:8000\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131\r\n"
    b"Accept-Encoding: gzip, deflate\r\nAccept-Language: en-US,en;q=0.9\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)


def handshakes(repeat: int = 3000) -> dict[str, float]:
    """Microseconds per server handshake: the core's whole path (h11 parses the head, the
    core judges it and answers with its own 101: ``connect4proto.upgrade``); wsproto's
    ``H11Handshake`` alone, which the core used before (it parses the head a second time);
    h11's parse alone; and h11's parse with an own 101 (``generate_accept_token``) and a bare
    wsproto ``Connection``, the way wsproto documents for an upgrade already parsed: the
    floor of the core's path."""
    site = Site.from_files({"index.html": b"x"})

    def core_path() -> None:
        server = GameServer(site=site, new_key=lambda: "k")
        for _ in range(repeat):
            connection = server.open_connection(0.0)
            output = server.receive_data(connection, BROWSER_HANDSHAKE, 0.0)
            assert output.data[connection].startswith(b"HTTP/1.1 101")
            server.connection_lost(connection, 0.0, vanished=False)

    def wsproto_alone() -> None:
        for _ in range(repeat):
            handshake = H11Handshake(SERVER)
            handshake.receive_data(BROWSER_HANDSHAKE)
            (_request,) = handshake.events()
            handshake.send(AcceptConnection())

    def h11_alone() -> None:
        for _ in range(repeat):
            connection = h11.Connection(h11.SERVER)
            connection.receive_data(BROWSER_HANDSHAKE)
            connection.next_event()
            connection.next_event()

    def own_101() -> None:
        head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        for _ in range(repeat):
            connection = h11.Connection(h11.SERVER)
            connection.receive_data(BROWSER_HANDSHAKE)
            request = connection.next_event()
            assert isinstance(request, h11.Request)
            key = dict(request.headers)[b"sec-websocket-key"]
            response = head + b"Sec-WebSocket-Accept: " + generate_accept_token(key) + b"\r\n\r\n"
            assert response.endswith(b"\r\n\r\n")
            Connection(SERVER)

    results = {}
    for name, run in (
        ("the core's whole path", core_path),
        ("wsproto H11Handshake alone (the core's before)", wsproto_alone),
        ("h11 parse alone", h11_alone),
        ("h11 parse + own 101 + wsproto Connection", own_101),
    ):
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        results[name] = best / repeat * 1e6
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--games", type=int, default=100)
    parser.add_argument("--spectators", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--grid", action="store_true", help="the games x spectators grid")
    args = parser.parse_args()
    if args.grid:
        print("games x spectators | us/move | moves/s | messages in/s | messages out/s")
        for cell in grid():
            print(f"{cell['games']:5.0f} x {cell['spectators']:3.0f} | {cell['us_per_move']:8.2f} |"
                  f" {cell['moves_per_s']:9.0f} | {cell['messages_in_per_s']:9.0f} |"
                  f" {cell['messages_out_per_s']:10.0f}")  # fmt: skip
        return
    moves = 42 * args.games
    core_best = floor_best = layer_best = float("inf")
    delivered = 0
    for _ in range(args.rounds):  # alternate core and floor: same noise for both
        seconds, delivered = core_run(args.games, args.spectators)
        core_best = min(core_best, seconds)
        floor_best = min(floor_best, floor_run(args.games, args.spectators))
        layer_best = min(layer_best, frame_layer_floor_run(args.games))
    print(
        f"{args.games} games x {args.spectators} spectators, {moves} moves, best of {args.rounds}"
    )
    print(f"  core : {core_best / moves * 1e6:7.2f} us per move, {moves / core_best:9.0f} moves/s,"
          f" {delivered / core_best:9.0f} connection writes/s")  # fmt: skip
    print(f"  floor: {floor_best / moves * 1e6:7.2f} us per move (bare wsproto parse + frame)")
    print(f"  ratio core / floor: {core_best / floor_best:.2f}")
    print(f"  wsproto's frame layer alone (no Connection, what the core drives):"
          f" {layer_best / moves * 1e6:.2f} us per move")  # fmt: skip
    json_table()
    print("Server handshake, a browser's request (us):")
    for name, microseconds in handshakes().items():
        print(f"  {name:42} {microseconds:6.1f}")


if __name__ == "__main__":
    main()
