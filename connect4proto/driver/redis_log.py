"""Every game's log and secrets in Redis, shared by any number of server processes.

Per game ``G``, under one hash tag (``{G}``, so that Redis Cluster keeps a game on one shard):
- ``c4:{G}:meta``, a hash: ``version``, the number of events appended; ``join`` and ``watch``,
  the game's invite keys (its creator's page is given them again when it comes back, on any
  process: they only let one take the vacant seat or watch);
- ``c4:{G}:log``, a stream: event ``v`` is the entry ``0-v``, with its kind and fields
  (``persistence``) and the time it was decided;
- ``c4:{G}:intents``, a hash: each append's intent id, and the version it reached;
- the channel ``c4:{G}``: every append, published by the script that made it.

A secret is found by its digest (of a join or watch key, or a seat token: never the secret
itself): the key ``c4:secret:HEX``, whose value is ``G CREDENTIAL``. Secrets are written
before the append that gives them out, so that the append stays one script on one shard: a
secret of an append that did not make it leads to a game nobody was given it for.

An append is one script (``APPEND``), so that two processes racing for the same version
cannot both win: it checks the expected version, appends, publishes, and records its intent
id, all or nothing. A retry with the same intent id (after a timeout: the first attempt may
have been applied) answers what the first attempt did, and appends nothing. Every append
sets the game's keys to expire ``ttl`` seconds later: a game nobody plays is gone after it,
and a looked-up secret lives as long again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio

from connect4proto.events import GameId
from connect4proto.log import Logged
from connect4proto.persistence import decode_event, encode_event
from connect4proto.shared import Append, Found
from connect4proto.store import Conflict, Credential

from .resp import (
    Message,
    Outcome,
    Redis,
    RedisError,
    ReplyError,
    Resubscribed,
    Subscription,
)

__all__ = ["APPEND", "Appended", "Follower", "GameGone", "RedisLog"]

#: KEYS: meta, log, intents. ARGV: expected version, intent id, channel, ttl, "1" for a new
#: game, its join and watch keys, then each event's kind, fields and time. Answers
#: {"appended" | "again" | "conflict" | "missing", version}.
APPEND = b"""
local done = redis.call('HGET', KEYS[3], ARGV[2])
if done then return {'again', tonumber(done)} end
local version = redis.call('HGET', KEYS[1], 'version')
if version then
    version = tonumber(version)
elseif ARGV[5] == '1' then
    redis.call('HSET', KEYS[1], 'version', 0, 'join', ARGV[6], 'watch', ARGV[7])
    version = 0
else
    return {'missing', 0}
