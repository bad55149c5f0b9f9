"""Where the computer's moves are worked out: a worker process beside the server, and the
moves it plays when that process cannot answer (too many waiting, or it failed)."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import multiprocessing
import os
import random
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import cache

import trio

from connect4proto import ComputeMove, Config
from connect4proto.solver import ORDER, position_from_moves
from connect4proto.solver.bots import Level, choose
from connect4proto.solver.perfect import PerfectPlayer, Source

__all__ = ["MAX_THINKING", "Thinkers", "fallback_move", "hurried_move", "offer_perfect_level"]

log = logging.getLogger("connect4proto")

#: The computer's moves waiting for its worker process at most (each a few milliseconds of
#: work, up to 100 at the perfect and strong levels); beyond, the computer plays the casual
#: level's move at once, so that a crowd of games against it cannot queue up seconds.
MAX_THINKING = 64
#: Seconds between two looks, in the worker process, at whether the server is still there.
PARENT_CHECK = 1.0


class Thinkers:
    """Where the computer's moves are worked out: a worker process, one search at a time, at
    a lower priority than the server (nice 10: the pump, whose work is short and waited
    for, runs first when both want the CPU).

    A process, not a thread: the levels below perfect are pure Python and would hold the
    GIL (the strong level for up to 100 ms), stalling the pump at every switch interval;
    and the perfect level's numba and book (about 140 MiB) stay out of the server's memory.
    The process starts at the first move that needs it, or at ``start``; the perfect
    player's table stays warm in it from one move to the next.
    """

    def __init__(self) -> None:
        self._process: ProcessPoolExecutor | None = None

    def start(self, perfect: bool) -> None:
        """Start the process now, and with ``perfect`` load and compile the perfect player
        there (about 1 s; 3 s more the first time on a machine, for numba), before a move
        waits for it."""
        self._worker().submit(_warm_up_worker, perfect)

    async def move(self, request: ComputeMove, seed: int) -> tuple[int, str | None]:
        """The computer's column for ``request``, and what to log about it, if anything."""
        try:
            return await _answer(self._worker().submit(_worker_move, request, seed))
        except BrokenProcessPool:
            self._process = None  # the next move starts a new one
            raise

    def close(self) -> None:
        """Stop the process; the moves still waiting are dropped (their answers have nowhere
        to go). This waits for a search under way (0.2 s at most): without the wait, Python
        3.11 may fail at exit ("Bad file descriptor": its exit hook wakes the pool's manager
        thread through a pipe that thread is closing)."""
        if self._process is not None:
            self._process.shutdown(wait=True, cancel_futures=True)
            self._process = None

    def _worker(self) -> ProcessPoolExecutor:
        if self._process is None:
            self._process = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
        return self._process


async def _answer(future: Future[tuple[int, str | None]]) -> tuple[int, str | None]:
    """Wait for ``future`` without holding a thread: it wakes this task when it is done."""
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()

    def wake(_: object) -> None:
        with contextlib.suppress(trio.RunFinishedError):  # the server stopped meanwhile
            token.run_sync_soon(done.set)

    future.add_done_callback(wake)
    try:
        await done.wait()
    except trio.Cancelled:
        future.cancel()
        raise
    return future.result()


def _start_worker(server: int) -> None:
    """In the worker process: nice 10, Ctrl-C left to the server (which stops it), and an
    end with the server however it ends: a server killed (kill -9) cannot stop it, and the
    pool's queue never says so (this process holds both ends of its pipe). ``server`` is
    the server's pid, given by it: it may be gone before this runs (the imports take a
    second)."""
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(10)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with, args=(server,), daemon=True).start()


def _end_with(server: int) -> None:
    """In the worker process: exit once the server that started it is gone (it has a new
    parent then), within a second."""
    while os.getppid() == server:
        time.sleep(PARENT_CHECK)
    os._exit(0)  # pragma: no cover - (a process that exits so writes no coverage data)


@cache
def _perfect_player() -> PerfectPlayer:
    """In the worker process: the perfect player, loaded at its first move (or at
    ``start``), then kept (its table stays warm)."""
    return PerfectPlayer.load()


def _warm_up_worker(perfect: bool) -> None:
    if perfect:
        _perfect_player().warm_up()


def _worker_move(request: ComputeMove, seed: int) -> tuple[int, str | None]:
    """In the worker process: the computer's column, and a note for the log."""
    record = request.record
    position = position_from_moves(record)
    level = Level(request.level)
    if level is not Level.PERFECT:
        return choose(position, level, random.Random(seed)), None
    previous = position_from_moves(record[:-1]) if record else None
    decision = _perfect_player().decide(position, random.Random(seed), previous=previous)
    if decision.source is Source.FALLBACK:
        note = (
            f"the perfect player's search ran out of its budget after {record}; "
            "it played the strong level's move"
        )
        return decision.column, note
    return decision.column, None


def offer_perfect_level(config: Config) -> Config:
    """``config``, without the perfect level where numba or the book is not installed (said
    in the log). Looked up, not imported: the worker process imports them."""
    missing = [package for package in ("numba", "bitbully_databases") if not _installed(package)]
    if not missing:
        return config
    log.warning(
        "the perfect level is off: %s not installed: pip install 'connect4proto[perfect]'",
        " and ".join(missing),
    )
    levels = config.computer_levels - {Level.PERFECT}
    return dataclasses.replace(config, computer_levels=levels)


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules: hidden
        return False


def hurried_move(request: ComputeMove, seed: int) -> int:
    """The casual level's move (about a millisecond, on the event loop): what the computer
    plays when too many of its moves already wait to be worked out."""
    return choose(position_from_moves(request.record), Level.CASUAL, random.Random(seed))


def fallback_move(request: ComputeMove) -> int:
    """A legal move, the centre first: what the computer plays if its search failed."""
    position = position_from_moves(request.record)
    return next(c for c in ORDER if position.can_play(c))
