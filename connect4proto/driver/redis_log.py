"""Every game's log and secrets in Redis, shared by any number of server processes.

Per game ``G``, under one hash tag (``{G}``, so that Redis Cluster keeps a game on one shard):
- ``c4:{G}:meta``, a hash: ``version``, the number of events appended;
- ``c4:{G}:log``, a stream: event ``v`` is the entry ``0-v``, with its kind and fields
  (``persistence``);
- ``c4:{G}:intents``, a hash: each append's intent id, and the version it reached;
- ``c4:{G}:secrets``, a set: the secret keys that lead to it (so that they expire with it);
- the channel ``c4:{G}``: every append, published by the script that made it.

A secret (the digest of a join or watch key, or of a seat token) is the key
``c4:secret:HEX``, whose value is ``G CREDENTIAL``.

An append is one script (``APPEND``), so that two processes racing for the same version
cannot both win: it checks the expected version, appends, publishes, and records its intent
id, all or nothing. A retry with the same intent id (after a timeout: the first attempt may
have been applied) answers what the first attempt did, and appends nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from connect4proto.events import GameId
from connect4proto.log import GameEvent, Logged
from connect4proto.persistence import decode_event, encode_event
from connect4proto.store import Conflict, Credential

from .resp import Message, Redis, ReplyError, Resubscribed, Subscription

__all__ = ["Appended", "Follower", "GameGone", "RedisLog"]

#: KEYS: meta, log, intents. ARGV: expected version, intent id, channel, then each event's
#: kind and fields. Answers {"appended" | "again" | "conflict" | "missing", version}.
APPEND = b"""
local done = redis.call('HGET', KEYS[3], ARGV[2])
if done then return {'again', tonumber(done)} end
local version = redis.call('HGET', KEYS[1], 'version')
if not version then return {'missing', 0} end
version = tonumber(version)
if version ~= tonumber(ARGV[1]) then return {'conflict', version} end
local published = {}
for k = 4, #ARGV, 2 do
    version = version + 1
    local kind, fields = ARGV[k], ARGV[k + 1]
    redis.call('XADD', KEYS[2], '0-' .. version, 'k', kind, 'f', fields)
    published[#published + 1] = version .. ' ' .. #kind .. ' ' .. #fields .. '\\n' .. kind .. fields
end
redis.call('HSET', KEYS[1], 'version', version)
redis.call('HSET', KEYS[3], ARGV[2], version)
redis.call('PUBLISH', ARGV[3], table.concat(published))
return {'appended', version}
"""
APPEND_SHA = hashlib.sha1(APPEND).hexdigest()


@dataclass(frozen=True, slots=True)
class Appended:
    """The events are in the log, the last at ``version``."""

    logged: tuple[Logged, ...]

    @property
    def version(self) -> int:
        return self.logged[-1].version


class GameGone(Exception):
    """The game is not in Redis (never created here, or expired)."""


def parse_published(data: bytes) -> list[Logged]:
    """The events of one published append, in order."""
    logged = []
    at = 0
    while at < len(data):
        end = data.index(b"\n", at)
        version, kind_size, fields_size = map(int, data[at:end].split())
        kind = data[end + 1 : end + 1 + kind_size]
        start = end + 1 + kind_size
        logged.append(Logged(version, decode_event(kind, data[start : start + fields_size])))
        at = start + fields_size
    return logged


class RedisLog:
    """The games' logs and secrets, as ``store.MemoryStore`` keeps them, but in Redis."""

    def __init__(self, redis: Redis, *, finished_ttl: float = 24 * 3600) -> None:
        self.redis = redis
        self.finished_ttl = finished_ttl

    @staticmethod
    def channel(game: GameId) -> bytes:
        return b"c4:{%d}" % game

    @staticmethod
    def _keys(game: GameId) -> tuple[bytes, bytes, bytes, bytes]:
        tag = b"c4:{%d}" % game
        return tag + b":meta", tag + b":log", tag + b":intents", tag + b":secrets"

    async def new_game(self) -> GameId:
        """A game id no other process has: one ``INCR``."""
        game = GameId(await self.redis.execute("INCR", "c4:games"))
        meta = self._keys(game)[0]
        await self.redis.execute("HSET", meta, "version", 0, idempotent=True)
        return game

    async def append(
        self, game: GameId, expected: int, events: Sequence[GameEvent], intent: str
    ) -> Appended | Conflict:
        """``events`` after version ``expected``, or the version the log is at instead.

        ``Ambiguous`` (``resp``: no answer, even after one retry on a new connection): it may
        have been applied; call again with the same ``intent``, which appends nothing the
        second time and answers the same."""
        arguments: list[bytes | str | int] = [expected, intent, self.channel(game)]
        for event in events:
            arguments.extend(encode_event(event))
        keys = self._keys(game)[:3]
        # Idempotent by its intent id: a connection found broken is opened again and the
        # append sent once more, which appends nothing if the first one got through.
        try:
            reply = await self.redis.execute(
                "EVALSHA", APPEND_SHA, 3, *keys, *arguments, idempotent=True
            )
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            reply = await self.redis.execute("EVAL", APPEND, 3, *keys, *arguments, idempotent=True)
        outcome, version = reply
        if outcome == b"missing":
            raise GameGone(f"game {game} is not in Redis")
        if outcome == b"conflict":
            return Conflict(version)
        first = version - len(events) + 1
        return Appended(tuple(Logged(first + i, event) for i, event in enumerate(events)))

    async def since(self, game: GameId, version: int) -> list[Logged] | None:
        """Every event after ``version``, in order; None if ``version`` is ahead of the log
        (as ``MemoryStore.since`` says it: the client must be sent a snapshot)."""
        meta, log, _, _ = self._keys(game)
        current, entries = await self.redis.pipeline(
            [("HGET", meta, "version"), ("XRANGE", log, f"0-{version + 1}", "+")],
            idempotent=True,
        )
        if current is None:
            raise GameGone(f"game {game} is not in Redis")
        if version > int(current):
            return None
        logged = []
        for entry_id, fields in entries:
            pairs = dict(zip(fields[::2], fields[1::2], strict=True))
            logged.append(Logged(int(entry_id[2:]), decode_event(pairs[b"k"], pairs[b"f"])))
        return logged

    async def add_secret(self, digest: bytes, game: GameId, credential: Credential) -> None:
        secret = b"c4:secret:" + digest.hex().encode()
        added = await self.redis.execute(
            "SET", secret, f"{game} {credential.value}", "NX", idempotent=True
        )
        if added is None and await self.find(digest) != (game, credential):
            raise ValueError("a secret that is already in use")
        await self.redis.execute("SADD", self._keys(game)[3], secret, idempotent=True)

    async def find(self, digest: bytes) -> tuple[GameId, Credential] | None:
        value = await self.redis.execute(
            "GET", b"c4:secret:" + digest.hex().encode(), idempotent=True
        )
        if value is None:
            return None
        game, credential = value.split()
        return GameId(int(game)), Credential(credential.decode())

    async def drop_secret(self, digest: bytes, game: GameId) -> None:
        secret = b"c4:secret:" + digest.hex().encode()
        await self.redis.pipeline(
            [("DEL", secret), ("SREM", self._keys(game)[3], secret)], idempotent=True
        )

    async def finish(self, game: GameId) -> None:
        """The game is over and nobody is left: it and its secrets expire after
        ``finished_ttl`` (a player may still come back to see the result meanwhile)."""
        keys = self._keys(game)
        secrets = await self.redis.execute("SMEMBERS", keys[3], idempotent=True)
        ttl = max(1, round(self.finished_ttl))
        await self.redis.pipeline(
            [("EXPIRE", key, ttl) for key in (*keys, *secrets)], idempotent=True
        )


class Follower:
    """The events appended to the games followed here (by any process), each once, in order.

    Pub/sub is at most once: a message published while the subscription is down is lost, and
    nothing says so but a gap. So the follower remembers the last version it gave of each
    game, and reads what is missing from the log after every resubscription and at every gap;
    what it gave already (this process's own appends come back too) it drops.
    """

    def __init__(self, log: RedisLog, subscription: Subscription) -> None:
        self._log = log
        self._subscription = subscription
        self._versions: dict[GameId, int] = {}
        self._by_channel: dict[bytes, GameId] = {}

    async def follow(self, game: GameId, version: int) -> None:
        """Give ``game``'s events after ``version`` from now on."""
        self._versions[game] = version
        channel = RedisLog.channel(game)
        self._by_channel[channel] = game
        await self._subscription.subscribe(channel)

    async def unfollow(self, game: GameId) -> None:
        self._versions.pop(game, None)
        channel = RedisLog.channel(game)
        self._by_channel.pop(channel, None)
        await self._subscription.unsubscribe(channel)

    def seen(self, game: GameId, version: int) -> None:
        """This process appended up to ``version`` itself: do not give those again."""
        if game in self._versions:
            self._versions[game] = max(self._versions[game], version)

    async def events(self) -> AsyncIterator[tuple[GameId, list[Logged]]]:
        """Each game's new events, as they come."""
        async for item in self._subscription.messages():
            if isinstance(item, Resubscribed):
                for game in list(self._versions):
                    missed = await self._catch_up(game)
                    if missed:
                        yield game, missed
                continue
            assert isinstance(item, Message)
            game_or_none = self._by_channel.get(item.channel)
            if game_or_none is None:
                continue  # unfollowed meanwhile
            game = game_or_none
            logged = parse_published(item.data)
            last = self._versions[game]
            if logged[0].version > last + 1:
                missed = await self._catch_up(game)  # a gap: read it from the log
            else:
                missed = [event for event in logged if event.version > last]
                if missed:
                    self._versions[game] = missed[-1].version
            if missed:
                yield game, missed

    async def _catch_up(self, game: GameId) -> list[Logged]:
        last = self._versions.get(game)
        if last is None:
            return []
        missed = await self._log.since(game, last) or []  # (never ahead: it gave them all)
        if missed:
            self._versions[game] = missed[-1].version
        return missed
