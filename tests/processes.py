"""``python server.py`` (or another way to start the server) as a subprocess on loopback,
and a whole game played against it by the websockets library's client."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent


def start_server(
    tmp_path: Path,
    *options: str,
    script: str = "server.py",
    command: Sequence[str] | None = None,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    name: str = "server",
) -> tuple[subprocess.Popen[str], str]:
    """``python server.py`` (``script``, or ``command``: how else to start it) on a free
    port; returns the process and the address it printed. Its log: ``tmp_path/NAME.log``."""
    log = (tmp_path / f"{name}.log").open("w")
    start = [sys.executable, script] if command is None else list(command)
    process = subprocess.Popen(
        [*start, "--host", "127.0.0.1", "--port", "0", *options],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    log.close()  # the child has its own copy
    assert process.stdout is not None
    line = process.stdout.readline()  # the server prints its address once it listens
    assert line.startswith("Connect Four is ready: open http://127.0.0.1:"), line
    return process, line.split("open ", 1)[1].split()[0]


def stop_server(process: subprocess.Popen[str], tmp_path: Path, name: str = "server") -> str:
    """SIGTERM, a clean exit 0, and the logs."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert process.stdout is not None
    process.stdout.close()
    logs = (tmp_path / f"{name}.log").read_text()
    assert "Traceback" not in logs
    return logs


def receive(websocket: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(websocket.recv(timeout=5))
    return message


def play_a_full_game(server_url: str) -> None:
    """Red, yellow and a spectator, to red's win: every event checked."""
    ws_url = server_url.replace("http://", "ws://")
    with connect(ws_url) as red, connect(ws_url) as yellow, connect(ws_url) as spectator:
        red.send(json.dumps({"type": "init"}))
        keys = receive(red)
        assert keys["type"] == "init"
        assert keys["join"] != keys["watch"]
        assert len(keys["join"]) >= 22  # 128 bits, URL-safe base64
        yellow.send(json.dumps({"type": "init", "join": keys["join"]}))
        assert [receive(yellow)["player"] for _ in range(2)] == ["red", "yellow"]
        assert receive(red) == {"type": "joined", "player": "yellow"}
        spectator.send(json.dumps({"type": "init", "watch": keys["watch"]}))
        assert [receive(spectator)["player"] for _ in range(2)] == ["red", "yellow"]

        for index, column in enumerate([0, 1, 0, 1, 0, 1, 0]):
            mover = red if index % 2 == 0 else yellow
            mover.send(json.dumps({"type": "play", "column": column}))
            expected = {
                "type": "play",
                "player": "red" if index % 2 == 0 else "yellow",
                "column": column,
                "row": index // 2,
            }
            assert receive(red) == receive(yellow) == receive(spectator) == expected
        win = {"type": "win", "player": "red", "cells": [[0, 0], [0, 1], [0, 2], [0, 3]]}
        assert receive(red) == receive(yellow) == receive(spectator) == win
