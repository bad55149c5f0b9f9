"""``python server.py`` as a subprocess on loopback, played by the websockets library's client."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "server.py", "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the server prints its address once it listens
        assert line.startswith("Connect Four is ready: open http://127.0.0.1:"), line
        yield line.split("open ", 1)[1].split()[0]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None
        process.stdout.close()
        log.close()
    logs = (tmp_path / "server.log").read_text()
    assert "Traceback" not in logs
    assert "SIGTERM: shutting down" in logs


def receive(websocket: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(websocket.recv(timeout=5))
    return message


def test_full_game_with_two_players_and_a_spectator(server_url: str) -> None:
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


def test_http_page_and_health_check(server_url: str) -> None:
    with urllib.request.urlopen(server_url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert b'<script type="module"' in response.read()
    with urllib.request.urlopen(server_url + "healthz", timeout=5) as response:
        assert response.read() == b"OK\n"
