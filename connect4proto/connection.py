"""One client's byte stream: HTTP requests (``exchange``), then, after an upgrade, WebSocket
messages on wsproto's frame layer.

The connection turns bytes into complete messages and keeps the bytes to send back. It knows
nothing of games: the core decides what a message means. Everything the peer can do wrong is
answered here (an HTTP error, a close frame) and never raised. Its states and what moves it
between them are a table (``TRANSITIONS``); the rate limit and the reassembly of fragmented
messages are classes of their own (``ratelimit``, ``assembler``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from http import HTTPStatus

from wsproto.frame_protocol import CloseReason, Frame, FrameProtocol, Opcode, ParseFailed

from .assembler import MessageAssembler, TooBig
from .config import Config
from .errors import LocalProtocolError
from .events import Fault
from .exchange import Ended, HttpExchange
from .ratelimit import Admission, RateLimit
from .web import Site

__all__ = [
    "TRANSITIONS",
    "Change",
    "ClientConnection",
    "ConnectionState",
    "Throttled",
    "next_state",
]


class ConnectionState(enum.Enum):
    """Where a connection is in its life. What moves it on: ``TRANSITIONS``."""

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


class Change(enum.Enum):
    """What moves a connection from one state to the next."""

    #: A valid upgrade request was answered with 101.
    UPGRADED = "upgraded"
    #: The HTTP exchange is over: the client closed, h11 must close, a request was refused,
    #: or a keep-alive connection stayed idle.
    HTTP_ENDED = "http ended"
    #: We close: a close frame if the WebSocket is open (its answer is awaited), else nothing.
    CLOSE = "close"
    #: The peer's close frame: its start of the closing handshake (echoed), or its answer.
    CLOSE_RECEIVED = "close received"
    #: The peer's bytes are not valid WebSocket (our close frame says why, if still open).
    PROTOCOL_ERROR = "protocol error"
    #: The peer ended its stream without a close frame.
    STREAM_ENDED = "stream ended"
    #: No answer in time: to our ping, or to our close frame.
    TIMED_OUT = "timed out"
    #: We end it at once: the transport is gone, or we close without waiting for an answer.
    DROPPED = "dropped"

    __hash__ = object.__hash__


_HTTP, _OPEN, _CLOSING, _CLOSED = ConnectionState

#: Every move a connection can make, ``(state, change) -> next state``. Any other pair is a
#: bug of ours (``next_state`` says so), never something a peer can cause.
TRANSITIONS: dict[tuple[ConnectionState, Change], ConnectionState] = {
    (_HTTP, Change.UPGRADED): _OPEN,
    (_HTTP, Change.HTTP_ENDED): _CLOSED,
    (_HTTP, Change.CLOSE): _CLOSED,  # no WebSocket yet: nothing to say, nothing to wait for
    (_HTTP, Change.DROPPED): _CLOSED,
    (_OPEN, Change.CLOSE): _CLOSING,
    (_OPEN, Change.CLOSE_RECEIVED): _CLOSED,  # echoed at once: the handshake is complete
    (_OPEN, Change.PROTOCOL_ERROR): _CLOSED,
    (_OPEN, Change.STREAM_ENDED): _CLOSED,
    (_OPEN, Change.TIMED_OUT): _CLOSED,  # the ping's answer
    (_OPEN, Change.DROPPED): _CLOSED,
    (_CLOSING, Change.CLOSE_RECEIVED): _CLOSED,
    (_CLOSING, Change.PROTOCOL_ERROR): _CLOSED,
    (_CLOSING, Change.STREAM_ENDED): _CLOSED,
    (_CLOSING, Change.TIMED_OUT): _CLOSED,  # the close frame's answer
    (_CLOSING, Change.DROPPED): _CLOSED,
    (_CLOSED, Change.DROPPED): _CLOSED,  # ending what has ended changes nothing
}


def next_state(state: ConnectionState, change: Change) -> ConnectionState:
    """The state ``change`` moves a connection in ``state`` to (``TRANSITIONS``)."""
    following = TRANSITIONS.get((state, change))
    if following is None:
        raise LocalProtocolError(f"a connection cannot go from {state.value} by {change.value}")
    return following


class Throttled(enum.Enum):
    """Stands in for a message dropped by the rate limit, so the application can say so."""

    MESSAGE = "message"


_INFINITY = float("inf")
_ADMIT = Admission.ADMIT
_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_PING = Opcode.PING
_CLOSE = Opcode.CLOSE


class ClientConnection:
    """The server side of one client's transport: its HTTP exchange, then its WebSocket.

    Time comes in as ``now`` (seconds, any epoch) with each call that reads; ``deadline``
    says when ``on_timer`` must run next (slowloris, idle pings, a close left unanswered).
    """

    __slots__ = (
        "_assembler",
        "_config",
        "_exchange",
        "_frames",
        "_now",
        "_ping_sent",
        "_rate",
        "_since",
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
        self._config = config
        # The HTTP requests, until one upgrades (then None).
        self._exchange: HttpExchange | None = HttpExchange(site=site, config=config)
        # wsproto's frame layer, once upgraded. Its ``Connection`` would wrap it in a second
        # state machine (open, closing, closed: ours) and an event object and a generator
        # per message: a tenth of a move's instructions through the core (179,900 against
        # 160,000, ``benchmarks/instructions.py``), on every message of every game.
        self._frames: FrameProtocol | None = None
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
            self._change(Change.CLOSE)
            self._since = self._now
        elif self.state is ConnectionState.HTTP:
            self._change(Change.CLOSE)

    def close_now(self, code: int, reason: str) -> None:
        """Send a close frame if open, and end without waiting for the peer's answer."""
        self.close(code, reason)  # no wait follows: the time does not matter
        self._change(Change.DROPPED)

    def abort(self, vanished: bool = False) -> None:
        """The transport is gone: drop whatever is queued; the connection is closed.
        ``vanished``: it failed under us (a reset), unless it had already ended otherwise."""
        self.queued = []
        if vanished and self.close_reason is None and self.state is not ConnectionState.CLOSED:
            self._ended(Fault.VANISHED, "The connection was lost (reset, or a broken pipe).")
        self._change(Change.DROPPED)

    def _change(self, change: Change) -> None:
        self.state = next_state(self.state, change)

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
            # RFC 6455 section 7.1.1 allows dropping a peer that does not answer.
            self.queued = []
            self._change(Change.TIMED_OUT)
        elif state is ConnectionState.HTTP:
            exchange = self._exchange
            assert exchange is not None
            if exchange.idle:  # an idle keep-alive: nothing to answer
                self._change(Change.HTTP_ENDED)
            else:
                self._http_ended(
                    exchange,
                    exchange.refuse(
                        HTTPStatus.REQUEST_TIMEOUT,
                        f"Request not complete within {config.request_timeout:g} s.",
                    ),
                )
        else:  # CLOSING (a closed connection has no deadline, so never gets here)
            if self.close_reason is None:
                self._ended(Fault.TIMEOUT, f"No close frame within {config.close_timeout:g} s.")
            self._change(Change.TIMED_OUT)

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
            opened = self._read_http(data)
            if opened is None:
                return
            frames, data = opened
        if data is None:
            # The stream ended without a close frame: 1006 (RFC 6455 section 7.1.5).
            if self.close_reason is None:
                self._ended(Fault.VANISHED, "Connection closed without a close frame.")
            self._change(Change.STREAM_ENDED)
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
                        if self.state is _CLOSED:  # (mypy: the state may change at yield)
                            return  # ended meanwhile (``close_now``, ``abort``): read no more
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

    def _read_http(self, data: bytes) -> tuple[FrameProtocol, bytes] | None:
        """Bytes for the HTTP exchange; once it upgrades, the frame layer and what followed."""
        exchange = self._exchange
        assert exchange is not None
        answered = exchange.answered
        outcome = exchange.receive(data)
        self._take(exchange)
        if exchange.answered != answered:
            self._since = self._now  # the next request has its own time to arrive
        if outcome is None:
            return None
        if isinstance(outcome, Ended):
            self._http_ended(exchange, outcome)
            return None
        self._exchange = None
        frames = self._frames = FrameProtocol(client=False, extensions=[])
        self.path = outcome.target
        self._change(Change.UPGRADED)
        self._since = self._now
        return frames, outcome.trailing

    def _take(self, exchange: HttpExchange) -> None:
        """The exchange's responses, in order, after what is queued already."""
        if exchange.queued:
            self.queued.extend(exchange.queued)
            exchange.queued = []

    def _http_ended(self, exchange: HttpExchange, ended: Ended) -> None:
        self._take(exchange)
        if ended.reason is not None:
            self._ended(ended.fault, ended.reason)
        self._change(Change.HTTP_ENDED)

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
        self._change(Change.CLOSE_RECEIVED)

    def _protocol_error(self, frames: FrameProtocol, failure: ParseFailed) -> None:
        """wsproto could not parse the peer's bytes (invalid framing, invalid UTF-8, ...):
        say why with the code it chose (section 7.4.1), then drop the stream."""
        reason = str(failure)
        self._ended(Fault.PEER, reason or f"WebSocket protocol error {failure.code}")
        if self.state is ConnectionState.OPEN:
            self.queued.append(bytes(frames.close(failure.code, reason)))
        self._change(Change.PROTOCOL_ERROR)
