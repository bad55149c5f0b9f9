"""End-to-end tests: real ``server.py`` processes driven through headless Chromium.

Every player and spectator gets its own browser context (its own cookies, storage and
WebSocket) and is driven only through the UI: clicks, key presses, reloads and reading the
DOM; a second tab of one person shares its context (and a copy of its sessionStorage, as a
duplicated tab does). A connection is cut, or silenced, by a TCP relay between a browser and
the server.
Screenshots of every page land in ``test-artifacts/browser/<scenario>-<who>.png``.
"""

from __future__ import annotations

import json
import queue
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    Response,
    ViewportSize,
    WebSocket,
    expect,
    sync_playwright,
)
from redis_servers import REDIS_SERVER, RedisServer, running

from connect4proto import Game, Move, Player

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"


def _find_chromium() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


CHROMIUM = _find_chromium()
if CHROMIUM is None:
    pytest.skip(
        "no Chromium found at /usr/bin/chromium or on PATH (apt-get install chromium)",
        allow_module_level=True,
    )

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Auto-waiting budget of every ``expect`` and action, in milliseconds.
TIMEOUT_MS = 5_000
SERVER_READY_TIMEOUT = 10.0
SERVER_EXIT_TIMEOUT = 10.0
#: How long a page may take to come back by itself after a cut: the outage, plus the longest
#: backoff delay it can draw meanwhile (full jitter, 0.5 s doubling: at most 8 s after 2 s).
RECOVERY_TIMEOUT_MS = 15_000
READY_LINE = re.compile(r"^Connect Four is ready: open (http://\S+/) in your browser\.$")

COLUMNS = 7
ROWS = 6

pytestmark = pytest.mark.browser

#: What a page sends to check that its connection is alive (PROTOCOL.md), as it sends it.
PING = json.dumps({"type": "ping"}, separators=(",", ":"))
#: What a page sends to call its game off.
ABORT = json.dumps({"type": "abort"}, separators=(",", ":"))

#: A full board with no four in a row, red first (checked by ``test_draw_sequence_is_a_draw``).
DRAW_SEQUENCE = [
    *[0, 1, 0, 1, 0, 1],
    *[1, 0, 1, 0, 1, 0],
    *[2, 3, 2, 3, 2, 3],
    *[3, 2, 3, 2, 3, 2],
    *[4, 5, 4, 5, 4, 5],
    *[5, 4, 5, 4, 5, 4],
    *[6, 6, 6, 6, 6, 6],
]


# ---------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------


