"""Move clocks: how much time each player has left, and when a player's time runs out.

A game is untimed (the tutorial's behaviour), gives a fixed time for each move
(``PerMove``), or gives each player a bank of time that grows by an increment after each of
their moves (``Bank``, Fischer's clock: "3 min + 2 s"). Only the player to move has a running
clock. Times are given in milliseconds on the wire, as whole numbers; the clock itself keeps
seconds as floats of the core's ``now``, so that nothing is rounded twice.
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

import msgspec

from .game import Player

__all__ = ["Bank", "Clock", "Clocks", "PerMove", "TimeControl"]

#: The longest time control accepted: three hours, in seconds.
_MAX_SECONDS = 3 * 3600


class PerMove(msgspec.Struct, frozen=True, tag_field="kind", tag="move"):
    """``seconds`` for every move; unused time is not kept."""

    seconds: Annotated[int, msgspec.Meta(ge=1, le=_MAX_SECONDS)]


class Bank(msgspec.Struct, frozen=True, tag_field="kind", tag="bank"):
    """``initial`` seconds each, plus ``increment`` seconds after each of one's own moves."""

    initial: Annotated[int, msgspec.Meta(ge=1, le=_MAX_SECONDS)]
    increment: Annotated[int, msgspec.Meta(ge=0, le=600)] = 0


TimeControl: TypeAlias = PerMove | Bank


class Clocks(msgspec.Struct, frozen=True, gc=False):
    """Both players' time left, in milliseconds, and whose clock runs (None: neither)."""

    red: int
    yellow: int
    running: Player | None


class Clock:
    """The two clocks of one game under ``control``; stopped until ``start``."""

    __slots__ = ("_control", "_left", "_running", "_since")

    def __init__(self, control: TimeControl) -> None:
        self._control = control
        full = float(control.seconds if isinstance(control, PerMove) else control.initial)
        self._left = {Player.RED: full, Player.YELLOW: full}
        self._running: Player | None = None
        self._since = 0.0  # when the running clock last started

    @property
    def running(self) -> Player | None:
        return self._running

    @property
    def flag_at(self) -> float | None:
        """When the running clock reaches zero (None: no clock runs)."""
        running = self._running
        return None if running is None else self._since + self._left[running]

    def left(self, player: Player, now: float) -> float:
        """Seconds ``player`` has left at ``now`` (never below 0)."""
        left = self._left[player]
        if player is self._running:
            left -= now - self._since
        return max(0.0, left)

    def start(self, player: Player, now: float) -> None:
        """``player``'s clock runs from ``now`` (the game has begun: both are seated)."""
        self._running = player
        self._since = now

    def moved(self, player: Player, now: float) -> None:
        """``player`` moved at ``now``: their clock stops and the opponent's runs.

        A move made before the clocks started (red's first, before anyone joined) costs
        nothing, earns no increment, and starts nothing: ``start`` does, when yellow comes.
        """
        if self._running is None:
            return
        assert self._running is player  # the rules let only the player to move play
        control = self._control
        if isinstance(control, PerMove):
            self._left[player] = float(control.seconds)
        else:
            self._left[player] = self.left(player, now) + control.increment
        self._running = Player.YELLOW if player is Player.RED else Player.RED
        self._since = now

    def stop(self, now: float) -> None:
        """The game is over: both clocks keep what they show at ``now``."""
        running = self._running
        if running is not None:
            self._left[running] = self.left(running, now)
            self._running = None

    def copy(self) -> Clock:
        other = Clock.__new__(Clock)
        other._control = self._control
        other._left = dict(self._left)
        other._running = self._running
        other._since = self._since
        return other

    def show(self, clocks: Clocks, at: float) -> None:
        """Set both clocks to what ``clocks`` showed at ``at``: how a node that did not see
        a move (another process made it) learns the clocks from the move's logged event."""
        self._left = {Player.RED: clocks.red / 1000, Player.YELLOW: clocks.yellow / 1000}
        self._running = clocks.running
        self._since = at

    def clocks(self, now: float) -> Clocks:
        """What the clocks show at ``now``, in whole milliseconds (rounded down, so that a
        client never shows time a player does not have)."""
        return Clocks(
            red=int(self.left(Player.RED, now) * 1000),
            yellow=int(self.left(Player.YELLOW, now) * 1000),
            running=self._running,
        )
