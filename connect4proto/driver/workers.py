"""``--workers N``: N processes serving one port, the way to use every core of a machine.

Each worker is the same server (``--redis`` shares the games between them), started with its
own listening socket on the port, all with ``SO_REUSEPORT``: Linux spreads new connections
between them. This process only supervises: it holds the port (bound, not listening, so that
a busy port is said at once and ``--port 0`` gives every worker the same one), says when
they all answer their health check, starts again a worker that dies, and on Ctrl-C or
SIGTERM asks each to shut down as one server does (closing its connections), then waits.

The workers are in a process group of their own, so that a Ctrl-C in the terminal reaches
them once, from here; one whose supervisor is gone (a kill -9) stops by itself.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from .serving import STOP_SIGNALS, browser_address, listen_or_exit

__all__ = ["supervise"]

log = logging.getLogger("connect4proto")

#: Seconds between two looks at the workers (and two health checks until they are up).
LOOK_EVERY = 0.25
#: Seconds before a worker that died is started again.
RESTART_AFTER = 1.0


def supervise(argv: list[str], args: argparse.Namespace, prog: str) -> int:
    """Run ``args.workers`` workers until stopped; the exit status."""

    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    held = listen_or_exit(args.host, args.port, prog, reuse_port=True, listen=False)
    bound = held[0].getsockname()
    port = bound[1]
    command = [
        sys.executable,
        "-m",
        "connect4proto",
        *argv,
        "--workers",
        "1",
        "--port",
        str(port),
        "--worker-of",
        str(os.getpid()),
    ]
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    workers = [_start(command) for _ in range(args.workers)]
    log.info("started %d workers on port %d: %s", len(workers), port, _pids(workers))
    ready = False
    restarts: dict[int, float] = {}
    try:
        while not stopping:
            for index, worker in enumerate(workers):
                status = worker.poll()
                if status is None or stopping:
                    continue
                due = restarts.setdefault(index, time.monotonic() + RESTART_AFTER)
                if time.monotonic() >= due:
                    log.error("worker %d ended (status %d): starting another", worker.pid, status)
                    workers[index] = _start(command)
                    del restarts[index]
            if not ready and _healthy(args.host, port):
                ready = True
                address = browser_address(bound)
                print(
                    f"Connect Four is ready: open {address} in your browser "
                    f"({len(workers)} worker processes).",
                    flush=True,
                )
            time.sleep(LOOK_EVERY)
    finally:
        _stop_all(workers, args.shutdown_timeout)
        for sock in held:
            sock.close()
    log.info("%s: all workers stopped", signal.Signals(stopping[0]).name if stopping else "stop")
    return 0


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, start_new_session=True)


def _pids(workers: list[subprocess.Popen[bytes]]) -> str:
    return ", ".join(str(worker.pid) for worker in workers)


def _healthy(host: str, port: int) -> bool:
    """Whether a worker answers the health check with 200 (any of them: the kernel picks)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    connection = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _stop_all(workers: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM to each (a graceful shutdown), then wait; kill what is left after that."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout + 5.0
    for worker in workers:
        try:
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("worker %d did not stop in time: killed", worker.pid)
            worker.kill()
            worker.wait()
