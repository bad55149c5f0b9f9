"""Listening, signals and the process's limits: what starts and stops the server around the
pump."""

from __future__ import annotations

import contextlib
import errno
import logging
import signal
import socket
import sys
import time
from typing import Any

try:
    import resource  # POSIX only
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

import trio

from .pump import Driver

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "STOP_SIGNALS",
    "WallClock",
    "browser_address",
    "open_listeners",
    "raise_open_file_limit",
    "serve",
]

log = logging.getLogger("connect4proto")

DEFAULT_SHUTDOWN_TIMEOUT = 5.0
#: What stops the server: Ctrl-C, SIGTERM, and Ctrl-Break where there is one (Windows).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM) + (
    (signal.SIGBREAK,) if hasattr(signal, "SIGBREAK") else ()
)
#: macOS's largest per-process open-file limit (OPEN_MAX in <sys/syslimits.h>).
MACOS_OPEN_MAX = 10240


class WallClock(trio.abc.Clock):
    """trio's clock on the wall clock's time base: the monotonic clock, set once at start to
    read as ``time.time()``. Processes that share games (through Redis) log the time of each
    event; another process folding it reads it on its own clock, so they share a time base
    (as closely as the machines' clocks agree), and none ever goes backwards."""

    def __init__(self) -> None:
        self._offset = time.time() - time.perf_counter()

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return time.perf_counter() + self._offset

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return deadline - self.current_time()


def open_listeners(
    host: str, port: int, *, reuse_port: bool = False, listen: bool = True
) -> list[socket.socket]:
    """Listening sockets for ``host``:``port`` (every address it resolves to); ``reuse_port``:
    shared with other processes listening on it (``--workers``: the kernel spreads the
    connections between them); not ``listen``: bound only (the port is held for them)."""
    listeners: list[socket.socket] = []
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    try:
        for family, type_, proto, _, address in infos:
            sock = socket.socket(family, type_, proto)
            listeners.append(sock)
            if sys.platform != "win32":
                # Restart at once on a port whose last connections linger in TIME_WAIT.
                # Not on Windows: there it lets a second server bind a port in use.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            if listen:
                sock.listen(socket.SOMAXCONN)
            if port == 0:  # one free port for every address: the first one chosen
                port = sock.getsockname()[1]
                break
    except BaseException:
        for sock in listeners:
            sock.close()
        raise
    return listeners


def listen_or_exit(
    host: str,
    port: int,
    prog: str,
    flag: str | None = None,
    *,
    reuse_port: bool = False,
    listen: bool = True,
) -> list[socket.socket]:
    """``open_listeners``, or the reason it failed and what to do in one line, exit 2;
    ``flag``: the one option that gave both host and port (else ``--host`` and ``--port``)."""
    host_flag, port_flag = (flag, flag) if flag is not None else ("--host", "--port")
    try:
        return open_listeners(host, port, reuse_port=reuse_port, listen=listen)
    except socket.gaierror:
        reason = (
            f"cannot find the address of {host_flag} {host}: check it "
            "(127.0.0.1 for this machine only, 0.0.0.0 for every address)"
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = (
                f"port {port} is in use on {host} (another server?): stop it, or choose "
                f"another with {port_flag}"
            )
        elif exc.errno == errno.EACCES:
            reason = (
                f"not allowed to listen on port {port}: ports below 1024 need privileges; "
                f"choose {port_flag} {8000 if flag is None else 9100}, for example"
            )
        elif exc.errno == errno.EADDRNOTAVAIL:
            reason = f"{host_flag} {host} is not an address of this machine: check it"
        else:
            reason = f"cannot listen on {host} port {port}: {exc.strerror or exc}"
    sys.stderr.write(f"{prog}: {reason}\n")
    sys.exit(2)


async def serve(
    driver: Driver,
    host: str,
    port: int,
    *,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    listeners: list[socket.socket] | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until SIGINT or SIGTERM, then close every connection within ``shutdown_timeout``
    (a second signal meanwhile stops waiting). ``listeners``: opened already (``main`` opens
    them first, to say what went wrong in one line); else opened here."""
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        if listeners is None:
            listeners = open_listeners(host, port)
        try:
            for listener in listeners:
                driver.add_listener(listener)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(driver.run)
                task_status.started(browser_address(listeners[0].getsockname()))
                async for signum in signals:
                    received = signal.Signals(signum).name
                    break
                count = driver.open_connections
                log.info(
                    "%s: shutting down: waiting up to %g s for %d connection%s to close"
                    " (a second Ctrl-C quits at once)",
                    received,
                    shutdown_timeout,
                    count,
                    "" if count == 1 else "s",
                )
                driver.shutdown()
                with trio.move_on_after(shutdown_timeout) as waited:
                    async with trio.open_nursery() as waiting:

                        async def closed() -> None:
                            await driver.wait_all_closed()
                            waiting.cancel_scope.cancel()

                        waiting.start_soon(closed)
                        async for signum in signals:
                            log.warning(
                                "%s again: quitting now, %d connections still open",
                                signal.Signals(signum).name,
                                driver.open_connections,
                            )
                            waiting.cancel_scope.cancel()
                            break
                if waited.cancelled_caught:
                    log.warning("%d connections did not close in time", driver.open_connections)
                nursery.cancel_scope.cancel()
        finally:
            driver.close()


def browser_address(bound: tuple[Any, ...]) -> str:
    """The address to open in a browser, for a socket bound to ``bound`` (its name): a
    wildcard host (every address) is not one, so the loopback address of its family stands
    for it."""
    host, port = bound[:2]
    if host == "0.0.0.0":
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def raise_open_file_limit() -> int | None:
    """Every connection is a descriptor: allow as many as the system lets us. The limit now
    in force, or None where there is none to raise (Windows)."""
    if resource is None:  # pragma: no cover - Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard
    if hard == resource.RLIM_INFINITY and sys.platform == "darwin":  # pragma: no cover
        wanted = MACOS_OPEN_MAX  # macOS refuses an infinite soft limit
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
