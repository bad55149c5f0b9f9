"""One client's HTTP/1.1 requests, read with h11 under our limits, until one opens a WebSocket.

A connection starts here: plain requests (the page, its files, the health check, the
metrics) are answered one after the other on the same connection (keep-alive), and a valid
upgrade request ends the exchange with the bytes that came after it, which are the
WebSocket's. Every request that breaks a limit, or that h11 cannot parse, is answered with
an HTTP error that says why, and ends the exchange. It knows nothing of WebSocket frames
(``connection``) nor of games.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

import h11

from .config import Config
from .events import Fault
from .upgrade import Refused, judge_upgrade
from .web import Site, error_response, serialize

__all__ = ["Ended", "HttpExchange", "Upgraded"]

_HEAD_OVERHEAD = len(b" HTTP/1.1\r\n") + 1  # request line: method SP target SP version CRLF


@dataclass(frozen=True, slots=True)
class Upgraded:
    """A valid upgrade request was answered with 101: the stream is a WebSocket's now."""

    #: The request's target (the WebSocket's path).
    target: str
    #: What the client sent after the request: its first frames, if it did not wait.
    trailing: bytes


@dataclass(frozen=True, slots=True)
class Ended:
    """Nothing more to read: the client closed, the server must (h11 says so), or a request
    was refused (``reason``, and whose ``fault``: for the logs)."""

    reason: str | None = None
    fault: Fault = Fault.PEER


