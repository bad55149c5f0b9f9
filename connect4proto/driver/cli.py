"""The command line: ``python server.py``, ``python -m connect4proto``, ``connect4-server``.

Every mistake is said in one line with exit status 2, before anything slow starts.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import socket
import sys
from typing import TYPE_CHECKING, NoReturn

import trio

from connect4proto import Config, GameServer, Site
from connect4proto.shared import SharedStore
from connect4proto.web import HEALTH_PATH

from .metrics import METRICS_PATH, ServerMetrics
from .pollers import EpollPoller, make_poller
from .pump import Driver
from .redis_address import RedisAddress
from .serving import (
    DEFAULT_SHUTDOWN_TIMEOUT,
    WallClock,
    browser_address,
    listen_or_exit,
    raise_open_file_limit,
    serve,
)
from .thinkers import offer_perfect_level
from .web_ui import load_site
from .workers import supervise

if TYPE_CHECKING:
    from .sharing import SharedGames

__all__ = ["COMMAND", "LIMIT_FLAGS", "config_from_args", "main", "new_key", "parse_args", "run"]

log = logging.getLogger("connect4proto")


#: The name messages go by when nobody says otherwise: the console command's.
COMMAND = "connect4-server"


def new_key() -> str:
    """A join or watch key: 128 bits from the OS CSPRNG, URL-safe."""
    return secrets.token_urlsafe(16)


class _HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Every default in ``--help``, but for options whose help says it (a default of None)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:
            return action.help or ""
        return super()._get_help_string(action) or ""


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes in one line (``server.py: ... (see --help)``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: 0 to 65535 (0 picks a free one)")
    return port


def _address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or a bare ``PORT`` (on 127.0.0.1: private)."""
    host, colon, port = text.rpartition(":")
    if not colon:
        host, port = "127.0.0.1", text
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif not host or ":" in host:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not HOST:PORT (an IPv6 address goes in brackets: [::1]:9100)"
        )
    return host, _port(port)


def _redis_url(text: str) -> RedisAddress:
    try:
        return RedisAddress.from_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (1 or more)")
    return count


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds, 0 or more")
    return seconds


def parse_args(argv: list[str] | None = None, prog: str = COMMAND) -> argparse.Namespace:
    """The options, validated; ``prog`` is how the user started us (``server.py``, ...)."""
    defaults = Config()
    parser = _Parser(
        prog=prog,
        description="Play Connect Four in the browser.",
        epilog="environment: PORT, the port when --port is not given; REDIS_URL, the Redis "
        "when --redis is not given; CONNECT4_POLLER, how sockets are watched: epoll (Linux), "
        "portable (trio's own waits: macOS, Windows) or auto, the default: epoll where there "
        "is one",
        formatter_class=_HelpWithDefaults,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (0.0.0.0 or :: for every address of the machine)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=None,
        help="port to listen on, 0 for a free one (default: $PORT, else 8000)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=DEFAULT_SHUTDOWN_TIMEOUT,
        help="seconds to wait for clients to close on shutdown (a second Ctrl-C stops waiting)",
    )
    parser.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="accept WebSocket handshakes only from pages of this origin, e.g. "
        "https://games.example.org (repeat for several; none: any origin, for local play)",
    )
    parser.add_argument(
        "--metrics-address",
        type=_address,
        default=None,
        metavar="HOST:PORT",
        help="serve GET /metrics (Prometheus) there, and only there, e.g. 127.0.0.1:9100 "
        "(default: at /metrics on the game's own address)",
    )
    sharing = parser.add_argument_group("many processes")
    sharing.add_argument(
        "--redis",
        type=_redis_url,
        default=None,
        metavar="URL",
        help="share every game through Redis with any number of processes, here and on "
        "other machines: redis://[:PASSWORD@]HOST[:PORT][/DB][?timeout=SECONDS], or rediss:// "
        "for TLS (default: $REDIS_URL; none: games live in this process only)",
    )
    sharing.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="serve the port from N processes (Linux: SO_REUSEPORT), one per core; needs --redis",
    )
    sharing.add_argument(
        "--game-ttl",
        type=_seconds,
        default=24 * 3600.0,
        metavar="SECONDS",
        help="with --redis, how long Redis keeps a game nobody plays any more",
    )
    sharing.add_argument("--worker-of", type=int, default=None, help=argparse.SUPPRESS)
    limits = parser.add_argument_group("limits")
    for name, help_text in LIMIT_FLAGS.items():
        default = getattr(defaults, name)
        limits.add_argument(
            "--" + name.replace("_", "-"),
            type=float if isinstance(default, float) else int,
            default=default,
            help=help_text,
        )
    args = parser.parse_args(argv)
    if args.redis is None and os.environ.get("REDIS_URL"):
        try:
            args.redis = _redis_url(os.environ["REDIS_URL"])
        except argparse.ArgumentTypeError as exc:
            parser.error(f"REDIS_URL in the environment: {exc}")
    if args.workers > 1:
        if args.redis is None:
            parser.error(
                f"--workers {args.workers} needs --redis URL: processes share games through "
                "Redis (without it, a friend's connection could land on a process that does "
                "not have the game)"
            )
        if not hasattr(socket, "SO_REUSEPORT") or sys.platform != "linux":
            parser.error(
                f"--workers {args.workers} needs Linux's SO_REUSEPORT to share one port: here, "
                "start one process per port behind a load balancer (each with --redis)"
            )
    if args.port is None:  # read only now, so that a bad $PORT never breaks --help
        from_environment = os.environ.get("PORT", "8000")
        try:
            args.port = _port(from_environment)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"PORT={from_environment} in the environment: {exc}")
    try:
        args.config = config_from_args(args)
    except ValueError as exc:
        name, _, rest = str(exc).partition(" ")  # "max_headers must be ...": say the flag
        flag = "--" + name.replace("_", "-") if name in LIMIT_FLAGS else name
        parser.error(f"{flag} {rest}")
    return args


