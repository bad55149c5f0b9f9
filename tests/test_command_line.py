"""``python server.py``'s command line: every mistake said in one line with exit status 2, the
start-up failures (an address in use, an unknown host) the same way, an address a browser can
open, files of no known type left out of the site, and a second Ctrl-C that quits at once."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_end_to_end import ROOT, start_server

from connect4proto.driver import load_site
from connect4proto.driver.cli import parse_args
from connect4proto.driver.serving import browser_address


def run_server(
    *options: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python server.py`` with ``options``, expected to stop at once."""
    return subprocess.run(
        [sys.executable, "server.py", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--port", "99999"], "argument --port: 99999 is not a port: 0 to 65535"),
        (["--port", "-1"], "argument --port: -1 is not a port: 0 to 65535"),
        (["--port", "http"], "argument --port: 'http' is not a port number"),
        (
            ["--shutdown-timeout", "soon"],
            "argument --shutdown-timeout: 'soon' is not a number of seconds",
        ),
        (
            ["--shutdown-timeout", "-1"],
            "argument --shutdown-timeout: -1 is not a number of seconds",
        ),
        (
            ["--shutdown-timeout", "inf"],
            "argument --shutdown-timeout: inf is not a number of seconds",
        ),
        (["--max-headers", "0"], "--max-headers must be a positive integer, not 0"),
        (["--ping-interval", "-3"], "--ping-interval must be a positive number of seconds"),
        (["--bot-delay", "-1"], "--bot-delay must be a number of seconds, 0 or more"),
        (["--metrics-address", "localhost:web"], "argument --metrics-address: 'web' is not a port"),
        (["--metrics-address", "70000"], "argument --metrics-address: 70000 is not a port: 0 to"),
        (
            ["--metrics-address", "::1:9100"],
            "argument --metrics-address: '::1:9100' is not HOST:PORT (an IPv6 address goes in "
            "brackets: [::1]:9100)",
        ),
        (["--metrics-address", ":9100"], "argument --metrics-address: ':9100' is not HOST:PORT"),
        (["--redis", "http://x"], "argument --redis: 'http://x' is not a redis:// or rediss://"),
        (["--redis", "redis://h:99999"], "argument --redis: 'redis://h:99999': the port is not"),
        (["--workers", "0"], "argument --workers: '0' is not a number of processes (1 or more)"),
        (["--workers", "two"], "argument --workers: 'two' is not a number of processes"),
        (
            ["--workers", "2"],
            "--workers 2 needs --redis URL: processes share games through Redis",
        ),
        (["--game-ttl", "-5"], "argument --game-ttl: -5 is not a number of seconds"),
    ],
)
def test_a_bad_value_is_said_in_one_line_with_status_2(
    capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_args(options, "server.py")
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"server.py: {message}")
    assert err.endswith(" (see --help)\n")


def test_port_comes_from_the_environment_checked_the_same_way(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "8123")
    assert parse_args([]).port == 8123
    assert parse_args(["--port", "0"]).port == 0  # the flag wins
    monkeypatch.setenv("PORT", "abc")
    with pytest.raises(SystemExit) as stopped:
        parse_args([], "server.py")
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        "server.py: PORT=abc in the environment: 'abc' is not a port number (see --help)\n"
    )
    monkeypatch.delenv("PORT")
    assert parse_args([]).port == 8000