end
if version ~= tonumber(ARGV[1]) then return {'conflict', version} end
local published = {}
for k = 8, #ARGV, 3 do
    version = version + 1
    local kind, fields, at = ARGV[k], ARGV[k + 1], ARGV[k + 2]
    redis.call('XADD', KEYS[2], '0-' .. version, 'k', kind, 'f', fields, 't', at)
    published[#published + 1] = version .. ' ' .. at .. ' ' .. #kind .. ' ' .. #fields
        .. '\\n' .. kind .. fields
end
redis.call('HSET', KEYS[1], 'version', version)
redis.call('HSET', KEYS[3], ARGV[2], version)
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[4]) end
redis.call('PUBLISH', ARGV[3], table.concat(published))
return {'appended', version}
"""
APPEND_SHA = hashlib.sha1(APPEND).hexdigest()


@dataclass(frozen=True, slots=True)
class Appended:
    """The events are in the log, the last at ``version``."""

    version: int


class GameGone(Exception):
    """The game is not in Redis (it expired, or was never created there)."""


def parse_published(data: bytes) -> list[Logged]:
    """The events of one published append, in order."""
    logged = []
    at = 0
    while at < len(data):
        end = data.index(b"\n", at)
        version, when, kind_size, fields_size = data[at:end].split()
        kind_end = end + 1 + int(kind_size)
        kind = data[end + 1 : kind_end]
        fields_end = kind_end + int(fields_size)
        event = decode_event(kind, data[kind_end:fields_end])
        logged.append(Logged(int(version), event, float(when)))
        at = fields_end
    return logged


class RedisLog:
    """The games' logs and secrets, as the core's ``shared`` intents ask, in Redis."""

    def __init__(self, redis: Redis, *, ttl: float = 24 * 3600) -> None:
        self.redis = redis
        self.ttl = max(1, round(ttl))

    @staticmethod
    def channel(game: GameId) -> bytes:
        return b"c4:{%d}" % game

    @staticmethod
    def _keys(game: GameId) -> tuple[bytes, bytes, bytes]:
        tag = b"c4:{%d}" % game
        return tag + b":meta", tag + b":log", tag + b":intents"

    @staticmethod
    def _secret(digest: bytes) -> bytes:
        return b"c4:secret:" + digest.hex().encode()

    async def reserve_ids(self, count: int) -> range:
        """``count`` game ids no other process has (one ``INCRBY``)."""
        last = await self.redis.execute("INCRBY", "c4:games", count, idempotent=True)
        return range(last - count + 1, last + 1)

    async def append(self, intent: Append, key: str) -> Appended | Conflict:
        """Carry out ``intent`` (``key``: its id, unique across processes): its secrets,
        then its events if the log is still at ``intent.expected``; or the version the log
        is at instead.

        ``Ambiguous`` (``resp``: no answer, even after one retry on a new connection): it
        may have been applied; call again with the same ``key``, which appends nothing the
        second time and answers the same."""
        if intent.secrets:
            await self._add_secrets(intent.game, intent.secrets)
        command = self._append_command(intent, key)
        # Idempotent by its intent id: a connection found broken is opened again and the
        # append sent once more, which appends nothing if the first one got through.
        try:
            reply = await self.redis.execute(*command, idempotent=True)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            command[0:2] = ["EVAL", APPEND]
            reply = await self.redis.execute(*command, idempotent=True)
        return self._outcome(intent.game, reply)

    def append_now(
        self, intent: Append, key: str, done: Callable[[Appended | Conflict | Exception], None]
    ) -> bool:
        """The common append sent at once on the open connection (``Redis.request``), its
        outcome (or why there is none) given to ``done`` when Redis answers. False, and
        nothing sent, when ``append`` must do it: there are secrets to write first, or no
        connection is open. Any failure given to ``done`` is for ``append`` to handle (an
        unknown script, an ambiguous answer, a game gone), with the same ``key``."""
        if intent.secrets:
            return False

        def replied(outcome: Outcome) -> None:
            if isinstance(outcome, RedisError):
                done(outcome)
                return
            (reply,) = outcome
            if isinstance(reply, ReplyError):
                done(reply)
                return
            try:
                done(self._outcome(intent.game, reply))
            except GameGone as exc:
                done(exc)

        return self.redis.request([self._append_command(intent, key)], replied)

    def _append_command(self, intent: Append, key: str) -> list[bytes | str | int]:
        join, watch = intent.keys or ("", "")
        command: list[bytes | str | int] = [
            "EVALSHA",
            APPEND_SHA,
            3,
            *self._keys(intent.game),
            intent.expected,
            key,
            self.channel(intent.game),
            self.ttl,
            "1" if intent.keys is not None else "0",
            join,
            watch,
        ]
        for logged in intent.events:
            command.extend(encode_event(logged.event))
            command.append(repr(logged.at))
        return command

    @staticmethod
    def _outcome(game: GameId, reply: list[bytes | int]) -> Appended | Conflict:
        outcome, version = reply
        assert isinstance(version, int)
        if outcome == b"missing":
            raise GameGone(f"game {game} is not in Redis")
        if outcome == b"conflict":
            return Conflict(version)
        return Appended(version)

    async def _add_secrets(self, game: GameId, secrets: Sequence[tuple[bytes, Credential]]) -> None:
        commands = [
            ("SET", self._secret(digest), f"{game} {credential.value}", "NX", "EX", self.ttl)
            for digest, credential in secrets
        ]
        replies = await self.redis.pipeline(commands, idempotent=True)
        for (digest, credential), reply in zip(secrets, replies, strict=True):
            if isinstance(reply, ReplyError):
                raise reply
            # Not set: it exists. A retry's own secret is fine; another game's is not.
            if reply is None and await self._find(digest) != (game, credential):
                raise ValueError("a secret that is already in use")

    async def since(self, game: GameId, version: int) -> list[Logged] | None:
        """Every event after ``version``, in order; None if ``version`` is ahead of the log
        (as ``MemoryStore.since`` says it: the client must be sent a snapshot)."""
        meta, log, _ = self._keys(game)
        current, entries = await self.redis.pipeline(
            [("HGET", meta, "version"), ("XRANGE", log, f"0-{version + 1}", "+")],
            idempotent=True,
        )
        if current is None:
            raise GameGone(f"game {game} is not in Redis")
        if version > int(current):
            return None
        return _entries(entries)

    async def lookup(self, digest: bytes) -> Found | None:
        """The game the secret of ``digest`` leads to, with its whole log and its keys
        (None: no game). The secret then lives for ``ttl`` seconds more."""
        value = await self.redis.execute(
            "GETEX", self._secret(digest), "EX", self.ttl, idempotent=True
        )
        if value is None:
            return None
        game_text, credential = value.split()
        game = GameId(int(game_text))
        meta, log, _ = self._keys(game)
        (version, join, watch), entries = await self.redis.pipeline(
            [("HMGET", meta, "version", "join", "watch"), ("XRANGE", log, "-", "+")],
            idempotent=True,
        )
        if version is None:
            return None  # its game expired, or never got its first event in
        keys = (join.decode(), watch.decode()) if join else None
        return Found(
            game=game,
            credential=Credential(credential.decode()),
            events=tuple(_entries(entries)),
            keys=keys,
        )

    async def _find(self, digest: bytes) -> tuple[GameId, Credential] | None:
        value = await self.redis.execute("GET", self._secret(digest), idempotent=True)
        if value is None:
            return None
        game, credential = value.split()
        return GameId(int(game)), Credential(credential.decode())


def _entries(entries: list[list[object]]) -> list[Logged]:
    logged = []
    for entry_id, fields in entries:
        assert isinstance(entry_id, bytes)
        assert isinstance(fields, list)
        pairs = dict(zip(fields[::2], fields[1::2], strict=True))
        event = decode_event(pairs[b"k"], pairs[b"f"])
        logged.append(Logged(int(entry_id[2:]), event, float(pairs[b"t"])))
    return logged


class Follower:
    """Gives ``deliver`` the events appended to the games followed here (by any process),
    each once, in order of version.

    Pub/sub is at most once: a message published while the subscription is down is lost, and
    nothing says so but a gap. So the follower remembers the last version it gave of each
    game, and reads what is missing from the log when it starts following a game, after
    every resubscription and at every gap; what it gave already (this process's own appends
    come back too) it drops. One lock orders all of it, so that a game's events are given in
    order whichever task read them.
    """

    def __init__(
        self,
        log: RedisLog,
        subscription: Subscription,
        deliver: Callable[[GameId, list[Logged]], None],
        *,
        retry: float = 0.5,
    ) -> None:
        self._log = log
        self._subscription = subscription
        self._deliver = deliver
        self._retry = retry
        self._versions: dict[GameId, int] = {}
        self._by_channel: dict[bytes, GameId] = {}
        # Games whose log could not be read when it had to be (Redis went away meanwhile):
        # read again every ``retry`` seconds until it can.
        self._behind: set[GameId] = set()
        self._lock = trio.Lock()

    @property
    def following(self) -> int:
        return len(self._versions)

    async def follow(self, game: GameId, version: int) -> None:
        """Give ``game``'s events after ``version`` from now on: what is published once Redis
        has confirmed the subscription, and what the log has (read after the confirmation,
        so that nothing published in between is missed)."""
        if game in self._versions:
            return
        self._versions[game] = version
        channel = RedisLog.channel(game)
        self._by_channel[channel] = game
        # Not under the lock: the confirmation is read by the listener, which may need the
        # lock meanwhile. Messages heard before the log is read are given (a gap, read from
        # the log), or dropped once the log has given them.
        confirmed = await self._subscription.subscribe(channel)
        async with self._lock:
            await self._catch_up(game)
            if not confirmed:
                # Redis is slow or away: the log is read again later, so that a message
                # published before the subscription took effect is not lost.
                self._behind.add(game)

    async def unfollow(self, game: GameId) -> None:
        async with self._lock:
            self._versions.pop(game, None)
            channel = RedisLog.channel(game)
            self._by_channel.pop(channel, None)
            await self._subscription.unsubscribe(channel)

    def seen(self, game: GameId, version: int) -> None:
        """This process appended up to ``version`` itself: it need not be given those."""
        if game in self._versions:
            self._versions[game] = max(self._versions[game], version)

    async def run(self) -> None:
        """Listen, and give what is heard, until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._listen)
            while True:
                await trio.sleep(self._retry)
                if self._behind:
                    async with self._lock:
                        for game in list(self._behind):
                            await self._catch_up(game)

    async def _listen(self) -> None:
        async for item in self._subscription.messages():
            if type(item) is Message and not self._lock.locked() and self._heard(item) is None:
                continue  # given (or dropped) at once: no await, so nothing else came between
            async with self._lock:
                if isinstance(item, Resubscribed):
                    for followed in list(self._versions):
                        await self._catch_up(followed)
                    continue
                behind = self._heard(item)
                if behind is not None:
                    await self._catch_up(behind)  # a gap: read it from the log

    def _heard(self, message: Message) -> GameId | None:
        """Give what ``message`` has that was not given yet; or the game, if it shows a gap
        (something was missed before it: the log must be read)."""
        game = self._by_channel.get(message.channel)
        if game is None:
            return None  # unfollowed meanwhile
        logged = parse_published(message.data)
        last = self._versions[game]
        if logged[0].version > last + 1:
            return game
        missed = [event for event in logged if event.version > last]
        if missed:
            self._versions[game] = missed[-1].version
            self._deliver(game, missed)
        return None

    async def _catch_up(self, game: GameId) -> None:
        self._behind.discard(game)
        last = self._versions.get(game)
        if last is None:
            return  # unfollowed meanwhile
        try:
            missed = await self._log.since(game, last) or []  # (never ahead: it gave them)
        except GameGone:
            return  # expired: nothing more will come
        except RedisError:
            self._behind.add(game)
            return
        if missed:
            self._versions[game] = missed[-1].version
            self._deliver(game, missed)