#: A flag for every limit of ``Config`` (``allowed_origins`` has its own, repeatable one).
LIMIT_FLAGS = {
    "max_connections": "most connections open at once (HTTP 503 beyond)",
    "max_message_size": "largest WebSocket message in bytes (close 1009 beyond)",
    "max_fragments": "most frames per WebSocket message (close 1009 beyond)",
    "max_head_size": "largest HTTP request head in bytes (431 beyond)",
    "max_line_size": "longest HTTP request line or header in bytes (414/431 beyond)",
    "max_headers": "most HTTP header fields (431 beyond)",
    "max_output_buffer": "bytes queued for one slow reader (close 1013 beyond)",
    "max_messages_per_second": "messages per connection per second (error, then 1008; 0: no limit)",
    "request_timeout": "seconds for an HTTP request head to arrive (408 beyond)",
    "ping_interval": "seconds of WebSocket silence before a ping",
    "ping_timeout": "seconds to wait for the pong before dropping the peer",
    "close_timeout": "seconds to wait for the peer's close frame",
    "seat_grace": "seconds a dropped player keeps the seat before the opponent may claim the win",
    "away_delay": "seconds before a page that closed with 1001 (a reload) is announced as away",
    "offer_interval": "seconds before a player may make the same offer (draw, rematch) again",
    "watchers_interval": "least seconds between two spectator counts told to a game",
    "bot_delay": "seconds the computer waits before it plays (a natural pause)",
    "max_log_events": "events of a game's log kept for resuming (a snapshot beyond)",
}


def config_from_args(args: argparse.Namespace) -> Config:
    """The validated limits from the command line (ValueError says which is wrong)."""
    limits = {name: getattr(args, name) for name in LIMIT_FLAGS}
    if limits["max_messages_per_second"] == 0:
        limits["max_messages_per_second"] = None
    return Config(**limits, allowed_origins=tuple(args.allowed_origin))


