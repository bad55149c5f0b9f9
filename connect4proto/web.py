"""Plain HTTP on the game's port: the static files of the web UI and the health check.

The files arrive as bytes (the core reads no disk); only the paths given here exist, so there
is no path to traverse. Every response is complete in memory: they are all small.
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus

import h11

__all__ = [
    "CONTENT_TYPES",
    "Page",
    "Site",
    "StaticFile",
    "busy_response",
    "error_response",
    "serialize",
]

#: Content types of the file kinds the UI uses; any other file is refused when the site is built.
CONTENT_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
}

HEALTH_PATH = "/healthz"

# Sent with every response. no-referrer: the page's own URL holds the secret join or watch
# key, which must not leak to other sites through the Referer header.
_COMMON_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"Referrer-Policy", b"no-referrer"),
    (b"X-Content-Type-Options", b"nosniff"),
    (b"Cache-Control", b"no-cache"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StaticFile:
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """A page made when it is asked for (the metrics): ``render`` returns its body. It is
    the driver's function; the core only calls it, as it calls ``new_key``."""

    content_type: str
    render: Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class Site:
    """What is served over plain HTTP, by URL path: files (``/`` is ``index.html``), pages
    made on request, the health check; and, where ``websocket``, the game's WebSocket (a site
    without it, an operator's private port, answers an upgrade with 404)."""

    files: Mapping[str, StaticFile] = field(default_factory=dict)
    pages: Mapping[str, Page] = field(default_factory=dict)
    websocket: bool = True
    #: What the health check says: None, healthy (200); else why not (503, so that a load
    #: balancer sends newcomers elsewhere). The driver's function, as a page's ``render``.
    health: Callable[[], str | None] | None = None

    def with_pages(self, pages: Mapping[str, Page]) -> Site:
        """This site, with ``pages`` too (a page hides a file of the same path)."""
        return replace(self, pages={**self.pages, **pages})

    def with_health(self, health: Callable[[], str | None]) -> Site:
        """This site, with its health check answered by ``health``."""
        return replace(self, health=health)

    @classmethod
    def from_files(cls, files: Mapping[str, bytes]) -> Site:
        """Build a site from ``{"index.html": b"...", "app.js": b"..."}``.

        Names are relative paths of the files under ``static/``; a name with an unknown
        extension, or that is not a plain relative path, is a programming error (ValueError).
        """
        served: dict[str, StaticFile] = {}
        for name, body in files.items():
            parts = name.split("/")
            if (
                name.startswith("/")
                or posixpath.normpath(name) != name
                or "\\" in name
                or ".." in parts
            ):
                raise ValueError(f"not a plain relative path: {name!r}")
            extension = posixpath.splitext(name)[1].lower()
            if extension not in CONTENT_TYPES:
                raise ValueError(f"no known content type for {name!r}")
            static = StaticFile(content_type=CONTENT_TYPES[extension], body=body)
            served["/" + name] = static
            if name == "index.html":
                served["/"] = static
        return cls(served)

    def respond(self, request: h11.Request) -> tuple[h11.Response, bytes]:
        """The response to a request that is not a WebSocket upgrade, and its body."""
        method = request.method
        path = request.target.split(b"?", 1)[0].decode("ascii", "replace")
        if method not in (b"GET", b"HEAD"):
            status, content_type, body = (
                HTTPStatus.METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                b"Method Not Allowed\n",
            )
            extra: tuple[tuple[bytes, bytes], ...] = ((b"Allow", b"GET, HEAD"),)
        elif path == HEALTH_PATH:
            sick = None if self.health is None else self.health()
            status, content_type, body = (
                (HTTPStatus.OK, "text/plain; charset=utf-8", b"OK\n")
                if sick is None
                else (
                    HTTPStatus.SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    f"{sick}\n".encode(),
                )
            )
            extra = ()
        elif (page := self.pages.get(path)) is not None:
            status, content_type, body = HTTPStatus.OK, page.content_type, page.render()
            extra = ()
        elif (static := self.files.get(path)) is not None:
            status, content_type, body = HTTPStatus.OK, static.content_type, static.body
            extra = ()
        else:
            status, content_type, body = (
                HTTPStatus.NOT_FOUND,
                "text/plain; charset=utf-8",
                b"Not Found\n",
            )
            extra = ()
        response = simple_response(status, content_type, len(body), extra)
        return response, (b"" if method == b"HEAD" else body)


def simple_response(
    status: HTTPStatus,
    content_type: str,
    length: int,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> h11.Response:
    headers = [
        (b"Content-Type", content_type.encode("ascii")),
        (b"Content-Length", str(length).encode("ascii")),
        *_COMMON_HEADERS,
        *extra,
    ]
    return h11.Response(status_code=status.value, reason=status.phrase.encode(), headers=headers)


def error_response(
    status: HTTPStatus, reason: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> tuple[h11.Response, bytes]:
    """A plain-text error that says why (``431 Request Header Fields Too Large: ...``) and
    closes the connection."""
    body = f"{status.value} {status.phrase}: {reason}\n".encode()
    headers = ((b"Connection", b"close"), *extra)
    return simple_response(status, "text/plain; charset=utf-8", len(body), headers), body


def serialize(connection: h11.Connection, response: h11.Response, body: bytes) -> bytes:
    """A whole response through ``connection``'s state machine: head, body, end."""
    parts = [connection.send(response) or b""]
    if body:
        parts.append(connection.send(h11.Data(data=body)) or b"")
    parts.append(connection.send(h11.EndOfMessage()) or b"")
    return b"".join(parts)


@functools.cache
def busy_response() -> bytes:
    """The whole HTTP 503 for a connection refused before any request was read."""
    connection = h11.Connection(h11.SERVER)
    # h11 serialises a response only after a request: feed it a stand-in one.
    connection.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    connection.next_event()
    response, body = error_response(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "the server is full, try again in a moment.",
        ((b"Retry-After", b"5"),),
    )
    return serialize(connection, response, body)