class Server:
    """One ``server.py`` subprocess on a free port; its log goes to a file."""

    def __init__(self, log_path: Path, extra_args: list[str]) -> None:
        self.log_path = log_path
        with log_path.open("w") as log_file:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "server.py",
                    "--port",
                    "0",
                    "--host",
                    "127.0.0.1",
                    "--shutdown-timeout",
                    "2",
                    *extra_args,
                ],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
        self.url = self._read_address()
        self.ws_url = "ws://" + self.url.removeprefix("http://")
        self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])

    def _read_address(self) -> str:
        assert self.process.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=SERVER_READY_TIMEOUT)
        except queue.Empty:
            line = ""
        match = READY_LINE.match(line.strip())
        if match is None:
            self.process.kill()
            self.process.wait()
            self.process.stdout.close()
            pytest.fail(f"server did not start: stdout {line!r}\n{self.log()}")
        return match.group(1)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        """SIGTERM, then wait: the exit code (idempotent)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=SERVER_EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"server ignored SIGTERM for {SERVER_EXIT_TIMEOUT} s\n{self.log()}")
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.process.stdout.close()
        return self.process.returncode

    def stop_and_check(self) -> None:
        code = self.stop()
        assert code == 0, f"server exited with {code}\n{self.log()}"


@pytest.fixture
def server_args() -> list[str]:
    """Extra ``server.py`` flags: a test overrides them with ``parametrize``."""
    return []


@pytest.fixture
def server(tmp_path: Path, server_args: list[str]) -> Iterator[Server]:
    running = Server(tmp_path / "server.log", server_args)
    try:
        yield running
    finally:
        running.stop_and_check()


#: A short grace, for the tests that wait for it to run out. A closed tab closes its socket
#: with 1001, which the server tells the others only after ``--away-delay`` (2 s, in case it
#: is a reload): told at once instead, so that the others see the 2 s run down.
SHORT_GRACE = pytest.mark.parametrize(
    "server_args", [["--seat-grace", "2", "--away-delay", "0"]], ids=["grace-2s"]
)


# ---------------------------------------------------------------------------
# A line that can be cut: a TCP relay between one browser and the server
# ---------------------------------------------------------------------------


class Relay:
    """Relays TCP connections from 127.0.0.1:``port`` to the server, until told to cut.

    ``cut`` resets every relayed connection (SO_LINGER 0, then close: both ends get a RST,
    as when a network goes away) and resets every new one for a while, then relays again.
    ``black_hole`` stops relaying without closing anything, until ``release``: a network that
    goes silent (a NAT that forgot the connection, a laptop asleep), which neither end notices.
    One selector thread does everything; it stops within a poll interval of ``close``.
    """

    POLL_SECONDS = 0.05

    def __init__(self, upstream_port: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._cuts: queue.SimpleQueue[float] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._holding = threading.Event()
        self._refuse_until = 0.0
        self._selector = selectors.DefaultSelector()
        # Each relayed socket, its peer, and the bytes waiting to be written to it.
        self._peer: dict[socket.socket, socket.socket] = {}
        self._outgoing: dict[socket.socket, bytearray] = {}
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._thread.start()

    def cut(self, seconds: float) -> None:
        """Reset every connection now, and every new one for ``seconds``."""
        self._cuts.put(seconds)

    def black_hole(self) -> None:
        """Stop relaying in both directions, keeping every connection open: what is sent
        waits in the kernel's buffers, and new connections wait in the listen backlog."""
        self._holding.set()

    def release(self) -> None:
        """Relay again, what waited first."""
        self._holding.clear()

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive(), "the relay thread did not stop"

    # --- the relay thread ------------------------------------------------

    def _run(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                self._take_cuts()
                if self._holding.is_set():
                    self._stopping.wait(self.POLL_SECONDS)
                    continue
                for key, mask in self._selector.select(timeout=self.POLL_SECONDS):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._listener:
                        self._accept()
                        continue
                    if mask & selectors.EVENT_READ and sock in self._peer:
                        self._read(sock)
                    if mask & selectors.EVENT_WRITE and sock in self._peer:
                        self._flush(sock)
        finally:
            for sock in list(self._peer):
                self._drop(sock, reset=True)
            self._selector.close()
            self._listener.close()

    def _take_cuts(self) -> None:
        while not self._cuts.empty():
            self._refuse_until = time.monotonic() + self._cuts.get()
            for sock in list(self._peer):
                self._drop(sock, reset=True)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if time.monotonic() < self._refuse_until:
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self._upstream, timeout=2)
        except OSError:
            _reset(client)
            return
        for one, other in ((client, upstream), (upstream, client)):
            one.setblocking(False)
            self._peer[one] = other
            self._outgoing[one] = bytearray()
            self._selector.register(one, selectors.EVENT_READ)

    def _read(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # closed (or reset) by one end: close the other end too
            self._drop(sock, reset=False)
            return
        peer = self._peer[sock]
        self._outgoing[peer] += data
        self._flush(peer)

    def _flush(self, sock: socket.socket) -> None:
        pending = self._outgoing[sock]
        try:
            sent = sock.send(pending)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop(sock, reset=True)
            return
        del pending[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if pending else 0)
        self._selector.modify(sock, events)

    def _drop(self, sock: socket.socket, *, reset: bool) -> None:
        """Close ``sock`` and its peer (reset: with a RST instead of a FIN)."""
        if sock not in self._peer:  # gone already, with its peer
            return
        for one in (sock, self._peer[sock]):
            del self._peer[one]
            del self._outgoing[one]
            self._selector.unregister(one)
            if reset:
                _reset(one)
            else:
                one.close()


def _reset(sock: socket.socket) -> None:
    """Close with a RST: SO_LINGER on with a zero timeout aborts the connection."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.fixture
def relay(server: Server) -> Iterator[Relay]:
    """A relay to ``server``; request it before ``session`` so that it outlives the pages."""
    running = Relay(server.port)
    try:
        yield running
    finally:
        running.close()


# ---------------------------------------------------------------------------
# Browser, pages and what went wrong on them
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Client:
    """One person at one browser tab: a page in its own context."""

    who: str
    page: Page
    screenshot_path: Path
    problems: list[str] = field(default_factory=list)
    #: Every WebSocket message the page sent, in order.
    sent: list[str] = field(default_factory=list)
    closed: bool = False
    #: False for a second tab, which shares the context of the client it was opened from.
    owns_context: bool = True

    # --- driving ---------------------------------------------------------

    def column(self, column: int) -> Locator:
        return self.page.locator(f'#board .column[data-column="{column}"]')

    def cell(self, column: int, row: int) -> Locator:
        return self.page.locator(f'#board .cell[data-column="{column}"][data-row="{row}"]')

    def click_column(self, column: int) -> None:
        self.column(column).click()

    @property
    def status(self) -> Locator:
        return self.page.locator("#status")

    @property
    def error(self) -> Locator:
        return self.page.locator("#error")

    @property
    def turn(self) -> Locator:
        return self.page.locator("#status-turn")

    @property
    def notice(self) -> Locator:
        """What is wrong with the connection or the link, with its action button."""
        return self.page.locator("#notice")

    @property
    def away(self) -> Locator:
        """Who is away, with the countdown and the claim button."""
        return self.page.locator("#away")

    def countdown(self, player: str) -> Locator:
        """The time ``player`` has left to come back, as this client shows it."""
        return self.page.locator(f'#away .away-line[data-player="{player}"] .countdown')

    def button(self, name: str) -> Locator:
        return self.page.get_by_role("button", name=name, exact=True)

    def wait_until_sent(self, message: str, *, count: int = 1) -> None:
        """Wait (within ``TIMEOUT_MS``) until the page has sent ``message`` ``count`` times."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while self.sent.count(message) < count:
            assert time.monotonic() < deadline, f"{self.who} sent {self.sent}"
            self.page.wait_for_timeout(20)  # lets Playwright deliver the frames meanwhile

    # --- recording -------------------------------------------------------

    def watch(self) -> None:
        page = self.page

        def on_console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                self.problems.append(
                    f"console {message.type}: {message.text} ({message.location.get('url')})"
                )

        def on_request_failed(request: Request) -> None:
            self.problems.append(
                f"request failed: {request.method} {request.url}: {request.failure}"
            )

        def on_response(response: Response) -> None:
            if response.status >= 400:
                self.problems.append(f"HTTP {response.status}: {response.url}")

        def on_websocket(socket: WebSocket) -> None:
            socket.on(
                "socketerror",
                lambda error: self.problems.append(f"websocket error: {error} ({socket.url})"),
            )
            socket.on("framesent", lambda payload: self.sent.append(str(payload)))

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", on_request_failed)
        page.on("response", on_response)
        page.on("websocket", on_websocket)

    def screenshot(self) -> None:
        if not self.closed:
            self.page.screenshot(path=str(self.screenshot_path), full_page=True)

    def screenshot_as(self, suffix: str) -> None:
        """A screenshot of this moment, beside the final one."""
        path = self.screenshot_path.with_name(f"{self.screenshot_path.stem}-{suffix}.png")
        self.page.screenshot(path=str(path), full_page=True)

    def close(self) -> None:
        """Close the tab (and its context), as a player closing the window would."""
        self.screenshot()
        self.closed = True
        if self.owns_context:
            self.page.context.close()
        else:
            self.page.close()


class Session:
    """Opens clients for one scenario; screenshots and closes them all at the end."""

    def __init__(self, browser: Browser, scenario: str) -> None:
        self.browser = browser
        self.scenario = scenario
        self.clients: list[Client] = []

    def open(
        self,
        who: str,
        url: str,
        *,
        viewport: ViewportSize | None = None,
        permissions: list[str] | None = None,
        init_script: str | None = None,
    ) -> Client:
        context = self.browser.new_context(
            viewport=viewport or {"width": 900, "height": 1000},
            reduced_motion="reduce",
            permissions=permissions,
        )
        context.set_default_timeout(TIMEOUT_MS)
        if init_script is not None:
            context.add_init_script(script=init_script)
        page = context.new_page()
        client = Client(who, page, ARTIFACTS / f"{self.scenario}-{who}.png")
        client.watch()
        self.clients.append(client)
        page.goto(url)
        return client

    def duplicate_tab(self, of: Client, who: str) -> Client:
        """A second tab of ``of``'s person, on the same address, with a copy of its
        sessionStorage (what a browser's "Duplicate tab" does; a plain new tab has none)."""
        entries = of.page.evaluate("() => Object.entries(sessionStorage)")
        page = of.page.context.new_page()
        # Before the page's own script runs, and only into an empty storage: a reload of the
        # second tab keeps what it holds by then.
        page.add_init_script(
            script=f"if (sessionStorage.length === 0) {{"
            f" for (const [k, v] of {json.dumps(entries)}) sessionStorage.setItem(k, v); }}"
        )
        client = Client(who, page, ARTIFACTS / f"{self.scenario}-{who}.png", owns_context=False)
        client.watch()
        self.clients.append(client)
        page.goto(of.page.url)
        return client

    def assert_no_problems(self, allowed: Callable[[str], bool] = lambda _: False) -> None:
        found = [
            f"{client.who}: {problem}"
            for client in self.clients
            for problem in client.problems
            if not allowed(problem)
        ]
        assert not found, "problems on the pages:\n" + "\n".join(found)

    def finish(self) -> None:
        """Screenshot every open page first (closing one changes the others), then close."""
        still_open = [client for client in self.clients if not client.closed]
        try:
            for client in still_open:
                client.screenshot()
        finally:
            # Second tabs first: their context goes with the client that owns it.
            for client in sorted(still_open, key=lambda client: client.owns_context):
                client.closed = True
                if client.owns_context:
                    client.page.context.close()
                else:
                    client.page.close()


@pytest.fixture
def session(browser: Browser, server: Server, request: pytest.FixtureRequest) -> Iterator[Session]:
    """The pages of one scenario; they are screenshotted and closed before ``server`` stops."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = request.node.name.removeprefix("test_")
    scenario = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")
    opened = Session(browser, scenario)
    try:
        yield opened
    finally:
        opened.finish()


# ---------------------------------------------------------------------------
# Game helpers, all through the UI
# ---------------------------------------------------------------------------


class Table:
    """A game in progress seen by several clients; it knows where checkers land."""

    def __init__(self, red: Client, yellow: Client, *others: Client) -> None:
        self.red = red
        self.yellow = yellow
        self.everyone = [red, yellow, *others]
        self.heights = [0] * COLUMNS
        self.turn = "red"
        self.filled: list[tuple[int, int, str]] = []

    def add(self, client: Client) -> None:
        self.everyone.append(client)

    def play(self, column: int, *, seen_by: list[Client] | None = None) -> tuple[int, int]:
        """The player to move clicks ``column``; wait until every client (or those in
        ``seen_by``) shows the checker."""
        player = self.red if self.turn == "red" else self.yellow
        row = self.heights[column]
        player.click_column(column)
        for client in self.everyone if seen_by is None else seen_by:
            expect(client.cell(column, row)).to_have_class(re.compile(rf"\b{self.turn}\b"))
        self.heights[column] += 1
        self.filled.append((column, row, self.turn))
        self.turn = "yellow" if self.turn == "red" else "red"
        return column, row

    def expect_board(self, client: Client) -> None:
        """``client`` shows exactly the checkers played so far."""
        for colour in ("red", "yellow"):
            count = sum(1 for _, _, who in self.filled if who == colour)
            expect(client.page.locator(f"#board .cell.{colour}")).to_have_count(count)
        for column, row, colour in self.filled:
            expect(client.cell(column, row)).to_have_class(re.compile(rf"\b{colour}\b"))


def liveness_timings(*, ping_interval_ms: int, pong_timeout_ms: int) -> str:
    """An init script that shortens the page's liveness check (``window.__c4``, read by
    ``app.js`` as it starts; nothing in a page's address can change these)."""
    timings = {"pingIntervalMs": ping_interval_ms, "pongTimeoutMs": pong_timeout_ms}
    return f"window.__c4 = {json.dumps(timings)};"


def open_game(
    session: Session,
    server: Server,
    *,
    yellow_via: str | None = None,
    yellow_init_script: str | None = None,
    before_join: Callable[[Client], None] | None = None,
) -> tuple[Client, Client, str]:
    """Red creates a game, yellow joins by the link red shows (through ``yellow_via``, the
    address of a relay, if given; with ``yellow_init_script`` run before the page's own):
    (red, yellow, watch URL). ``before_join`` is what red does on the waiting page first
    (choose a time control)."""
    red = session.open("red", server.url, permissions=["clipboard-read", "clipboard-write"])
    expect(red.page.locator("#status-role")).to_have_text("You are red.")
    expect(red.page.locator("#status-turn")).to_have_text("Waiting for an opponent to join...")
    expect(red.page.locator("body")).to_have_attribute("data-phase", "waiting")
    join_link = red.page.locator("#join-link")
    watch_link = red.page.locator("#watch-link")
    expect(join_link).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/\?join=[\w-]+$"))
    expect(watch_link).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/\?watch=[\w-]+$"))
    if before_join is not None:
        before_join(red)

    join_url = join_link.input_value()
    if yellow_via is not None:
        join_url = yellow_via + join_url.removeprefix(server.url)
    yellow = session.open("yellow", join_url, init_script=yellow_init_script)
    expect(yellow.page.locator("#status-role")).to_have_text("You are yellow.")
    expect(yellow.page.locator("#status-turn")).to_have_text("Red's turn.")
    expect(yellow.page.locator("body")).to_have_attribute("data-role", "yellow")
    # Only the creator gets the invite links.
    expect(yellow.page.locator("#links")).to_be_hidden()
    expect(red.page.locator("#status-turn")).to_have_text("Your turn.")
    expect(red.page.locator("body")).to_have_attribute("data-phase", "playing")
    return red, yellow, watch_link.input_value()


def expect_red_won(red: Client, yellow: Client, spectator: Client) -> None:
    """Each page's banner says how the game ended for it: red won."""
    expect(red.page.locator("#banner-title")).to_have_text("You win!")
    expect(yellow.page.locator("#banner-title")).to_have_text("You lose.")
    expect(spectator.page.locator("#banner-title")).to_have_text("Red wins!")


def open_spectator(session: Session, watch_url: str) -> Client:
    spectator = session.open("spectator", watch_url)
    expect(spectator.page.locator("#status-role")).to_have_text(
        "You are watching this game as a spectator."
    )
    expect(spectator.page.locator("body")).to_have_attribute("data-role", "spectator")
    expect(spectator.page.locator("#links")).to_be_hidden()
    return spectator


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------


def test_draw_sequence_is_a_draw() -> None:
    """The hard-coded draw really fills the board without four in a row (pure rules)."""
    game = Game()
    player = Player.RED
    for column in DRAW_SEQUENCE:
        assert game.winner is None
        assert isinstance(game.play(player, column), Move)
        player = Player.YELLOW if player is Player.RED else Player.RED
    assert game.is_draw
    assert game.winner is None


def test_two_players_and_a_spectator_see_the_same_win(session: Session, server: Server) -> None:
    def copy_link(red: Client, name: str) -> None:
        """The copy button puts the link on the clipboard."""
        button = red.page.locator(f"#copy-{name}")
        button.click()
        expect(button).to_have_text("Copied!")
        expect(red.page.locator("#copy-feedback")).to_have_text("Copied!")
        clipboard = red.page.evaluate("navigator.clipboard.readText()")
        assert clipboard == red.page.locator(f"#{name}-link").input_value()

    red, yellow, watch_url = open_game(
        session, server, before_join=lambda red: copy_link(red, "join")
    )
    # Once yellow is seated the join link leads nowhere: only the watch link is offered.
    expect(red.page.locator("#join-link")).to_be_hidden()
    copy_link(red, "watch")
    table = Table(red, yellow)
    for column in [0, 1, 0, 1, 0]:
        table.play(column)

    # The spectator arrives midway and gets the moves so far as a replay.
    spectator = open_spectator(session, watch_url)
    table.add(spectator)
    table.expect_board(spectator)
    expect(spectator.page.locator("#status-turn")).to_have_text("Yellow to play.")

    table.play(1)
    table.play(0)  # red: four in column 0

    expect_red_won(red, yellow, spectator)
    for client in table.everyone:
        expect(client.page.locator("#banner")).to_be_visible()
        expect(client.page.locator("body")).to_have_attribute("data-phase", "over")
        expect(client.page.locator("#status-turn")).to_contain_text("Game over.")
        expect(client.page.locator("#board .cell.win")).to_have_count(4)
        for row in range(4):
            expect(client.cell(0, row)).to_have_class(re.compile(r"\bwin\b"))
        table.expect_board(client)

    session.assert_no_problems()


def test_a_full_board_is_a_draw_for_both_players(session: Session, server: Server) -> None:
    red, yellow, _ = open_game(session, server)
    table = Table(red, yellow)
    for index, column in enumerate(DRAW_SEQUENCE):
        table.play(column)
        if index < len(DRAW_SEQUENCE) - 1:
            # Nobody has won before the last checker.
            expect(red.page.locator("#banner")).to_be_hidden()

    for client in (red, yellow):
        expect(client.page.locator("#banner-title")).to_have_text("Draw!")
        expect(client.page.locator("#banner")).to_be_visible()
        expect(client.page.locator("#board .cell.win")).to_have_count(0)
        expect(client.page.locator("#board .cell.red")).to_have_count(21)
        expect(client.page.locator("#board .cell.yellow")).to_have_count(21)
        expect(client.page.locator("body")).to_have_attribute("data-phase", "over")

    session.assert_no_problems()


def test_illegal_actions_show_inline_errors(session: Session, server: Server) -> None:
    red, yellow, watch_url = open_game(session, server)
    spectator = open_spectator(session, watch_url)
    table = Table(red, yellow, spectator)
    for client in table.everyone:
        expect(client.error).to_be_hidden()

    # Yellow clicks while it is red's turn.
    yellow.click_column(3)
    expect(yellow.error).to_be_visible()
    expect(yellow.error).to_have_text("It isn't your turn.")
    expect(yellow.cell(3, 0)).not_to_have_class(re.compile(r"\b(red|yellow)\b"))

    # Fill column 0 (alternating colours, so nobody wins), then red tries it again.
    for _ in range(ROWS):
        table.play(0)
    # The next move clears the old error on yellow's page.
    expect(yellow.error).to_be_hidden()
    red.click_column(0)
    expect(red.error).to_have_text("This slot is full.")
    expect(red.error).to_be_visible()

    # A spectator clicking the board is refused.
    spectator.click_column(4)
    expect(spectator.error).to_have_text("Spectators cannot play.")
    expect(spectator.error).to_be_visible()

    # None of the refused clicks changed anything, anywhere.
    for client in table.everyone:
        table.expect_board(client)
    expect(red.page.locator("#status-turn")).to_have_text("Your turn.")
    # Errors only go to whoever made the mistake.
    expect(yellow.error).to_be_hidden()

    session.assert_no_problems()


@pytest.mark.parametrize(
    ("leaver", "stayer"),
    [("yellow", "red"), ("red", "yellow")],
    ids=["yellow-leaves", "red-leaves"],
)
def test_the_opponent_sees_who_is_away_with_a_countdown(
    session: Session, server: Server, leaver: str, stayer: str
) -> None:
    red, yellow, _ = open_game(session, server)
    table = Table(red, yellow)
    table.play(3)
    table.play(3)
    clients = {"red": red, "yellow": yellow}
    expect(clients[stayer].away).to_be_hidden()

    clients[leaver].close()

    # The seat waits for its holder (60 s by default): a drop is not a leave.
    away = clients[stayer].away
    expect(away).to_be_visible()
    expect(away).to_contain_text(f"{leaver.capitalize()} is away, reconnecting...")
    countdown = clients[stayer].countdown(leaver)
    expect(countdown).to_have_text(re.compile(r"^(1:00|0:[0-5]\d)$"))
    # It counts down, live.
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3_000)
    expect(countdown).to_have_text(re.compile(r"^0:[0-5]\d$"))
    # The win cannot be claimed yet, and the game is not over.
    expect(clients[stayer].button("Claim the win")).to_be_hidden()
    expect(clients[stayer].page.locator("#banner")).to_be_hidden()
    expect(clients[stayer].page.locator("body")).to_have_attribute("data-phase", "playing")
    clients[stayer].screenshot_as("away")

    session.assert_no_problems()


