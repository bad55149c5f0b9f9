"""One client's byte stream: HTTP requests with h11, then (after an upgrade) WebSocket with wsproto.

The connection turns bytes into complete text messages and keeps the bytes to send back. It
knows nothing of games: the core decides what a message means. Everything the peer can do
wrong is answered here (an HTTP error, a close frame) and never raised.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from http import HTTPStatus

import h11
from wsproto.frame_protocol import CloseReason, Frame, FrameProtocol, Opcode, ParseFailed

from .assembler import MessageAssembler, TooBig
from .config import Config
from .errors import LocalProtocolError
from .events import Fault
from .ratelimit import Admission, RateLimit
from .upgrade import Refused, judge_upgrade
from .web import Site, error_response, serialize

__all__ = ["ClientConnection", "ConnectionState", "Throttled"]


class ConnectionState(enum.Enum):
    """Where a connection is in its life. Transitions: see ``ClientConnection``."""

    #: Reading HTTP requests (keep-alive: several in a row), any of which may be an upgrade.
    HTTP = "http"
    #: The WebSocket is open: text messages flow both ways.
    OPEN = "open"
    #: We sent a close frame and wait for the peer's (RFC 6455 section 7.1.2).
    CLOSING = "closing"
    #: Nothing more to read or write: flush what is queued, then close the transport.
    CLOSED = "closed"

    # Enum.__hash__ is a Python function; members are singletons, so identity is equivalent.
    __hash__ = object.__hash__


class Throttled(enum.Enum):
    """Stands in for a message dropped by the rate limit, so the application can say so."""

    MESSAGE = "message"


_INFINITY = float("inf")
_ADMIT = Admission.ADMIT
_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_PING = Opcode.PING
_CLOSE = Opcode.CLOSE
_HEAD_OVERHEAD = len(b" HTTP/1.1\r\n") + 1  # request line: method SP target SP version CRLF


class ClientConnection:
    """The server side of one client's transport.

    ``HTTP`` -> ``OPEN`` on a successful upgrade; ``HTTP`` -> ``CLOSED`` when the client or
    h11 ends the HTTP exchange, or a handshake is refused. ``OPEN`` -> ``CLOSING`` when we
    start a closing handshake; ``OPEN``/``CLOSING`` -> ``CLOSED`` when the closing handshake
    completes, the peer's data is not valid WebSocket, or the stream ends.

    Time comes in as ``now`` (seconds, any epoch) with each call that reads; ``deadline``
    says when ``on_timer`` must run next (slowloris, idle pings, a close left unanswered).
    """

    __slots__ = (
        "_assembler",
        "_config",
        "_frames",
        "_h11",
        "_head_bytes",
        "_now",
        "_ping_sent",
        "_rate",
        "_request",
        "_since",
        "_site",
        "answered_ping",
        "close_fault",
        "close_reason",
        "last_seen",
        "path",
        "peer_close_code",
        "queued",
        "state",
    )

    def __init__(self, *, site: Site, config: Config, now: float = 0.0) -> None:
        self._site = site
        self._config = config
        # h11 refuses an unfinished head beyond this (431); ``_head_problem`` a finished one.
        self._h11: h11.Connection | None = h11.Connection(
            h11.SERVER, max_incomplete_event_size=config.max_head_size
        )
        # How many bytes were given to h11 since the current request began (at most two
        # pieces of ``max_head_size``: h11 refuses more): what the head's size is taken from.
        self._head_bytes = 0
        # wsproto's frame layer, once upgraded. Its ``Connection`` would wrap it in a second
        # state machine (open, closing, closed: ours) and an event object and a generator
        # per message: a fifth of the parse's time, on every message of every game.
        self._frames: FrameProtocol | None = None
        # The request being read, and its header fields.
        self._request: tuple[h11.Request, list[tuple[bytes, bytes]]] | None = None
        #: Bytes for the peer, in order, not yet collected by the core (which also appends
        #: broadcast frames here directly: the same object for every recipient).
        self.queued: list[bytes] = []
        # Reassembly of a fragmented text message (RFC 6455 section 5.4).
        self._assembler = MessageAssembler(
            max_size=config.max_message_size, max_fragments=config.max_fragments
        )
        self.state = ConnectionState.HTTP
        #: The WebSocket's request target, once upgraded.
        self.path: str | None = None
        #: Why the connection ended, when it did not close normally: for the logs.
        self.close_reason: str | None = None
        self.close_fault = Fault.PEER
        #: The code of the peer's close frame, if it sent one (1001: its page went away).
        self.peer_close_code: int | None = None
        # Time: when the peer last sent bytes; when the current wait began (a request head,
        # or the answer to our close frame); when our unanswered ping left.
        self._now = now
        self.last_seen = now
        self._since = now
        self._ping_sent: float | None = None
        #: Whether the last read ended a wait for the answer to our ping: then, and when the
        #: state changes, the deadline may come earlier; else a read only moves it later.
        self.answered_ping = False
        # Rate limit: messages counted in a one-second window.
        self._rate = RateLimit(config.max_messages_per_second)

    # -- output ---------------------------------------------------------------------------

    def send_frame(self, frame: bytes) -> bool:
        """Queue an already framed text message; False (and nothing queued) unless open.

        Server frames are unmasked, so one broadcast is the same bytes for every recipient:
        the core frames it once and hands the same object to each connection.
        """
        if self.state is not ConnectionState.OPEN:
            return False
        self.queued.append(frame)
        return True

    def close(self, code: int, reason: str = "", *, now: float | None = None) -> None:
        """Start a closing handshake (only while open; otherwise nothing to do).

        ``now`` starts the wait for the peer's answer (default: the time of the last read).
        """
        if now is not None:
            self._now = now
        if self.state is ConnectionState.OPEN:
            assert self._frames is not None
            self.queued.append(bytes(self._frames.close(code, reason or None)))
            self.state = ConnectionState.CLOSING
            self._since = self._now
        elif self.state is ConnectionState.HTTP:
            self.state = ConnectionState.CLOSED

    def close_now(self, code: int, reason: str) -> None:
        """Send a close frame if open, and end without waiting for the peer's answer."""
        self.close(code, reason)  # no wait follows: the time does not matter
        self.state = ConnectionState.CLOSED

    def abort(self, vanished: bool = False) -> None:
        """The transport is gone: drop whatever is queued; the connection is closed.
        ``vanished``: it failed under us (a reset), unless it had already ended otherwise."""
        self.queued = []
        if vanished and self.close_reason is None and self.state is not ConnectionState.CLOSED:
            self._ended(Fault.VANISHED, "The connection was lost (reset, or a broken pipe).")
        self.state = ConnectionState.CLOSED

    # -- time -----------------------------------------------------------------------------

    def deadline(self) -> float:
        """When ``on_timer`` has something to do, at the earliest (infinity: never)."""
        state = self.state
        config = self._config
        if state is ConnectionState.OPEN:
            if self._ping_sent is not None:
                return self._ping_sent + config.ping_timeout
            return self.last_seen + config.ping_interval
        if state is ConnectionState.HTTP:
            return self._since + config.request_timeout
        if state is ConnectionState.CLOSING:
            return self._since + config.close_timeout
        return _INFINITY

    def on_timer(self, now: float) -> None:
        """Do what is due at ``now``: ping an idle peer, or give up on a silent one."""
        self._now = now
        if now < self.deadline():
            return
        state = self.state
        config = self._config
        if state is ConnectionState.OPEN:
            if self._ping_sent is None:
                assert self._frames is not None
                self.queued.append(bytes(self._frames.ping()))
                self._ping_sent = now
                return
            self._ended(Fault.TIMEOUT, f"No answer to a ping within {config.ping_timeout:g} s.")
            self.abort()  # RFC 6455 section 7.1.1 allows dropping a peer that does not answer
        elif state is ConnectionState.HTTP:
            connection = self._h11
            assert connection is not None
            if connection.their_state is h11.IDLE and not connection.trailing_data[0]:
                self.state = ConnectionState.CLOSED  # an idle keep-alive: nothing to answer
            else:
                self._refuse_http(
                    HTTPStatus.REQUEST_TIMEOUT,
                    f"Request not complete within {config.request_timeout:g} s.",
                )
        else:  # CLOSING (a closed connection has no deadline, so never gets here)
            if self.close_reason is None:
                self._ended(Fault.TIMEOUT, f"No close frame within {config.close_timeout:g} s.")
            self.state = ConnectionState.CLOSED

    # -- input ----------------------------------------------------------------------------

    def receive_data(self, data: bytes | None, now: float) -> Iterator[str | bytes | Throttled]:
        """Feed bytes from the peer (``None`` at end of stream); yield each complete message.

        Text messages come as ``str``, binary ones as ``bytes``: what they mean, and whether
        binary is welcome at all, is the application's choice (see ``refuse``).

        Messages beyond the rate limit come as ``Throttled.MESSAGE``, in their place.

        The generator must be exhausted: it answers the peer as it parses, so that replies
        to earlier messages go out before a close frame that came after them.
        """
        if self.state is ConnectionState.CLOSED:
            raise LocalProtocolError("receive_data() on a closed connection")
        self._now = now
        self.last_seen = now
        self.answered_ping = self._ping_sent is not None
        self._ping_sent = None  # any bytes prove the peer alive, not only the pong
        frames = self._frames
        if frames is None:
            if data is None:
                data = b""  # h11 takes an empty read as the end of the stream
            elif not data:
                return
            trailing = self._feed_http(data)
            if trailing is None:
                return
            data = trailing
            frames = self._frames
            assert frames is not None
        if data is None:
            # The stream ended without a close frame: 1006 (RFC 6455 section 7.1.5).
            if self.close_reason is None:
                self._ended(Fault.VANISHED, "Connection closed without a close frame.")
            self.state = ConnectionState.CLOSED
            return
        if data:
            frames.receive_bytes(data)
        try:
            # One generator of ours around wsproto's: this loop runs for every message.
            for frame in frames.received_frames():
                opcode = frame.opcode  # a continuation comes with its message's opcode
                if opcode is _TEXT or opcode is _BINARY:
                    if self.state is not ConnectionState.OPEN:
                        continue  # data after our close frame is read and dropped (section 1.4)
                    text = frame.payload
                    if (
                        frame.message_finished
                        and not self._assembler.pending
                        and type(text) is str
                        and len(text) <= self._config.max_message_size
                        and text.isascii()
                    ):
                        # A whole ASCII message in one piece, within the limit: the usual
                        # case, with nothing to reassemble (its UTF-8 size is its length).
                        message: str | bytes | None = text
                    else:
                        message = self._reassemble(frame)
                    if message is not None:
                        admission = self._rate.admit(now)  # ``_admit``, inlined: every message
                        if admission is _ADMIT:
                            yield message
                        else:
                            self._over_limit(admission)
                            yield Throttled.MESSAGE
                elif opcode is _PING:
                    # A ping flood is held to the message rate: beyond it, no pong.
                    if self.state is ConnectionState.OPEN and self._admit():
                        payload = frame.payload
                        assert isinstance(payload, bytes)
                        self.queued.append(bytes(frames.pong(payload)))
                elif opcode is _CLOSE:
                    close = frame.payload
                    assert isinstance(close, tuple)  # a close frame's: its code and reason
                    self._closed_by_peer(frames, *close)
                # A pong: its arrival already counted as a sign of life.
        except ParseFailed as failure:
            self._protocol_error(frames, failure)

    def _feed_http(self, data: bytes) -> bytes | None:
        """Give h11 at most one head's worth at a time; the bytes after an upgrade, if any.

        h11 bounds a head only while it is incomplete: a whole 10 MiB head in one read would
        be parsed. Fed in pieces of ``max_head_size``, it refuses one before it gets there.
        """
        connection = self._h11
        assert connection is not None
        piece = self._config.max_head_size
        if len(data) <= piece:
            self._head_bytes += len(data)
            connection.receive_data(data)
            return self._receive_http()
        for start in range(0, len(data), piece):
            chunk = data[start : start + piece]
            self._head_bytes += len(chunk)
            connection.receive_data(chunk)
            trailing = self._receive_http()
            if trailing is not None:
                return trailing + data[start + piece :]
            if self.state is not ConnectionState.HTTP:
                return None
        return None

    def _take_head(self) -> int:
        """The size of the head h11 just read, in bytes.

        Every byte given to h11 since the request began is counted in ``_head_bytes``; what
        h11 still holds after the head belongs to the next request (or to the WebSocket).
        """
        connection = self._h11
        assert connection is not None
        size = self._head_bytes - len(connection.trailing_data[0])
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

    def _receive_http(self) -> bytes | None:
        """Answer every complete request; after an upgrade, the bytes that followed it."""
        connection = self._h11
        assert connection is not None
        while True:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse_http(HTTPStatus(exc.error_status_hint), str(exc))
                return None
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.Request):
                # h11's ``Headers`` iterate slowly (a ``Sequence``'s ``__getitem__`` per
                # field): once, here, for every check of the request.
                fields = list(event.headers)
                problem = self._head_problem(event, fields, self._take_head())
                if problem is not None:
                    self._refuse_http(*problem)
                    return None
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
                        self._refuse_http(HTTPStatus.FORBIDDEN, "Origin not allowed.")
                        return None
                    return self._upgrade(request, fields)
                self._respond(request)
                if connection.our_state is h11.MUST_CLOSE:
                    self.state = ConnectionState.CLOSED
                    return None
                connection.start_next_cycle()
                self._since = self._now  # the next request has its own time to arrive
            elif isinstance(event, h11.ConnectionClosed):
                self.state = ConnectionState.CLOSED
                return None
            # Data (a request body): read and dropped; the response waits for its end.

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

    def _respond(self, request: h11.Request) -> None:
        connection = self._h11
        assert connection is not None
        self.queued.append(serialize(connection, *self._site.respond(request)))

    def _refuse_http(
        self, status: HTTPStatus, reason: str, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        """Answer a request we cannot serve with ``status`` (and ``headers``), then close."""
        connection = self._h11
        assert connection is not None
        self._ended(Fault.TIMEOUT if status is HTTPStatus.REQUEST_TIMEOUT else Fault.PEER, reason)
        self.state = ConnectionState.CLOSED
        if connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return  # pragma: no cover - h11 raises only while a request is being read
        self.queued.append(serialize(connection, *error_response(status, reason, headers)))

    def _upgrade(self, request: h11.Request, fields: list[tuple[bytes, bytes]]) -> bytes | None:
        """Answer an upgrade request; the bytes after it if it opens a WebSocket."""
        connection = self._h11
        assert connection is not None
        answer = judge_upgrade(request, fields)
        if isinstance(answer, Refused):
            self._refuse_http(answer.status, answer.reason, answer.headers)
            return None
        trailing = connection.trailing_data[0]
        self._h11 = None
        self.queued.append(answer.response)
        self._frames = FrameProtocol(client=False, extensions=[])
        self.path = answer.target
        self.state = ConnectionState.OPEN
        self._since = self._now
        return bytes(trailing)

    def _admit(self) -> bool:
        """Count a message or ping against the rate limit; False if it must be dropped."""
        admission = self._rate.admit(self._now)
        if admission is _ADMIT:
            return True
        self._over_limit(admission)
        return False

    def _over_limit(self, admission: Admission) -> None:
        """A message or ping beyond the rate limit: dropped, and at twice it, a flood."""
        if admission is Admission.CLOSE:
            limit = self._config.max_messages_per_second
            assert limit is not None
            self.refuse(
                CloseReason.POLICY_VIOLATION, f"More than {2 * limit} messages in one second."
            )

    def _reassemble(self, frame: Frame) -> str | bytes | None:
        """Add one piece of a message; the message once complete and within limits."""
        payload = frame.payload
        assert isinstance(payload, (str, bytes))  # a data frame's, decoded if text
        message = self._assembler.add(
            payload, frame_finished=frame.frame_finished, message_finished=frame.message_finished
        )
        if isinstance(message, TooBig):
            self.refuse(CloseReason.MESSAGE_TOO_BIG, message.reason)
            return None
        return message

    def too_slow(self) -> None:
        """The peer reads slower than its game moves: close with 1013 without waiting."""
        self._ended(Fault.TOO_SLOW, "Reading too slowly to keep up.")
        self.close_now(CloseReason.TRY_AGAIN_LATER, "Too slow to keep up.")

    def _ended(self, fault: Fault, reason: str) -> None:
        self.close_fault = fault
        self.close_reason = reason

    def refuse(self, code: int, reason: str) -> None:
        """Close because the peer sent something we refuse (``reason`` is kept for the logs)."""
        self._ended(Fault.PEER, reason)
        self._assembler.clear()
        self.close(code, reason)

    def _closed_by_peer(self, frames: FrameProtocol, code: int, reason: str) -> None:
        """The peer's close frame: its start of the closing handshake, or its answer to ours."""
        if self.state is ConnectionState.OPEN:
            # The peer starts the closing handshake: echo its code (section 5.5.1).
            self.peer_close_code = code
            self.queued.append(bytes(frames.close(code, reason)))
        self.state = ConnectionState.CLOSED

    def _protocol_error(self, frames: FrameProtocol, failure: ParseFailed) -> None:
        """wsproto could not parse the peer's bytes (invalid framing, invalid UTF-8, ...):
        say why with the code it chose (section 7.4.1), then drop the stream."""
        reason = str(failure)
        self._ended(Fault.PEER, reason or f"WebSocket protocol error {failure.code}")
        if self.state is ConnectionState.OPEN:
            self.queued.append(bytes(frames.close(failure.code, reason)))
        self.state = ConnectionState.CLOSED
