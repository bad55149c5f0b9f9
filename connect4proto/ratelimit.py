"""How many messages one peer may send: counted in one-second windows."""

from __future__ import annotations

import enum

__all__ = ["Admission", "RateLimit"]

_INFINITY = float("inf")


class Admission(enum.Enum):
    """What to do with one more message."""

    ADMIT = "admit"
    #: Over the limit: drop it (and say so), the connection stays.
    DROP = "drop"
    #: Twice over: the peer is flooding, close it (1008).
    CLOSE = "close"

    __hash__ = object.__hash__


class RateLimit:
    """At most ``limit`` messages a second (None: no limit); at twice that, a flood.

    A window opens with the first message after the previous one closed, so a peer that
    sends at an even pace under the limit is never refused, whatever the phase.
    """

    __slots__ = ("_count", "_limit", "_start")

    def __init__(self, limit: int | None) -> None:
        self._limit = limit
        self._start = -_INFINITY  # the first message opens the first window
        self._count = 0

    def admit(self, now: float) -> Admission:
        """Count one message (or ping) arriving at ``now``."""
        limit = self._limit
        if limit is None:
            return _ADMIT
        if now - self._start >= 1.0:
            self._start = now
            self._count = 1
            return _ADMIT
        self._count += 1
        if self._count <= limit:
            return _ADMIT
        return Admission.CLOSE if self._count > 2 * limit else Admission.DROP


_ADMIT = Admission.ADMIT
