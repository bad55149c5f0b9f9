"""Whether a request h11 has read opens a WebSocket (RFC 6455 section 4.2.1), and the answer.

wsproto's own server handshake (``H11Handshake``) reads the request's bytes with an h11 of
its own: the head is parsed twice, and that second parse was two thirds of what a handshake
cost (``benchmarks/core.py``). wsproto documents the other way for a request already parsed:
answer it yourself, with the accept value from ``wsproto.utilities.generate_accept_token``,
and drive a bare ``wsproto.connection.Connection``. So this module judges the request h11
gave us, with wsproto's checks in wsproto's order (the same requests pass, the same fail,
with the same statuses), and writes the 101. Framing stays wsproto's: the connection drives
its frame layer (``FrameProtocol``) directly, the part of ``Connection`` that does it.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

import h11
from wsproto.utilities import generate_accept_token

__all__ = ["Accepted", "Refused", "judge_upgrade"]

#: The only version of the protocol there is (RFC 6455 section 4.4: else 426, saying so).
VERSION = b"13"
_SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: "
)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The request opens a WebSocket: send ``response``, then speak WebSocket."""

    response: bytes
    #: The request target, as the game reads it (``/``, ``/?join=...``).
    target: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The request is no valid opening handshake: answer ``status``, saying ``reason``."""

    status: HTTPStatus
    reason: str
    #: Fields the answer must carry (426 names the version we speak).
    headers: tuple[tuple[bytes, bytes], ...] = ()


def judge_upgrade(request: h11.Request, fields: list[tuple[bytes, bytes]]) -> Accepted | Refused:
    """The answer to ``request`` (its header ``fields`` already listed), which asks to
    switch to WebSocket.

    No extension is accepted (permessage-deflate would inflate without any size limit) and
    no subprotocol is chosen, so the 101 carries neither.
    """
    if request.method != b"GET":
        return _refused("Request method must be GET")
    connection_upgrade = False
    host = key = version = None
    upgrade = b""
    for name, value in fields:  # h11 gives the names in lower case
        if name == b"connection":
            connection_upgrade = connection_upgrade or any(
                token.strip().lower() == b"upgrade" for token in value.split(b",")
            )
        elif name == b"host":
            host = value
        elif name == b"sec-websocket-key":
            key = value
        elif name == b"sec-websocket-version":
            version = value
        elif name == b"upgrade":
            upgrade = value
    if not connection_upgrade:
        return _refused("Missing header, 'Connection: Upgrade'")
    if version != VERSION:
        return Refused(
            HTTPStatus.UPGRADE_REQUIRED if version else HTTPStatus.BAD_REQUEST,
            _because("Missing header, 'Sec-WebSocket-Version'"),
            ((b"Sec-WebSocket-Version", VERSION),),
        )
    if key is None:
        return _refused("Missing header, 'Sec-WebSocket-Key'")
    if upgrade.lower() != b"websocket":
        return _refused("Missing header, 'Upgrade: websocket'")
    if host is None:  # pragma: no cover - h11 refuses an HTTP/1.1 request without Host first
        return _refused("Missing header, 'Host'")
    try:
        host.decode("idna")  # what wsproto's handshake checks of the host: that it decodes
    except UnicodeError as exc:
        return _refused(f"bad Host header ({exc})")
    response = _SWITCHING + generate_accept_token(key) + b"\r\n\r\n"
    return Accepted(response=response, target=request.target.decode("ascii"))


def _because(problem: str) -> str:
    return f"WebSocket handshake refused: {problem}"


def _refused(problem: str) -> Refused:
    return Refused(HTTPStatus.BAD_REQUEST, _because(problem))
