"""``GET /metrics``: the server's state and totals in the Prometheus text format.

The format is ``prometheus_client``'s (``generate_latest`` over a registry of its own, not the
global one, and without its HTTP server: the page is served by the core like any other).
Nothing is counted twice: the core's totals (``Statistics``) and its games are read when a
scrape asks; what only the driver sees (time spent in the core, the computer's searches, slow
readers) it adds up here in plain integers and lists, because ``prometheus_client``'s own
``Histogram.observe`` takes a lock and would run on every read of every socket.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from connect4proto import GameServer, Page
from connect4proto.match import Phase
from connect4proto.solver.bots import Level

__all__ = ["CONTENT_TYPE", "METRICS_PATH", "Histogram", "ServerMetrics"]

METRICS_PATH = "/metrics"
#: The text format ``generate_latest`` writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Seconds the core takes for one read: a move and its broadcast take tens of microseconds.
PROCESSING_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1
)  # fmt: skip
#: Seconds from the core asking for the computer's move to its answer (the queue included).
THINKING_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

#: Seconds from a decision sent to Redis to its answer (retries included).
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

#: How the computer's move was found: its level's search, the casual level's at once (too
#: many waited), or a safe one (the search failed).
HOW_COMPUTED = ("searched", "hurried", "failed")


class Histogram:
    """Observations counted into buckets (upper bounds, inclusive, as Prometheus's ``le``)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        """The buckets as Prometheus counts them: each holds every smaller one too."""
        buckets = []
        running = 0
        for bound, count in zip((*map(repr, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            buckets.append((bound, float(running)))
        return buckets


class ServerMetrics:
    """What ``/metrics`` shows: the core's (``observe``) and the driver's own measurements."""

    def __init__(self) -> None:
        self._core: GameServer | None = None
        #: Time in the core per read: ``handshake`` (the read that opened a WebSocket),
        #: ``message`` (any later read: on a WebSocket, its messages, mostly moves), ``http``
        #: (a first read that opened no WebSocket: a page, the health check, a refusal).
        self.processing = {
            kind: Histogram(PROCESSING_BUCKETS) for kind in ("handshake", "message", "http")
        }
        self.thinking = {level.value: Histogram(THINKING_BUCKETS) for level in Level}
        self.computed = {(level.value, how): 0 for level in Level for how in HOW_COMPUTED}
        #: Connections whose backlog outgrew ``Config.max_output_buffer`` (closed 1013).
        self.overflows = 0
        #: With ``--redis``: whether Redis answers, its round trips by outcome, how long a
        #: decision waits for it, and the games followed (``SharedGames`` keeps them).
        self.shared: SharedFigures | None = None
        self._registry = CollectorRegistry(auto_describe=True)
        self._registry.register(_Collector(self))
        ProcessCollector(registry=self._registry)  # CPU, memory, descriptors (Linux: /proc)
        PlatformCollector(registry=self._registry)
        self._registry.register(GC_COLLECTOR)

    def observe(self, core: GameServer) -> None:
        """Report on ``core`` (given once it exists: its site already holds the page)."""
        self._core = core

    def page(self) -> Page:
        return Page(content_type=CONTENT_TYPE, render=self.render)

    def render(self) -> bytes:
        return generate_latest(self._registry)

    def families(self) -> Iterator[Metric]:
        core = self._core
        if core is not None:
            yield from _core_families(core)
        yield _counter(
            "connect4_output_overflows",
            "Connections that read slower than their game moved (closed 1013).",
            self.overflows,
        )
        yield _histograms(
            "connect4_processing_seconds",
            "Time in the sans-IO core for one read of a socket, by what the read was.",
            "kind",
            self.processing,
        )
        computed = CounterMetricFamily(
            "connect4_computer_moves",
            "The computer's moves, by level and by how they were found.",
            labels=["level", "how"],
        )
        for (level, how), count in self.computed.items():
            computed.add_metric([level, how], count)
        yield computed
        yield _histograms(
            "connect4_computer_thinking_seconds",
            "From the core asking for the computer's move to its answer (the wait included).",
            "level",
            self.thinking,
        )
        shared = self.shared
        if shared is not None:
            yield _gauge(
                "connect4_redis_up",
                "Whether Redis answered the last round trip.",
                float(shared.reachable),
            )
            outcomes = CounterMetricFamily(
                "connect4_redis_round_trips",
                "Round trips to Redis, by outcome (appended, conflict, lookup, ping, ids; "
                "ambiguous: sent, not answered; unavailable: not sent, or refused).",
                labels=["outcome"],
            )
            for outcome, count in sorted(shared.outcomes.items()):
                outcomes.add_metric([outcome], count)
            yield outcomes
            yield _histograms(
                "connect4_redis_decision_seconds",
                "From a decision sent to Redis to its answer (retries included).",
                "intent",
                shared.waits,
            )
            yield _gauge(
                "connect4_redis_games_followed",
                "Games this process follows (it has connections in them).",
                shared.following,
            )


class SharedFigures(Protocol):
    """What ``SharedGames`` counts, as the metrics read it."""

    @property
    def reachable(self) -> bool: ...

    @property
    def outcomes(self) -> Mapping[str, int]: ...

    @property
    def waits(self) -> Mapping[str, Histogram]: ...

    @property
    def following(self) -> int: ...


class _Collector:
    """``prometheus_client``'s side of ``ServerMetrics``: a custom collector."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics.families()


def _core_families(core: GameServer) -> Iterator[Metric]:
    statistics = core.statistics
    lobby = core.lobby
    yield _gauge("connect4_connections_open", "Connections open.", core.connection_count)
    games = GaugeMetricFamily(
        "connect4_games", "Games the server keeps, by the phase of their match.", labels=["phase"]
    )
    phases = lobby.phases()
    for phase in Phase:
        games.add_metric([phase.value], phases[phase])
    yield games
    yield _gauge(
        "connect4_hot_seat_games",
        "Hot-seat games being played (both colours on one page).",
        lobby.hot_seat_count,
    )
    yield _counter("connect4_moves", "Moves played.", statistics.moves)
    yield _counter(
        "connect4_messages_received",
        "WebSocket messages received from clients.",
        statistics.messages_received,
    )
    yield _counter(
        "connect4_messages_sent",
        "WebSocket messages sent to clients (one per recipient of a broadcast).",
        statistics.messages_sent,
    )
    yield _counter("connect4_handshakes", "WebSocket handshakes accepted.", statistics.handshakes)
    refusals = CounterMetricFamily(
        "connect4_refusals", "Refusals sent back, by code (PROTOCOL.md).", labels=["code"]
    )
    for code, count in sorted(statistics.refusals.items()):
        refusals.add_metric([code], count)
    yield refusals
    closes = CounterMetricFamily(
        "connect4_connections_closed",
        "Connections ended: normal, or by the fault that ended them.",
        labels=["reason"],
    )
    for reason, count in sorted(statistics.closes.items()):
        closes.add_metric([reason], count)
    yield closes


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _histograms(
    name: str, documentation: str, label: str, histograms: Mapping[str, Histogram]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=[label])
    for value, histogram in histograms.items():
        family.add_metric([value], histogram.cumulative(), histogram.total)
    return family
