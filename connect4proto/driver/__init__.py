"""The trio driver: the one part of connect4proto that does I/O.

Everything about HTTP, WebSocket and the game lives in the sans-IO core (``connect4proto``,
which never imports this package); the driver reads and writes sockets, keeps time, works out
the computer's moves in a worker process, logs, and handles signals and the command line.

- ``pump``: ``Driver``, the one task that moves bytes between every socket and the core;
- ``pollers``: how the pump learns which sockets are ready (epoll, or trio's own waits);
- ``thinkers``: the computer's worker process;
- ``serving``: listening sockets, signals and a clean shutdown, the open-file limit;
- ``web_ui``: the web UI's files; ``event_log``: the log lines; ``cli``: the command line.
"""

from __future__ import annotations

from .cli import main, run
from .pollers import EpollPoller, PortablePoller, make_poller
from .pump import Driver
from .serving import open_listeners, serve
from .web_ui import load_site

__all__ = [
    "Driver",
    "EpollPoller",
    "PortablePoller",
    "load_site",
    "main",
    "make_poller",
    "open_listeners",
    "run",
    "serve",
]
