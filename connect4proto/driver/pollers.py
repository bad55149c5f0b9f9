"""How the pump learns which sockets are ready: one ``epoll`` set on Linux, trio's own waits
everywhere else (kqueue on macOS, IOCP on Windows). Both answer the same four calls
(``register``, ``modify``, ``unregister``, ``ready``) and one ``wait``, so the pump does not
know which it has (``benchmarks/README.md`` measures the two)."""

from __future__ import annotations

import os
import select

import trio

__all__ = [
    "READABLE",
    "READ_OR_HUNG_UP",
    "WRITABLE",
    "EpollPoller",
    "Poller",
    "PortablePoller",
    "make_poller",
]

#: Most ready sockets handled per wake-up, so that timers and signals are never starved.
MAX_EVENTS = 1024

#: Readiness, as epoll numbers it (the same on every Linux; the portable poller uses them too).
READABLE = 0x001  # EPOLLIN
WRITABLE = 0x004  # EPOLLOUT
#: What the pump reads on: EPOLLIN | EPOLLERR | EPOLLHUP (the read says which it was).
READ_OR_HUNG_UP = 0x001 | 0x008 | 0x010


class EpollPoller:
    """Linux: every socket in one epoll set, whose descriptor trio waits on; a turn takes
    what is ready with one ``epoll_wait`` (``benchmarks/README.md`` measures why)."""

    def __init__(self) -> None:
        self._epoll = select.epoll()

    def attach(self, nursery: trio.Nursery) -> None:
        pass  # nothing runs beside the pump

    def register(self, fd: int, events: int = READABLE) -> None:
        self._epoll.register(fd, events)

    def modify(self, fd: int, events: int) -> None:
        self._epoll.modify(fd, events)

    def unregister(self, fd: int) -> None:
        self._epoll.unregister(fd)

    def ready(self) -> list[tuple[int, int]]:
        return self._epoll.poll(0, MAX_EVENTS)

    async def wait(self) -> None:
        await trio.lowlevel.wait_readable(self._epoll.fileno())

    def close(self) -> None:
        self._epoll.close()


class PortablePoller:
    """Everywhere (macOS: kqueue, Windows: IOCP, through trio): a task per socket and
    direction waits with trio's ``wait_readable`` / ``wait_writable``, and marks it ready.

    A turn takes every socket marked since the last, in the order the sockets were
    registered: the same order whatever order trio woke the tasks in (a prototype that let
    the wake-ups decide sent a player's ``left`` before its own move's echo in most runs).
    A task marks its socket once per turn: it waits for the turn to take the mark before it
    waits again (the socket stays readable until the pump reads it).
    """

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        self._interest: dict[int, int] = {}  # by descriptor, in registration order
        self._order: dict[int, int] = {}
        self._next = 0
        self._watchers: dict[tuple[int, int], trio.CancelScope] = {}
        self._marked: dict[int, int] = {}
        self._taken: dict[int, trio.Event] = {}
        self._write_wanted: dict[int, trio.Event] = {}  # writers idle until wanted again
        self._wakeup = trio.Event()

    def attach(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        for fd, events in self._interest.items():
            self._watch(fd, events)

    def register(self, fd: int, events: int = READABLE) -> None:
        self._interest[fd] = events
        self._order[fd] = self._next
        self._next += 1
        self._taken[fd] = trio.Event()
        self._watch(fd, events)

    def modify(self, fd: int, events: int) -> None:
        self._interest[fd] = events
        wanted = self._write_wanted.pop(fd, None)
        if wanted is not None and events & WRITABLE:
            wanted.set()  # its writer task waits for this (it is not cancelled and restarted:
            # a new task could not wait on the socket before the old one's cancellation ends)
        self._watch(fd, events)

    def unregister(self, fd: int) -> None:
        del self._interest[fd]
        del self._order[fd]
        self._marked.pop(fd, None)
        self._taken.pop(fd).set()
        self._write_wanted.pop(fd, None)
        for direction in (READABLE, WRITABLE):
            scope = self._watchers.pop((fd, direction), None)
            if scope is not None:
                scope.cancel()
        trio.lowlevel.notify_closing(fd)  # a wait on it ends now, before the socket closes

    def ready(self) -> list[tuple[int, int]]:
        marked = self._marked
        if not marked:
            return []
        order = self._order
        ready = sorted(marked.items(), key=lambda item: order[item[0]])
        marked.clear()
        self._wakeup = trio.Event()
        for fd, _ in ready:
            self._taken[fd].set()
            self._taken[fd] = trio.Event()
        return ready

    async def wait(self) -> None:
        await self._wakeup.wait()

    def close(self) -> None:
        for scope in self._watchers.values():
            scope.cancel()
        self._watchers.clear()

    def _watch(self, fd: int, events: int) -> None:
        if self._nursery is None:
            return  # attach starts them
        for direction in (READABLE, WRITABLE):
            if events & direction and (fd, direction) not in self._watchers:
                scope = trio.CancelScope()
                self._watchers[fd, direction] = scope
                self._nursery.start_soon(self._wait_for, fd, direction, scope)

    async def _wait_for(self, fd: int, direction: int, scope: trio.CancelScope) -> None:
        wait = trio.lowlevel.wait_readable if direction == READABLE else trio.lowlevel.wait_writable
        with scope:
            while self._watchers.get((fd, direction)) is scope:  # else: unregistered
                if not self._interest[fd] & direction:
                    wanted = self._write_wanted[fd] = trio.Event()
                    await wanted.wait()
                    continue
                try:
                    await wait(fd)
                except (trio.ClosedResourceError, OSError):
                    return  # unregistered: the socket is closing
                if self._watchers.get((fd, direction)) is not scope:
                    return
                self._marked[fd] = self._marked.get(fd, 0) | direction
                self._wakeup.set()
                await self._taken[fd].wait()


Poller = EpollPoller | PortablePoller


def make_poller(name: str | None = None) -> Poller:
    """``epoll`` where there is one, else ``portable``; ``name`` (or ``$CONNECT4_POLLER``)
    forces one."""
    name = name or os.environ.get("CONNECT4_POLLER") or "auto"
    if name == "auto":
        name = "epoll" if hasattr(select, "epoll") else "portable"
    if name == "epoll":
        if not hasattr(select, "epoll"):
            raise ValueError("CONNECT4_POLLER=epoll: there is no epoll here (it is Linux's)")
        return EpollPoller()
    if name == "portable":
        return PortablePoller()
    raise ValueError(f"CONNECT4_POLLER={name}: not a poller (epoll, portable or auto)")
