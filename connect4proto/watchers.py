"""How many spectators watch a game, told to everyone in it at most once per interval.

A crowd that comes and goes must not cost a message per arrival to every member: a change is
told at once if the last telling is an interval old, else when the interval ends (and not at
all if the count is back where it was by then). A newcomer is told the count as it is, at
once; if that differs from what everyone else was last told, the newcomer holds a number the
next telling may not correct (the count may come back to the told one meanwhile): it is
remembered, and told again when the interval ends.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field

from .events import ConnectionId

__all__ = ["SpectatorCount", "Telling"]


@dataclass(frozen=True, slots=True)
class Telling:
    """Tell ``count`` to every versioned member (``everyone``), or to these ``privately``."""

    count: int
    everyone: bool = False
    privately: tuple[ConnectionId, ...] = ()


_NOBODY = ()


@dataclass(slots=True)
class SpectatorCount:
    """The spectator count of one game, and what its members were last told of it."""

    interval: float
    count: int = 0
    #: What everyone was last told, and when.
    told: int = 0
    told_at: float = -math.inf
    #: Newcomers told a count other than ``told``, within the interval (a dict as an ordered
    #: set: an empty one is a third of an empty set's size, and every game has one).
    stale: dict[ConnectionId, None] = field(default_factory=dict)

    @property
    def deadline(self) -> float | None:
        """When the count must be told again (None: everyone holds it already)."""
        if self.count != self.told or self.stale:
            return self.told_at + self.interval
        return None

    def arrived(self, spectator: ConnectionId | None, now: float) -> Telling:
        """A spectator came (``spectator`` None: one that cannot be told, of the tutorial's
        protocol): the count changed."""
        self.count += 1
        return self._tell(now, spectator)

    def left(self, spectators: Collection[ConnectionId], now: float) -> Telling:
        """These spectators left (several at once are one change)."""
        self.count -= len(spectators)
        for spectator in spectators:
            self.stale.pop(spectator, None)
        return self._tell(now, None)

    def newcomer(self, connection: ConnectionId) -> Telling:
        """``connection`` (a player coming back) is to be told the count as it is."""
        if self.count != self.told:
            self.stale[connection] = None
        return Telling(self.count, privately=(connection,))

    def forget(self, connection: ConnectionId) -> None:
        """``connection`` is gone: it needs telling no more."""
        self.stale.pop(connection, None)

    def due(self, now: float) -> Telling:
        """The game's timer ran: tell what the interval held back."""
        return self._tell(now, None)

    def _tell(self, now: float, newcomer: ConnectionId | None) -> Telling:
        count = self.count
        due = now >= self.told_at + self.interval
        if count != self.told and due:
            self.told, self.told_at = count, now
            self.stale.clear()
            return Telling(count, everyone=True)
        privately: tuple[ConnectionId, ...] = _NOBODY
        if due and self.stale:
            # Back where everyone was told it was: only the newcomers told otherwise are wrong.
            privately = tuple(self.stale)
            self.stale.clear()
        if newcomer is not None:
            if count != self.told:
                self.stale[newcomer] = None
            privately = (*privately, newcomer)
        return Telling(count, privately=privately)