@SHORT_GRACE
def test_the_win_can_be_claimed_once_the_grace_is_over(
    session: Session, server: Server, server_args: list[str]
) -> None:
    red, yellow, watch_url = open_game(session, server)
    spectator = open_spectator(session, watch_url)
    table = Table(red, yellow, spectator)
    table.play(2)
    table.play(5)

    yellow.close()

    for client in (red, spectator):
        expect(client.away).to_contain_text("Yellow is away, reconnecting...")
        expect(client.countdown("yellow")).to_have_text(re.compile(r"^0:0[0-2]$"))
    expect(red.button("Claim the win")).to_be_hidden()

    # Once the 2 s have run out the opponent, and only the opponent, may claim.
    claim = red.button("Claim the win")
    expect(claim).to_be_visible()
    expect(red.away).to_contain_text("Yellow has not come back. You can claim the win.")
    expect(spectator.away).to_contain_text("Yellow has not come back. Red may claim the win.")
    expect(spectator.button("Claim the win")).to_be_hidden()
    red.screenshot_as("claimable")
    claim.click()

    expect(red.page.locator("#banner-title")).to_have_text("You win!")
    expect(red.page.locator("#banner-detail")).to_have_text("Yellow did not come back.")
    expect(spectator.page.locator("#banner-title")).to_have_text("Red wins!")
    expect(spectator.page.locator("#banner-detail")).to_have_text("Yellow did not come back.")
    for client in (red, spectator):
        expect(client.page.locator("body")).to_have_attribute("data-phase", "over")
        expect(client.turn).to_have_text("Game over.")
        expect(client.away).to_be_hidden()
        expect(client.page.locator("#board .cell.win")).to_have_count(0)
        table.expect_board(client)

    session.assert_no_problems()


@pytest.mark.parametrize(
    "server_args",
    # The server keeps the whole log (the reloaded page gets every event again), or only its
    # last 4 events (the page gets one snapshot, ``sync``).
    [[], ["--max-log-events", "4"]],
    ids=["replay", "snapshot"],
)
def test_red_reloads_mid_game_and_plays_on(
    session: Session, server: Server, server_args: list[str]
) -> None:
    red, yellow, _ = open_game(session, server)
    join_url = red.page.locator("#join-link").input_value()
    table = Table(red, yellow)
    for column in [3, 3, 4]:
        table.play(column)
    expect(red.page.locator("#board .cell.drop")).to_have_count(3)  # live moves fall

    red.page.reload()

    # Same colour, same board, the right turn, and the invite links again.
    expect(red.page.locator("#status-role")).to_have_text("You are red.")
    expect(red.page.locator("#role-badge")).to_have_text("Red")
    expect(red.turn).to_have_text("Yellow's turn.")
    table.expect_board(red)
    expect(red.page.locator("#join-link")).to_have_value(join_url)
    expect(red.page.locator("#links")).to_be_visible()
    # The replay is not animated: those checkers fell before the reload.
    expect(red.page.locator("#board .cell.drop")).to_have_count(0)
    expect(red.notice).to_be_hidden()
    expect(red.page.locator("body")).to_have_attribute("data-phase", "playing")
    red.screenshot_as("reloaded")

    # Yellow saw red away at most, and red back.
    expect(yellow.away).to_be_hidden()
    expect(yellow.notice).to_be_hidden()
    expect(yellow.error).to_be_hidden()
    expect(yellow.turn).to_have_text("Your turn.")

    expect(red.page.locator("body")).to_have_attribute("data-live", "true")
    table.play(4)
    expect(red.cell(4, 1)).to_have_class(re.compile(r"\bdrop\b"))  # live again
    table.play(5)
    for client in (red, yellow):
        table.expect_board(client)

    # "New game" starts a new game rather than resuming this one.
    red.page.locator("#new-game").click()
    expect(red.turn).to_have_text("Waiting for an opponent to join...")
    expect(red.page.locator("#join-link")).to_have_value(re.compile(r"\?join="))
    expect(red.page.locator("#join-link")).not_to_have_value(join_url)
    expect(red.page.locator("#board .cell.red")).to_have_count(0)

    session.assert_no_problems()


def test_a_cut_connection_comes_back_by_itself(
    relay: Relay, session: Session, server: Server
) -> None:
    red, yellow, _ = open_game(session, server, yellow_via=relay.url)
    table = Table(red, yellow)
    table.play(0)
    table.play(1)

    # Yellow's line goes dead (reset), and stays dead for 2 s.
    relay.cut(2.0)

    expect(yellow.turn).to_have_text("Reconnecting…")
    expect(yellow.notice).to_contain_text(re.compile(r"Connection lost\. Reconnecting"))
    expect(yellow.page.locator("body")).to_have_attribute("data-phase", "reconnecting")
    expect(yellow.column(0)).to_have_attribute("aria-disabled", "true")
    expect(red.away).to_contain_text("Yellow is away, reconnecting...")
    yellow.screenshot_as("reconnecting")
    # Red plays meanwhile; only red sees it for now.
    table.play(2, seen_by=[red])

    # Yellow comes back by itself: same seat, red's move, yellow's turn.
    expect(yellow.cell(2, 0)).to_have_class(re.compile(r"\bred\b"), timeout=RECOVERY_TIMEOUT_MS)
    expect(yellow.turn).to_have_text("Your turn.")
    expect(yellow.notice).to_be_hidden()
    expect(yellow.page.locator("#status-role")).to_have_text("You are yellow.")
    expect(red.away).to_be_hidden()
    table.expect_board(yellow)
    table.play(2)
    table.play(6)
    for client in (red, yellow):
        table.expect_board(client)

    def caused_by_the_cut(problem: str) -> bool:
        # Chromium reports each failed reconnection attempt through the relay.
        return f"127.0.0.1:{relay.port}" in problem and (
            problem.startswith("websocket error:")
            or problem.startswith("request failed:")
            or (problem.startswith("console error:") and "WebSocket" in problem)
        )

    session.assert_no_problems(allowed=caused_by_the_cut)


def test_a_connection_that_goes_silent_is_found_dead_and_resumed(
    relay: Relay, session: Session, server: Server
) -> None:
    # Yellow's page checks its connection every 0.3 s and waits 0.7 s for an answer (15 s
    # and 5 s for real), so that the whole scenario takes a couple of seconds.
    timings = liveness_timings(ping_interval_ms=300, pong_timeout_ms=700)
    red, yellow, _ = open_game(session, server, yellow_via=relay.url, yellow_init_script=timings)
    table = Table(red, yellow)
    table.play(0)
    table.play(1)
    # The server answers the pings, and a healthy connection is left alone (a second ping
    # is sent only once the first one has had its answer).
    yellow.wait_until_sent(PING, count=2)
    expect(yellow.notice).to_be_hidden()
    expect(yellow.page.locator("body")).to_have_attribute("data-live", "true")

    # Yellow's line goes silent: nothing is closed, nothing arrives, neither end can tell.
    relay.black_hole()

    # The page finds out by itself (no pong), gives the socket up and tries again.
    expect(yellow.notice).to_contain_text(
        re.compile(r"The connection stopped answering\. Reconnecting")
    )
    expect(yellow.page.locator("body")).to_have_attribute("data-phase", "reconnecting")
    expect(yellow.column(0)).to_have_attribute("aria-disabled", "true")
    yellow.screenshot_as("silent")
    # The server does not know yet (its own ping is 20 s away): red sees yellow here, and plays.
    expect(red.away).to_be_hidden()
    table.play(2, seen_by=[red])

    # The line comes back: the waiting attempt goes through and resumes the seat.
    relay.release()
    expect(yellow.cell(2, 0)).to_have_class(re.compile(r"\bred\b"), timeout=RECOVERY_TIMEOUT_MS)
    expect(yellow.turn).to_have_text("Your turn.")
    expect(yellow.notice).to_be_hidden()
    expect(yellow.page.locator("body")).to_have_attribute("data-live", "true")
    # The missed move came with the catch-up (not animated); the next ones are live.
    expect(yellow.cell(2, 0)).not_to_have_class(re.compile(r"\bdrop\b"))
    table.play(3)
    table.play(3)
    expect(yellow.cell(3, 1)).to_have_class(re.compile(r"\bdrop\b"))
    for client in (red, yellow):
        table.expect_board(client)
    expect(red.away).to_be_hidden()

    session.assert_no_problems()


