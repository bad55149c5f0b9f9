"""Deadlines of any owner (a connection, a game), checked lazily.

A heap of ``(when, tie-break, owner)`` and, per owner, the earliest time it asked for. An
entry whose time is no longer its owner's earliest is stale and skipped when it comes due, so
moving a deadline later (a message from a peer pushes its ping back) costs no heap operation:
the owner is simply woken at the old time, finds nothing to do, and asks again.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["Timers"]

K = TypeVar("K", bound=Hashable)

_INFINITY = float("inf")


class Timers(Generic[K]):
    """When each owner wants to be woken next, at the latest."""

    __slots__ = ("_count", "_earliest", "_heap", "next_deadline")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._earliest: dict[K, float] = {}
        self._count = 0
        #: The earliest entry's time (possibly a stale one: waking early is harmless). Kept
        #: as the heap changes, not worked out when asked: the driver asks twice a wake-up.
        self.next_deadline: float | None = None

    def schedule(self, owner: K, when: float) -> None:
        """Wake ``owner`` at ``when`` (or earlier, if it asked for an earlier time)."""
        if when < self._earliest.get(owner, _INFINITY):
            self._earliest[owner] = when
            self._count += 1
            heap = self._heap
            heapq.heappush(heap, (when, self._count, owner))
            self.next_deadline = heap[0][0]

    def cancel(self, owner: K) -> None:
        """Forget ``owner``'s deadline (it is gone): its heap entries become stale."""
        self._earliest.pop(owner, None)

    def pop_due(self, now: float) -> list[K]:
        """The owners whose deadline is at or before ``now``, each once, in time order.

        Their deadlines are cleared: each must ``schedule`` again if it still has one.
        """
        heap = self._heap
        earliest = self._earliest
        due: list[K] = []
        while heap and heap[0][0] <= now:
            when, _, owner = heapq.heappop(heap)
            if earliest.get(owner) == when:
                del earliest[owner]
                due.append(owner)
        self.next_deadline = heap[0][0] if heap else None
        return due
