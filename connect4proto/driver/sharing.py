"""Games shared through Redis: the core's store intents carried out, and what comes back
handed to the core.

The core decides on its replica and emits intents (``connect4proto.shared``); ``SharedGames``
runs each against Redis in a task of its own and gives the outcome back through the driver
(``Driver.from_outside``), as the computer's moves are. What an outcome means for the core:

- an append Redis took is ``appended``; one at a version that is gone is ``conflicted``, with
  what the other process appended (read from the log);
- an append that could not be sent, or that Redis refused, is ``store_unavailable`` at once:
  the player is told to try again, and nothing is accepted into this process alone;
- an append sent and not answered (a timeout, a connection lost) may have been applied: it
  is sent again with the same intent id, which appends nothing twice, for ``give_up_after``
  seconds; after that it is ``store_unavailable``, and if it was applied after all, the
  log says so and every process follows it (the player sees the move come back).

The games this process holds are followed (``Follower``); ``reachable`` is what the health
check says, from every round trip and a ``PING`` each second.
"""

from __future__ import annotations

import collections
import logging
import secrets
from collections.abc import Callable, Sequence
from functools import partial

import trio

from connect4proto import GameServer, Output
from connect4proto.events import GameId
from connect4proto.log import Logged
from connect4proto.shared import Append, Follow, Lookup, StoreIntent, Unfollow
from connect4proto.store import Conflict

from .metrics import STORE_BUCKETS, Histogram
from .redis_log import Appended, Follower, GameGone, RedisLog
from .resp import Ambiguous, RedisError, Subscription

__all__ = ["SharedGames"]


def _gone(core: GameServer, process: str, now: float) -> Output:
    return core.process_gone(process, now)


log = logging.getLogger("connect4proto")

#: Game ids taken from Redis at a time (one ``INCRBY``); more are taken when half are used.
ID_BLOCK = 1000


