"""End-to-end tests: real ``server.py`` processes driven through headless Chromium.

Every player and spectator gets its own browser context (its own cookies, storage and
WebSocket) and is driven only through the UI: clicks, key presses and reading the DOM.
Screenshots of every page land in ``test-artifacts/browser/<scenario>-<who>.png``.
"""

from __future__ import annotations

import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
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
READY_LINE = re.compile(r"^Connect Four is ready: open (http://\S+/) in your browser\.$")

COLUMNS = 7
ROWS = 6

pytestmark = pytest.mark.browser

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

    def __init__(self, log_path: Path) -> None:
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
                ],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
        self.url = self._read_address()
        self.ws_url = "ws://" + self.url.removeprefix("http://")

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
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "server.log")
    try:
        yield running
    finally:
        running.stop_and_check()


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
    closed: bool = False

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
                "socketerror", lambda error: self.problems.append(f"websocket error: {error}")
            )

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", on_request_failed)
        page.on("response", on_response)
        page.on("websocket", on_websocket)

    def screenshot(self) -> None:
        if not self.closed:
            self.page.screenshot(path=str(self.screenshot_path), full_page=True)

    def close(self) -> None:
        """Close the tab (and its context), as a player closing the window would."""
        self.screenshot()
        self.closed = True
        self.page.context.close()


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
    ) -> Client:
        context = self.browser.new_context(
            viewport=viewport or {"width": 900, "height": 1000},
            reduced_motion="reduce",
            permissions=permissions,
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        client = Client(who, page, ARTIFACTS / f"{self.scenario}-{who}.png")
        client.watch()
        self.clients.append(client)
        page.goto(url)
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
            for client in still_open:
                client.closed = True
                client.page.context.close()


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

    def play(self, column: int) -> tuple[int, int]:
        """The player to move clicks ``column``; wait until every client shows the checker."""
        player = self.red if self.turn == "red" else self.yellow
        row = self.heights[column]
        player.click_column(column)
        for client in self.everyone:
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


def open_game(session: Session, server: Server) -> tuple[Client, Client, str]:
    """Red creates a game, yellow joins by the link red shows: (red, yellow, watch URL)."""
    red = session.open("red", server.url, permissions=["clipboard-read", "clipboard-write"])
    expect(red.page.locator("#status-role")).to_have_text("You are red.")
    expect(red.page.locator("#status-turn")).to_have_text("Waiting for an opponent to join...")
    expect(red.page.locator("body")).to_have_attribute("data-phase", "waiting")
    join_link = red.page.locator("#join-link")
    watch_link = red.page.locator("#watch-link")
    expect(join_link).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/\?join=[\w-]+$"))
    expect(watch_link).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/\?watch=[\w-]+$"))

    yellow = session.open("yellow", join_link.input_value())
    expect(yellow.page.locator("#status-role")).to_have_text("You are yellow.")
    expect(yellow.page.locator("#status-turn")).to_have_text("Red's turn.")
    expect(yellow.page.locator("body")).to_have_attribute("data-role", "yellow")
    # Only the creator gets the invite links.
    expect(yellow.page.locator("#links")).to_be_hidden()
    expect(red.page.locator("#status-turn")).to_have_text("Your turn.")
    expect(red.page.locator("body")).to_have_attribute("data-phase", "playing")
    return red, yellow, watch_link.input_value()


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
    red, yellow, watch_url = open_game(session, server)
    # The copy buttons put the links on the clipboard.
    for name in ("join", "watch"):
        button = red.page.locator(f"#copy-{name}")
        button.click()
        expect(button).to_have_text("Copied!")
        expect(red.page.locator("#copy-feedback")).to_have_text("Copied!")
        clipboard = red.page.evaluate("navigator.clipboard.readText()")
        assert clipboard == red.page.locator(f"#{name}-link").input_value()
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

    expect(red.page.locator("#banner-title")).to_have_text("You win!")
    expect(yellow.page.locator("#banner-title")).to_have_text("You lose.")
    expect(spectator.page.locator("#banner-title")).to_have_text("Red wins!")
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
def test_the_opponent_is_told_when_a_player_closes_the_tab(
    session: Session, server: Server, leaver: str, stayer: str
) -> None:
    red, yellow, _ = open_game(session, server)
    table = Table(red, yellow)
    table.play(3)
    table.play(3)
    clients = {"red": red, "yellow": yellow}

    clients[leaver].close()

    status = clients[stayer].page.locator("#status")
    expect(status).to_contain_text(f"{leaver.capitalize()} left the game.")
    if leaver == "yellow":
        # The yellow seat is free again: red is told it may come back.
        expect(status).to_contain_text("Waiting for them to come back...")
    expect(clients[stayer].page.locator("#banner")).to_be_hidden()

    if leaver == "yellow":
        # The join link takes the free seat back and replays the game so far.
        join_url = red.page.locator("#join-link").input_value()
        back = session.open("yellow-again", join_url)
        expect(back.page.locator("#status-role")).to_have_text("You are yellow.")
        table.yellow = back
        table.everyone = [red, back]
        table.expect_board(back)
        expect(status).not_to_contain_text("left the game")
        expect(red.page.locator("#status-turn")).to_have_text("Your turn.")
        table.play(0)
        table.play(6)

    session.assert_no_problems()


def test_unknown_or_taken_links_are_refused_with_a_reason(session: Session, server: Server) -> None:
    red, _, _ = open_game(session, server)
    join_url = red.page.locator("#join-link").input_value()

    # A second yellow: the seat is taken.
    intruder = session.open("second-yellow", join_url)
    expect(intruder.page.locator("#status-turn")).to_have_text(
        "Could not open this game: This game already has a yellow player."
    )
    expect(intruder.error).to_have_text("This game already has a yellow player.")
    expect(intruder.page.locator("body")).to_have_attribute("data-phase", "failed")
    expect(intruder.page.locator("#role-badge")).to_be_hidden()
    expect(intruder.column(0)).to_have_attribute("aria-disabled", "true")

    # A link to a game that does not exist (or no longer does).
    stranger = session.open("unknown-watcher", server.url + "?watch=no-such-game")
    expect(stranger.page.locator("#status-turn")).to_have_text(
        "Could not open this game: Game not found."
    )
    expect(stranger.error).to_have_text("Game not found.")
    expect(stranger.page.locator("body")).to_have_attribute("data-phase", "failed")

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

    gone = re.compile(r"The server is shutting down\.|Connection lost\.")
    for client in table.everyone:
        expect(client.status).to_contain_text(gone)
        expect(client.error).to_have_text(gone)
        expect(client.page.locator("body")).to_have_attribute("data-phase", "closed")
        for column in range(COLUMNS):
            expect(client.column(column)).to_have_attribute("aria-disabled", "true")
        # The board keeps what was played.
        table.expect_board(client)

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
