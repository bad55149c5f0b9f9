"""Where Redis is: a ``redis://`` or ``rediss://`` URL, checked. Apart from the client
(``resp``), so that the command line reads the URL without the client's C parser installed."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

__all__ = ["RedisAddress"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisAddress:
    """Where Redis is, from a ``redis://`` or ``rediss://`` (TLS) URL."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    #: Seconds to wait for Redis to connect, or to answer a command (``?timeout=`` in the URL).
    timeout: float = 1.0
    #: With TLS, a file of CA certificates to trust instead of the system's (``?ca=``).
    ca_file: str | None = None

    @classmethod
    def from_url(cls, url: str) -> RedisAddress:
        """``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?timeout=SECONDS]``, or ``rediss://``
        for TLS (and ``&ca=FILE`` for a private CA); ValueError says what is wrong."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"{url!r} is not a redis:// or rediss:// URL")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"{url!r}: the port is not a number from 0 to 65535") from None
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError(f"{url!r}: the database is a number, as in redis://host:6379/0")
        if not parts.hostname:
            raise ValueError(f"{url!r}: no host, as in redis://127.0.0.1:6379/0")
        query = urllib.parse.parse_qs(parts.query)
        unknown = set(query) - {"timeout", "ca"}
        if unknown:
            raise ValueError(
                f"{url!r}: unknown option {sorted(unknown)[0]!r} (there are timeout= and ca=)"
            )
        if "ca" in query and parts.scheme != "rediss":
            raise ValueError(f"{url!r}: ca= is for TLS, in a rediss:// URL")
        timeout = 1.0
        if "timeout" in query:
            try:
                timeout = float(query["timeout"][-1])
            except ValueError:
                timeout = -1.0
            if not 0 < timeout < float("inf"):
                raise ValueError(f"{url!r}: timeout= is a number of seconds above 0")
        unquote = urllib.parse.unquote
        return cls(
            host=parts.hostname,
            port=6379 if port is None else port,
            db=int(path or 0),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            tls=parts.scheme == "rediss",
            timeout=timeout,
            ca_file=query["ca"][-1] if "ca" in query else None,
        )

    def __str__(self) -> str:  # never the password: this goes to logs
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}/{self.db}"
