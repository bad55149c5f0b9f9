"""A browser page of the versioned protocol, in memory, for the core's tests.

A ``Tab`` applies each event once in order of ``v``, as the web UI does, so that "holds
exactly the game's log" can be checked; what is not in the log (the spectator count, the
clocks as they stand) it keeps as its latest value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from peers import Network

__all__ = ["Tab", "comparable", "log_of", "new_game", "play_moves", "read_all"]


class Tab:
    """A page of the versioned protocol: one WebSocket at a time, and what it applied."""

    def __init__(self, network: Network, **init: Any) -> None:
        self.network = network
        self.applied: list[dict[str, Any]] = []  # the game's log as this page holds it
        self.seat: dict[str, Any] | None = None
        self.watching: dict[str, Any] | None = None
        self.keys: dict[str, Any] | None = None
        self.errors: list[dict[str, Any]] = []
        self.watchers = 0
        self.clock: dict[str, Any] | None = None
        self.peer = network.websocket()
        self.peer.send({"type": "init", "v": 0, **init})
        self.read()

    @property
    def v(self) -> int:
        return self.applied[-1]["v"] if self.applied else 0

    def read(self) -> list[dict[str, Any]]:
        """Apply what arrived: versioned events once each, in order; returns them all."""
        messages = self.peer.take()
        for message in messages:
            kind = message["type"]
            if kind == "seat":
                # The version its catch-up reaches: nothing is applied beyond it yet.
                assert message["v"] >= self.v or self.applied == [], message
                # At a rematch, a new colour without a token: the token stays.
                self.seat = {**(self.seat or {}), **message}
            elif kind == "watching":
                self.watching = message
            elif kind == "init":
                self.keys = message
            elif kind == "error":
                self.errors.append(message)
            elif kind == "watchers":
                self.watchers = message["count"]  # not in the log: the latest is the truth
            elif kind == "clock":
                self.clock = message["clock"]
            elif kind == "sync":
                self.applied = [message]  # a snapshot replaces everything before it
            else:
                assert "v" in message, message
                if message["v"] <= self.v:
                    continue  # already applied: a duplicate is dropped
                assert message["v"] == self.v + 1, f"gap: {self.v} then {message}"
                self.applied.append(message)
        return messages

    def drop(self) -> None:
        """The transport fails (a reset, a network change): no close frame."""
        self.network.lose(self.peer)

    def resume(self, **init: Any) -> list[dict[str, Any]]:
        """A new connection that takes up where this page left off."""
        if not init:
            assert self.seat is not None
            init = {"token": self.seat["token"]}
        self.peer = self.network.websocket()
        self.peer.send({"type": "init", "v": self.v, **init})
        return self.read()

    def play(self, column: int) -> None:
        self.peer.send({"type": "play", "column": column})

    def send(self, kind: str, **fields: Any) -> None:
        self.peer.send({"type": kind, **fields})

    @property
    def last(self) -> dict[str, Any]:
        """The last event this page applied."""
        return self.applied[-1]


def log_of(tab: Tab) -> list[dict[str, Any]]:
    """What ``tab`` applied, as comparable events: an ``away``'s ``grace`` is the time left
    when it was sent, so a replay says less than the live event did; it is left out."""
    return comparable(m for m in tab.applied if m["type"] != "sync")


def comparable(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in m.items() if not (m["type"] == "away" and k == "grace")} for m in messages
    ]


def new_game(network: Network) -> tuple[Tab, Tab, Tab]:
    """Red and yellow seated, and an observer who stays connected throughout."""
    red = Tab(network)
    assert red.keys is not None
    observer = Tab(network, watch=red.keys["watch"])
    yellow = Tab(network, join=red.keys["join"])
    for tab in (red, observer):
        tab.read()
    return red, yellow, observer


def read_all(*tabs: Tab) -> None:
    for tab in tabs:
        tab.read()


def play_moves(tabs: dict[str, Tab], moves: list[int], *watchers: Tab) -> None:
    """Play ``moves`` in turn from the current position (red first on an even count)."""
    observer = watchers[0]
    for column in moves:
        count = sum(1 for m in observer.applied if m["type"] == "play")
        tabs["red" if count % 2 == 0 else "yellow"].play(column)
        read_all(*tabs.values(), *watchers)
