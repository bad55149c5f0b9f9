"""One connection's states: the table of what moves it, and real peers moving it through it."""

from __future__ import annotations

import itertools

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from connect4proto import Config, LocalProtocolError, Site
from connect4proto.connection import (
    TRANSITIONS,
    Change,
    ClientConnection,
    ConnectionState,
    next_state,
)

HTTP, OPEN, CLOSING, CLOSED = ConnectionState


@pytest.mark.parametrize(
    ("state", "change"), list(itertools.product(ConnectionState, Change)), ids=str
)
def test_every_state_and_change_moves_as_the_table_says_or_is_our_bug(
    state: ConnectionState, change: Change
) -> None:
    if (state, change) in TRANSITIONS:
        assert next_state(state, change) is TRANSITIONS[state, change]
    else:
        with pytest.raises(LocalProtocolError, match=f"from {state.value} by {change.value}"):
            next_state(state, change)


def test_only_http_upgrades_and_nothing_leaves_closed() -> None:
    assert {state for state, change in TRANSITIONS if change is Change.UPGRADED} == {HTTP}
    assert {TRANSITIONS[pair] for pair in TRANSITIONS if pair[0] is CLOSED} == {CLOSED}
    # Whatever the state, the connection can be dropped, and the peer can only end it.
    assert all(TRANSITIONS[state, Change.DROPPED] is CLOSED for state in ConnectionState)


class Client:
    """A wsproto client on one side of a ``ClientConnection``, its states recorded."""

    def __init__(self, config: Config | None = None) -> None:
        self.server = ClientConnection(site=Site.from_files({}), config=config or Config())
        self.peer = WSConnection(ConnectionType.CLIENT)
        self.states = [self.server.state]
        self.messages: list[str | bytes] = []

    def feed(self, data: bytes | None) -> None:
        self.messages += [
            m for m in self.server.receive_data(data, 0.0) if isinstance(m, (str, bytes))
        ]
        self.deliver()

    def deliver(self) -> None:
        queued, self.server.queued = self.server.queued, []
        if queued:
            self.peer.receive_data(b"".join(queued))
        if self.states[-1] is not self.server.state:
            self.states.append(self.server.state)

    def open(self) -> None:
        self.feed(self.peer.send(Request(host="localhost", target="/")))
        assert isinstance(next(self.peer.events()), AcceptConnection)


def test_a_websocket_the_peer_closes_is_echoed_and_closed() -> None:
    client = Client()
    client.open()
    client.feed(client.peer.send(TextMessage(data="hello")))
    client.feed(client.peer.send(CloseConnection(code=1000, reason="bye")))
    assert client.messages == ["hello"]
    assert client.states == [HTTP, OPEN, CLOSED]
    (echo,) = client.peer.events()
    assert isinstance(echo, CloseConnection)
    assert (echo.code, echo.reason) == (1000, "bye")
    assert client.server.peer_close_code == 1000


def test_a_websocket_we_close_waits_for_the_answer() -> None:
    client = Client()
    client.open()
    client.server.close(1001, "going")
    client.deliver()
    (close,) = client.peer.events()
    assert isinstance(close, CloseConnection)
    assert client.states == [HTTP, OPEN, CLOSING]
    client.feed(client.peer.send(close.response()))
    assert client.states == [HTTP, OPEN, CLOSING, CLOSED]
    assert client.server.close_reason is None  # a normal close


def test_closing_again_while_closing_sends_nothing_more() -> None:
    client = Client()
    client.open()
    client.server.close(1000)
    client.server.close(1001, "again")
    client.deliver()
    (close,) = client.peer.events()
    assert isinstance(close, CloseConnection)
    assert close.code == 1000
    assert client.states == [HTTP, OPEN, CLOSING]


def test_plain_requests_keep_the_connection_until_the_client_ends_it() -> None:
    client = Client()
    request = b"GET /missing HTTP/1.1\r\nHost: localhost\r\n\r\n"
    for _ in range(2):
        assert list(client.server.receive_data(request, 0.0)) == []
    assert client.server.queued[0].startswith(b"HTTP/1.1 404 ")
    assert len(client.server.queued) == 2
    assert client.server.state is HTTP
    list(client.server.receive_data(None, 0.0))
    assert client.server.state is CLOSED
    assert client.server.close_reason is None


def test_bytes_that_are_not_websocket_close_with_a_reason() -> None:
    client = Client()
    client.open()
    client.feed(b"\x8f\x80\x00\x00\x00\x00")  # opcode 0xf: reserved
    assert client.states == [HTTP, OPEN, CLOSED]
    (close,) = client.peer.events()
    assert isinstance(close, CloseConnection)
    assert close.code == 1002
    assert client.server.close_reason == "Invalid opcode 0xf"


def test_a_connection_ended_while_its_messages_are_read_reads_no_further() -> None:
    client = Client()
    client.open()
    data = client.peer.send(TextMessage(data="one")) + client.peer.send(CloseConnection(code=1000))
    messages = []
    for message in client.server.receive_data(data, 0.0):
        messages.append(message)
        client.server.close_now(1013, "Too slow to keep up.")
    client.deliver()
    assert messages == ["one"]
    (close,) = client.peer.events()  # ours; the peer's close frame is not echoed
    assert isinstance(close, CloseConnection)
    assert close.code == 1013
    assert client.states == [HTTP, OPEN, CLOSED]


def test_a_closed_connection_reads_nothing_more() -> None:
    client = Client()
    client.open()
    client.server.abort()
    assert client.server.state is CLOSED
    with pytest.raises(LocalProtocolError, match="closed connection"):
        list(client.server.receive_data(b"more", 0.0))
