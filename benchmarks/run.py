"""The whole benchmark suite in one command, printed as one Markdown table.

Runs, against our ``server.py`` and the websockets tutorial's server
(``benchmarks/reference_server.py``), alternating A B A B with a fresh server process per run:

- load: 50 concurrent games x 0 spectators, and 2 games x 300 spectators; every game 42 moves
  on new connections, each player moving as soon as it sees the echo of the previous move;
- fan-out: one game with 10, 100 and 1000 spectators, one move at a time: time from a move to
  its delivery at the last spectator, server CPU per delivered message;
- idle memory: RSS growth per open idle WebSocket (each has sent ``init``);
- system calls per move (``strace -c -f``, one short run each, if strace works here);
- ours only (the reference has no computer opponent): 50 human-paced games (a move every
  100-300 ms) with and without 20 bot games beside them, whose client answers the computer's
  every move at once (``--bot-delay 0``), phases without and with alternated in one run: the
  human games' move latency in each condition, the computer's moves answered per second;
- and, in this process, ``benchmarks/core.py``: one move through the sans-IO core in memory
  against the bare-wsproto floor, timed, and counted in instructions by callgrind
  (``benchmarks/instructions.py``, if valgrind is installed: the same count run after run);
- many processes through Redis (``benchmarks/scale_out.py``): one process sharing its games
  through Redis and two processes with red on one and yellow on the other, against the
  in-memory process; Redis' CPU and commands per move; ``--workers 2`` against 1.

CPU time and memory figures are the best (lowest) of their rounds: noise from other processes
only ever adds to them. Rates and wall-clock latencies are the median of the rounds (marked
"median"): a single quiet moment of the machine would otherwise decide them. Load figures
("worst round") are the highest. The server is pinned to core 0, this process (the load client) to
core 1. Progress goes to stderr, the table to stdout. Usage:

    python benchmarks/run.py [--quick] [--rounds N] [--no-strace]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import live  # a sibling module, found through the path set just above
from live import (
    OURS,
    REFERENCE,
    IdleResult,
    LoadConfig,
    LoadResult,
    SyscallResult,
)

KINDS = (OURS, REFERENCE)


@dataclass
class Settings:
    rounds: int = 3
    load_seconds: float = 3.0
    fanout_seconds: float = 1.0
    fanout_sizes: tuple[int, ...] = (10, 100, 1000)
    idle_connections: int = 5000
    strace_seconds: float = 1.0
    core_games: int = 100
    core_rounds: int = 5
    #: Count the instructions of a move through the core (callgrind, if valgrind is here).
    core_instructions: bool = True
    #: The in-memory grid: cells with more connections than this are skipped.
    core_grid_largest: int | None = None
    #: The computer: games per pair of levels, positions of each of Pons' sets (None: all).
    bot_games: int = 20
    solver_positions: int | None = None
    #: Whole games of the perfect player's (half of them as red), timed move by move.
    perfect_games: int = 200
    #: Human-paced games beside bot games (ours only): their sizes, seconds of each phase,
    #: phases of each condition (alternated), the levels of the computer.
    beside_humans: int = 50
    beside_bots: int = 20
    beside_seconds: float = 5.0
    beside_rounds: int = 2
    beside_levels: tuple[str, ...] = ("perfect", "strong")
    #: Human pace (ours against the reference): the loads (games, spectators), each move
    #: after a pause drawn from ``human_pause``; seconds of new games per run (the games under
    #: way then finish, about 8 s at this pace), rounds of A B.
    human_loads: tuple[tuple[int, int], ...] = ((50, 0), (500, 0), (5, 20))
    human_pause: tuple[float, float] = (0.1, 0.3)
    human_seconds: float = 3.0
    human_rounds: int = 2


FULL = Settings()
QUICK = Settings(
    rounds=1,
    load_seconds=0.3,
    fanout_seconds=0.1,
    idle_connections=300,
    strace_seconds=0.3,
    core_games=20,
    core_rounds=1,
    core_instructions=False,
    core_grid_largest=300,
    bot_games=1,
    solver_positions=20,
    perfect_games=2,
    beside_humans=2,
    beside_bots=2,
    beside_seconds=0.3,
    beside_levels=("perfect",),
    human_loads=((2, 0),),
    human_pause=(0.001, 0.003),
    human_seconds=0.3,
    human_rounds=1,
)


@dataclass
class Row:
    metric: str
    ours: float
    reference: float
    unit_format: str = "{:.1f}"
    target: float | None = None  # on the ratio ours / reference, lower is better
    goal: float | None = None
    reference_label: str = ""  # when the right-hand column is not the reference server
    show_ratio: bool = True  # False for the rows that only describe the conditions

    @property
    def ratio(self) -> float:
        if not self.reference or math.isnan(self.reference):
            return float("nan")
        return self.ours / self.reference

    def cells(self) -> list[str]:
        ratio = self.ratio if self.show_ratio else float("nan")
        if self.target is None:
            target = verdict = ""
        else:
            target = f"<= {self.target:.1f}" + (f" (goal {self.goal:.1f})" if self.goal else "")
            verdict = _verdict(ratio, self.target)
            if self.goal is not None and verdict == "met":
                goal = _verdict(ratio, self.goal)
                verdict += "; goal met" if goal == "met" else f"; goal {goal}"
        return [
            self.metric,
            _format(self.unit_format, self.ours),
            _format(self.unit_format, self.reference) + self.reference_label,
            "" if math.isnan(ratio) else f"{ratio:.2f}",
            target,
            verdict,
        ]


def _verdict(ratio: float, target: float) -> str:
    if math.isnan(ratio):
        return "not measured"
    return "met" if ratio <= target else f"missed by {ratio - target:.2f}"


def _format(unit_format: str, value: float) -> str:
    return "n/a" if math.isnan(value) else unit_format.format(value)


@dataclass
class Report:
    rows: list[Row | str] = field(default_factory=list)  # a str is a section heading
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def section(self, title: str) -> None:
        self.rows.append(title)

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def markdown(self) -> str:
        lines = [
            "| measure | ours | reference | ours / ref | target | result |",
            "|---|--:|--:|--:|---|---|",
        ]
        for row in self.rows:
            if isinstance(row, str):
                lines.append(f"| **{row}** | | | | | |")
            else:
                lines.append("| " + " | ".join(row.cells()) + " |")
        return "\n".join(lines)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def combine(values: Sequence[float], how: str = "best") -> float:
    """Rounds into one figure: "best" (lowest), "median", or "worst" (highest)."""
    clean = [value for value in values if not math.isnan(value)]
    if not clean:
        return float("nan")
    if how == "median":
        return statistics.median(clean)
    return max(clean) if how == "worst" else min(clean)


def alternate_loads(
    settings: Settings,
    config: LoadConfig,
    report: Report,
    label: str,
    rounds: int | None = None,
) -> dict[str, list[LoadResult]]:
    """A B A B: a fresh server per run; failures recorded in the report."""
    results: dict[str, list[LoadResult]] = {kind.name: [] for kind in KINDS}
    rounds = settings.rounds if rounds is None else rounds
    for round_number in range(rounds):
        for kind in KINDS:
            try:
                result = live.measure_load(kind, config)
            except RuntimeError as exc:  # it did not start: say so, run the rest
                report.failures.append(f"{label}, {kind.name}: {exc}")
                continue
            progress(f"  [{label} {round_number + 1}/{rounds}] {result.summary()}")
            _record_failures(report, label, result.server, result.failures)
            _record_failures(report, label, result.server, result.server_problems)
            if result.failure_count > len(result.failures):
                report.failures.append(
                    f"{label}, {result.server}: {result.failure_count} failures in all"
                )
            if result.moves == 0:
                report.failures.append(f"{label}, {result.server}: no move was played")
            results[kind.name].append(result)
    return results


def poller_rows(report: Report, settings: Settings, config: LoadConfig) -> None:
    """Ours on the portable poller (a trio task per socket) against ours on epoll, A B A B:
    CPU per move (best of the rounds) and the p99 latency (median)."""
    runs: dict[str, list[LoadResult]] = {"ours": [], "portable": []}
    for round_number in range(settings.rounds):
        for kind in (live.OURS_PORTABLE, OURS):
            try:
                result = live.measure_load(kind, config)
            except RuntimeError as exc:
                report.failures.append(f"poller, {kind.name}: {exc}")
                continue
            progress(f"  [poller {round_number + 1}/{settings.rounds}] {result.summary()}")
            _record_failures(report, "poller", result.server, result.failures)
            _record_failures(report, "poller", result.server, result.server_problems)
            runs[kind.name].append(result)
    if not runs["ours"] or not runs["portable"]:
        return
    report.add(
        Row(
            "server CPU per move, us: portable poller (right: epoll)",
            combine([r.per_move_us() for r in runs["portable"]], "best"),
            combine([r.per_move_us() for r in runs["ours"]], "best"),
            "{:,.1f}",
            reference_label=" (epoll)",
        )
    )
    report.add(
        Row(
            "move latency p99, ms: portable poller (right: epoll)",
            combine([r.latency_ms(0.99) for r in runs["portable"]], "median"),
            combine([r.latency_ms(0.99) for r in runs["ours"]], "median"),
            "{:.2f}",
            reference_label=" (epoll)",
        )
    )


def _record_failures(report: Report, label: str, server: str, failures: list[str]) -> None:
    report.failures.extend(f"{label}, {server}: {failure}" for failure in failures)


def _pair(
    results: dict[str, list[LoadResult]],
    measure: Callable[[LoadResult], float],
    how: str = "best",
) -> tuple[float, float]:
    return (
        combine([measure(result) for result in results["ours"]], how),
        combine([measure(result) for result in results["reference"]], how),
    )


def load_rows(
    report: Report,
    results: dict[str, list[LoadResult]],
    name: str,
    *,
    target: float | None,
    goal: float | None,
    latency_target: float | None,
) -> None:
    def row(metric: str, measure: Callable[[LoadResult], float], unit: str, **more: Any) -> None:
        how = more.pop("how", "best")
        report.add(Row(metric.format(name=name), *_pair(results, measure, how), unit, **more))

    row(
        "server CPU per move, {name} (us)",
        LoadResult.per_move_us,
        "{:.1f}",
        target=target,
        goal=goal,
    )
    row("server CPU per message, {name} (us)", LoadResult.per_message_us, "{:.2f}")
    row("moves/s, {name} (median)", lambda r: r.moves / r.wall, "{:,.0f}", how="median")
    row("messages/s, {name} (median)", lambda r: r.messages / r.wall, "{:,.0f}", how="median")
    row(
        "move latency p50, {name} (ms, median)", lambda r: r.latency_ms(0.5), "{:.2f}", how="median"
    )
    row(
        "move latency p99, {name} (ms, median)",
        lambda r: r.latency_ms(0.99),
        "{:.2f}",
        target=latency_target,
        how="median",
    )
    row("server peak RSS, {name} (MiB)", lambda r: r.peak_rss_kib / 1024, "{:.1f}")
    row(
        "server CPU load, {name} (% of its core, highest round)",
        lambda r: 100 * r.server_cpu / r.wall,
        "{:.0f}%",
        how="worst",
        show_ratio=False,
    )
    row(
        "load client CPU, {name} (% of its core, worst round)",
        lambda r: 100 * r.client_cpu / r.wall,
        "{:.0f}%",
        how="worst",
        show_ratio=False,
    )
    row(
        "load client CPU per move, {name} (us)",
        lambda r: r.client_cpu / r.moves * 1e6 if r.moves else float("nan"),
        "{:.1f}",
        show_ratio=False,
    )
    row(
        "other processes' CPU, {name} (% of one core, 2 cores = 200%, worst round)",
        lambda r: 100 * r.other_cpu / r.wall,
        "{:.0f}%",
        how="worst",
        show_ratio=False,
    )


def syscall_row(report: Report, settings: Settings, config: LoadConfig, name: str) -> None:
    if not live.strace_available():
        report.notes.append("System calls: strace is not available here; not measured.")
        return
    found: dict[str, SyscallResult | None] = {}
    short = LoadConfig(config.games, config.spectators, settings.strace_seconds)
    for kind in KINDS:
        try:
            found[kind.name] = result = live.measure_syscalls(kind, short)
        except RuntimeError as exc:
            report.failures.append(f"strace, {kind.name}: {exc}")
            found[kind.name] = result = None
        progress(f"  [strace] {kind.name}: {result}")
    ours, reference = found["ours"], found["reference"]
    report.add(
        Row(
            f"system calls per move, {name} (strace -c -f, {settings.strace_seconds:g} s)",
            ours.per_move if ours else float("nan"),
            reference.per_move if reference else float("nan"),
            "{:.2f}",
        )
    )
    for result in (ours, reference):
        if result is not None:
            top = ", ".join(f"{call} {count / result.moves:.2f}" for call, count in result.top)
            report.notes.append(f"System calls per move under strace, {result.server}: {top}.")


def fanout_rows(report: Report, settings: Settings) -> None:
    for size in settings.fanout_sizes:
        config = LoadConfig(
            games=1, spectators=size, duration=settings.fanout_seconds, lockstep=True
        )
        results = alternate_loads(settings, config, report, f"fan-out {size}")
        report.add(
            Row(
                f"move to last of {size} spectators, p50 (ms, median)",
                *_pair(results, lambda r: r.fanout_ms(0.5), "median"),
                "{:.2f}",
            )
        )
        report.add(
            Row(
                f"server CPU per delivered message, {size} spectators (us)",
                *_pair(results, LoadResult.per_delivery_us),
                "{:.2f}",
                0.7,
            )
        )
        report.add(
            Row(
                f"load client CPU per delivered message, {size} spectators (us, worst round)",
                *_pair(results, LoadResult.client_per_delivery_us, "worst"),
                "{:.2f}",
                show_ratio=False,
            )
        )


def idle_row(report: Report, settings: Settings) -> None:
    found: dict[str, list[IdleResult]] = {kind.name: [] for kind in KINDS}
    rounds = min(settings.rounds, 2)  # the figure hardly moves between rounds
    for round_number in range(rounds):
        for kind in KINDS:
            try:
                result = live.measure_idle(kind, settings.idle_connections)
            except RuntimeError as exc:
                report.failures.append(f"idle, {kind.name}: {exc}")
                continue
            progress(
                f"  [idle {round_number + 1}/{rounds}] {kind.name}:"
                f" {result.per_connection_kib:.2f} KiB per connection"
                f" ({result.rss_before_kib} -> {result.rss_after_kib} KiB)"
            )
            _record_failures(report, "idle", kind.name, result.failures + result.server_problems)
            if result.ok:
                found[kind.name].append(result)
    report.add(
        Row(
            f"RSS per idle connection, N = {settings.idle_connections} (KiB)",
            combine([result.per_connection_kib for result in found["ours"]]),
            combine([result.per_connection_kib for result in found["reference"]]),
            "{:.2f}",
            0.5,
        )
    )


def core_rows(report: Report, settings: Settings) -> None:
    games = settings.core_games
    moves = 42 * games
    core_best = floor_best = float("nan")
    try:
        import core  # benchmarks/core.py: imports our package, so only here

        core_best = floor_best = float("inf")
        for _ in range(settings.core_rounds):  # alternate core and floor: the same noise
            seconds, _delivered = core.core_run(games, 0)
            core_best = min(core_best, seconds)
            floor_best = min(floor_best, core.floor_run(games, 0))
    except Exception as exc:  # the package may be mid-edit: report it, keep the live rows
        report.failures.append(f"core benchmark (benchmarks/core.py) failed: {exc!r}")
        core_best = floor_best = float("nan")
    progress(
        f"  [core] {core_best / moves * 1e6:.2f} us/move, floor"
        f" {floor_best / moves * 1e6:.2f} us/move"
    )
    report.add(
        Row(
            f"in memory, one move, {games} games x 0 spectators (us; right: bare-wsproto floor)",
            core_best / moves * 1e6,
            floor_best / moves * 1e6,
            "{:.2f}",
            1.3,
            reference_label=" (floor)",
        )
    )


def instruction_rows(report: Report, settings: Settings) -> None:
    """Instructions per move through the core and the floor: the same from run to run, where
    the timed row above swings with the machine (``benchmarks/instructions.py``)."""
    if not settings.core_instructions:
        return
    if shutil.which("valgrind") is None:
        report.failures.append("instruction counts skipped: valgrind is not installed")
        return
    try:
        import instructions  # benchmarks/instructions.py

        figures = instructions.per_move(Path(__file__).resolve().parent.parent)
    except Exception as exc:
        report.failures.append(f"instruction count (benchmarks/instructions.py) failed: {exc!r}")
        return
    progress(f"  [instructions] core {figures['core']:.0f}, floor {figures['floor']:.0f}")
    report.add(
        Row(
            f"in memory, one move, {instructions.GAMES} games x 0 spectators (instructions,"
            " callgrind; right: bare-wsproto floor)",
            figures["core"],
            figures["floor"],
            "{:,.0f}",
            1.3,
            reference_label=" (floor)",
        )
    )


def core_grid_rows(report: Report, settings: Settings) -> None:
    """Games 1/100/1000 x spectators 0/10/100 through the core in memory: rates, not ratios."""
    try:
        import core

        cells = core.grid(rounds=min(settings.core_rounds, 3), largest=settings.core_grid_largest)
    except Exception as exc:
        report.failures.append(f"core grid (benchmarks/core.py) failed: {exc!r}")
        return
    for cell in cells:
        label = f"{cell['games']:.0f} games x {cell['spectators']:.0f} spectators"
        progress(f"  [core grid] {label}: {cell['us_per_move']:.2f} us/move")
        report.add(
            Row(
                f"in memory, {label}: us per move (right: messages out per s)",
                cell["us_per_move"],
                cell["messages_out_per_s"],
                "{:,.1f}",
                show_ratio=False,
                reference_label=" (out/s)",
            )
        )


def computer_rows(report: Report, settings: Settings) -> None:
    """Both solvers on Pons' sets beside his C++ figures; the perfect player's time per move
    over whole games, by stones on the board; the levels' times per move and their
    tournament (in this process)."""
    try:
        import bots  # benchmarks/bots.py

        sets = {
            (name, fast): bots.solver_set(name, settings.solver_positions, fast)
            for name in bots.PONS_US
            for fast in (False, True)
        }
        perfect, results = bots.perfect_times(settings.perfect_games)
        table, times = bots.tournament(settings.bot_games)
    except Exception as exc:
        report.failures.append(f"computer benchmark (benchmarks/bots.py) failed: {exc!r}")
        return
    for (name, fast), result in sets.items():
        kind = "fast (numba)" if fast else "reference (Python)"
        progress(f"  [solver] {name}, {kind}: {result['us_per_position']:.1f} us/position")
        report.add(
            Row(
                f"solver, {kind}, {name}: us per position (right: Pons' C++); "
                f"{result['nodes_per_position']:.0f} nodes,"
                f" {result['nodes_per_s'] / 1000:,.0f} k/s",
                result["us_per_position"],
                bots.PONS_US[name],
                "{:,.1f}",
                reference_label=" (Pons)",
            )
        )
    groups = [(0, 42), *bots.STONE_GROUPS]
    for low, high in groups:
        spent = [t for stones in range(low, high + 1) for t in perfect.get(stones, [])]
        if not spent:
            continue
        which = "every move" if (low, high) == (0, 42) else f"{low}-{high} stones"
        report.add(
            Row(
                f"perfect, {settings.perfect_games} games (won {results[0]}, lost {results[1]},"
                f" drawn {results[2]}), {which}, {len(spent)} moves: ms p99 (right: max;"
                f" p50 {statistics.median(spent) * 1e3:.2f})",
                bots.percentile(spent, 0.99) * 1e3,
                max(spent) * 1e3,
                "{:.1f}",
                show_ratio=False,
                reference_label=" (max)",
            )
        )
    for level, spent in times.items():
        report.add(
            Row(
                f"computer, {level.value}: ms per move, p99 (right: max)",
                bots.percentile(spent, 0.99) * 1e3,
                max(spent) * 1e3,
                "{:.1f}",
                show_ratio=False,
                reference_label=" (max)",
            )
        )
    for (a, b), (wins_a, wins_b, draws) in table.items():
        report.add(
            Row(
                f"tournament, {a.value} vs {b.value}, {wins_a + wins_b + draws} games:"
                f" wins of each (draws: {draws})",
                wins_a,
                wins_b,
                "{:.0f}",
                show_ratio=False,
            )
        )


def beside_rows(report: Report, settings: Settings) -> None:
    """Human-paced games with and without bot games beside them, one run per level: ours
    with the bots on the left, without them on the right; the ratio is the slowdown."""
    for level in settings.beside_levels:
        config = live.BesideConfig(
            humans=settings.beside_humans,
            bots=settings.beside_bots,
            level=level,
            seconds=settings.beside_seconds,
            rounds=settings.beside_rounds,
        )
        label = f"beside {level} bots"
        try:
            result = live.measure_beside_bots(config)
        except RuntimeError as exc:  # it did not start: say so, run the rest
            report.failures.append(f"{label}: {exc}")
            continue
        progress(f"  [{label}] {result.summary()}")
        human = result.human
        _record_failures(report, label, "ours", human.failures + result.server_problems)
        if human.failure_count > len(human.failures):
            report.failures.append(f"{label}, ours: {human.failure_count} failures in all")
        if not result.ok and not human.failure_count and not result.server_problems:
            report.failures.append(f"{label}, ours: a condition without moves: {result.summary()}")
        games = f"{config.humans} human-paced games, {config.bots} {level} bot games"
        for quantile, name in ((0.5, "p50"), (0.99, "p99")):
            report.add(
                Row(
                    f"human move latency {name}, {games} (ms; right: without the bots)",
                    result.latency_ms(live.WITH, quantile),
                    result.latency_ms(live.WITHOUT, quantile),
                    "{:.2f}",
                    reference_label=" (no bots)",
                )
            )
        report.add(
            Row(
                f"computer's moves answered per s, {games} (right: human moves per s)",
                result.bot_moves_per_s(),
                result.moves_per_s(live.WITH),
                "{:,.0f}",
                reference_label=" (human)",
                show_ratio=False,
            )
        )
        shares = (
            ("server CPU load (% of its core)", lambda phase: phase.server_cpu),
            ("other processes' CPU (% of one core, 2 cores = 200%)", lambda phase: phase.other_cpu),
        )
        for what, measure in shares:
            report.add(
                Row(
                    f"{what}, {games} (right: without the bots)",
                    100 * result.share(live.WITH, measure),
                    100 * result.share(live.WITHOUT, measure),
                    "{:.0f}%",
                    reference_label=" (no bots)",
                    show_ratio=False,
                )
            )


def redis_rows(report: Report, settings: Settings) -> None:
    try:
        import redis_client  # benchmarks/redis_client.py: starts its own redis-server

        quick = settings is QUICK
        figures = redis_client.measure(
            1 if quick else 3, 200 if quick else 2000, 200 if quick else 2000
        )
    except Exception as exc:  # no redis-server here: say so, keep the other rows
        report.failures.append(f"Redis client benchmark (benchmarks/redis_client.py): {exc!r}")
        return
    progress(
        f"  [redis] GET {figures['get'] * 1e6:.1f} us, floor {figures['floor_get'] * 1e6:.1f} us"
    )
    report.add(
        Row(
            "GET, one at a time (us; right: blocking socket + hiredis floor)",
            figures["get"] * 1e6,
            figures["floor_get"] * 1e6,
            reference_label=" (floor)",
        )
    )
    report.add(
        Row(
            "10,000 pipelined INCR (ms; right: floor)",
            figures["pipelined"] * 1e3,
            figures["floor_pipelined"] * 1e3,
            reference_label=" (floor)",
        )
    )
    report.add(
        Row(
            "append of one move, one at a time (us; right: 50 games at once, us each)",
            figures["append"] * 1e6,
            figures["append_concurrent"] * 1e6,
            reference_label=" (50 at once)",
            show_ratio=False,
        )
    )


def scale_out_rows(report: Report, settings: Settings) -> None:
    """Many processes through Redis (benchmarks/scale_out.py): rounds of memory, one
    process on Redis, two processes across, then 1 and 2 workers."""
    try:
        import scale_out
    except ImportError as exc:  # no hiredis: say so, keep the other rows
        report.failures.append(f"scale-out benchmark (benchmarks/scale_out.py): {exc!r}")
        return
    if scale_out.REDIS_SERVER is None:
        report.failures.append("scale-out benchmark: no redis-server")
        return
    config = LoadConfig(games=50, spectators=0, duration=settings.load_seconds)
    runs: dict[str, list[scale_out.ScaleResult]] = {}
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(settings.rounds):
            for name in ("memory", "redis", "cross"):
                result = scale_out.measure(name, config, Path(directory))
                progress(f"  [{name}] {result.load.summary()}")
                runs.setdefault(name, []).append(result)
            for count in (1, 2):
                result = scale_out.measure_workers(count, config, Path(directory))
                progress(f"  [{result.name}] {result.moves_per_second:.0f} moves/s")
                runs.setdefault(result.name, []).append(result)
    for name, results in runs.items():
        for result in results:
            if not result.ok:
                _record_failures(report, name, name, result.load.failures + result.problems)

    def best(name: str, figure: Callable[[scale_out.ScaleResult], float]) -> float:
        return combine([figure(result) for result in runs[name]])

    def median(name: str, figure: Callable[[scale_out.ScaleResult], float]) -> float:
        return combine([figure(result) for result in runs[name]], "median")

    def cpu(result: scale_out.ScaleResult) -> float:
        return result.per_move_us(result.server_cpu)

    in_memory = " (in memory)"
    report.add(
        Row(
            "server CPU per move, one process on Redis (us)",
            best("redis", cpu),
            best("memory", cpu),
            reference_label=in_memory,
        )
    )
    report.add(
        Row(
            "server CPU per move, two processes across (us, both)",
            best("cross", cpu),
            best("memory", cpu),
            reference_label=in_memory,
        )
    )
    report.add(
        Row(
            "Redis CPU per move, two processes across (us; right: server's)",
            best("cross", lambda r: r.per_move_us(r.redis_cpu)),
            best("cross", cpu),
            reference_label=" (servers)",
            show_ratio=False,
        )
    )
    report.add(
        Row(
            "Redis commands per move, two processes across (right: one process)",
            median("cross", lambda r: r.commands_per_move),
            median("redis", lambda r: r.commands_per_move),
            reference_label=" (one)",
            show_ratio=False,
        )
    )
    for quantile in (0.5, 0.99):
        report.add(
            Row(
                f"move latency p{round(quantile * 100)}, across (ms)",
                median("cross", lambda r, q=quantile: r.load.latency_ms(q)),
                median("memory", lambda r, q=quantile: r.load.latency_ms(q)),
                unit_format="{:.2f}",
                reference_label=in_memory,
            )
        )
    report.add(
        Row(
            "time per 1,000 moves, 2 workers (ms; right: 1 worker)",
            median("workers 2", lambda r: 1e6 / r.moves_per_second),
            median("workers 1", lambda r: 1e6 / r.moves_per_second),
            reference_label=" (1 worker)",
            target=0.63,
        )
    )
    # The load client and Redis share the machine with the workers: what one worker leaves
    # idle is all a second one can use, so 2 workers are at most cores / busy times faster.
    report.add(
        Row(
            "machine busy with 1 worker (cores; right: the machine's)",
            median("workers 1", lambda r: r.machine_busy),
            float(os.cpu_count() or 1),
            unit_format="{:.2f}",
            reference_label=" (cores)",
        )
    )


def machine_line() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for package in ("wsproto", "h11", "msgspec", "trio", "websockets", "picows", "uvloop"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} absent")
    pinning = "server on core 0, client on core 1" if live.two_cores() else "not pinned"
    return (
        f"Machine: {model}, {os.cpu_count()} cores ({pinning}), Linux {platform.release()},"
        f" Python {platform.python_version()}; {', '.join(versions)}."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fraction of a second each")
    parser.add_argument("--rounds", type=int, help="rounds of A B per live scenario")
    parser.add_argument("--no-strace", action="store_true", help="skip the system call count")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.rounds:
        settings.rounds = args.rounds
    live.pin_client()
    started = time.perf_counter()
    report = Report()

    plain = LoadConfig(games=50, spectators=0, duration=settings.load_seconds)
    progress("50 games x 0 spectators")
    report.section(f"Load: 50 games x 0 spectators, {settings.load_seconds:g} s per run")
    results = alternate_loads(settings, plain, report, "50x0")
    # Issue 14's targets: saturated at most 0.9, fan-out at most 0.7, p99 at most 1.0 at every
    # load, human pace at most 0.8 (goals 0.5).
    load_rows(report, results, "50x0", target=0.9, goal=0.5, latency_target=1.0)
    if not args.no_strace:
        syscall_row(report, settings, plain, "50x0")

    crowd = LoadConfig(games=2, spectators=300, duration=settings.load_seconds)
    progress("2 games x 300 spectators")
    report.section(f"Load: 2 games x 300 spectators, {settings.load_seconds:g} s per run")
    results = alternate_loads(settings, crowd, report, "2x300")
    load_rows(report, results, "2x300", target=0.7, goal=0.5, latency_target=1.0)

    low, high = (round(seconds * 1000) for seconds in settings.human_pause)
    for games, spectators in settings.human_loads:
        name = f"human pace {games}x{spectators}"
        progress(name)
        report.section(
            f"Human pace: {games} games x {spectators} spectators, each move after {low}-{high}"
            f" ms, {settings.human_seconds:g} s of new games per run"
        )
        paced = LoadConfig(
            games=games,
            spectators=spectators,
            duration=settings.human_seconds,
            pause=settings.human_pause,
        )
        results = alternate_loads(settings, paced, report, name, settings.human_rounds)
        load_rows(report, results, name, target=0.8, goal=0.5, latency_target=1.0)

    progress("the portable poller")
    report.section(
        f"The portable poller (macOS, Windows) against epoll, on Linux: 50 games x 0 spectators,"
        f" {settings.load_seconds:g} s per run"
    )
    poller_rows(report, settings, plain)

    progress("fan-out")
    report.section("Fan-out: one game, one move at a time")
    fanout_rows(report, settings)

    progress("idle memory")
    report.section("Idle memory")
    idle_row(report, settings)

    progress("core in memory")
    report.section("Core in memory (benchmarks/core.py)")
    core_rows(report, settings)
    instruction_rows(report, settings)
    core_grid_rows(report, settings)

    progress("the computer")
    report.section("The computer (benchmarks/bots.py, in this process)")
    computer_rows(report, settings)

    progress("human-paced games beside bot games")
    report.section(
        f"Beside the computer (ours only): {settings.beside_humans} human-paced games,"
        f" {settings.beside_bots} bot games in every other phase of {settings.beside_seconds:g} s"
    )
    beside_rows(report, settings)

    progress("the Redis client")
    report.section(
        "The Redis client (benchmarks/redis_client.py, in this process, one redis-server)"
    )
    redis_rows(report, settings)

    progress("many processes through Redis")
    report.section(
        "Many processes through Redis (benchmarks/scale_out.py): 50 games x 0 spectators,"
        f" {settings.load_seconds:g} s per run; servers and Redis on the server's core, the"
        " workers unpinned"
    )
    scale_out_rows(report, settings)

    elapsed = time.perf_counter() - started
    print(machine_line())
    print()
    print(
        f"{settings.rounds} round(s) per scenario (idle memory: {min(settings.rounds, 2)}),"
        f" servers alternated A B A B with a fresh server process per run; CPU and memory:"
        f" best of the rounds; rates and latencies: median of the rounds; every event checked"
        f" by the client;"
        f" whole suite {elapsed:.0f} s{' (--quick)' if args.quick else ''}."
    )
    print()
    print(report.markdown())
    for note in report.notes:
        print(f"\n{note}", end="")
    print()
    if report.failures:
        print("\nFAILED RUNS (lost or reordered moves, errors, server problems):")
        for failure in report.failures:
            print(f"- {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
