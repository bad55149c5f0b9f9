"""The trio driver: moves bytes between TCP sockets and the sans-IO core.

Run ``python server.py`` and open the address it prints. Everything about HTTP, WebSocket and
the game lives in ``connect4proto``; this file only reads, writes, logs and handles signals.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import signal
import sys
from functools import partial
from pathlib import Path

import trio

from connect4proto import (
    Config,
    ConnectionId,
    ConnectionRefused,
    Event,
    GameClosed,
    GameCreated,
    GameEnded,
    GameServer,
    Output,
    PlayerJoined,
    PlayerLeft,
    Site,
    SpectatorJoined,
)

log = logging.getLogger("connect4proto")

STATIC_DIR = Path(__file__).resolve().parent / "static"
RECEIVE_SIZE = 65536
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
#: After an unexpected error, how long we try to deliver the 1011 close frame.
FAIL_FLUSH_TIMEOUT = 1.0


def new_key() -> str:
    """A join or watch key: 128 bits from the OS CSPRNG, URL-safe."""
    return secrets.token_urlsafe(16)


def load_site(directory: Path = STATIC_DIR) -> Site:
    """Every file under ``directory``, read once at start-up."""
    files = {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }
    return Site.from_files(files)


class _Link:
    """The driver's side of one connection: its stream and what waits to be written."""

    __slots__ = ("cancel_scope", "closing", "forgotten", "pending", "stream", "wakeup")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.pending: list[bytes] = []
        self.wakeup = trio.Event()
        self.closing = False  # close the stream once ``pending`` is written
        self.forgotten = False  # the core no longer knows this connection
        self.cancel_scope = trio.CancelScope()

    def take(self) -> bytes:
        pending, self.pending = self.pending, []
        return b"".join(pending)


class Driver:
    """Serves one ``GameServer`` to TCP (or any trio stream) connections."""

    def __init__(self, core: GameServer) -> None:
        self.core = core
        self._links: dict[ConnectionId, _Link] = {}
        self._all_closed = trio.Event()
        self._all_closed.set()

    @property
    def open_connections(self) -> int:
        return len(self._links)

    async def serve_connection(self, stream: trio.abc.Stream) -> None:
        """Handle one connection until it closes; never raises for its own failures."""
        connection = self.core.open_connection()
        link = _Link(stream)
        self._links[connection] = link
        self._all_closed = trio.Event()
        try:
            with link.cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop, connection, link)
                    await self._read_loop(connection, link)
        except Exception:
            # A bug of ours: this connection pays for it, nobody else does.
            log.exception("connection %d: unexpected error", connection)
            if not link.forgotten:
                self._apply(self.core.fail(connection))
                with (
                    trio.move_on_after(FAIL_FLUSH_TIMEOUT),
                    contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
                ):
                    await stream.send_all(link.take())
        finally:
            if not link.forgotten:
                self._apply(self.core.connection_lost(connection))
            del self._links[connection]
            if not self._links:
                self._all_closed.set()
            await trio.aclose_forcefully(stream)

    async def _read_loop(self, connection: ConnectionId, link: _Link) -> None:
        while not link.forgotten:
            try:
                data = await link.stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._apply(self.core.connection_lost(connection))
                return
            # An empty read is the end of the stream, which the core spells None. (Memory
            # streams in tests hand out bytearrays; sockets give bytes, never copied here.)
            chunk = (data if type(data) is bytes else bytes(data)) if data else None
            self._apply(self.core.receive_data(connection, chunk))

    async def _write_loop(self, connection: ConnectionId, link: _Link) -> None:
        """The only writer of this stream: writes are serialised and batched."""
        while True:
            if not link.pending:
                if link.closing:
                    break
                await link.wakeup.wait()
                link.wakeup = trio.Event()
                continue
            try:
                await link.stream.send_all(link.take())
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                if not link.forgotten:
                    self._apply(self.core.connection_lost(connection))
                break
        # Written and done: stop the reader too, if it still waits for bytes.
        link.cancel_scope.cancel()

    def _apply(self, output: Output) -> None:
        """Hand the core's output to the writers; log what happened."""
        links = self._links
        for connection, data in output.data.items():
            link = links[connection]
            link.pending.append(data)
            link.wakeup.set()
        for connection in output.close:
            link = links[connection]
            link.forgotten = True
            link.closing = True
            link.wakeup.set()
        for event in output.events:
            _log_event(event)

    def shutdown(self) -> None:
        """Send close 1001 on every WebSocket (and end HTTP connections)."""
        self._apply(self.core.shutdown())

    async def wait_all_closed(self) -> None:
        await self._all_closed.wait()


def _log_event(event: Event) -> None:
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
            "game %d: %s left (connection %d)", event.game, event.player.value, event.connection
        )
    elif isinstance(event, GameEnded):
        outcome = "draw" if event.winner is None else f"{event.winner.value} wins"
        log.info("game %d: ended, %s after %d moves", event.game, outcome, event.moves)
    elif isinstance(event, GameClosed):
        log.info("game %d: closed, nobody left in it", event.game)
    elif isinstance(event, ConnectionRefused):
        log.warning("connection %d: closed: %s", event.connection, event.reason)


async def serve(
    driver: Driver,
    host: str,
    port: int,
    *,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until SIGINT or SIGTERM, then close every connection within ``shutdown_timeout``."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as listening:
                listeners = await listening.start(
                    partial(
                        trio.serve_tcp,
                        driver.serve_connection,
                        port,
                        host=host,
                        handler_nursery=connections,
                    )
                )
                bound_host, bound_port = listeners[0].socket.getsockname()[:2]
                display_host = f"[{bound_host}]" if ":" in bound_host else bound_host
                address = f"http://{display_host}:{bound_port}/"
                task_status.started(address)
                async for signum in signals:
                    log.info("%s: shutting down", signal.Signals(signum).name)
                    break
                listening.cancel_scope.cancel()  # stop accepting
            driver.shutdown()
            with trio.move_on_after(shutdown_timeout) as waited:
                await driver.wait_all_closed()
            if waited.cancelled_caught:
                log.warning("%d connections did not close in time", driver.open_connections)
            connections.cancel_scope.cancel()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Play Connect Four in the browser.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8000")),
        help="port to listen on (default: $PORT or 8000; 0 picks a free one)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=DEFAULT_SHUTDOWN_TIMEOUT,
        help="seconds to wait for clients to close on shutdown",
    )
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    driver = Driver(GameServer(site=load_site(), new_key=new_key, config=Config()))
    async with trio.open_nursery() as nursery:
        address = await nursery.start(
            partial(serve, driver, args.host, args.port, shutdown_timeout=args.shutdown_timeout)
        )
        print(f"Connect Four is ready: open {address} in your browser.", flush=True)


if __name__ == "__main__":
    trio.run(main)
    sys.exit(0)
