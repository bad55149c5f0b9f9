"""``python server.py`` as a subprocess on loopback, played by the websockets library's client."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import play_a_full_game, receive, start_server, stop_server
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, params=["epoll", "portable"])
def poller(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here, with each of the driver's pollers (the servers inherit it)."""
    monkeypatch.setenv("CONNECT4_POLLER", request.param)
    return str(request.param)


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    process, url = start_server(tmp_path)
    try:
        yield url
    finally:
        logs = stop_server(process, tmp_path)
    assert "SIGTERM: shutting down" in logs


def test_full_game_with_two_players_and_a_spectator(server_url: str) -> None:
    play_a_full_game(server_url)


def test_without_epoll_and_resource_as_on_macos_and_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECT4_POLLER", "auto")  # the server finds no epoll: portable
    process, url = start_server(tmp_path, script="tests/without_epoll.py")
    try:
        play_a_full_game(url)
    finally:
        logs = stop_server(process, tmp_path)
    assert "polling: portable" in logs
    assert "open files" not in logs  # no resource module: no limit to raise


def test_http_page_and_health_check(server_url: str) -> None:
    with urllib.request.urlopen(server_url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert b'<script type="module"' in response.read()
    with urllib.request.urlopen(server_url + "healthz", timeout=5) as response:
        assert response.read() == b"OK\n"
    with urllib.request.urlopen(server_url + "metrics", timeout=5) as response:
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert b"connect4_connections_open " in response.read()


def scrape(url: str) -> dict[str, float]:
    """``/metrics`` at ``url``, parsed by prometheus_client's own parser."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        sample.name + "".join(f"|{k}={v}" for k, v in sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_on_a_private_address_count_a_game(tmp_path: Path) -> None:
    process, url = start_server(tmp_path, "--metrics-address", "127.0.0.1:0")
    try:
        logged = (tmp_path / "server.log").read_text()
        private = logged.split("metrics: ", 1)[1].split()[0]
        assert private.startswith("http://127.0.0.1:")
        assert private.endswith("/metrics")
        with pytest.raises(urllib.error.HTTPError) as public:
            urllib.request.urlopen(url + "metrics", timeout=5)
        public.value.close()
        assert public.value.code == 404  # not on the public path
        before = scrape(private)
        play_a_full_game(url)
        after = scrape(private)
        with urllib.request.urlopen(private.replace("/metrics", "/healthz"), timeout=5) as ok:
            assert ok.read() == b"OK\n"
    finally:
        stop_server(process, tmp_path)
    assert before["connect4_moves_total"] == 0
    assert after["connect4_moves_total"] == 7
    assert after["connect4_handshakes_total"] == 3
    assert after["connect4_games|phase=over"] == 1
    assert after["connect4_messages_received_total"] == 3 + 7
    assert after["connect4_processing_seconds_count|kind=message"] >= 10
    assert after["process_resident_memory_bytes"] > 0


def test_allowed_origin_refuses_other_sites_with_403(tmp_path: Path) -> None:
    process, url = start_server(tmp_path, "--allowed-origin", "https://games.example.org")
    try:
        ws_url = url.replace("http://", "ws://")
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url, origin=Origin("https://evil.example.com"))
        assert refused.value.response.status_code == 403
        with connect(ws_url, origin=Origin("https://games.example.org")) as websocket:
            websocket.send(json.dumps({"type": "init"}))
            assert receive(websocket)["type"] == "init"
    finally:
        logs = stop_server(process, tmp_path)
    assert "Origin not allowed." in logs


def test_sigterm_exits_in_bounded_time_when_a_client_never_answers(tmp_path: Path) -> None:
    process, url = start_server(tmp_path, "--shutdown-timeout", "1")
    port = int(url.rsplit(":", 1)[1].rstrip("/"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as silent:
        # A real handshake, then nothing: the client never answers the close frame.
        silent.sendall(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert silent.recv(4096).startswith(b"HTTP/1.1 101 ")
        logs = stop_server(process, tmp_path)  # waits at most 10 s for exit code 0
        # The close frame 1001 reached the client (0x88: FIN + close; then length, code).
        assert silent.recv(4096)[:4] == b"\x88\x17\x03\xe9"
    assert "1 connections did not close in time" in logs


#: What the websockets tutorial's part 1 page understands; anything else makes it throw.
PART_1_EVENTS = {"play", "win", "error"}


def test_the_tutorials_part_1_client_plays_a_hot_seat_game(server_url: str) -> None:
    """Exactly what the step-1 page does: ``play`` on every click, never an ``init``; both
    colours from one browser, a full column refused, a win, then it closes with 1000."""
    with connect(server_url.replace("http://", "ws://")) as page:
        clicks = [0, 0, 0, 0, 0, 0, 0, 1, 2, 1, 2, 1, 2, 1]  # column 0 filled, then a win
        heard = []
        for column in clicks:
            page.send(json.dumps({"type": "play", "column": column}))
            event = receive(page)
            assert event["type"] in PART_1_EVENTS, event
            heard.append(event)
        assert heard[6] == {"type": "error", "message": "This slot is full."}
        players = [e["player"] for e in heard if e["type"] == "play"]
        assert players == ["red", "yellow"] * 6 + ["red"]  # alternating on legal moves only
        win = receive(page)
        assert win == {"type": "win", "player": "red", "cells": [[1, 0], [1, 1], [1, 2], [1, 3]]}
        page.close(1000)


def test_a_hot_seat_game_that_fills_the_board_is_a_draw(server_url: str) -> None:
    columns = [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 2, 3, 2, 3, 2, 3, 3, 2, 3, 2, 3, 2]
    columns += [4, 5, 4, 5, 4, 5, 5, 4, 5, 4, 5, 4, 6, 6, 6, 6, 6, 6]
    with connect(server_url.replace("http://", "ws://")) as page:
        for column in columns:
            page.send(json.dumps({"type": "play", "column": column}))
            assert receive(page)["type"] == "play"
        assert receive(page) == {"type": "draw"}


def test_a_game_against_the_computer_over_the_real_server(tmp_path: Path) -> None:
    """The computer's moves are worked out in the driver's worker thread and arrive as
    ordinary ``play`` events, after the pause the flag asks for."""
    process, url = start_server(tmp_path, "--bot-delay", "0.05")
    try:
        with connect(url.replace("http://", "ws://")) as page:
            page.send(json.dumps({"type": "init", "v": 0, "bot": "strong", "color": "yellow"}))
            kinds = [receive(page)["type"] for _ in range(4)]
            assert kinds == ["init", "seat", "joined", "joined"]
            heights = [0] * 7
            while True:
                event = receive(page)
                if event["type"] in ("win", "draw"):
                    break
                assert event["type"] == "play", event
                heights[event["column"]] += 1
                if event["player"] == "red":  # the computer moved: my turn
                    column = next(c for c in (3, 2, 4, 1, 5, 0, 6) if heights[c] < 6)
                    page.send(json.dumps({"type": "play", "column": column}))
            assert event["record"]
    finally:
        logs = stop_server(process, tmp_path)
    assert "game 1: ended" in logs