def test_redis_comes_from_the_environment_checked_the_same_way(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache:6380/2")
    address = parse_args([]).redis
    assert (address.host, address.port, address.db) == ("cache", 6380, 2)
    assert parse_args(["--redis", "redis://other"]).redis.host == "other"  # the flag wins
    assert parse_args(["--workers", "2"]).workers == 2  # with Redis, workers may be several
    monkeypatch.setenv("REDIS_URL", "mysql://db")
    with pytest.raises(SystemExit) as stopped:
        parse_args([], "server.py")
    assert stopped.value.code == 2
    assert capsys.readouterr().err.startswith(
        "server.py: REDIS_URL in the environment: 'mysql://db' is not a redis:// or rediss:// URL"
    )
    monkeypatch.delenv("REDIS_URL")
    assert parse_args([]).redis is None


def test_help_shows_every_default_even_with_a_bad_port_in_the_environment() -> None:
    done = run_server("--help", env={"PORT": "abc", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # as wrapped for any terminal's width
    assert "(default: 127.0.0.1)" in text
    assert "(default: $PORT, else 8000)" in text
    assert "on shutdown (a second Ctrl-C stops waiting) (default: 5.0)" in text
    assert "(a natural pause) (default: 0.5)" in text
    assert "(default: None)" not in text
    assert "CONNECT4_POLLER, how sockets are watched: epoll (Linux), portable" in text


@pytest.mark.parametrize("flag", ["--port", "--metrics-address"])
def test_an_address_in_use_is_one_line_that_names_the_flag_to_change(flag: str) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    options = (
        ["--host", "127.0.0.1", "--port", str(port)]
        if flag == "--port"
        else ["--port", "0", "--metrics-address", f"127.0.0.1:{port}"]
    )
    try:
        done = run_server(*options)
    finally:
        taken.close()
    assert done.returncode == 2
    assert done.stderr == (
        f"server.py: port {port} is in use on 127.0.0.1 (another server?): stop it, or choose "
        f"another with {flag}\n"
    )
    assert done.stdout == ""


def test_python_m_connect4proto_goes_by_that_name() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "connect4proto", "--port", "99999"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("python -m connect4proto: argument --port: 99999 is not a port")


def test_a_metrics_address_takes_a_bare_port_or_a_bracketed_ipv6_host() -> None:
    assert parse_args(["--metrics-address", "9100"]).metrics_address == ("127.0.0.1", 9100)
    assert parse_args(["--metrics-address", "[::1]:9100"]).metrics_address == ("::1", 9100)
    assert parse_args(["--metrics-address", "0.0.0.0:0"]).metrics_address == ("0.0.0.0", 0)
    assert parse_args([]).metrics_address is None


def test_an_unknown_host_is_one_line_that_says_what_to_do() -> None:
    done = run_server("--host", "no-such-host.invalid", "--port", "0")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "server.py: cannot find the address of --host no-such-host.invalid: check it"
    )
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_a_wildcard_host_is_shown_as_an_address_a_browser_can_open() -> None:
    assert browser_address(("0.0.0.0", 8000)) == "http://127.0.0.1:8000/"
    assert browser_address(("::", 8000, 0, 0)) == "http://[::1]:8000/"
    assert browser_address(("127.0.0.1", 8000)) == "http://127.0.0.1:8000/"
    assert browser_address(("::1", 8001, 0, 0)) == "http://[::1]:8001/"


def test_files_of_no_known_type_in_static_are_left_out_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "index.html").write_bytes(b"<h1>hi</h1>")
    (tmp_path / "Thumbs.db").write_bytes(b"\x00")
    (tmp_path / "desktop.ini").write_bytes(b"[x]")
    with caplog.at_level(logging.WARNING):
        site = load_site(tmp_path)
    assert set(site.files) == {"/", "/index.html"}
    assert "static/Thumbs.db is not served: no known content type for '.db'" in caplog.text
    assert "static/desktop.ini is not served" in caplog.text


def test_a_second_ctrl_c_during_the_shutdown_wait_quits_at_once(tmp_path: Path) -> None:
    process, url = start_server(tmp_path, "--shutdown-timeout", "60", "--close-timeout", "60")
    port = int(url.rsplit(":", 1)[1].strip("/"))
    # A WebSocket that never answers the server's close: the shutdown would wait for it.
    stuck = socket.create_connection(("127.0.0.1", port))
    stuck.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert stuck.recv(4096).startswith(b"HTTP/1.1 101")
    log = tmp_path / "server.log"
    try:
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 20
        while "shutting down" not in log.read_text():  # bounded: the deadline below
            assert time.monotonic() < deadline, log.read_text()
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)  # polling a file another process writes: no event to wait on
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        stuck.close()
        if process.poll() is None:
            process.kill()
        assert process.stdout is not None
        process.stdout.close()
    logs = log.read_text()
    assert re.search(r"open files: at most \d+ \(each connection takes one\)", logs), logs
    assert "SIGINT: shutting down: waiting up to 60 s for 1 connection to close" in logs
    assert "(a second Ctrl-C quits at once)" in logs
    assert "SIGINT again: quitting now, 1 connections still open" in logs
    assert "Traceback" not in logs


@pytest.mark.parametrize(
    ("poller", "message"),
    [
        ("kqueue", "server.py: CONNECT4_POLLER=kqueue: not a poller (epoll, portable or auto)\n"),
    ],
)
def test_a_poller_that_does_not_exist_is_one_line(poller: str, message: str) -> None:
    done = run_server(env={**os.environ, "CONNECT4_POLLER": poller})
    assert done.returncode == 2
    assert done.stderr == message


def test_epoll_asked_for_where_there_is_none_is_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "tests/without_epoll.py", "--port", "0"],  # as on macOS
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CONNECT4_POLLER": "epoll"},
    )
    assert done.returncode == 2
    assert done.stderr == (
        "server.py: CONNECT4_POLLER=epoll: there is no epoll here (it is Linux's)\n"
    )


def test_a_host_that_is_not_this_machines_is_one_line() -> None:
    done = run_server("--host", "192.0.2.1", "--port", "0")  # TEST-NET-1: nobody's
    assert done.returncode == 2
    assert done.stderr == (
        "server.py: --host 192.0.2.1 is not an address of this machine: check it\n"
    )