def test_the_page_says_when_it_is_offline_and_catches_up_when_online(
    session: Session, server: Server
) -> None:
    red, yellow, _ = open_game(session, server)
    table = Table(red, yellow)
    table.play(0)
    table.play(1)

    yellow.page.context.set_offline(True)
    expect(yellow.notice).to_contain_text("You are offline.")
    # Red plays while yellow's network is gone.
    table.play(2, seen_by=[red])
    yellow.screenshot_as("offline")

    pings = yellow.sent.count(PING)
    yellow.page.context.set_offline(False)
    # Back online, the page asks at once whether its socket survived (the next regular ping
    # is 15 s away). Chromium's offline mode leaves open WebSockets alone: it did, and the
    # page carries on with it (no new init), showing the move played meanwhile.
    yellow.wait_until_sent(PING, count=pings + 1)
    expect(yellow.cell(2, 0)).to_have_class(re.compile(r"\bred\b"))
    expect(yellow.turn).to_have_text("Your turn.")
    expect(yellow.notice).to_be_hidden()
    assert [frame for frame in yellow.sent if '"type":"init"' in frame] == yellow.sent[:1]
    table.play(3)
    for client in (red, yellow):
        table.expect_board(client)
    expect(red.away).to_be_hidden()

    session.assert_no_problems()


def test_a_spectator_reloads_and_sees_the_whole_board(session: Session, server: Server) -> None:
    red, yellow, watch_url = open_game(session, server)
    spectator = open_spectator(session, watch_url)
    table = Table(red, yellow, spectator)
    for column in [6, 5, 6, 5, 0]:
        table.play(column)

    spectator.page.reload()

    expect(spectator.page.locator("#status-role")).to_have_text(
        "You are watching this game as a spectator."
    )
    expect(spectator.turn).to_have_text("Yellow to play.")
    table.expect_board(spectator)
    expect(spectator.page.locator("#board .cell.drop")).to_have_count(0)
    spectator.screenshot_as("reloaded")
    # Once the catch-up is over, moves are live again.
    expect(spectator.page.locator("body")).to_have_attribute("data-live", "true")
    table.play(5)
    table.play(6)
    table.expect_board(spectator)
    expect(spectator.cell(6, 2)).to_have_class(re.compile(r"\bdrop\b"))

    session.assert_no_problems()


def test_a_second_tab_takes_the_seat_and_play_here_takes_it_back(
    session: Session, server: Server
) -> None:
    red, yellow, _ = open_game(session, server)
    table = Table(red, yellow)
    table.play(1)
    table.play(2)

    # The same person duplicates red's tab: the new tab resumes with red's token.
    second = session.duplicate_tab(red, "red-second-tab")
    expect(second.page.locator("#status-role")).to_have_text("You are red.")
    table.expect_board(second)
    expect(second.turn).to_have_text("Your turn.")
    expect(second.page.locator("#links")).to_be_visible()
    # Its catch-up (up to the `v` of its seat) is history, not animated; then it is live.
    expect(second.page.locator("body")).to_have_attribute("data-live", "true")
    expect(second.page.locator("#board .cell.drop")).to_have_count(0)

    # The first tab lets go, and does not take the seat back by itself.
    expect(red.turn).to_have_text("This game is open in another tab or window.")
    expect(red.page.locator("body")).to_have_attribute("data-phase", "replaced")
    expect(red.column(0)).to_have_attribute("aria-disabled", "true")
    play_here = red.button("Play here")
    expect(play_here).to_be_visible()
    red.screenshot_as("replaced")

    table.red = second
    table.everyone = [second, yellow]
    table.play(1)
    table.play(2)
    expect(second.cell(2, 1)).to_have_class(re.compile(r"\bdrop\b"))
    # Yellow never saw red leave.
    expect(yellow.away).to_be_hidden()

    # Back to the first tab: "Play here" takes the seat back, with the moves made meanwhile.
    red.page.bring_to_front()
    play_here.click()
    expect(red.turn).to_have_text("Your turn.")
    table.expect_board(red)
    expect(red.notice).to_be_hidden()
    expect(red.page.locator("body")).to_have_attribute("data-live", "true")
    # The moves made in the second tab came in the catch-up: they do not fall now.
    expect(red.cell(2, 1)).not_to_have_class(re.compile(r"\bdrop\b"))
    expect(second.turn).to_have_text("This game is open in another tab or window.")
    expect(second.button("Play here")).to_be_visible()
    table.red = red
    table.everyone = [red, yellow]
    table.play(0)
    expect(red.cell(0, 0)).to_have_class(re.compile(r"\bdrop\b"))
    table.expect_board(red)
    table.expect_board(yellow)

    session.assert_no_problems()


def test_a_third_person_on_the_join_link_may_watch_instead(
    session: Session, server: Server
) -> None:
    red, yellow, _ = open_game(session, server)
    join_url = red.page.locator("#join-link").input_value()
    table = Table(red, yellow)
    table.play(4)
    table.play(4)

    # The join link was passed on (the address bar copied): the seat is not.
    third = session.open("third", join_url)
    expect(third.turn).to_have_text("This game already has two players.")
    expect(third.page.locator("body")).to_have_attribute("data-phase", "failed")
    expect(third.page.locator("#role-badge")).to_be_hidden()
    expect(third.column(0)).to_have_attribute("aria-disabled", "true")
    watch = third.button("Watch this game")
    expect(watch).to_be_visible()
    third.screenshot_as("seat-taken")

    watch.click()
    expect(third.page.locator("#status-role")).to_have_text(
        "You are watching this game as a spectator."
    )
    expect(third.page.locator("#role-badge")).to_have_text("Spectator")
    expect(third.notice).to_be_hidden()
    table.add(third)
    table.expect_board(third)
    # The game so far came as the catch-up announced by `watching`: not animated.
    expect(third.page.locator("body")).to_have_attribute("data-live", "true")
    expect(third.page.locator("#board .cell.drop")).to_have_count(0)
    table.play(3)
    table.play(3)
    expect(third.cell(3, 1)).to_have_class(re.compile(r"\bdrop\b"))
    table.expect_board(third)
    third.click_column(0)
    expect(third.error).to_have_text("Spectators cannot play.")

    # The players never noticed.
    for client in (red, yellow):
        expect(client.away).to_be_hidden()
        expect(client.error).to_be_hidden()

    session.assert_no_problems()


def test_a_link_to_a_game_that_is_gone_offers_a_new_game(session: Session, server: Server) -> None:
    for who, query in [("unknown-watcher", "?watch=no-such-game"), ("unknown-joiner", "?join=no")]:
        stranger = session.open(who, server.url + query)
        expect(stranger.turn).to_have_text("This game has ended or expired.")
        expect(stranger.page.locator("body")).to_have_attribute("data-phase", "failed")
        expect(stranger.page.locator("#role-badge")).to_be_hidden()
        expect(stranger.column(0)).to_have_attribute("aria-disabled", "true")
        expect(stranger.notice.get_by_role("link", name="New game")).to_be_visible()

    # The offered new game is a new game, with its own invite links.
    stranger.notice.get_by_role("link", name="New game").click()
    expect(stranger.page.locator("#status-role")).to_have_text("You are red.")
    expect(stranger.turn).to_have_text("Waiting for an opponent to join...")
    expect(stranger.page.locator("#join-link")).to_have_value(re.compile(r"\?join="))

    session.assert_no_problems()


def test_stopping_the_server_tells_every_page_the_connection_is_gone(
    session: Session, server: Server
) -> None:
    red, yellow, watch_url = open_game(session, server)
    spectator = open_spectator(session, watch_url)
    table = Table(red, yellow, spectator)
    table.play(2)
    table.play(4)
    table.play(2)

    server.stop_and_check()

    # Every page says so and keeps trying (the server may come back).
    gone = re.compile(r"^(The server is shutting down\.|Connection lost\.) Reconnecting")
    for client in table.everyone:
        expect(client.turn).to_have_text("Reconnecting…")
        expect(client.page.locator("#notice-text")).to_have_text(gone)
        expect(client.page.locator("body")).to_have_attribute("data-phase", "reconnecting")
        for column in range(COLUMNS):
            expect(client.column(column)).to_have_attribute("aria-disabled", "true")
        # The board keeps what was played.
        table.expect_board(client)
    # The attempts are counted, and the next one can be made at once.
    expect(red.page.locator("#notice-text")).to_contain_text(
        re.compile(r"\(attempt (?:[2-9]|[1-9]\d+)\)")
    )
    red.button("Reconnect now").click(timeout=TIMEOUT_MS)

    def caused_by_the_server_going_away(problem: str) -> bool:
        about_our_server = server.ws_url in problem or server.url in problem
        return about_our_server and (
            problem.startswith("request failed:")
            or problem.startswith("websocket error:")
            or (problem.startswith("console error:") and "WebSocket" in problem)
        )

    session.assert_no_problems(allowed=caused_by_the_server_going_away)


def test_players_can_play_with_the_keyboard_only(session: Session, server: Server) -> None:
    red, yellow, _ = open_game(session, server)

    def tab_to_the_board(client: Client) -> None:
        """Press Tab until a column has the focus (the board comes after a few links)."""
        focused_column = client.page.locator("#board .column:focus")
        for _ in range(10):
            client.page.keyboard.press("Tab")
            if focused_column.count() == 1:
                break
        expect(client.column(0)).to_be_focused()

    tab_to_the_board(red)
    red.page.keyboard.press("Enter")  # red drops in column 0
    for client in (red, yellow):
        expect(client.cell(0, 0)).to_have_class(re.compile(r"\bred\b"))

    tab_to_the_board(yellow)
    yellow.page.keyboard.press("ArrowRight")
    expect(yellow.column(1)).to_be_focused()
    yellow.page.keyboard.press("Space")  # yellow drops in column 1
    for client in (red, yellow):
        expect(client.cell(1, 0)).to_have_class(re.compile(r"\byellow\b"))

    # Red's focus stayed on column 0; move right twice and back once: column 1.
    expect(red.column(0)).to_be_focused()
    red.page.keyboard.press("ArrowRight")
    red.page.keyboard.press("ArrowRight")
    expect(red.column(2)).to_be_focused()
    red.page.keyboard.press("ArrowLeft")
    expect(red.column(1)).to_be_focused()
    red.page.keyboard.press("Space")
    for client in (red, yellow):
        expect(client.cell(1, 1)).to_have_class(re.compile(r"\bred\b"))

    # End and Home jump to the last and first columns.
    yellow.page.keyboard.press("End")
    expect(yellow.column(COLUMNS - 1)).to_be_focused()
    yellow.page.keyboard.press("Enter")
    for client in (red, yellow):
        expect(client.cell(COLUMNS - 1, 0)).to_have_class(re.compile(r"\byellow\b"))
    red.page.keyboard.press("Home")
    expect(red.column(0)).to_be_focused()
    red.page.keyboard.press("Enter")
    for client in (red, yellow):
        expect(client.cell(0, 1)).to_have_class(re.compile(r"\bred\b"))
        expect(client.page.locator("#board .cell.red")).to_have_count(3)
        expect(client.page.locator("#board .cell.yellow")).to_have_count(2)

    session.assert_no_problems()