class SharedGames:
    """This process's side of the games it shares with others through Redis."""

    def __init__(
        self,
        redis_log: RedisLog,
        subscription: Subscription,
        *,
        give_up_after: float = 5.0,
        retry: float = 0.25,
        ping_interval: float = 1.0,
        id_block: int = ID_BLOCK,
    ) -> None:
        self.log = redis_log
        self._follower = Follower(redis_log, subscription, self._remote, retry=retry)
        self._give_up_after = give_up_after
        self._retry = retry
        self._ping_interval = ping_interval
        self._id_block = id_block
        #: This process's name among those sharing games: it prefixes the core's intent ids
        #: (unique in this process: so, everywhere), and names it in its heartbeat.
        self.process = secrets.token_hex(8)
        self._alive_for = max(2, round(5 * ping_interval))
        self._ids: collections.deque[int] = collections.deque()
        self._refilling = False
        self._answer: Callable[[Callable[[float], Output]], None] | None = None
        self._core: GameServer | None = None
        self._nursery: trio.Nursery | None = None
        self._following: trio.MemorySendChannel[Follow | Unfollow] | None = None
        #: Whether Redis answered the last round trip (for ``/healthz``).
        self.reachable = False
        #: Round trips by outcome, and how long decisions wait for Redis, for the metrics.
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.waits = {"append": Histogram(STORE_BUCKETS), "lookup": Histogram(STORE_BUCKETS)}

    # -- wiring -------------------------------------------------------------------------

    def attach(self, core: GameServer, answer: Callable[[Callable[[float], Output]], None]) -> None:
        """Hand outcomes to ``core`` through ``answer`` (``Driver.from_outside``)."""
        self._core = core
        self._answer = answer

    @property
    def following(self) -> int:
        return self._follower.following

    def health(self) -> str | None:
        """None while Redis answers; else why this process should get no new players."""
        return None if self.reachable else "Redis cannot be reached: reconnecting"

    def new_game_id(self) -> GameId | None:
        """An id for a new game (None: none reserved, Redis is away)."""
        if len(self._ids) <= self._id_block // 2 and not self._refilling and self._nursery:
            self._refilling = True
            self._nursery.start_soon(self._reserve)
        return GameId(self._ids.popleft()) if self._ids else None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the intents until cancelled; started (``task_status``) once Redis has
        answered and the first game ids are reserved (waiting for it meanwhile)."""
        await self._reserve()
        log.info("games are shared through Redis at %s", self.log.redis.address)
        send, receive = trio.open_memory_channel[Follow | Unfollow](float("inf"))
        self._following = send
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._follower.run)
                nursery.start_soon(self._follow, receive)
                nursery.start_soon(self._heartbeat)
                task_status.started()
        finally:
            self._nursery = None  # stopping: what Redis still answers is dropped
            with trio.CancelScope(shield=True):
                await self.log.redis.aclose()

    def submit(self, intents: Sequence[StoreIntent]) -> None:
        """Carry out ``intents`` (from ``Output.store``), each in a task of its own; follows
        and unfollows in order, in one."""
        nursery, following = self._nursery, self._following
        assert nursery is not None
        assert following is not None
        for intent in intents:
            if type(intent) is Append:
                # Sent at once on the open connection, the answer handled as it is read;
                # what that path cannot do (secrets, no connection, a failure) is a task's.
                asked = trio.current_time()
                answered = partial(self._answered_now, intent, asked)
                if not self.log.append_now(intent, self._key(intent), answered):
                    nursery.start_soon(self._append, intent, asked)
            elif type(intent) is Lookup:
                nursery.start_soon(self._lookup, intent)
            else:
                assert type(intent) is Follow or type(intent) is Unfollow
                following.send_nowait(intent)

    # -- the intents ----------------------------------------------------------------------

    def _key(self, intent: Append) -> str:
        return f"{self.process}-{intent.intent}"

    def _answered_now(
        self, intent: Append, asked: float, outcome: Appended | Conflict | Exception
    ) -> None:
        nursery = self._nursery
        if nursery is None:
            return  # this process is stopping: nothing more is decided here
        if not isinstance(outcome, Appended | Conflict):
            # The careful way: retried if ambiguous, with the same intent id.
            nursery.start_soon(self._append, intent, asked)
            return
        self.waits["append"].observe(trio.current_time() - asked)
        self._answered("appended")
        if isinstance(outcome, Conflict):
            nursery.start_soon(self._conflicted, intent)
        else:
            self._appended(intent, outcome)

    async def _append(self, intent: Append, asked: float) -> None:
        key = self._key(intent)
        give_up = asked + self._give_up_after
        core = self._core
        assert core is not None
        while True:
            try:
                result = await self.log.append(intent, key)
            except Ambiguous as exc:
                self._failed("ambiguous")
                if trio.current_time() < give_up:
                    log.warning(
                        "game %d: append not answered (%s): sending it again", intent.game, exc
                    )
                    await trio.sleep(self._retry)
                    continue  # the same intent id: appended at most once
                log.warning("game %d: no answer from Redis in time: refused", intent.game)
                self._give(lambda now: core.store_unavailable(intent.intent, now))
                return
            except (RedisError, GameGone, ValueError) as exc:
                self._failed("unavailable")
                log.warning("game %d: cannot append (%s): refused", intent.game, exc)
                self._give(lambda now: core.store_unavailable(intent.intent, now))
                return
            break
        self._answered_now(intent, asked, result)  # as if it had come the quick way

    def _appended(self, intent: Append, result: Appended) -> None:
        core = self._core
        assert core is not None
        self._follower.seen(intent.game, result.version)
        self._give(lambda now: core.appended(intent.intent, now))

    async def _conflicted(self, intent: Append) -> None:
        """Another process appended first: the core is given what it appended."""
        core = self._core
        assert core is not None
        try:
            events = await self.log.since(intent.game, intent.expected) or []
        except (RedisError, GameGone) as exc:
            self._failed("unavailable")
            log.warning("game %d: cannot read the log (%s)", intent.game, exc)
            self._give(lambda now: core.store_unavailable(intent.intent, now))
            return
        self.outcomes["conflict"] += 1
        self._give(lambda now: core.conflicted(intent.intent, events, now))

    async def _lookup(self, intent: Lookup) -> None:
        core = self._core
        assert core is not None
        asked = trio.current_time()
        try:
            found = await self.log.lookup(intent.digest)
        except RedisError as exc:
            self._failed("unavailable")
            log.warning("cannot look a secret up (%s): refused", exc)
            self._give(lambda now: core.lookup_unavailable(intent.digest, now))
            return
        self.waits["lookup"].observe(trio.current_time() - asked)
        self._answered("lookup")
        self._give(lambda now: core.looked_up(intent.digest, found, now))

    async def _follow(self, intents: trio.MemoryReceiveChannel[Follow | Unfollow]) -> None:
        # Neither raises: a subscription that is down subscribes to every channel once it is
        # back, and a log that cannot be read is read again later (``Follower``).
        async for intent in intents:
            if type(intent) is Follow:
                await self._follower.follow(intent.game, intent.version)
            else:
                await self._follower.unfollow(intent.game)

    def _remote(self, game: GameId, events: list[Logged]) -> None:
        core = self._core
        assert core is not None
        self._give(lambda now: core.remote(game, events, now))

    # -- Redis' health, and game ids ----------------------------------------------------------

    async def _reserve(self) -> None:
        """Take a block of game ids, trying again until Redis answers."""
        waited = False
        try:
            while True:
                try:
                    self._ids.extend(await self.log.reserve_ids(self._id_block))
                except RedisError as exc:
                    self._failed("unavailable")
                    if not waited:
                        log.warning("waiting for Redis at %s: %s", self.log.redis.address, exc)
                        waited = True
                    await trio.sleep(self._retry)
                    continue
                self._answered("ids")
                return
        finally:
            self._refilling = False

    async def _heartbeat(self) -> None:
        """Say this process is alive (a key that expires unless renewed: the round trip is
        the health check's too), and look for the processes that hold seats of the games
        held here: the seats of one that is gone are logged away (``process_gone``)."""
        core = self._core
        assert core is not None
        alive = self._alive_key(self.process)
        while True:
            try:
                await self.log.redis.execute(
                    "SET", alive, 1, "EX", self._alive_for, idempotent=True
                )
                others = sorted(core.held_elsewhere() - {self.process})
                found = (
                    await self.log.redis.pipeline(
                        [("EXISTS", self._alive_key(other)) for other in others], idempotent=True
                    )
                    if others
                    else []
                )
            except RedisError as exc:
                if self.reachable:
                    log.warning("Redis cannot be reached: %s", exc)
                self._failed("unavailable")
            else:
                if not self.reachable:
                    log.info("Redis is back")
                self._answered("ping")
                for other, exists in zip(others, found, strict=True):
                    if exists == 0:
                        log.warning("process %s is gone: its seats are away", other)
                        self._give(partial(_gone, core, other))
            await trio.sleep(self._ping_interval)

    @staticmethod
    def _alive_key(process: str) -> str:
        return f"c4:process:{process}"

    def _answered(self, what: str) -> None:
        self.reachable = True
        self.outcomes[what] += 1

    def _failed(self, why: str) -> None:
        self.reachable = False
        self.outcomes[why] += 1

    def _give(self, call: Callable[[float], Output]) -> None:
        answer = self._answer
        assert answer is not None
        answer(call)