class HttpExchange:
    """The requests of one connection, before (and unless) it upgrades.

    ``receive`` takes bytes (``b""``: the end of the stream) and says what became of the
    exchange: still going (None), ``Upgraded`` or ``Ended``. What to send back accumulates
    in ``queued``, in order, for the connection to take.
    """

    __slots__ = ("_config", "_h11", "_head_bytes", "_request", "_site", "answered", "queued")

    def __init__(self, *, site: Site, config: Config) -> None:
        self._site = site
        self._config = config
        # h11 refuses an unfinished head beyond this (431); ``_head_problem`` a finished one.
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_head_size)
        # How many bytes were given to h11 since the current request began (at most two
        # pieces of ``max_head_size``: h11 refuses more): what the head's size is taken from.
        self._head_bytes = 0
        # The request being read, and its header fields.
        self._request: tuple[h11.Request, list[tuple[bytes, bytes]]] | None = None
        #: Responses not yet taken by the connection.
        self.queued: list[bytes] = []
        #: How many requests were answered and the connection kept for the next one (each
        #: next request has its own time to arrive).
        self.answered = 0

    @property
    def idle(self) -> bool:
        """Whether no request is under way: between two of them, closing answers nothing."""
        return self._h11.their_state is h11.IDLE and not self._h11.trailing_data[0]

    def receive(self, data: bytes) -> Upgraded | Ended | None:
        """Give h11 at most one head's worth at a time; what became of the exchange.

        h11 bounds a head only while it is incomplete: a whole 10 MiB head in one read would
        be parsed. Fed in pieces of ``max_head_size``, it refuses one before it gets there.
        """
        connection = self._h11
        piece = self._config.max_head_size
        if len(data) <= piece:
            self._head_bytes += len(data)
            connection.receive_data(data)
            return self._answer()
        for start in range(0, len(data), piece):
            chunk = data[start : start + piece]
            self._head_bytes += len(chunk)
            connection.receive_data(chunk)
            outcome = self._answer()
            if type(outcome) is Upgraded:
                return Upgraded(outcome.target, outcome.trailing + data[start + piece :])
            if outcome is not None:
                return outcome
        return None

    def refuse(
        self, status: HTTPStatus, reason: str, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> Ended:
        """Answer the request under way with ``status`` (and ``headers``): the end."""
        connection = self._h11
        # h11 raises only while a request is being read, and a request is answered at its
        # end: there is always a response to send.
        assert connection.our_state in (h11.IDLE, h11.SEND_RESPONSE), connection.our_state
        self.queued.append(serialize(connection, *error_response(status, reason, headers)))
        return Ended(reason, Fault.TIMEOUT if status is HTTPStatus.REQUEST_TIMEOUT else Fault.PEER)

    def _answer(self) -> Upgraded | Ended | None:
        """Answer every complete request; what became of the exchange."""
        connection = self._h11
        while True:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError as exc:
                return self.refuse(HTTPStatus(exc.error_status_hint), str(exc))
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.Request):
                # h11's ``Headers`` iterate slowly (a ``Sequence``'s ``__getitem__`` per
                # field): once, here, for every check of the request.
                fields = list(event.headers)
                problem = self._head_problem(event, fields, self._take_head())
                if problem is not None:
                    return self.refuse(*problem)
                self._request = event, fields
            elif isinstance(event, h11.EndOfMessage):
                assert self._request is not None
                request, fields = self._request
                self._request = None
                # h11 treats any request with an Upgrade header as a protocol switch
                # proposal and pauses after it; ``judge_upgrade`` says whether it is a valid
                # one. A site without the game answers it as a plain request (404: the
                # switch declined).
                if self._site.websocket and any(name == b"upgrade" for name, _ in fields):
                    if not self._origin_allowed(fields):
                        return self.refuse(HTTPStatus.FORBIDDEN, "Origin not allowed.")
                    return self._upgrade(request, fields)
                self.queued.append(serialize(connection, *self._site.respond(request)))
                if connection.our_state is h11.MUST_CLOSE:
                    return Ended()
                connection.start_next_cycle()
                self.answered += 1
            else:
                # Nothing else comes: a body is refused at its head (no ``Data``), and each
                # request is answered at its end (no ``PAUSED``).
                assert isinstance(event, h11.ConnectionClosed), event
                return Ended()

    def _take_head(self) -> int:
        """The size of the head h11 just read, in bytes.

        Every byte given to h11 since the request began is counted in ``_head_bytes``; what
        h11 still holds after the head belongs to the next request (or to the WebSocket).
        """
        size = self._head_bytes - len(self._h11.trailing_data[0])
        self._head_bytes -= size
        return size

    def _head_problem(
        self, request: h11.Request, fields: list[tuple[bytes, bytes]], size: int
    ) -> tuple[HTTPStatus, str] | None:
        """What is wrong with a request head that h11 accepted, by our limits, if anything.

        ``fields``: the request's header fields; ``size`` counts every byte the head arrived
        in; line lengths are those of the parsed fields (h11 drops the optional whitespace
        around values), which the head size bounds.
        """
        config = self._config
        line = len(request.method) + len(request.target) + _HEAD_OVERHEAD
        if line > config.max_line_size:
            return HTTPStatus.REQUEST_URI_TOO_LONG, (
                f"Request line longer than {config.max_line_size} bytes."
            )
        if len(fields) > config.max_headers:
            return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, (
                f"More than {config.max_headers} header fields."
            )
        body = False
        for name, value in fields:
            if len(name) + len(value) + 4 > config.max_line_size:  # name: value CRLF
                return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, (
                    f"Header line longer than {config.max_line_size} bytes."
                )
            if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                body = True
        if size > config.max_head_size:
            return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, (
                f"Request head larger than {config.max_head_size} bytes."
            )
        if body:  # nothing here takes a body: refuse it instead of reading it
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request bodies are not accepted."
        return None

    def _origin_allowed(self, fields: list[tuple[bytes, bytes]]) -> bool:
        """Whether a page of this origin may open a WebSocket (any, unless configured)."""
        allowed = self._config.allowed_origins
        if not allowed:
            return True
        origins = [value for name, value in fields if name == b"origin"]
        if len(origins) != 1:
            return False  # a browser always sends exactly one; refuse what we cannot judge
        origin = origins[0].decode("ascii", "replace").rstrip("/").lower()
        return any(origin == candidate.rstrip("/").lower() for candidate in allowed)

    def _upgrade(self, request: h11.Request, fields: list[tuple[bytes, bytes]]) -> Upgraded | Ended:
        """Answer an upgrade request: 101 if it opens a WebSocket, else why not."""
        answer = judge_upgrade(request, fields)
        if isinstance(answer, Refused):
            return self.refuse(answer.status, answer.reason, answer.headers)
        self.queued.append(answer.response)
        return Upgraded(answer.target, bytes(self._h11.trailing_data[0]))