async def main(args: argparse.Namespace, prog: str = COMMAND) -> None:
    """Serve until stopped, as the command line (``parse_args``) says."""
    config = args.config
    try:
        poller = make_poller()
    except ValueError as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        sys.exit(2)
    # Before anything slow: fail fast. A worker of ``--workers`` shares the port.
    listeners = listen_or_exit(args.host, args.port, prog, reuse_port=args.worker_of is not None)
    private: list[socket.socket] = []
    if args.metrics_address is not None:
        host, port = args.metrics_address
        private = listen_or_exit(host, port, prog, flag="--metrics-address")
    worker = "" if args.worker_of is None else f" worker {os.getpid()}"
    logging.basicConfig(
        level=args.log_level,
        format=f"%(asctime)s %(levelname)s %(name)s{worker}: %(message)s",
    )
    open_files = raise_open_file_limit()
    if open_files is not None:
        log.info("open files: at most %d (each connection takes one)", open_files)
    config = offer_perfect_level(config)
    log.info("polling: %s", "epoll" if isinstance(poller, EpollPoller) else "portable (trio)")
    metrics = ServerMetrics()
    pages = {METRICS_PATH: metrics.page()}
    site = load_site()
    if not private:
        site = site.with_pages(pages)  # else only on the private address
    private_site = Site(pages=pages, websocket=False)
    shared = store = new_game_id = process = None
    if args.redis is not None:
        shared, store = _share_through(args, prog, config)
        new_game_id, process = shared.new_game_id, shared.process
        metrics.shared = shared
        site = site.with_health(shared.health)
        private_site = private_site.with_health(shared.health)
    core = GameServer(
        site=site,
        new_key=new_key,
        config=config,
        store=store,
        new_game_id=new_game_id,
        process=process,
    )
    driver = Driver(core, poller=poller, metrics=metrics, outside=shared)
    for listener in private:
        driver.add_listener(listener, private_site)
    if private:
        address = browser_address(private[0].getsockname())
        log.info("metrics: %s%s (and %s)", address, METRICS_PATH[1:], HEALTH_PATH)
    driver.start_thinking()
    async with trio.open_nursery() as nursery:
        if shared is not None:
            await nursery.start(shared.run)  # once Redis answers

        async def serving(task_status: trio.TaskStatus[str]) -> None:
            await serve(
                driver,
                args.host,
                args.port,
                shutdown_timeout=args.shutdown_timeout,
                listeners=listeners,
                task_status=task_status,
            )
            nursery.cancel_scope.cancel()  # what shares the games stops with it

        address = await nursery.start(serving)
        if args.worker_of is not None:
            nursery.start_soon(_stop_with_parent, args.worker_of)
        else:
            print(f"Connect Four is ready: open {address} in your browser.", flush=True)


def _share_through(
    args: argparse.Namespace, prog: str, config: Config
) -> tuple[SharedGames, SharedStore]:
    """What shares this process's games through the Redis of ``--redis``."""
    try:
        from .redis_log import RedisLog
        from .resp import Redis, Subscription
        from .sharing import SharedGames
    except ImportError as exc:  # hiredis, the client's parser, is an extra
        sys.stderr.write(
            f"{prog}: --redis needs the Redis client's parser ({exc.name}): "
            'pip install "connect4proto[redis]"\n'
        )
        sys.exit(2)
    address = args.redis
    redis_log = RedisLog(Redis(address), ttl=args.game_ttl)
    # An append not answered is sent again for a few of Redis' timeouts, then refused.
    shared = SharedGames(
        redis_log, Subscription(address), give_up_after=max(1.0, 5 * address.timeout)
    )
    return shared, SharedStore(max_events=config.max_log_events)


async def _stop_with_parent(parent: int) -> None:
    """A worker of ``--workers`` stops (as on SIGTERM) if the process that started it is
    gone, however it went (a kill -9 included)."""
    while True:  # (nothing to wait on: the parent's end is seen as a new parent id)
        await trio.sleep(1.0)
        if os.getppid() != parent:
            break
    log.warning("the supervising process %d is gone: stopping", parent)
    os.kill(os.getpid(), signal.SIGTERM)


def run(prog: str = COMMAND, argv: list[str] | None = None) -> None:
    """Serve until stopped: the entry point of ``server.py``, ``python -m connect4proto``
    and the ``connect4-server`` command, each passing the name it goes by."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv, prog)
    if args.workers > 1:
        sys.exit(supervise(argv, args, prog))
    # Processes that share games read each other's logged times: one time base for all of
    # them, the wall clock's (yet never going backwards within a process).
    clock = WallClock() if args.redis is not None else None
    try:
        trio.run(main, args, prog, clock=clock)
    except KeyboardInterrupt:  # Ctrl-C before the server was up (waiting for Redis)
        sys.exit(130)
