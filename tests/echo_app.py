"""An echo application on the game's connection layer and trio driver, for the conformance tests.

The Autobahn|Testsuite cases (run by kosoku) expect a server that sends every message back as
it came. ``EchoApplication`` is an ``Application`` of the game's transport: ``GameServer`` runs
it in place of the game, so HTTP, the handshake, framing, fragments, UTF-8, pings, closing and
the limit checks are the game's own (with the limits raised for case 9). It lives in tests/,
so no deployment serves it.

To run it by hand, from the repository root: ``python -m tests.echo_app --port 9001``, then
``kosoku 127.0.0.1:9001 -i '1.*' ... -i '10.*'`` (reports in ./reports/clients). Cases 12 and 13
need permessage-deflate, which the server never negotiates.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
from functools import partial
from typing import Any

import trio

from connect4proto import Config, ConnectionId, GameServer, Replies, Site
from connect4proto.driver import Driver, serve

_LARGEST_MESSAGE = 16 * 2**20  # cases 9.1.6 and 9.2.6

#: The game's limits are far lower; these let the cases through. Fields this ``Config`` does
#: not have (yet) are left out, so the echo application runs on either side of a new limit.
_ECHO_LIMITS: dict[str, Any] = {
    "max_message_size": _LARGEST_MESSAGE + 4096,
    # Cases 9.3.1 and 9.4.1 send 4 MiB in 64-byte fragments: 65,536 frames.
    "max_fragments": 2**17,
    # The echo of a 16 MiB message waits unsent in the driver, whole.
    "max_output_buffer": 2 * _LARGEST_MESSAGE,
    # Cases 9.7.* and 9.8.* send 1,000 messages each, one round trip after another, in ~0.1 s.
    "max_messages_per_second": None,
}
_FIELDS = {field.name for field in dataclasses.fields(Config)}
ECHO_CONFIG = Config(**{name: value for name, value in _ECHO_LIMITS.items() if name in _FIELDS})


class EchoApplication:
    """Sends every complete message back: text as text, binary as binary."""

    def receive_message(
        self, connection: ConnectionId, data: str | bytes, replies: Replies
    ) -> None:
        replies.send_data(connection, data)


def echo_server(config: Config = ECHO_CONFIG) -> GameServer:
    """An echo core with no web pages and the raised limits of ``ECHO_CONFIG``."""
    counter = itertools.count(1)
    return GameServer(
        site=Site.from_files({}),
        new_key=lambda: f"key-{next(counter)}",
        config=config,
        application=EchoApplication(),
    )


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The conformance tests' echo server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(partial(serve, Driver(echo_server()), args.host, args.port))
        print(f"echo server listening on {address}", flush=True)


if __name__ == "__main__":
    trio.run(main)
