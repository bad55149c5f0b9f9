"""What the core counts for the driver's metrics: plain integers, read whenever a scrape asks.

The core never reports on its own (no clock, no I/O); it adds to these as it goes, which
costs an integer addition where it happens, and the driver reads them (``GameServer.
statistics``) and turns them into Prometheus metrics at ``GET /metrics``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["NORMAL_CLOSE", "Statistics"]

#: The close reason of a connection that ended as it should (a close handshake, or the end
#: of its HTTP exchange); the others are ``events.Fault`` values.
NORMAL_CLOSE = "normal"


@dataclass(slots=True)
class Statistics:
    """Totals since the core started."""

    #: WebSocket messages received from clients (throttled and invalid ones included).
    messages_received: int = 0
    #: WebSocket messages sent to clients, one per recipient of a broadcast.
    messages_sent: int = 0
    #: Moves played in the games the lobby keeps, and in hot-seat games.
    moves: int = 0
    #: WebSocket handshakes accepted.
    handshakes: int = 0
    #: Refusals sent back (``error`` messages), by their code (``refusals``).
    refusals: Counter[str] = field(default_factory=Counter)
    #: Connections the core forgot, by why they ended: ``NORMAL_CLOSE`` or a ``Fault`` value.
    closes: Counter[str] = field(default_factory=Counter)
