"""The store outside, in memory: what Redis does for processes that share their games.

``SharedLog`` carries out the core's store intents as ``driver/redis_log.py`` does against a
real Redis (an append at an expected version, all or nothing and once per intent; secrets by
digest; every event to the processes that follow its game, after a catch-up from the log when
they start following), and delivers its answers in order, at once or when a test says
(``automatic``): a race between two processes is then a choice of delivery order. It can be
made unreachable (``down``). Several ``SharedNetwork``s on one log are several server
processes, each with its own connections.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from peers import Chunker, Network, whole

from connect4proto import Config, GameId, Output
from connect4proto.log import Logged
from connect4proto.shared import Append, Follow, Found, Lookup, SharedStore, StoreIntent, Unfollow
from connect4proto.store import Credential

__all__ = ["SharedLog", "SharedNetwork"]


class SharedLog:
    """Games' logs and secrets shared by several ``SharedNetwork``s."""

    def __init__(self, *, automatic: bool = True) -> None:
        self.logs: dict[GameId, list[Logged]] = {}
        self.keys: dict[GameId, tuple[str, str]] = {}
        self.secrets: dict[bytes, tuple[GameId, Credential]] = {}
        self.followers: dict[GameId, list[SharedNetwork]] = {}
        #: What each intent got, by (process, intent): a retry gets the same answer.
        self.answers: dict[tuple[int, int], object] = {}
        self.automatic = automatic
        self.down = False
        self.appends = 0
        self._deliveries: deque[Callable[[], None]] = deque()
        self._delivering = False
        self._game_ids = itertools.count(1)

    def new_game_id(self) -> GameId:
        return GameId(next(self._game_ids))

    @property
    def waiting(self) -> int:
        """Answers not delivered yet."""
        return len(self._deliveries)

    def ask(self, node: SharedNetwork, intent: StoreIntent) -> None:
        if type(intent) is Append:
            self._append(node, intent)
        elif type(intent) is Follow:
            self._follow(node, intent)
        elif type(intent) is Unfollow:
            followers = self.followers.get(intent.game, [])
            if node in followers:
                followers.remove(node)
        else:
            assert type(intent) is Lookup
            self._lookup(node, intent)
        if self.automatic:
            self.deliver()

    def deliver(self, count: int | None = None) -> None:
        """Deliver the answers waiting, in order (``count``: only that many)."""
        if self._delivering:
            return  # the outer call delivers what this one would
        self._delivering = True
        try:
            while self._deliveries and (count is None or count > 0):
                self._deliveries.popleft()()
                if count is not None:
                    count -= 1
        finally:
            self._delivering = False

    def _later(self, node: SharedNetwork, call: Callable[..., Output], *arguments: Any) -> None:
        self._deliveries.append(lambda: node.apply(call(*arguments, node.now)))

    def _append(self, node: SharedNetwork, intent: Append) -> None:
        server = node.server
        if self.down:
            self._later(node, server.store_unavailable, intent.intent)
            return
        answered = (id(node), intent.intent)
        if answered in self.answers:  # a retry: done already
            self._later(node, server.appended, intent.intent)
            return
        log = self.logs.setdefault(intent.game, [])
        if len(log) != intent.expected:
            self._later(node, server.conflicted, intent.intent, tuple(log[intent.expected :]))
            return
        self.appends += 1
        log.extend(intent.events)
        self.answers[answered] = True
        if intent.keys is not None:
            self.keys[intent.game] = intent.keys
        for digest, credential in intent.secrets:
            assert digest not in self.secrets
            self.secrets[digest] = (intent.game, credential)
        self._later(node, server.appended, intent.intent)
        for follower in self.followers.get(intent.game, []):
            self._later(follower, follower.server.remote, intent.game, intent.events)

    def _follow(self, node: SharedNetwork, intent: Follow) -> None:
        followers = self.followers.setdefault(intent.game, [])
        if node not in followers:
            followers.append(node)
        missed = tuple(self.logs.get(intent.game, [])[intent.version :])
        if missed:  # what was appended before the subscription began
            self._later(node, node.server.remote, intent.game, missed)

    def _lookup(self, node: SharedNetwork, intent: Lookup) -> None:
        server = node.server
        if self.down:
            self._later(node, server.lookup_unavailable, intent.digest)
            return
        found = self.secrets.get(intent.digest)
        answer = None
        if found is not None:
            game, credential = found
            events = tuple(self.logs[game])
            answer = Found(
                game=game, credential=credential, events=events, keys=self.keys.get(game)
            )
        self._later(node, server.looked_up, intent.digest, answer)


class SharedNetwork(Network):
    """A server process whose games are shared through ``log``."""

    def __init__(self, log: SharedLog, chunker: Chunker = whole, **kwargs: Any) -> None:
        config = kwargs.setdefault("config", Config())
        kwargs.setdefault("store", SharedStore(max_events=config.max_log_events))
        kwargs.setdefault("new_game_id", log.new_game_id)
        super().__init__(chunker, **kwargs)
        self.log = log

    def apply(self, output: Output) -> None:
        super().apply(output)
        for intent in output.store:
            self.log.ask(self, intent)