def test_the_board_fits_a_phone_screen_without_horizontal_scrolling(
    session: Session, server: Server
) -> None:
    phone: ViewportSize = {"width": 390, "height": 844}
    red = session.open("red", server.url, viewport=phone)
    join_link = red.page.locator("#join-link")
    # The long invite links are shown too: they must not widen the page either.
    expect(join_link).to_have_value(re.compile(r"\?join="))
    yellow = session.open("yellow", join_link.input_value(), viewport=phone)
    table = Table(red, yellow)
    for column in [0, 6, 3]:
        table.play(column)

    for client in (red, yellow):
        scroll_width = client.page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= phone["width"], f"{client.who}: page is {scroll_width} px wide"
        box = client.page.locator("#board").bounding_box()
        assert box is not None
        assert box["x"] >= 0, f"{client.who}: board starts at {box['x']}"
        assert box["x"] + box["width"] <= phone["width"], f"{client.who}: board box {box}"
        for column in (0, COLUMNS - 1):
            column_box = client.column(column).bounding_box()
            assert column_box is not None
            assert column_box["x"] >= 0
            assert column_box["x"] + column_box["width"] <= phone["width"]

    session.assert_no_problems()


# ---------------------------------------------------------------------------
# The whole match: ways to play, clocks, resign, draws, abort, rematch, the count, the record
# ---------------------------------------------------------------------------


def choose_time_control(red: Client, name: str, *, custom: dict[str, str] | None = None) -> None:
    """On red's waiting page, pick the time control ``name`` (a preset's button), or Custom
    with ``custom`` (field label -> value); wait for the new game's links."""
    page = red.page
    join_link = page.locator("#join-link")
    old_link = join_link.input_value()
    setup = page.locator("#setup")
    if custom is None:
        setup.get_by_role("button", name=name, exact=True).click()
    else:
        setup.get_by_role("button", name="Custom", exact=True).click()
        for label, value in custom.items():
            if value == "check":
                setup.get_by_label(label, exact=True).check()
            else:
                setup.get_by_label(label, exact=True).fill(value)
        setup.get_by_role("button", name="Use this time control").click()
    # The waiting game was replaced by a new one: new links, the same waiting page.
    expect(join_link).not_to_have_value(old_link)
    expect(join_link).to_have_value(re.compile(r"\?join=[\w-]+$"))
    expect(page.locator("#status-turn")).to_have_text("Waiting for an opponent to join...")
    expect(setup.get_by_role("button", name=name, exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )


def clock(client: Client, player: str) -> Locator:
    return client.page.locator(f'#clocks .clock[data-player="{player}"]')


def clock_time(client: Client, player: str) -> Locator:
    return clock(client, player).locator(".clock-time")


def expect_banner(client: Client, title: str, detail: str) -> None:
    expect(client.page.locator("#banner")).to_be_visible()
    expect(client.page.locator("#banner-title")).to_have_text(title)
    expect(client.page.locator("#banner-detail")).to_have_text(detail)
    expect(client.page.locator("body")).to_have_attribute("data-phase", "over")


def expect_new_round(client: Client, round_number: int, role_text: str, badge: str) -> None:
    """``client`` shows game ``round_number`` of the match on an empty board."""
    page = client.page
    expect(page.locator("#banner")).to_be_hidden()
    expect(page.locator("#round")).to_have_text(f"Game {round_number}")
    expect(page.locator("#status-role")).to_have_text(role_text)
    expect(page.locator("#role-badge")).to_have_text(badge)
    expect(page.locator("#board .cell.red, #board .cell.yellow")).to_have_count(0)
    expect(page.locator("#board .cell.win")).to_have_count(0)
    expect(page.locator("#record")).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-phase", "playing")


def test_the_start_page_offers_time_controls_and_a_timed_game_shows_ticking_clocks(
    session: Session, server: Server
) -> None:
    clocks_seen: dict[str, str] = {}

    def three_plus_two(red: Client) -> None:
        setup = red.page.locator("#setup")
        # The friend game exists at once (links shown); the options come with it.
        expect(setup).to_be_visible()
        expect(setup.get_by_role("button", name="Untimed")).to_have_attribute(
            "aria-pressed", "true"
        )
        expect(setup.get_by_role("link", name="Play on this device")).to_be_visible()
        expect(red.page.locator("#clocks")).to_be_hidden()
        red.screenshot_as("start")
        clocks_seen["untimed"] = red.page.locator("#join-link").input_value()
        choose_time_control(red, "3 min + 2 s")
        # The untimed game was called off, and its socket closed, before the new one.
        assert ABORT in red.sent
        # Nobody is here yet: both clocks full, neither running.
        for player in ("red", "yellow"):
            expect(clock_time(red, player)).to_have_text("03:00")
            expect(clock(red, player)).not_to_have_class(re.compile(r"\brunning\b"))
        expect(red.page.locator("#clock-control")).to_have_text("3 min + 2 s")
        clocks_seen["join"] = red.page.locator("#join-link").input_value()

    red, yellow, watch_url = open_game(session, server, before_join=three_plus_two)
    # Once the game has started the options are gone (the links stay, for spectators).
    expect(red.page.locator("#setup")).to_be_hidden()
    expect(yellow.page.locator("#setup")).to_be_hidden()
    assert '"clock":{"kind":"bank","initial":180,"increment":2}' in "".join(red.sent)

    # Yellow's arrival starts red's clock: it runs, highlighted, and ticks down locally.
    for client in (red, yellow):
        expect(clock(client, "red")).to_have_class(re.compile(r"\brunning\b"))
        expect(clock(client, "yellow")).not_to_have_class(re.compile(r"\brunning\b"))
        expect(clock_time(client, "red")).to_have_text(re.compile(r"^0(3:00|2:5\d)$"))
        expect(clock_time(client, "yellow")).to_have_text("03:00")
    expect(clock(red, "red").locator(".clock-name")).to_have_text("Red (you)")
    expect(clock_time(red, "red")).to_have_text(re.compile(r"^02:5\d$"), timeout=3_000)
    red.screenshot_as("clock-running")

    table = Table(red, yellow)
    table.play(3)
    # Red's move stopped its clock and added 2 s; yellow's runs now.
    for client in (red, yellow):
        expect(clock(client, "yellow")).to_have_class(re.compile(r"\brunning\b"))
        expect(clock(client, "red")).not_to_have_class(re.compile(r"\brunning\b"))
        expect(clock_time(client, "red")).to_have_text(re.compile(r"^03:0[01]$"))

    # A spectator arriving now (on a phone) sees the clocks as they stand, yellow's running.
    phone: ViewportSize = {"width": 390, "height": 844}
    spectator = session.open("spectator", watch_url, viewport=phone)
    expect(clock(spectator, "yellow")).to_have_class(re.compile(r"\brunning\b"))
    expect(clock_time(spectator, "red")).to_have_text(re.compile(r"^03:0[01]$"))
    expect(clock_time(spectator, "yellow")).to_have_text(re.compile(r"^0(3:00|2:5\d)$"))
    expect(spectator.page.locator("#clock-control")).to_have_text("3 min + 2 s")
    scroll_width = spectator.page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= phone["width"], f"the phone's page is {scroll_width} px wide"
    yellow.screenshot_as("clocks")
    spectator.screenshot_as("phone")

    # A reload resumes the timed game, with its clocks.
    red.page.reload()
    expect(red.page.locator("#status-role")).to_have_text("You are red.")
    expect(clock(red, "yellow")).to_have_class(re.compile(r"\brunning\b"))
    expect(clock_time(red, "red")).to_have_text(re.compile(r"^03:0[01]$"))
    expect(red.page.locator("#join-link")).to_have_value(clocks_seen["join"])
    expect(red.page.locator("#setup")).to_be_hidden()
    # The game it replaced is over: its link leads to an aborted game.
    latecomer = session.open("latecomer", clocks_seen["untimed"])
    expect_banner(latecomer, "Game aborted", "Red aborted the game — no result.")
    expect(latecomer.page.locator("#clocks")).to_be_hidden()

    session.assert_no_problems()


def test_a_player_whose_clock_runs_out_loses(session: Session, server: Server) -> None:
    def three_seconds_a_move(red: Client) -> None:
        choose_time_control(red, "Custom", custom={"Per move": "check", "Seconds per move": "3"})
        expect(red.page.locator("#clock-control")).to_have_text("3 s per move")
        expect(clock_time(red, "red")).to_have_text("00:03.0")

    red, yellow, _ = open_game(session, server, before_join=three_seconds_a_move)
    assert '"clock":{"kind":"move","seconds":3}' in "".join(red.sent)
    # Under 10 s the clocks show tenths, in the low-time style.
    for client in (red, yellow):
        expect(clock(client, "red")).to_have_class(re.compile(r"\brunning\b.*\blow\b"))
    red.screenshot_as("low-time")

    # Red does not move: its flag falls (auto-waiting, within the 5 s budget).
    expect_banner(red, "You lose.", "Red ran out of time — Yellow wins.")
    expect_banner(yellow, "You win!", "Red ran out of time — Yellow wins.")
    for client in (red, yellow):
        expect(clock_time(client, "red")).to_have_text("00:00.0")
        expect(clock(client, "red")).to_have_class(re.compile(r"\bflagged\b"))
        expect(clock(client, "red")).not_to_have_class(re.compile(r"\brunning\b"))
        expect(client.page.locator("#controls")).to_be_hidden()
    red.screenshot_as("flag")
    # A move after the flag is refused, in place.
    red.click_column(3)
    expect(red.error).to_have_text("The game is over.")
    expect(red.cell(3, 0)).not_to_have_class(re.compile(r"\b(red|yellow)\b"))

    session.assert_no_problems()


def test_a_player_resigns_after_confirming(session: Session, server: Server) -> None:
    red, yellow, watch_url = open_game(session, server)
    spectator = open_spectator(session, watch_url)
    table = Table(red, yellow, spectator)
    # Until both have moved, the game can be aborted rather than resigned.
    for client in (red, yellow):
        expect(client.button("Abort")).to_be_visible()
        expect(client.button("Resign")).to_be_hidden()
        expect(client.button("Offer draw")).to_be_visible()
    expect(spectator.page.locator("#controls")).to_be_hidden()
    table.play(3)
    expect(yellow.button("Abort")).to_be_visible()
    table.play(4)
    for client in (red, yellow):
        expect(client.button("Resign")).to_be_visible()
        expect(client.button("Abort")).to_be_hidden()

    # Resigning asks first, on the page; Cancel leaves the game alone.
    yellow.button("Resign").click()
    confirm = yellow.page.locator("#resign-confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("Resign this game?")
    expect(yellow.button("Resign")).to_be_hidden()
    yellow.screenshot_as("resign-confirm")
    yellow.button("Cancel").click()
    expect(confirm).to_be_hidden()
    expect(yellow.button("Resign")).to_be_focused()
    table.play(3)
    yellow.button("Resign").click()
    yellow.button("Yes, resign").click()

    expect_banner(red, "You win!", "Yellow resigned — Red wins.")
    expect_banner(yellow, "You lose.", "Yellow resigned — Red wins.")
    expect_banner(spectator, "Red wins!", "Yellow resigned — Red wins.")
    for client in table.everyone:
        expect(client.page.locator("#controls")).to_be_hidden()
        expect(client.page.locator("#record-text")).to_have_text("454")
        table.expect_board(client)
    assert json.dumps({"type": "resign"}, separators=(",", ":")) in yellow.sent

    session.assert_no_problems()


def test_a_draw_offer_accepted_ends_the_game_as_a_draw(session: Session, server: Server) -> None:
    red, yellow, watch_url = open_game(session, server)
    spectator = open_spectator(session, watch_url)
    table = Table(red, yellow, spectator)
    table.play(0)
    table.play(6)

    red.button("Offer draw").click()
    offer = yellow.page.locator("#offer")
    expect(offer).to_contain_text("Red offers a draw.")
    expect(offer.get_by_role("button", name="Accept")).to_be_visible()
    expect(offer.get_by_role("button", name="Decline")).to_be_visible()
    # The maker sees that it is pending, and cannot offer it again meanwhile.
    expect(red.page.locator("#offer")).to_contain_text(
        "You offered a draw. Waiting for Yellow's answer…"
    )
    expect(red.button("Draw offered")).to_be_disabled()
    expect(red.page.locator("#offer").get_by_role("button")).to_have_count(0)
    # Spectators see it in words, with nothing to answer.
    expect(spectator.page.locator("#offer")).to_contain_text("Red offers a draw.")
    expect(spectator.page.locator("#offer-actions")).to_be_hidden()
    yellow.screenshot_as("draw-offer")

    offer.get_by_role("button", name="Accept").click()
    for client in table.everyone:
        expect_banner(client, "Draw!", "Draw agreed.")
        expect(client.page.locator("#offer")).to_be_hidden()
        expect(client.page.locator("#record-text")).to_have_text("17")
    # The players may ask for a rematch; spectators may not.
    for client in (red, yellow):
        expect(client.button("Rematch")).to_be_visible()
    expect(spectator.button("Rematch")).to_be_hidden()

    session.assert_no_problems()


def test_a_draw_offer_is_declined_by_the_button_and_by_playing_on(
    session: Session, server: Server
) -> None:
    red, yellow, _ = open_game(session, server)
    table = Table(red, yellow)
    table.play(2)
    table.play(2)

    # Declined by the button.
    red.button("Offer draw").click()
    expect(yellow.page.locator("#offer")).to_contain_text("Red offers a draw.")
    yellow.page.locator("#offer").get_by_role("button", name="Decline").click()
    expect(red.page.locator("#offer-text")).to_have_text("Yellow declined your draw offer.")
    expect(yellow.page.locator("#offer-text")).to_have_text("You declined the draw offer.")
    expect(red.button("Offer draw")).to_be_enabled()
    red.screenshot_as("declined")
    # Offering again at once is too soon: the server's words, in place.
    red.button("Offer draw").click()
    expect(red.error).to_have_text(re.compile(r"^You can offer a draw again in \d+ s\.$"))
    expect(yellow.page.locator("#offer")).not_to_contain_text("offers")

    # Declined by playing on: the other player's move answers the offer.
    table.play(3)  # red's move clears red's note
    expect(red.page.locator("#offer")).to_be_hidden()
    yellow.button("Offer draw").click()
    expect(red.page.locator("#offer")).to_contain_text("Yellow offers a draw.")
    table.play(3)  # yellow's own move leaves its offer standing
    expect(red.page.locator("#offer")).to_contain_text("Yellow offers a draw.")
    table.play(4)  # red plays on
    expect(yellow.page.locator("#offer-text")).to_have_text("Red declined your draw offer.")
    expect(red.page.locator("#offer-text")).to_have_text("You declined the draw offer.")
    for client in (red, yellow):
        table.expect_board(client)
        expect(client.page.locator("#banner")).to_be_hidden()

    session.assert_no_problems()


def test_a_rematch_swaps_the_colours_both_ways_and_the_spectator_follows(
    session: Session, server: Server
) -> None:
    first, second, watch_url = open_game(session, server)  # first plays red, second yellow
    spectator = open_spectator(session, watch_url)
    table = Table(first, second, spectator)
    for column in [0, 1, 0, 1, 0, 1, 0]:
        table.play(column)
    expect_banner(first, "You win!", "Four in a row — Red wins.")
    expect(spectator.button("Rematch")).to_be_hidden()

    # Red offers a rematch; yellow accepts.
    first.button("Rematch").click()
    expect(first.page.locator("#rematch-text")).to_have_text(
        "You offered a rematch. Waiting for Yellow's answer…"
    )
    expect(first.button("Rematch")).to_be_hidden()
    expect(second.page.locator("#rematch-text")).to_have_text("Red offers a rematch.")
    expect(spectator.page.locator("#rematch-text")).to_have_text("Red offers a rematch.")
    expect(spectator.page.locator("#banner").get_by_role("button")).to_have_count(0)
    expect(second.button("Rematch")).to_be_hidden()
    second.screenshot_as("rematch-offer")
    second.page.locator("#banner").get_by_role("button", name="Accept").click()

    # Game 2: the colours are swapped (each page got its new seat), the spectator stayed.
    expect_new_round(first, 2, "You are yellow.", "Yellow")
    expect_new_round(second, 2, "You are red.", "Red")
    expect_new_round(spectator, 2, "You are watching this game as a spectator.", "Spectator")
    expect(first.turn).to_have_text("Red's turn.")
    expect(second.turn).to_have_text("Your turn.")
    expect(first.page.locator("#offer-text")).to_have_text("Game 2: you play yellow now.")
    expect(spectator.page.locator("#offer-text")).to_have_text(
        "Game 2 begins: the colours are swapped."
    )
    first.screenshot_as("game-2")
    table = Table(second, first, spectator)
    table.play(5)
    expect(first.page.locator("#offer")).to_be_hidden()
    # What the page keeps leads to its new colour: a reload resumes as yellow of game 2.
    first.page.reload()
    expect(first.page.locator("#status-role")).to_have_text("You are yellow.")
    expect(first.page.locator("#round")).to_have_text("Game 2")
    expect(first.turn).to_have_text("Your turn.")
    table.expect_board(first)
    table.play(6)
    # Red (second) resigns; then yellow (first) offers the rematch, and red accepts.
    second.button("Resign").click()
    second.button("Yes, resign").click()
    expect_banner(first, "You win!", "Red resigned — Yellow wins.")
    expect_banner(spectator, "Yellow wins!", "Red resigned — Yellow wins.")
    first.button("Rematch").click()
    expect(second.page.locator("#rematch-text")).to_have_text("Yellow offers a rematch.")
    expect(spectator.page.locator("#rematch-text")).to_have_text("Yellow offers a rematch.")
    second.page.locator("#banner").get_by_role("button", name="Accept").click()

    expect_new_round(first, 3, "You are red.", "Red")
    expect_new_round(second, 3, "You are yellow.", "Yellow")
    expect_new_round(spectator, 3, "You are watching this game as a spectator.", "Spectator")
    table = Table(first, second, spectator)
    table.play(3)
    table.play(3)
    for client in table.everyone:
        table.expect_board(client)
        expect(client.page.locator("#record-text")).to_have_text("44")

    session.assert_no_problems()


@pytest.mark.parametrize("server_args", [["--away-delay", "0"]], ids=["away-at-once"])
def test_an_abort_then_a_rematch_declined_and_one_withdrawn(
    session: Session, server: Server, server_args: list[str]
) -> None:
    red, yellow, _ = open_game(session, server)
    table = Table(red, yellow)
    table.play(3)
    # Yellow has not moved: it may call the game off.
    yellow.button("Abort").click()
    expect_banner(red, "Game aborted", "Yellow aborted the game — no result.")
    expect_banner(yellow, "Game aborted", "Yellow aborted the game — no result.")

    # Yellow asks for a rematch; red declines.
    yellow.button("Rematch").click()
    expect(red.page.locator("#rematch-text")).to_have_text("Yellow offers a rematch.")
    red.page.locator("#banner").get_by_role("button", name="Decline").click()
    expect(yellow.page.locator("#rematch-text")).to_have_text("Red declined your rematch.")
    expect(red.page.locator("#rematch-text")).to_have_text("You declined the rematch.")
    for client in (red, yellow):
        expect(client.button("Rematch")).to_be_visible()
        expect(client.page.locator("#round")).to_be_hidden()
    yellow.screenshot_as("declined")
    # Asking again at once is too soon.
    yellow.button("Rematch").click()
    expect(yellow.error).to_have_text(re.compile(r"^You can offer a rematch again in \d+ s\.$"))

    # Red asks, then leaves before yellow answers: the offer lapses.
    red.button("Rematch").click()
    expect(yellow.page.locator("#rematch-text")).to_have_text("Red offers a rematch.")
    red.close()
    expect(yellow.page.locator("#rematch-text")).to_have_text(
        "Red left: the rematch offer was withdrawn."
    )
    expect(yellow.page.locator("#banner").get_by_role("button", name="Accept")).to_be_hidden()
    expect(yellow.page.locator("#banner-title")).to_have_text("Game aborted")

    session.assert_no_problems()


@pytest.mark.parametrize("server_args", [["--watchers-interval", "0.2"]], ids=["count-0.2s"])
def test_everyone_sees_how_many_watch(
    session: Session, server: Server, server_args: list[str]
) -> None:
    red, yellow, watch_url = open_game(session, server)
    count = {client.who: client.page.locator("#watchers") for client in (red, yellow)}
    for badge in count.values():
        expect(badge).to_be_hidden()

    first = session.open("watcher-1", watch_url)
    for badge in [*count.values(), first.page.locator("#watchers")]:
        expect(badge).to_have_text("1 watching")
    second = session.open("watcher-2", watch_url)
    for badge in [*count.values(), second.page.locator("#watchers")]:
        expect(badge).to_have_text("2 watching")
    expect(first.page.locator("#watchers")).to_have_text("2 watching")
    red.screenshot_as("watched")

    second.close()
    for badge in [*count.values(), first.page.locator("#watchers")]:
        expect(badge).to_have_text("1 watching")
    first.close()
    for badge in count.values():
        expect(badge).to_be_hidden()

    session.assert_no_problems()


def test_the_record_is_copied(session: Session, server: Server) -> None:
    red, yellow, _ = open_game(session, server)
    table = Table(red, yellow)
    expect(red.page.locator("#record")).to_be_hidden()
    for column in [3, 3, 4, 2]:
        table.play(column)
    for client in (red, yellow):
        expect(client.page.locator("#record-text")).to_have_text("4453")
    copy = red.button("Copy moves")
    copy.click()
    expect(copy).to_have_text("Copied!")
    assert red.page.evaluate("navigator.clipboard.readText()") == "4453"
    table.play(6)
    expect(yellow.page.locator("#record-text")).to_have_text("44537")

    session.assert_no_problems()


def tab_to_the_board(client: Client) -> None:
    """Press Tab until a column has the focus."""
    focused_column = client.page.locator("#board .column:focus")
    for _ in range(12):
        client.page.keyboard.press("Tab")
        if focused_column.count() == 1:
            break
    expect(client.column(0)).to_be_focused()


def test_a_game_on_this_device_played_with_the_keyboard_only(
    session: Session, server: Server
) -> None:
    player = session.open("device", server.url)
    play_device = player.page.get_by_role("link", name="Play on this device")
    expect(play_device).to_be_visible()
    join_url = player.page.locator("#join-link").input_value()
    assert join_url
    play_device.focus()
    player.page.keyboard.press("Enter")
    expect(player.page).to_have_url(re.compile(r"/\?device$"))
    expect(player.page.locator("body")).to_have_attribute("data-mode", "device")
    expect(player.page.locator("#status-role")).to_have_text("Playing on this device.")
    expect(player.page.locator("#role-badge")).to_have_text("On this device")
    expect(player.turn).to_have_text("Red to play.")
    for hidden in ("#links", "#setup", "#controls", "#clocks", "#watchers"):
        expect(player.page.locator(hidden)).to_be_hidden()

    # Both colours from one keyboard: red in column 1, yellow in column 2, four times.
    tab_to_the_board(player)
    keys = ["Enter", "ArrowRight", "Space", "ArrowLeft", "Enter", "ArrowRight", "Enter"]
    keys += ["Home", "Enter", "ArrowRight", "Space", "ArrowLeft", "Enter"]
    turns = iter(["Yellow", "Red"] * 4)
    row = {0: 0, 1: 0}
    for key in keys:
        focused = player.page.locator("#board .column:focus").get_attribute("data-column")
        player.page.keyboard.press(key)
        if key in ("Enter", "Space"):
            column = int(focused or "0")
            colour = "red" if column == 0 else "yellow"
            expect(player.cell(column, row[column])).to_have_class(re.compile(rf"\b{colour}\b"))
            row[column] += 1
            if row[0] < 4:
                expect(player.turn).to_have_text(f"{next(turns)} to play.")
    expect_banner(player, "Red wins!", "Four in a row — Red wins.")
    expect(player.page.locator("#board .cell.win")).to_have_count(4)
    expect(player.page.locator("#record-text")).to_have_text("1212121")
    expect(player.page.locator("#banner").get_by_role("button", name="Rematch")).to_be_hidden()
    player.screenshot_as("won")
    # The friend game was called off as the page left it.
    assert ABORT in player.sent
    # It spoke the tutorial's part 1: moves only (and liveness pings), never an init.
    device_frames = player.sent[player.sent.index(next(f for f in player.sent if '"play"' in f)) :]
    assert all('"type":"play"' in frame or frame == PING for frame in device_frames)
    assert len([frame for frame in device_frames if '"type":"play"' in frame]) == 7

    # Play again, from the keyboard: back from the board to the banner's button.
    expect(player.column(0)).to_be_focused()
    player.page.keyboard.press("Shift+Tab")
    player.page.keyboard.press("Shift+Tab")
    expect(player.button("Play again")).to_be_focused()
    player.page.keyboard.press("Enter")
    expect(player.page.locator("#banner")).to_be_hidden()
    expect(player.page.locator("#board .cell.red, #board .cell.yellow")).to_have_count(0)
    expect(player.turn).to_have_text("Red to play.")
    expect(player.column(3)).to_be_focused()
    player.page.keyboard.press("Enter")
    expect(player.cell(3, 0)).to_have_class(re.compile(r"\bred\b"))
    expect(player.turn).to_have_text("Yellow to play.")

    # The friend game it left was called off: its link leads to an aborted game.
    friend = session.open("friend", join_url)
    expect_banner(friend, "Game aborted", "Red aborted the game — no result.")

    session.assert_no_problems()


def test_a_game_on_this_device_survives_a_reload(session: Session, server: Server) -> None:
    player = session.open("device", server.url + "?device")
    expect(player.turn).to_have_text("Red to play.")
    table = Table(player, player)
    for column in [3, 3, 4, 2, 5]:
        table.play(column)
    expect(player.turn).to_have_text("Yellow to play.")

    player.page.reload()

    # The columns played are sent again, in order, on the new connection: the same board.
    expect(player.turn).to_have_text("Yellow to play.")
    table.expect_board(player)
    expect(player.page.locator("#board .cell.drop")).to_have_count(0)
    expect(player.page.locator("#record-text")).to_have_text("44536")
    expect(player.page.locator("body")).to_have_attribute("data-live", "true")
    plays = [json.loads(frame)["column"] for frame in player.sent if '"type":"play"' in frame]
    assert plays == [3, 3, 4, 2, 5, 3, 3, 4, 2, 5]
    player.screenshot_as("reloaded")
    # And it carries on: yellow misses the block, red wins on the bottom row.
    table.play(1)
    expect(player.cell(1, 0)).to_have_class(re.compile(r"\bdrop\b"))
    table.play(6)
    expect_banner(player, "Red wins!", "Four in a row — Red wins.")
    expect(player.page.locator("#board .cell.win")).to_have_count(4)

    session.assert_no_problems()


# ---------------------------------------------------------------------------
# Playing the computer
# ---------------------------------------------------------------------------

#: The computer plays at once: the games against it take as long as the page's answers.
NO_BOT_DELAY = pytest.mark.parametrize("server_args", [["--bot-delay", "0"]], ids=["no-delay"])
#: The columns the person prefers, the centre first (when no four is to be made or blocked).
CENTRE_FIRST = [3, 2, 4, 1, 5, 0, 6]
#: Any checker on the board.
CHECKERS = "#board .cell.red, #board .cell.yellow"


def play_the_computer(client: Client, level: str, colour: str) -> dict[str, object]:
    """On the waiting page, choose "Play the computer" at ``level`` (its name: "Beginner")
    playing ``colour`` ("Red", "Yellow"), and start; wait for the new game's page: the
    ``init`` the page sent for it."""
    page = client.page
    expect(page.locator("body")).to_have_attribute("data-phase", "waiting")
    old_watch = page.locator("#watch-link").input_value()
    setup = page.locator("#setup")
    toggle = setup.get_by_role("button", name="Play the computer", exact=True)
    if toggle.get_attribute("aria-expanded") != "true":  # not open already
        toggle.click()
    form = page.locator("#bot-setup")
    expect(form).to_be_visible()
    form.get_by_role("radio", name=level, exact=True).check()
    form.get_by_role("radio", name=colour, exact=True).check()
    form.get_by_role("button", name="Start the game", exact=True).click()
    # Its own clean address, which a reload resumes (by the token kept for it).
    query = f"?bot={level.lower()}" + ("&color=yellow" if colour == "Yellow" else "")
    expect(page).to_have_url(re.compile(rf"^http://[^/?]+/{re.escape(query)}$"))
    expect(page.locator("#status-role")).to_have_text(f"You are {colour.lower()}.")
    expect(page.locator("#role-badge")).to_have_text(colour)
    expect(page.locator("#opponent")).to_have_text(f"vs Computer ({level.lower()})")
    expect(page.locator("body")).to_have_attribute("data-phase", "playing")
    expect(setup).to_be_hidden()
    # Nobody can join (the computer has the seat), but others can watch.
    expect(page.locator("#join-row")).to_be_hidden()
    expect(page.locator("#watch-link")).to_have_value(re.compile(r"\?watch=[\w-]+$"))
    expect(page.locator("#watch-link")).not_to_have_value(old_watch)
    # The waiting friend game was called off first.
    assert ABORT in client.sent
    init = json.loads(next(frame for frame in client.sent if '"bot"' in frame))
    expected = {"type": "init", "v": 0, "bot": level.lower()}
    if colour == "Yellow":
        expected["color"] = "yellow"
    assert {key: init.get(key) for key in expected} == expected, init
    return init


def checkers_on(client: Client) -> list[list[object]]:
    """Every checker ``client`` shows: [column, row, colour], in order."""
    return client.page.evaluate(
        """() => [...document.querySelectorAll("#board .cell.red, #board .cell.yellow")]
            .map((cell) => [Number(cell.dataset.column), Number(cell.dataset.row),
                            cell.classList.contains("red") ? "red" : "yellow"])
            .sort((a, b) => a[0] - b[0] || a[1] - b[1])"""
    )


def checker_count(client: Client) -> int:
    return client.page.locator(CHECKERS).count()


def wait_for_my_turn_or_the_end(client: Client, checkers: int) -> bool:
    """Wait until the game is over, or it is ``client``'s turn with ``checkers`` on the
    board (the computer has answered): whether the game goes on."""
    client.page.wait_for_function(
        """(checkers) => document.body.dataset.phase === "over" || (
            document.getElementById("board").classList.contains("my-turn") &&
            document.body.dataset.live === "true" &&
            document.querySelectorAll("#board .cell.red, #board .cell.yellow").length === checkers
        )""",
        arg=checkers,
    )
    return client.page.locator("body").get_attribute("data-phase") != "over"


def makes_four(grid: dict[tuple[int, int], str], column: int, row: int, colour: str) -> bool:
    """Whether a ``colour`` checker at (``column``, ``row``) of ``grid`` makes four in a row."""
    for step_column, step_row in ((1, 0), (0, 1), (1, 1), (1, -1)):
        run = 1
        for sign in (1, -1):
            c, r = column + sign * step_column, row + sign * step_row
            while grid.get((c, r)) == colour:
                run += 1
                c, r = c + sign * step_column, r + sign * step_row
        if run >= 4:
            return True
    return False


def my_column(client: Client, colour: str) -> int:
    """What a modest person would play, from what ``client`` shows: a win, else a block of
    the computer's win, else the legal column nearest the centre."""
    grid = {(column, row): who for column, row, who in checkers_on(client)}
    heights = {c: sum(1 for column, _ in grid if column == c) for c in CENTRE_FIRST}
    legal = [column for column in CENTRE_FIRST if heights[column] < ROWS]
    for who in (colour, "yellow" if colour == "red" else "red"):
        for column in legal:
            if makes_four(grid, column, heights[column], who):
                return column
    return legal[0]


def play_my_move(client: Client, colour: str) -> int:
    """``client``, playing ``colour``, plays a column (``my_column``): the checkers there will
    be once the computer has answered."""
    checkers = checker_count(client)
    client.click_column(my_column(client, colour))
    return checkers + 2


@NO_BOT_DELAY
@pytest.mark.parametrize(
    ("level", "colour"),
    [("Beginner", "Red"), ("Casual", "Yellow"), ("Perfect", "Yellow")],
    ids=["red", "yellow", "perfect"],
)
def test_a_game_against_the_computer_is_played_to_its_end(
    session: Session, server: Server, server_args: list[str], level: str, colour: str
) -> None:
    player = session.open("player", server.url)
    play_the_computer(player, level, colour)
    computer = f"Computer ({level.lower()})"
    page = player.page
    if colour == "Yellow":
        # The computer plays red: it has moved first.
        expect(page.locator("#board .cell.red")).to_have_count(1)
        expect(page.locator("#board .cell.yellow")).to_have_count(0)
    expect(player.turn).to_have_text("Your turn.")
    expect(page.locator("#thinking")).to_be_hidden()

    # The person plays the centre first, whatever is legal, until the game ends.
    checkers = 1 if colour == "Yellow" else 0
    while wait_for_my_turn_or_the_end(player, checkers):
        if checkers in (4, 5):
            player.screenshot_as("playing")
        checkers = play_my_move(player, colour.lower())

    # The banner says who won, in words.
    title = page.locator("#banner-title").inner_text()
    detail = {
        "You win!": f"Four in a row — {colour} wins.",
        "The computer wins.": f"Four in a row — {computer} wins.",
        "Draw!": "The board is full.",
    }
    assert title in detail, f"the banner says {title!r}"
    if level == "Perfect":  # moving first, it wins whatever the person does
        assert title == "The computer wins.", f"the banner says {title!r}"
    expect_banner(player, title, detail[title])
    if title != "Draw!":
        expect(page.locator("#board .cell.win")).not_to_have_count(0)
    expect(page.locator("#thinking")).to_be_hidden()
    expect(page.locator("#controls")).to_be_hidden()
    expect(player.button("Rematch")).to_be_visible()
    moves = page.locator(CHECKERS).count()
    expect(page.locator("#record-text")).to_have_text(re.compile(rf"^[1-7]{{{moves}}}$"))

    session.assert_no_problems()


@pytest.mark.parametrize("server_args", [["--bot-delay", "1"]], ids=["delay-1s"])
def test_resign_and_a_rematch_against_the_computer(
    session: Session, server: Server, server_args: list[str]
) -> None:
    player = session.open("player", server.url)
    play_the_computer(player, "Casual", "Red")
    page = player.page
    thinking = page.locator("#thinking")
    expect(player.turn).to_have_text("Your turn.")

    # A draw offer is declined at once.
    player.button("Offer draw").click()
    expect(page.locator("#offer-text")).to_have_text("Computer (casual) declined your draw offer.")
    expect(player.button("Offer draw")).to_be_visible()

    # While the computer is to move, it thinks (a second, here), then plays.
    player.click_column(3)
    expect(player.cell(3, 0)).to_have_class(re.compile(r"\bred\b"))
    expect(page.locator("#offer")).to_be_hidden()  # the person played on
    expect(player.turn).to_have_text("Computer (casual)'s turn.")
    expect(thinking).to_be_visible()
    expect(thinking).to_have_text("thinking…")
    player.screenshot_as("thinking")
    expect(page.locator("#board .cell.yellow")).to_have_count(1, timeout=3_000)
    expect(thinking).to_be_hidden()
    expect(player.turn).to_have_text("Your turn.")
    player.click_column(3)
    expect(page.locator("#board .cell.yellow")).to_have_count(2, timeout=3_000)
    expect(player.turn).to_have_text("Your turn.")

    # Resigning asks first, then the computer wins.
    player.button("Resign").click()
    player.button("Yes, resign").click()
    expect_banner(player, "The computer wins.", "Red resigned — Computer (casual) wins.")
    expect(page.locator("#controls")).to_be_hidden()
    expect(thinking).to_be_hidden()
    player.screenshot_as("resigned")

    # A rematch is accepted at once: game 2, the colours swapped; the computer, red now,
    # thinks, then moves first.
    player.button("Rematch").click()
    expect(page.locator("#banner")).to_be_hidden()
    expect(thinking).to_be_visible()
    expect(player.turn).to_have_text("Computer (casual)'s turn.")
    expect(page.locator("#round")).to_have_text("Game 2")
    expect(page.locator("#status-role")).to_have_text("You are yellow.")
    expect(page.locator("#role-badge")).to_have_text("Yellow")
    expect(page.locator("#opponent")).to_have_text("vs Computer (casual)")
    expect(page.locator("#offer-text")).to_have_text("Game 2: you play yellow now.")
    expect(page.locator("#board .cell.win")).to_have_count(0)
    expect(page.locator("#board .cell.yellow")).to_have_count(0)
    expect(page.locator("#board .cell.red")).to_have_count(1, timeout=3_000)
    expect(thinking).to_be_hidden()
    expect(player.turn).to_have_text("Your turn.")
    expect(page.locator("body")).to_have_attribute("data-phase", "playing")
    assert json.dumps({"type": "offer", "offer": "rematch"}, separators=(",", ":")) in player.sent
    # The page's address is still the one that created the game, and its token leads to
    # its new colour: a reload resumes game 2 as yellow.
    expect(page).to_have_url(re.compile(r"/\?bot=casual$"))
    page.reload()
    expect(page.locator("#status-role")).to_have_text("You are yellow.")
    expect(page.locator("#round")).to_have_text("Game 2")
    expect(page.locator("#opponent")).to_have_text("vs Computer (casual)")
    expect(player.turn).to_have_text("Your turn.")
    expect(page.locator("#board .cell.red")).to_have_count(1)
    expect(page.locator("#board .cell.yellow")).to_have_count(0)
    player.click_column(3)
    expect(page.locator("#board .cell.yellow")).to_have_count(1)
    expect(thinking).to_be_visible()

    session.assert_no_problems()


@pytest.mark.parametrize(
    "server_args",
    # The reloaded page gets every event again, or one snapshot (``sync``: the log keeps
    # only its last 4 events), which names the computer's seat too.
    [["--bot-delay", "0"], ["--bot-delay", "0", "--max-log-events", "4"]],
    ids=["replay", "snapshot"],
)
def test_a_reload_during_a_game_against_the_computer_resumes_it(
    session: Session, server: Server, server_args: list[str]
) -> None:
    player = session.open("player", server.url)
    page = player.page
    expect(page.locator("body")).to_have_attribute("data-phase", "waiting")
    # The form: each level in a few words, and the colour.
    choose_time_control(player, "3 min + 2 s")
    page.locator("#setup").get_by_role("button", name="Play the computer").click()
    form = page.locator("#bot-setup")
    for name, about in [
        ("Beginner", "makes real mistakes"),
        ("Casual", "sees one move ahead"),
        ("Strong", "looks six moves ahead"),
    ]:
        expect(form.get_by_role("radio", name=name, exact=True)).to_have_accessible_description(
            about
        )
    expect(form).to_contain_text("Time control: 3 min + 2 s")
    player.screenshot_as("form")
    init = play_the_computer(player, "Strong", "Yellow")
    # The time control chosen before is kept.
    assert init["clock"] == {"kind": "bank", "initial": 180, "increment": 2}
    expect(page.locator("#clock-control")).to_have_text("3 min + 2 s")
    expect(clock(player, "red").locator(".clock-name")).to_have_text("Computer (strong)")
    expect(clock(player, "yellow").locator(".clock-name")).to_have_text("Yellow (you)")
    expect(page.locator("#board .cell.red")).to_have_count(1)
    expect(clock(player, "yellow")).to_have_class(re.compile(r"\brunning\b"))
    checkers = 1
    for _ in range(2):
        assert wait_for_my_turn_or_the_end(player, checkers)
        checkers = play_my_move(player, "yellow")
    assert wait_for_my_turn_or_the_end(player, checkers)
    board = checkers_on(player)
    url = page.url

    page.reload()

    # The stored token resumes the game: the same board, colour, opponent and clocks.
    expect(page.locator("#status-role")).to_have_text("You are yellow.")
    expect(page.locator("#opponent")).to_have_text("vs Computer (strong)")
    expect(player.turn).to_have_text("Your turn.")
    expect(page.locator("body")).to_have_attribute("data-live", "true")
    expect(page.locator(CHECKERS)).to_have_count(checkers)
    assert page.url == url
    assert checkers_on(player) == board
    expect(page.locator("#board .cell.drop")).to_have_count(0)  # the replay does not fall
    expect(clock(player, "red").locator(".clock-name")).to_have_text("Computer (strong)")
    expect(page.locator("#join-row")).to_be_hidden()
    expect(page.locator("#setup")).to_be_hidden()
    last_init = [frame for frame in player.sent if '"type":"init"' in frame][-1]
    assert '"token"' in last_init, last_init
    assert '"bot"' not in last_init, last_init
    player.screenshot_as("reloaded")
    # It plays on: the person's move, the computer's answer (which may win already: red has
    # its fourth checker).
    goes_on = wait_for_my_turn_or_the_end(player, play_my_move(player, "yellow"))

    # The watch link shows the game, the computer named.
    spectator = open_spectator(session, page.locator("#watch-link").input_value())
    expect(spectator.page.locator("#opponent")).to_have_text("Computer (strong) vs Yellow")
    if goes_on:
        expect(spectator.turn).to_have_text("Yellow to play.")
    else:
        expect(spectator.page.locator("#banner-title")).to_have_text("Computer (strong) wins!")
    expect(spectator.page.locator(CHECKERS)).to_have_count(checker_count(player))
    assert checkers_on(spectator) == checkers_on(player)

    # An address with a level the page does not know creates nothing.
    stranger = session.open("unknown-level", server.url + "?bot=grandmaster")
    expect(stranger.turn).to_have_text("Could not open this game.")
    expect(stranger.notice).to_contain_text("There is no such level of the computer")
    expect(stranger.page.locator("#notice-new-game")).to_be_visible()
    assert stranger.sent == []

    session.assert_no_problems()


# ---------------------------------------------------------------------------
# Many processes: games shared through Redis
# ---------------------------------------------------------------------------


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("no redis-server (Debian: apt install redis-server)")
    with running(tmp_path, durable=True) as server:
        yield server


def test_a_game_played_across_two_processes_and_redis_going_away_meanwhile(
    tmp_path: Path, browser: Browser, redis: RedisServer
) -> None:
    shared = ["--redis", redis.url + "?timeout=0.3"]
    first = Server(tmp_path / "first.log", shared)
    second = Server(tmp_path / "second.log", shared)
    session = Session(browser, "a-game-across-two-processes")
    try:
        # Red on the first process; yellow and the spectator open their links on the second.
        red, yellow, watch_url = open_game(session, first, yellow_via=second.url.rstrip("/"))
        spectator = open_spectator(session, second.url + watch_url.removeprefix(first.url))
        table = Table(red, yellow, spectator)
        for column in [0, 1, 0, 1]:
            table.play(column)

        # Redis stops (everything it answered is on disk): red's move is refused, and the
        # page says why; once Redis is back, the same click plays.
        redis.kill()
        red.click_column(0)
        expect(red.error).to_contain_text("reconnecting to its database")
        redis.start()
        table.play(0)
        table.play(1)
        table.play(0)  # red: four in column 0
        expect_red_won(red, yellow, spectator)
        for client in table.everyone:
            table.expect_board(client)
        session.assert_no_problems()
    finally:
        session.finish()
        first.stop_and_check()
        second.stop_and_check()
