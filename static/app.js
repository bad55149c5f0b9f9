// Browser client for connect4proto. See PROTOCOL.md for the wire protocol.
// Plain ES module, no dependencies, no build step.
//
// The page plays in one of two modes, chosen by its address:
// - online (`/`, `/?join=K`, `/?watch=K`): the versioned protocol. Every game
//   event carries `v`, its place in the game's log, and the page applies each
//   `v` exactly once, in order. A seat belongs to whoever holds its token; the
//   page keeps the token in sessionStorage, so a reload or a dropped
//   connection resumes the game where it was instead of losing it. A match
//   goes on game after game (rematches), with resignations, draw offers,
//   aborts, move clocks and a spectator count.
//   A game against the computer is an online game too, created from
//   `/?bot=LEVEL` (you play red) or `/?bot=LEVEL&color=yellow` (the computer,
//   red, moves first), and resumed from the stored token like any other.
// - on this device (`/?device`): a hot-seat game, the websockets tutorial's
//   part 1. The socket never sends `init`, only `play`: red moves first and
//   the server alternates the colours. It hears only `play`, `win`, `draw`
//   and `error` (no `v`, no codes), and its game ends with the connection,
//   so the page keeps the columns played in sessionStorage and plays them
//   again, in order, on a new connection (the server is deterministic).

const COLUMNS = 7;
const ROWS = 6;
const ERROR_TIMEOUT_MS = 4000;
const COPY_FEEDBACK_MS = 1800;
// navigator.clipboard.writeText can stay pending (e.g. when the document
// loses focus), so we stop waiting for it after this long and fall back.
const CLIPBOARD_TIMEOUT_MS = 1500;
// Reconnecting uses exponential backoff with full jitter: a random delay in
// [0, min(cap, base * 2^attempt)], so that every page dropped at once (a
// server restart, a flaky proxy) does not come back in the same instant.
const RETRY_BASE_MS = 500;
const RETRY_CAP_MS = 10_000;
// How often countdowns (an away player's grace, the next retry) are redrawn.
const TICK_MS = 250;
// How often a running move clock is redrawn (it shows tenths under 10 s).
const CLOCK_TICK_MS = 100;
// A clock under this shows tenths of a second, in the low-time colour.
const LOW_TIME_MS = 10_000;
// A connection can die without closing: a computer that slept, a phone that
// changed networks, a NAT or proxy that forgot it. The socket then looks
// open and the browser notices only minutes later, if ever; a page cannot
// send WebSocket pings itself. So it sends the server a `ping` now and then,
// which the server answers with `pong`; if nothing at all arrives within
// PONG_TIMEOUT_MS, the socket is given up and the game resumed on a new one.
// Pings count against the server's rate limit (50 messages/s): seldom is
// plenty.
const PING_INTERVAL_MS = testTiming("pingIntervalMs", 15_000);
const PONG_TIMEOUT_MS = testTiming("pongTimeoutMs", 5_000);
// A handshake into such a network hangs for minutes too: it is given up
// after this long, and tried again.
const OPEN_TIMEOUT_MS = testTiming("openTimeoutMs", 10_000);
// A computer that slept (a closed lid) wakes up with a socket that the server
// dropped long ago, and timers that fire late. The page notices the jump of
// the clock between two checks, and asks at once instead of at the next ping.
const SLEEP_CHECK_MS = 2000;
const SLEEP_GAP_MS = 10_000;
// The server closes a connection with this code when a newer one took its
// seat over (a second tab): coming back by ourselves would steal it back.
const SEAT_REPLACED = 4000;
// The close code that tells the server this page is reconnecting at once (a
// page cannot send 1001): the others are not told it went away unless it is
// not back within the server's away delay.
const RECONNECTING = 4001;
const STORAGE_PREFIX = "connect4proto:";
// The address of a game on this device (its sessionStorage entry, too).
const DEVICE_SEARCH = "?device";
const ENDED_TEXT = "This game has ended or expired.";
const SEAT_TAKEN_TEXT = "This game already has two players.";
const REPLACED_TEXT = "This game is open in another tab or window.";

// The time controls offered while a friend game waits for the friend
// (PROTOCOL.md, "Move clocks"); null is an untimed game, the tutorial's.
const PRESETS = new Map([
  ["untimed", null],
  ["1+0", { kind: "bank", initial: 60, increment: 0 }],
  ["3+2", { kind: "bank", initial: 180, increment: 2 }],
  ["10+5", { kind: "bank", initial: 600, increment: 5 }],
  ["30s", { kind: "move", seconds: 30 }],
]);
// The computer's levels, weakest first, as the page offers them (a new level
// is one more line): what the server calls it, its name, what it does.
const BOT_LEVELS = [
  { level: "beginner", name: "Beginner", about: "makes real mistakes" },
  { level: "casual", name: "Casual", about: "sees one move ahead" },
  { level: "strong", name: "Strong", about: "looks six moves ahead" },
  { level: "perfect", name: "Perfect", about: "never lets a win or a draw slip" },
];
// What "Play the computer" offers first, until a choice is remembered.
const DEFAULT_BOT = { level: "casual", color: "red" };
// The last choice of level and colour, kept across visits (nothing secret).
const BOT_CHOICE_KEY = STORAGE_PREFIX + "computer";
// The server's bounds for a time control.
const MAX_CONTROL_SECONDS = 3 * 3600;
const MAX_INCREMENT_SECONDS = 600;

// What each refusal code means to this page (PROTOCOL.md, "Errors"). The
// page decides from the code alone, never from the text or from when the
// error came. A code in FATAL means the page has no game (its init was
// refused): nothing is retried, and the page says what can be done. Any
// other code refuses the last action only and nothing changed: its text is
// shown for a moment, in place. Those are not_your_turn, column_full,
// bad_column, game_over, spectator, no_opponent, opponent_connected,
// too_early, no_offer, offer_pending, own_offer, offer_too_soon, not_over,
// too_late, opponent_away, unsupported, hot_seat, invalid_message,
// rate_limited, and any code the server adds later.
const FATAL = new Map([
  ["seat_taken", "seat-taken"], // the join link's seat belongs to someone else
  ["game_not_found", "ended"], // a join or watch key of a game that is gone
  ["unknown_token", "ended"], // a seat token of a game that is gone
  ["bad_init", "failed"],
  ["level_unavailable", "failed"], // this server cannot run that level (perfect needs numba)
  ["already_in_game", "failed"],
  ["init_first", "failed"], // our init was refused or lost: nothing to act on
]);

// The browser tests shorten the liveness timings with an init script that
// sets `window.__c4` before this module runs. Nothing in the page's address
// changes them, so a shared link cannot make a page ping the server hard.
function testTiming(name, fallback) {
  const value = globalThis.__c4?.[name];
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : fallback;
}

const $ = (id) => document.getElementById(id);

const dom = {
  board: $("board"),
  statusRole: $("status-role"),
  statusTurn: $("status-turn"),
  error: $("error"),
  notice: $("notice"),
  noticeText: $("notice-text"),
  noticeTimer: $("notice-timer"),
  watchGame: $("watch-game"),
  playHere: $("play-here"),
  retryNow: $("retry-now"),
  noticeNewGame: $("notice-new-game"),
  away: $("away"),
  awayLines: {
    red: document.querySelector('#away .away-line[data-player="red"]'),
    yellow: document.querySelector('#away .away-line[data-player="yellow"]'),
  },
  claim: $("claim"),
  offer: $("offer"),
  offerText: $("offer-text"),
  offerActions: $("offer-actions"),
  offerAccept: $("offer-accept"),
  offerDecline: $("offer-decline"),
  banner: $("banner"),
  bannerTitle: $("banner-title"),
  bannerDetail: $("banner-detail"),
  rematchText: $("rematch-text"),
  rematch: $("rematch"),
  rematchAccept: $("rematch-accept"),
  rematchDecline: $("rematch-decline"),
  playAgain: $("play-again"),
  bannerNewGame: $("banner-new-game"),
  newGame: $("new-game"),
  badge: $("role-badge"),
  round: $("round"),
  watchers: $("watchers"),
  watchersText: $("watchers-text"),
  clocks: $("clocks"),
  clockControl: $("clock-control"),
  clock: {
    red: document.querySelector('#clocks .clock[data-player="red"]'),
    yellow: document.querySelector('#clocks .clock[data-player="yellow"]'),
  },
  controls: $("controls"),
  controlsMain: $("controls-main"),
  offerDraw: $("offer-draw"),
  abort: $("abort"),
  resign: $("resign"),
  resignConfirm: $("resign-confirm"),
  resignYes: $("resign-yes"),
  resignCancel: $("resign-cancel"),
  record: $("record"),
  recordText: $("record-text"),
  copyRecord: $("copy-record"),
  links: $("links"),
  joinRow: $("join-row"),
  joinLink: $("join-link"),
  watchLink: $("watch-link"),
  joinAnchor: $("join-anchor"),
  watchAnchor: $("watch-anchor"),
  copyJoin: $("copy-join"),
  copyWatch: $("copy-watch"),
  copyFeedback: $("copy-feedback"),
  setup: $("setup"),
  presets: [...document.querySelectorAll("#time-controls [data-preset]")],
  customToggle: $("custom-toggle"),
  customForm: $("custom-control"),
  customSeconds: $("custom-seconds"),
  customMinutes: $("custom-minutes"),
  customIncrement: $("custom-increment"),
  customStart: $("custom-start"),
  customError: $("custom-error"),
  playDevice: $("play-device"),
  opponent: $("opponent"),
  thinking: $("thinking"),
  botToggle: $("bot-toggle"),
  botForm: $("bot-setup"),
  botLevels: $("bot-levels"),
  botStart: $("bot-start"),
  botControl: $("bot-control"),
};

// ---------------------------------------------------------------------------
// What survives a reload: sessionStorage, one entry per page address
// ---------------------------------------------------------------------------

// Kept per tab (a reload finds it, an address pasted elsewhere does not, so
// sharing the address bar never hands over a seat) and per address (red's
// "", yellow's "?join=K", a spectator's "?watch=K", a game on this device's
// "?device", a game against the computer's "?bot=casual"). Never in a
// cookie: the token must not travel with every request.

const params = new URLSearchParams(location.search);
const MODE = params.has("device") ? "device" : "online";
// This page's storage entry (a game against the computer started from the
// waiting page moves the page to its own address, and its entry with it).
let here = MODE === "device" ? DEVICE_SEARCH : location.search;

function storageKey(search) {
  return STORAGE_PREFIX + search;
}

function loadSession() {
  try {
    const value = JSON.parse(sessionStorage.getItem(storageKey(here)) ?? "null");
    if (value && typeof value === "object") return value;
  } catch {
    // Storage disabled or garbage in it: start afresh.
  }
  return null;
}

function saveSession(value) {
  try {
    sessionStorage.setItem(storageKey(here), JSON.stringify(value));
  } catch {
    // Storage full or disabled: the game still works until a reload.
  }
}

function clearSession(search = here) {
  try {
    sessionStorage.removeItem(storageKey(search));
  } catch {
    // Nothing stored, nothing to clear.
  }
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

const stored = MODE === "online" ? loadSession() : null;
const storedSeat = stored && typeof stored.token === "string" && isPlayer(stored.player)
  ? stored
  : null;
// A join link whose seat was taken may have been turned into a spectator view.
const storedSpectator = stored?.role === "spectator" && params.has("join");

function isBotLevel(level) {
  return BOT_LEVELS.some((option) => option.level === level);
}

// The address `/?bot=LEVEL` or `/?bot=LEVEL&color=yellow` creates a game
// against the computer, the first time only (then the stored token resumes
// it): { level, color }, "invalid" for a level or colour this page does not
// know, null for any other address.
function botFromAddress() {
  if (MODE !== "online" || !params.has("bot") || params.has("join") || params.has("watch")) {
    return null;
  }
  const level = params.get("bot");
  const color = params.get("color") ?? "red";
  return isBotLevel(level) && isPlayer(color) ? { level, color } : "invalid";
}

const addressBot = botFromAddress();

// The clean address of a game against the computer.
function botSearch({ level, color }) {
  const search = new URLSearchParams({ bot: level });
  if (color === "yellow") search.set("color", "yellow");
  return `?${search}`;
}

function initialRole() {
  if (MODE === "device") return "device";
  if (storedSeat) return storedSeat.player;
  if (storedSpectator || params.has("watch")) return "spectator";
  if (addressBot && addressBot !== "invalid") return addressBot.color;
  return params.has("join") ? "yellow" : "red";
}

const state = {
  // "red" (creator), "yellow" (joiner), "spectator" (watcher), or "device"
  // (both colours, on this device). A rematch swaps red and yellow.
  role: initialRole(),
  // The seat's token, to take the seat back; null until the server gives one.
  token: storedSeat ? storedSeat.token : null,
  // What a spectator watches with: the watch key, or a join key whose seat is taken.
  watchKey: storedSpectator ? params.get("join") : params.get("watch"),
  // The last `v` applied. A fresh page has an empty board, so it starts at 0
  // and gets the whole log again; reconnects within the page continue from it.
  v: 0,
  // Whose turn it is; red always starts.
  turn: "red",
  // The columns played in the current game, in order (the record, 0-based).
  moves: [],
  // The record as the end event gives it (the truth, once there is one).
  record: null,
  // Set once the game is over: { winner: "red" | "yellow" | null, reason,
  // by }, `reason` as on the wire ("four", "full", "resign", "agreed",
  // "time", "claim", or "aborted", whose `by` is who called it off).
  result: null,
  // Which game of the match this is (a rematch starts the next one).
  round: 1,
  // The game's time control (from seat, watching or sync), null if untimed.
  control: null,
  // The control to create the next game with: what the creator chose.
  create: null,
  // The computer to create the next game against, { level, color: the
  // creator's }, or null (a friend game). Set for a page whose game is
  // against the computer, even once it resumes by its token.
  createBot: addressBot === "invalid" ? null : addressBot,
  // The computer's level in each seat (null: a person). A rematch swaps them.
  bots: { red: null, yellow: null },
  // The clocks as last told: { red, yellow (ms), running, at (performance.now()
  // when told) }; null until an event carries them.
  clock: null,
  // An offer waiting for its answer: { kind: "draw" | "rematch", player }.
  offer: null,
  // What became of the last offer, or that a new game began, in words:
  // { kind: "draw" | "rematch" | "round", text, until: the player whose
  // move clears it (draw notes) }.
  note: null,
  // How many spectators watch (not in the log: the latest count is the truth).
  watchers: 0,
  // true = connected, false = away, undefined = never seated (vacant).
  present: { red: undefined, yellow: undefined },
  // While a player is away: performance.now() when their grace runs out.
  graceEnds: { red: null, yellow: null },
  // The join/watch keys, known only to the creator.
  keys: null,
  // Once we know we are in a game (a seat or any game event arrived).
  inGame: false,
  // Set when the server refused our init: { kind, headline, detail }, kind
  // being "seat-taken", "ended" or "failed". Nothing is retried after it.
  refusal: null,
  // Navigating away closes the socket; that is not an error to show.
  unloading: false,
};

// What is only on the screen: a question being asked, a form being filled.
const ui = {
  // "Resign this game?" is being asked.
  confirmingResign: false,
  // The waiting game is being replaced by one with another time control.
  replacing: false,
  // The custom time control form is open.
  customOpen: false,
  // The "Play the computer" form is open.
  botOpen: false,
};

// A game on this device: the columns sent again on a new connection, and
// how many of them the server has answered.
const device = { replay: [], answered: 0 };

const conn = {
  socket: null,
  // "connecting" | "open" | "retrying" (waiting for the next attempt) |
  // "replaced" (another tab has the seat) | "stopped" (nothing to go back to).
  status: "connecting",
  // Set when a connection was lost, until a resume succeeds.
  lost: false,
  // Why the last connection ended, shown while reconnecting.
  lostReason: "",
  // Failed attempts since the last successful (re)connection.
  attempt: 0,
  retryAt: 0,
  retryTimer: 0,
  // True from an init until the catch-up that follows it is over: until the
  // page has applied the `v` that `seat` or `watching` announced (catchUpTo,
  // null until one of them arrives). Events after it are live. On this
  // device: until the server has answered every column sent again.
  catchingUp: false,
  catchUpTo: null,
  // Liveness (see PING_INTERVAL_MS): the handshake's deadline, the periodic
  // ping, and the deadline of the ping that waits for an answer (0: none).
  openTimer: 0,
  pingTimer: 0,
  pongTimer: 0,
  // A close that happened while the page was being hidden (back/forward cache).
  pendingClose: null,
};

const timers = { error: 0, tick: 0, clock: 0 };

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function capitalize(word) {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function isIndex(value, size) {
  return Number.isInteger(value) && value >= 0 && value < size;
}

function isPlayer(value) {
  return value === "red" || value === "yellow";
}

function isPlayerRole() {
  return isPlayer(state.role);
}

function other(player) {
  return player === "red" ? "yellow" : "red";
}

// The computer at `level`, as the page names it.
function botName(level) {
  return `Computer (${level})`;
}

// Who plays `player`, in words: the colour, or the computer that plays it.
function playerName(player) {
  const level = state.bots[player];
  return level ? botName(level) : capitalize(player);
}

// This page's game is against the computer (known from the address that
// created it before the server says so).
function isBotGame() {
  return state.createBot !== null || state.bots.red !== null || state.bots.yellow !== null;
}

// The computer is to move, and its move is awaited live.
function botThinking(current) {
  return (
    current === "playing" &&
    state.bots[state.turn] !== null &&
    conn.status === "open" &&
    !conn.catchingUp
  );
}

// Writes only on change: re-setting the same text would make screen readers
// announce live regions again at every redraw (countdowns redraw often).
function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function setHidden(element, hidden) {
  if (element.hidden !== hidden) element.hidden = hidden;
}

function setClass(element, name) {
  if (element.className !== name) element.className = name;
}

function secondsLeft(deadline) {
  return Math.max(0, Math.ceil((deadline - performance.now()) / 1000));
}

function formatClock(seconds) {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, "0")}`;
}

function pad2(number) {
  return String(number).padStart(2, "0");
}

// A move clock: mm:ss (h:mm:ss from an hour), mm:ss.t under 10 s. Rounded
// down, as the server does: a clock never shows time a player does not have.
function formatTime(ms) {
  const left = Math.max(0, ms);
  if (left < LOW_TIME_MS) {
    const tenths = Math.floor(left / 100);
    return `00:${pad2(Math.floor(tenths / 10))}.${tenths % 10}`;
  }
  const total = Math.floor(left / 1000);
  const hours = Math.floor(total / 3600);
  const mmss = `${pad2(Math.floor(total / 60) % 60)}:${pad2(total % 60)}`;
  return hours > 0 ? `${hours}:${mmss}` : mmss;
}

function recordOf(moves) {
  return moves.map((column) => String(column + 1)).join("");
}

// ---------------------------------------------------------------------------
// Time controls
// ---------------------------------------------------------------------------

// A control as the server sends it, checked; null if untimed or not one.
function parseControl(value) {
  if (!value || typeof value !== "object") return null;
  if (value.kind === "move" && Number.isInteger(value.seconds) && value.seconds > 0) {
    return { kind: "move", seconds: value.seconds };
  }
  if (value.kind === "bank" && Number.isInteger(value.initial) && value.initial > 0) {
    const increment = Number.isInteger(value.increment) && value.increment > 0 ? value.increment : 0;
    return { kind: "bank", initial: value.initial, increment };
  }
  return null;
}

function sameControl(a, b) {
  if (a === null || b === null) return a === b;
  return a.kind === b.kind && a.seconds === b.seconds && a.initial === b.initial &&
    (a.increment ?? 0) === (b.increment ?? 0);
}

function presetOf(control) {
  for (const [name, preset] of PRESETS) {
    if (sameControl(preset, control)) return name;
  }
  return "custom";
}

function durationText(seconds) {
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  if (seconds > 60) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${seconds} s`;
}

function controlText(control) {
  if (control === null) return "Untimed";
  if (control.kind === "move") return `${durationText(control.seconds)} per move`;
  const increment = control.increment ? ` + ${control.increment} s` : "";
  return `${durationText(control.initial)}${increment}`;
}

// What each clock shows before the game's clocks are told (yellow not here).
function fullTimeMs(control) {
  return 1000 * (control.kind === "move" ? control.seconds : control.initial);
}

// The custom form's control, or the reason it is not one.
function customControl() {
  const kind = dom.customForm.querySelector('input[name="custom-kind"]:checked')?.value;
  if (kind === "move") {
    const seconds = Number(dom.customSeconds.value);
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_CONTROL_SECONDS) {
      return { error: `Seconds per move: a whole number from 1 to ${MAX_CONTROL_SECONDS}.` };
    }
    return { control: { kind: "move", seconds } };
  }
  const minutes = Number(dom.customMinutes.value);
  const initial = Math.round(minutes * 60);
  if (!Number.isFinite(minutes) || initial < 1 || initial > MAX_CONTROL_SECONDS) {
    return { error: `Minutes per side: from 0.1 to ${MAX_CONTROL_SECONDS / 60}.` };
  }
  const increment = Number(dom.customIncrement.value || "0");
  if (!Number.isInteger(increment) || increment < 0 || increment > MAX_INCREMENT_SECONDS) {
    return { error: `Increment: a whole number of seconds from 0 to ${MAX_INCREMENT_SECONDS}.` };
  }
  return { control: { kind: "bank", initial, increment } };
}

function fillCustomForm(control) {
  if (control === null) return;
  const kind = control.kind === "move" ? "move" : "bank";
  const radio = dom.customForm.querySelector(`input[name="custom-kind"][value="${kind}"]`);
  radio.checked = true;
  if (kind === "move") {
    dom.customSeconds.value = String(control.seconds);
  } else {
    dom.customMinutes.value = String(Math.round((control.initial / 60) * 100) / 100);
    dom.customIncrement.value = String(control.increment ?? 0);
  }
}

// ---------------------------------------------------------------------------
// Board
// ---------------------------------------------------------------------------

// cells[column][row] -> element; row 0 is the bottom.
const cells = [];
const columns = [];
// The column that last had the focus, where the focus goes back to.
let lastColumn = 3;

function buildBoard() {
  for (let c = 0; c < COLUMNS; c++) {
    const column = document.createElement("div");
    column.className = "column";
    column.dataset.column = String(c);
    column.setAttribute("role", "button");
    column.setAttribute("tabindex", "0");
    column.setAttribute("aria-label", `Column ${c + 1}`);
    cells[c] = [];
    // Top row first in DOM order so the grid reads naturally top to bottom.
    for (let r = ROWS - 1; r >= 0; r--) {
      const cell = document.createElement("div");
      cell.className = "cell";
      cell.dataset.column = String(c);
      cell.dataset.row = String(r);
      cells[c][r] = cell;
      column.appendChild(cell);
    }
    columns.push(column);
    dom.board.appendChild(column);
  }
  dom.board.addEventListener("click", onBoardClick);
  dom.board.addEventListener("keydown", onBoardKeydown);
  dom.board.addEventListener("focusin", (event) => {
    const column = columnOf(event.target);
    if (column !== null) lastColumn = column;
  });
}

function columnOf(target) {
  const column = target instanceof Element ? target.closest(".column") : null;
  return column && dom.board.contains(column) ? Number(column.dataset.column) : null;
}

function onBoardClick(event) {
  const column = columnOf(event.target);
  if (column !== null) play(column);
}

function onBoardKeydown(event) {
  const column = columnOf(event.target);
  if (column === null) return;
  switch (event.key) {
    case "Enter":
    case " ":
      // Space would otherwise scroll the page.
      event.preventDefault();
      if (!event.repeat) play(column);
      break;
    case "ArrowLeft":
      event.preventDefault();
      focusColumn(column - 1);
      break;
    case "ArrowRight":
      event.preventDefault();
      focusColumn(column + 1);
      break;
    case "Home":
      event.preventDefault();
      focusColumn(0);
      break;
    case "End":
      event.preventDefault();
      focusColumn(COLUMNS - 1);
      break;
    default:
      break;
  }
}

function focusColumn(index) {
  const clamped = Math.max(0, Math.min(COLUMNS - 1, index));
  columns[clamped].focus();
}

function placeChecker(column, row, player, { animate }) {
  const cell = cells[column][row];
  cell.classList.remove("red", "yellow", "drop");
  cell.classList.add(player);
  cell.setAttribute("aria-label", `${capitalize(player)} checker`);
  if (animate) {
    // The checker falls from above the board: distance in cells.
    cell.style.setProperty("--drop", String(ROWS - row));
    // Force a reflow so re-adding the class restarts the animation.
    void cell.offsetWidth;
    cell.classList.add("drop");
  }
}

function clearBoard() {
  for (const column of cells) {
    for (const cell of column) {
      cell.classList.remove("red", "yellow", "drop", "win");
      cell.removeAttribute("aria-label");
    }
  }
}

function highlightWin(winCells) {
  if (!Array.isArray(winCells)) return;
  for (const pair of winCells) {
    if (!Array.isArray(pair)) continue;
    const [c, r] = pair;
    if (isIndex(c, COLUMNS) && isIndex(r, ROWS)) cells[c][r].classList.add("win");
  }
}

// ---------------------------------------------------------------------------
// What the page is doing
// ---------------------------------------------------------------------------

function phase() {
  if (state.refusal) return "failed";
  if (conn.status === "replaced") return "replaced";
  if (state.result) return "over";
  if (conn.lost) return "reconnecting";
  if (!state.inGame) return "connecting";
  if (state.role === "red" && state.present.yellow === undefined && !isBotGame()) return "waiting";
  return "playing";
}

// A player who is away, as the others see it (we never show ourselves away:
// our own `away` comes back in a replay, but here we are).
function awayPlayers() {
  return ["red", "yellow"].filter(
    (player) => player !== state.role && state.present[player] === false,
  );
}

function canClaim(player) {
  return (
    isPlayerRole() &&
    player === other(state.role) &&
    state.graceEnds[player] !== null &&
    secondsLeft(state.graceEnds[player]) === 0
  );
}

// The time control may be changed while the game waits for the friend and
// nothing has been played: then it is replaced by a new one.
function setupShown(current) {
  if (MODE !== "online" || state.role !== "red" || state.refusal || isBotGame()) return false;
  if (ui.replacing) return true;
  return current === "waiting" && !conn.catchingUp && state.moves.length === 0;
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

function render() {
  // A button that had the focus may go away with what it did (Accept, Yes,
  // resign, Play here...): the focus then goes back to the board.
  const focused = document.activeElement;
  const current = phase();
  renderStatus(current);
  renderNotice(current);
  renderAway(current);
  renderOffer(current);
  renderResult();
  renderBoardState(current);
  renderBadges();
  renderClocks();
  renderControls(current);
  renderRecord();
  renderSetup(current);
  // Once yellow's seat was taken the join link leads nowhere (the computer's
  // seat is taken from the start): the watch link stays.
  setHidden(dom.joinRow, state.present.yellow !== undefined || state.round > 1 || isBotGame());
  document.body.dataset.phase = current;
  document.body.dataset.role = state.role;
  document.body.dataset.mode = MODE;
  document.body.dataset.opponent = isBotGame() ? "computer" : "";
  // Whether events now are live (animated) or a catch-up: for tests and styles.
  document.body.dataset.live = String(conn.status === "open" && !conn.catchingUp);
  document.title = titleText(current);
  scheduleTick();
  if (focused instanceof HTMLElement && focused !== document.body && !isShown(focused)) {
    focusColumn(lastColumn);
  }
}

function isShown(element) {
  if (!element.isConnected || element.closest("[hidden]")) return false;
  return typeof element.checkVisibility === "function" ? element.checkVisibility() : true;
}

function isMyTurn(current) {
  if (MODE === "device") return current === "playing";
  return current === "playing" && state.turn === state.role;
}

function titleText(current) {
  if (MODE === "device" && current === "playing") {
    return `${capitalize(state.turn)} to play · Connect Four`;
  }
  return `${isMyTurn(current) ? "Your turn · " : ""}Connect Four`;
}

function roleText() {
  if (MODE === "device") return "Playing on this device.";
  if (state.role === "spectator") return "You are watching this game as a spectator.";
  return `You are ${state.role}.`;
}

function turnText() {
  // Red cannot play alone: the game really starts when yellow shows up.
  if (state.role === "red" && state.present.yellow === undefined && !isBotGame()) {
    return "Waiting for an opponent to join...";
  }
  if (!isPlayerRole()) return `${playerName(state.turn)} to play.`;
  return state.turn === state.role ? "Your turn." : `${playerName(state.turn)}'s turn.`;
}

function statusText(current) {
  switch (current) {
    case "failed":
      return state.refusal.headline;
    case "replaced":
      return REPLACED_TEXT;
    case "over":
      return "Game over.";
    case "reconnecting":
      return navigator.onLine ? "Reconnecting…" : "You are offline.";
    case "connecting":
      return "Connecting…";
    default:
      return turnText();
  }
}

function renderStatus(current) {
  // A refused init means we hold no seat: neither a role nor a turn applies.
  setText(dom.statusRole, current === "failed" ? "" : roleText());
  setText(dom.statusTurn, statusText(current));
  const thinking = botThinking(current);
  setHidden(dom.thinking, !thinking);
  if (thinking) dom.thinking.dataset.player = state.turn;
}

// The notice says what is wrong with the connection or the link, and offers
// the one thing to do about it.
function noticeContent(current) {
  if (current === "failed") {
    const refusal = state.refusal;
    return { text: refusal.detail, action: refusal.kind === "seat-taken" ? "watch" : "new-game" };
  }
  if (current === "replaced") {
    return {
      text: "Only one tab can hold a seat. Close the other one, or play here.",
      action: "play-here",
    };
  }
  if (!navigator.onLine && current !== "over") {
    const text = "You are offline. The game will continue when the network is back.";
    return { text, action: null };
  }
  if (current !== "reconnecting") return null;
  const text = `${conn.lostReason} Reconnecting (attempt ${conn.attempt})…`;
  if (conn.status !== "retrying") return { text, action: null };
  // The countdown is a timer of its own: in the text, it would be announced
  // again at every second.
  return { text, timer: `Next try in ${secondsLeft(conn.retryAt)} s.`, action: "retry" };
}

function renderNotice(current) {
  const content = noticeContent(current);
  setHidden(dom.notice, content === null);
  const action = content?.action ?? null;
  setText(dom.noticeText, content?.text ?? "");
  setText(dom.noticeTimer, content?.timer ?? "");
  setHidden(dom.watchGame, action !== "watch");
  setHidden(dom.playHere, action !== "play-here");
  setHidden(dom.retryNow, action !== "retry");
  setHidden(dom.noticeNewGame, action !== "new-game");
}

function renderAway(current) {
  // While we are not connected, what we last heard of the others is stale.
  const shown = current === "playing" || current === "waiting";
  const away = shown ? awayPlayers() : [];
  setHidden(dom.away, away.length === 0);
  for (const player of ["red", "yellow"]) renderAwayLine(player, away.includes(player));
  setHidden(dom.claim, !away.some(canClaim));
}

function renderAwayLine(player, shown) {
  const line = dom.awayLines[player];
  setHidden(line, !shown);
  if (!shown) return;
  const name = playerName(player);
  const deadline = state.graceEnds[player];
  const seconds = deadline === null ? 0 : secondsLeft(deadline);
  let text;
  if (seconds > 0) {
    text = `${name} is away, reconnecting...`;
  } else if (canClaim(player)) {
    text = `${name} has not come back. You can claim the win.`;
  } else {
    text = `${name} has not come back. ${playerName(other(player))} may claim the win.`;
  }
  setText(line.querySelector(".away-text"), text);
  setText(line.querySelector(".countdown"), seconds > 0 ? formatClock(seconds) : "");
}

// A pending offer in words, as this page's person sees it; `answer` when
// they are the one to accept or decline it.
function offerWords(offer) {
  const maker = playerName(offer.player);
  const noun = offer.kind === "draw" ? "a draw" : "a rematch";
  if (offer.player === state.role) {
    return { text: `You offered ${noun}. Waiting for ${playerName(other(offer.player))}'s answer…` };
  }
  return { text: `${maker} offers ${noun}.`, answer: isPlayerRole() };
}

// During the game: a draw offer (with Accept and Decline for the one it is
// made to), what became of one, or that a new game of the match began.
function renderOffer(current) {
  const during = MODE === "online" && (current === "playing" || current === "waiting");
  const offer = during && state.offer?.kind === "draw" ? state.offer : null;
  const note = during && state.note && state.note.kind !== "rematch" ? state.note : null;
  let words = null;
  if (offer) {
    words = offerWords(offer);
  } else if (note?.kind === "round") {
    words = {
      text: isPlayerRole()
        ? `Game ${state.round}: you play ${state.role} now.`
        : `Game ${state.round} begins: the colours are swapped.`,
    };
  } else if (note) {
    words = { text: note.text };
  }
  setHidden(dom.offer, words === null);
  setText(dom.offerText, words?.text ?? "");
  setHidden(dom.offerActions, !words?.answer);
  const disabled = current !== "playing";
  dom.offerAccept.disabled = disabled;
  dom.offerDecline.disabled = disabled;
}

// How the game ended, in words: { title, detail, tone }.
function resultWords(result) {
  const { winner, reason } = result;
  if (reason === "aborted") {
    const by = isPlayer(result.by) ? playerName(result.by) : "A player";
    return { title: "Game aborted", detail: `${by} aborted the game — no result.`, tone: "draw" };
  }
  if (winner === null) {
    const detail = reason === "agreed" ? "Draw agreed." : "The board is full.";
    return { title: "Draw!", detail, tone: "draw" };
  }
  const name = playerName(winner);
  const loser = playerName(other(winner));
  const mine = isPlayerRole();
  let detail;
  switch (reason) {
    case "resign":
      detail = `${loser} resigned — ${name} wins.`;
      break;
    case "time":
      detail = `${loser} ran out of time — ${name} wins.`;
      break;
    case "claim":
      // A claimed win is the opponent's absence, not four in a row.
      detail = mine && winner !== state.role
        ? `${name} claimed the win while you were away.`
        : `${loser} did not come back.`;
      break;
    default:
      detail = `Four in a row — ${name} wins.`;
  }
  if (!mine) return { title: `${name} wins!`, detail, tone: winner };
  if (winner === state.role) return { title: "You win!", detail, tone: "won" };
  const title = state.bots[winner] ? "The computer wins." : "You lose.";
  return { title, detail, tone: "lost" };
}

function renderResult() {
  const result = state.result;
  setHidden(dom.banner, result === null);
  if (!result) return;
  const words = resultWords(result);
  setText(dom.bannerTitle, words.title);
  setText(dom.bannerDetail, words.detail);
  setClass(dom.banner, `banner banner-${words.tone}`);
  renderRematch();
}

// After the game: a rematch, offered by either player; the other one
// accepts or declines. Spectators see the offer in words.
function renderRematch() {
  const online = MODE === "online";
  const offer = online && state.offer?.kind === "rematch" ? state.offer : null;
  const note = online && state.note?.kind === "rematch" ? state.note : null;
  // Nobody to play again with: red's game aborted before anyone joined.
  const opponent = isPlayerRole() && state.present[other(state.role)] !== undefined;
  let words = null;
  if (offer) {
    words = offerWords(offer);
  } else if (note) {
    words = { text: note.text };
  }
  setHidden(dom.rematchText, words === null);
  setText(dom.rematchText, words?.text ?? "");
  setHidden(dom.rematch, !(online && opponent && offer === null));
  setHidden(dom.rematchAccept, !words?.answer);
  setHidden(dom.rematchDecline, !words?.answer);
  setHidden(dom.playAgain, online);
  setText(dom.bannerNewGame, online ? "New game" : "Play online");
  const disabled = conn.status !== "open";
  for (const button of [dom.rematch, dom.rematchAccept, dom.rematchDecline]) {
    button.disabled = disabled;
  }
}

function renderBoardState(current) {
  const disabled = current === "failed" || current === "replaced" || current === "reconnecting";
  const myTurn = isMyTurn(current);
  dom.board.classList.toggle("disabled", disabled);
  dom.board.classList.toggle("my-turn", myTurn);
  dom.board.classList.toggle("turn-red", state.turn === "red");
  dom.board.classList.toggle("turn-yellow", state.turn === "yellow");
  dom.board.dataset.turn = state.result ? "" : state.turn;
  for (const column of columns) {
    column.setAttribute("aria-disabled", String(disabled));
  }
}

function renderBadges() {
  // A refused init means we hold no seat: a colour badge would mislead.
  setHidden(dom.badge, Boolean(state.refusal));
  const label = {
    spectator: "Spectator",
    device: "On this device",
  }[state.role] ?? capitalize(state.role);
  setText(dom.badge, label);
  setClass(dom.badge, `badge badge-${state.role}`);
  dom.badge.title = isPlayerRole() ? `You play ${state.role}` : "";
  const watching = MODE === "online" && !state.refusal && state.watchers > 0;
  setHidden(dom.watchers, !watching);
  setText(dom.watchersText, `${state.watchers} watching`);
  setHidden(dom.round, state.round <= 1);
  setText(dom.round, `Game ${state.round}`);
  // Who the computer is, once the server has said (a person plays each seat
  // it does not name).
  const bot = state.bots.red ?? state.bots.yellow;
  setHidden(dom.opponent, !bot || Boolean(state.refusal));
  if (bot) {
    const versus = isPlayerRole()
      ? `vs ${botName(bot)}`
      : `${playerName("red")} vs ${playerName("yellow")}`;
    setText(dom.opponent, versus);
  }
}

// Each clock, as it stands now: the running one counts down from the moment
// its value was told.
function clockNow() {
  if (state.clock) {
    const { red, yellow, at } = state.clock;
    const running = state.result ? null : state.clock.running;
    const spent = running ? performance.now() - at : 0;
    return {
      red: running === "red" ? red - spent : red,
      yellow: running === "yellow" ? yellow - spent : yellow,
      running,
    };
  }
  const full = fullTimeMs(state.control);
  return { red: full, yellow: full, running: null };
}

function renderClocks() {
  const shown = MODE === "online" && state.control !== null && !state.refusal;
  setHidden(dom.clocks, !shown);
  if (!shown) {
    scheduleClockTick(false);
    return;
  }
  const now = clockNow();
  for (const player of ["red", "yellow"]) {
    const element = dom.clock[player];
    const left = Math.max(0, now[player]);
    const classes = ["clock"];
    if (now.running === player) classes.push("running");
    // Low time matters on the clock that runs (an idle one under 10 s
    // shows its tenths anyway: a per-move control would be red all along).
    if (left < LOW_TIME_MS && (now.running === player || left === 0)) classes.push("low");
    if (left === 0) classes.push("flagged");
    if (player === state.role) classes.push("mine");
    setClass(element, classes.join(" "));
    setText(element.querySelector(".clock-time"), formatTime(left));
    const you = player === state.role ? " (you)" : "";
    setText(element.querySelector(".clock-name"), `${playerName(player)}${you}`);
  }
  setText(dom.clockControl, controlText(state.control));
  scheduleClockTick(now.running !== null);
}

function scheduleClockTick(running) {
  if (running && !timers.clock) {
    timers.clock = setInterval(renderClocks, CLOCK_TICK_MS);
  } else if (!running && timers.clock) {
    clearInterval(timers.clock);
    timers.clock = 0;
  }
}

// A player's actions while the game is on: offer a draw, resign (asked
// first), or abort instead while either player has not moved yet.
function renderControls(current) {
  const shown = MODE === "online" && isPlayerRole() && current === "playing";
  setHidden(dom.controls, !shown);
  if (!shown) {
    ui.confirmingResign = false;
    return;
  }
  const abortable = state.moves.length < 2;
  setHidden(dom.abort, !abortable);
  setHidden(dom.resign, abortable);
  const offer = state.offer?.kind === "draw" ? state.offer : null;
  const mine = offer !== null && offer.player === state.role;
  // Their offer is answered in the offer's own notice.
  setHidden(dom.offerDraw, offer !== null && !mine);
  dom.offerDraw.disabled = mine;
  setText(dom.offerDraw, mine ? "Draw offered" : "Offer draw");
  const confirming = ui.confirmingResign && !abortable;
  setHidden(dom.controlsMain, confirming);
  setHidden(dom.resignConfirm, !confirming);
}

function renderRecord() {
  const text = state.record ?? recordOf(state.moves);
  setHidden(dom.record, text === "");
  setText(dom.recordText, text);
}

function renderSetup(current) {
  const shown = setupShown(current);
  setHidden(dom.setup, !shown);
  if (!shown) return;
  const ready = current === "waiting" && !ui.replacing;
  const chosen = presetOf(state.control);
  for (const button of dom.presets) {
    button.setAttribute("aria-pressed", String(button.dataset.preset === chosen));
    button.disabled = !ready;
  }
  dom.customToggle.setAttribute("aria-pressed", String(chosen === "custom"));
  dom.customToggle.setAttribute("aria-expanded", String(ui.customOpen));
  dom.customToggle.disabled = !ready;
  setHidden(dom.customForm, !ui.customOpen);
  dom.customStart.disabled = !ready;
  for (const kind of ["move", "bank"]) {
    const checked = dom.customForm.querySelector(`input[name="custom-kind"][value="${kind}"]`);
    const fields = dom.customForm.querySelector(`.custom-fields[data-kind="${kind}"]`);
    fields.classList.toggle("inactive", !checked.checked);
    for (const input of fields.querySelectorAll("input")) input.disabled = !checked.checked;
  }
  dom.botToggle.setAttribute("aria-expanded", String(ui.botOpen));
  dom.botToggle.disabled = !ready;
  setHidden(dom.botForm, !ui.botOpen);
  dom.botStart.disabled = !ready;
  setText(dom.botControl, `Time control: ${controlText(state.control).toLowerCase()}`);
}

// Countdowns redraw the page while they run, and only then.
function scheduleTick() {
  const running =
    conn.status === "retrying" ||
    awayPlayers().some((p) => state.graceEnds[p] !== null && secondsLeft(state.graceEnds[p]) > 0);
  if (running && !timers.tick) {
    timers.tick = setInterval(render, TICK_MS);
  } else if (!running && timers.tick) {
    clearInterval(timers.tick);
    timers.tick = 0;
  }
}

// ---------------------------------------------------------------------------
// Errors: refusals of an action, shown for a moment
// ---------------------------------------------------------------------------

function showError(message) {
  clearTimeout(timers.error);
  dom.error.textContent = message;
  dom.error.hidden = false;
  timers.error = setTimeout(clearError, ERROR_TIMEOUT_MS);
}

function clearError() {
  clearTimeout(timers.error);
  dom.error.textContent = "";
  dom.error.hidden = true;
}

// ---------------------------------------------------------------------------
// Server events
// ---------------------------------------------------------------------------

function markAway(player, graceSeconds) {
  state.present[player] = false;
  const grace = typeof graceSeconds === "number" && graceSeconds > 0 ? graceSeconds : 0;
  // The grace is counted from receipt: our clock and the server's need not agree.
  state.graceEnds[player] = performance.now() + grace * 1000;
}

function markHere(player) {
  state.present[player] = true;
  state.graceEnds[player] = null;
}

// The game is over (a draw offer with it; a rematch offer comes after).
function setResult(result, winCells = [], record = undefined) {
  state.result = result;
  state.offer = null;
  if (state.note?.kind !== "rematch") state.note = null;
  if (typeof record === "string" && /^[1-7]*$/.test(record)) state.record = record;
  ui.confirmingResign = false;
  highlightWin(winCells);
}

// A new game of the match, or a game replaced, starts from nothing.
function resetGame() {
  clearBoard();
  state.turn = "red";
  state.moves = [];
  state.record = null;
  state.result = null;
  state.offer = null;
  state.note = null;
  state.clock = null;
  ui.confirmingResign = false;
}

// The clocks as an event tells them, from now.
function applyClock(clock) {
  if (!clock || typeof clock !== "object") return;
  const { red, yellow, running } = clock;
  if (!Number.isFinite(red) || !Number.isFinite(yellow)) return;
  state.clock = {
    red: Math.max(0, red),
    yellow: Math.max(0, yellow),
    running: isPlayer(running) ? running : null,
    at: performance.now(),
  };
}

function applyMove(player, column, row, animate) {
  placeChecker(column, row, player, { animate });
  state.moves.push(column);
  state.turn = other(player);
}

// The init refusals, by code: each is final for this page (nothing is retried).
function refuse(kind, headline, detail) {
  state.refusal = { kind, headline, detail };
  conn.status = "stopped";
  conn.lost = false;
  clearTimeout(conn.retryTimer);
}

function forgetSeat() {
  state.token = null;
  clearSession();
}

function isOfferKind(kind) {
  return kind === "draw" || kind === "rematch";
}

// What became of an offer, as `state.role` sees it.
function declinedText(kind, decliner) {
  const noun = kind === "draw" ? "draw offer" : "rematch";
  if (decliner === state.role) return `You declined the ${noun}.`;
  const name = playerName(decliner);
  return other(decliner) === state.role
    ? `${name} declined your ${noun}.`
    : `${name} declined the ${noun}.`;
}

const handlers = {
  // To the creator, again on each resume: the keys for the invite links.
  init(event) {
    if (typeof event.join !== "string" || typeof event.watch !== "string") return;
    state.keys = { join: event.join, watch: event.watch };
    showLinks(state.keys);
  },

  // Our seat, on arrival and after each rematch (a new colour, and a new
  // token that replaces the old one; a seat without a token keeps ours).
  seat(event) {
    if (!isPlayer(event.player)) return;
    const token = typeof event.token === "string" ? event.token : state.token;
    if (typeof token !== "string") return;
    state.role = event.player;
    state.token = token;
    state.control = parseControl(event.control);
    state.inGame = true;
    ui.replacing = false;
    saveSession({ token, player: event.player });
    expectCatchUpTo(event.v);
  },

  // A spectator's counterpart of `seat`: how far the catch-up goes.
  watching(event) {
    state.control = parseControl(event.control);
    expectCatchUpTo(event.v);
  },

  play(event) {
    const { player, column, row } = event;
    if (!isPlayer(player) || !isIndex(column, COLUMNS) || !isIndex(row, ROWS)) return;
    // Moves of a replay or a resume are not animated: they happened earlier
    // (the last one of the catch-up too: the catch-up ends after it).
    applyMove(player, column, row, !conn.catchingUp);
    // The first move of a new game, or the maker of a declined draw offer
    // playing on: the note has been read.
    if (state.note && (state.note.kind === "round" || state.note.until === player)) {
      state.note = null;
    }
  },

  win(event) {
    if (!isPlayer(event.player)) return;
    const reason = typeof event.reason === "string" ? event.reason : "four";
    setResult({ winner: event.player, reason, by: null }, event.cells, event.record);
  },

  draw(event) {
    const reason = typeof event.reason === "string" ? event.reason : "full";
    setResult({ winner: null, reason, by: null }, [], event.record);
  },

  aborted(event) {
    const by = isPlayer(event.player) ? event.player : null;
    setResult({ winner: null, reason: "aborted", by }, [], event.record);
  },

  joined(event) {
    if (!isPlayer(event.player)) return;
    markHere(event.player);
    // The computer takes its seat as the game is created.
    if (typeof event.bot === "string" && event.bot) state.bots[event.player] = event.bot;
  },

  away(event) {
    // Our own drop comes back in a resume's catch-up; we are here, though.
    if (isPlayer(event.player) && event.player !== state.role) markAway(event.player, event.grace);
  },

  offer(event) {
    if (!isOfferKind(event.offer) || !isPlayer(event.player)) return;
    state.offer = { kind: event.offer, player: event.player };
    state.note = null;
  },

  // The other player said no (for a draw: maybe by playing on, the `play`
  // follows).
  declined(event) {
    if (!isOfferKind(event.offer) || !isPlayer(event.player)) return;
    state.offer = null;
    state.note = {
      kind: event.offer,
      text: declinedText(event.offer, event.player),
      // The maker's next move clears it.
      until: other(event.player),
    };
  },

  // A rematch offer lapsed: its maker went away before it was answered.
  withdrawn(event) {
    if (!isOfferKind(event.offer) || !isPlayer(event.player)) return;
    state.offer = null;
    const text = event.player === state.role
      ? "Your rematch offer lapsed while you were away."
      : `${playerName(event.player)} left: the rematch offer was withdrawn.`;
    state.note = { kind: event.offer, text, until: null };
  },

  // The next game of the match: an empty board, the colours swapped. Each
  // player's new colour and token come next, in a `seat`; a spectator just
  // watches the new game. (In a catch-up, the `seat` that came first holds
  // our colour now.)
  rematch(event) {
    resetGame();
    // The computer changes colour with everyone.
    state.bots = { red: state.bots.yellow, yellow: state.bots.red };
    state.round = Number.isInteger(event.round) && event.round > 1 ? event.round : state.round + 1;
    // In words once our new colour is known (the `seat` that follows).
    state.note = { kind: "round", text: "", until: null };
  },

  // Not in the log: the latest count is the truth.
  watchers(event) {
    if (Number.isInteger(event.count) && event.count >= 0) state.watchers = event.count;
  },

  // Not in the log: the clocks as they stand now, after a catch-up whose
  // events carried them as they stood then (applied with every event).
  clock() {},

  // The whole game at once, for a resume that cannot be caught up event by event.
  sync(event) {
    resetGame();
    for (const move of Array.isArray(event.moves) ? event.moves : []) {
      const { player, column, row } = move ?? {};
      if (!isPlayer(player) || !isIndex(column, COLUMNS) || !isIndex(row, ROWS)) continue;
      applyMove(player, column, row, false);
    }
    for (const player of ["red", "yellow"]) applySeatView(player, event[player]);
    state.round = Number.isInteger(event.round) && event.round > 0 ? event.round : 1;
    state.control = parseControl(event.control);
    const result = event.result;
    if (result && typeof result === "object" && (result.winner === null || isPlayer(result.winner))) {
      const reason = typeof result.reason === "string" ? result.reason : "four";
      const by = isPlayer(result.by) ? result.by : null;
      setResult({ winner: result.winner, reason, by }, result.cells, result.record);
    }
    const offer = event.offer;
    if (offer && isOfferKind(offer.offer) && isPlayer(offer.player)) {
      state.offer = { kind: offer.offer, player: offer.player };
    }
  },

  error(event) {
    const message = typeof event.message === "string" && event.message
      ? event.message
      : "The server refused that.";
    const fatal = FATAL.get(event.code);
    if (fatal === "seat-taken") {
      refuse("seat-taken", SEAT_TAKEN_TEXT, "You can still watch it.");
    } else if (fatal === "ended") {
      // Whatever the token or key was for is gone: a reload must not try it again.
      forgetSeat();
      refuse("ended", ENDED_TEXT, "Start a new game, or ask for a new link.");
      detachSocket();
    } else if (fatal === "failed") {
      refuse("failed", "Could not open this game.", message);
      detachSocket();
    } else {
      // The last action was refused, and nothing changed (a code this page
      // does not know yet is taken as one of those).
      showError(message);
    }
  },
};

function applySeatView(player, seat) {
  const seatState = seat && typeof seat === "object" ? seat.state : undefined;
  // The computer's seat says so (`bot`); the sync is the whole game's truth.
  state.bots[player] = seatState === "here" && typeof seat.bot === "string" && seat.bot
    ? seat.bot
    : null;
  if (seatState === "here") {
    markHere(player);
  } else if (seatState === "away" && player !== state.role) {
    markAway(player, seat.grace);
  } else if (seatState === "vacant") {
    state.present[player] = undefined;
    state.graceEnds[player] = null;
  }
}

// `seat` and `watching` are not events of the log: their `v` is the version
// the catch-up after them reaches, not a place of their own.
const CATCH_UP_MARKERS = new Set(["seat", "watching"]);

function onMessage(messageEvent) {
  // Whatever arrives proves the connection alive, a `pong` or anything else.
  heard();
  let event;
  try {
    event = JSON.parse(messageEvent.data);
  } catch {
    return; // Not JSON: nothing we can do with it.
  }
  if (event === null || typeof event !== "object" || Array.isArray(event)) return;
  if (MODE === "device") {
    onDeviceEvent(event);
    render();
    return;
  }
  // Unknown types (`pong` among them: heard() was all it is for) are ignored
  // on purpose: the server may add new ones.
  if (!Object.hasOwn(handlers, event.type)) return;
  const logged = Number.isInteger(event.v) && !CATCH_UP_MARKERS.has(event.type);
  if (logged && !acceptVersion(event)) return;
  // A new event of the game makes an old refusal moot (a count or a clock does not).
  if (logged) clearError();
  if (event.type !== "error" && event.type !== "init") state.inGame = true;
  handlers[event.type](event);
  // Every event that carries the clocks tells them as of its sending.
  applyClock(event.clock);
  if (logged) state.v = event.v;
  checkCaughtUp();
  render();
}

// Each event of the log is applied once, in order. A `sync` replaces
// everything, whatever came before.
function acceptVersion(event) {
  if (event.type === "sync") return true;
  if (event.v <= state.v) return false; // applied already (a resume overlaps)
  if (event.v === state.v + 1) return true;
  // A gap: something was missed. Resume from what we hold, without reloading.
  resync();
  return false;
}

// ---------------------------------------------------------------------------
// A game on this device (hot-seat): the tutorial's part 1
// ---------------------------------------------------------------------------

function loadDeviceColumns() {
  const columns = loadSession()?.columns;
  if (!Array.isArray(columns) || columns.length > COLUMNS * ROWS) return [];
  return columns.every((column) => isIndex(column, COLUMNS)) ? columns : [];
}

function saveDeviceColumns() {
  saveSession({ columns: state.moves });
}

// A new connection is a new game on the server: play the columns played so
// far again, in order, and rebuild the board from its answers.
function startDeviceGame() {
  const replay = loadDeviceColumns();
  device.replay = replay;
  device.answered = 0;
  resetGame();
  state.inGame = true;
  conn.catchingUp = true;
  for (const column of replay) send({ type: "play", column });
  if (replay.length === 0) endCatchUp();
}

// One more column of the replay answered (a move, or a refusal if what was
// stored was not a game).
function deviceAnswered() {
  device.answered += 1;
  if (device.answered >= device.replay.length) {
    endCatchUp();
    saveDeviceColumns();
  }
}

function onDeviceEvent(event) {
  const replaying = conn.catchingUp;
  switch (event.type) {
    case "play": {
      const { player, column, row } = event;
      if (!isPlayer(player) || !isIndex(column, COLUMNS) || !isIndex(row, ROWS)) return;
      clearError();
      applyMove(player, column, row, !replaying);
      if (replaying) {
        deviceAnswered();
      } else {
        saveDeviceColumns();
      }
      break;
    }
    case "win":
      if (isPlayer(event.player)) setResult({ winner: event.player, reason: "four", by: null }, event.cells);
      break;
    case "draw":
      setResult({ winner: null, reason: "full", by: null });
      break;
    case "error":
      // No codes here: the only refusals are of a move ("This slot is full.").
      if (replaying) {
        deviceAnswered();
      } else {
        showError(typeof event.message === "string" ? event.message : "The server refused that.");
      }
      break;
    default:
      break; // `pong`: heard() was all it is for.
  }
}

// "Play again": a new connection is a new game.
function playAgain() {
  clearSession();
  detachSocket(1000);
  clearError();
  resetGame();
  state.inGame = false;
  conn.attempt = 0;
  conn.lost = false;
  connect();
  lastColumn = 3;
  focusColumn(lastColumn);
}

// ---------------------------------------------------------------------------
// WebSocket: connecting, resuming, backing off
// ---------------------------------------------------------------------------

function initMessage() {
  if (state.token) return { type: "init", token: state.token, v: state.v };
  if (state.role === "spectator") return { type: "init", watch: state.watchKey, v: state.v };
  // A new seat (create or join): the whole log, from the start.
  if (params.has("join")) return { type: "init", join: params.get("join"), v: 0 };
  const message = { type: "init", v: 0 };
  if (state.createBot !== null) {
    message.bot = state.createBot.level;
    // Red is the default: the clean message says only yellow.
    if (state.createBot.color === "yellow") message.color = "yellow";
  }
  if (state.create !== null) message.clock = state.create;
  return message;
}

function send(message) {
  const socket = conn.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN || conn.status !== "open") return false;
  socket.send(JSON.stringify(message));
  return true;
}

function connect() {
  clearTimeout(conn.retryTimer);
  detachSocket(RECONNECTING);
  conn.status = "connecting";
  const url = (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + "/";
  let socket;
  try {
    socket = new WebSocket(url);
  } catch {
    connectionLost(1006);
    return;
  }
  conn.socket = socket;
  // Every listener checks that its socket is still ours: a socket we let go
  // (a resync, a dead connection) may still report its end later.
  socket.addEventListener("open", () => {
    if (socket === conn.socket) onOpen();
  });
  socket.addEventListener("message", (event) => {
    if (socket === conn.socket) onMessage(event);
  });
  // "error" is always followed by "close", which does the reporting.
  socket.addEventListener("close", (event) => {
    if (socket === conn.socket) onClose(event);
  });
  conn.openTimer = setTimeout(() => {
    if (socket === conn.socket && socket.readyState === WebSocket.CONNECTING) giveUp(socket);
  }, OPEN_TIMEOUT_MS);
  render();
}

function onOpen() {
  clearTimeout(conn.openTimer);
  conn.status = "open";
  conn.pingTimer = setInterval(probe, PING_INTERVAL_MS);
  if (MODE === "device") {
    startDeviceGame();
  } else {
    startCatchUp();
    send(initMessage());
  }
  render();
}

// Called before each init: until the server says how far the catch-up goes
// (`seat`, `watching`), what arrives is history, not live.
function startCatchUp() {
  conn.catchingUp = true;
  conn.catchUpTo = null;
}

// `seat` and `watching` carry the log's version as the server sends them:
// the events up to it are the catch-up. Without a `v` (a server that does
// not send it) there is no end to wait for: what follows is taken as live.
function expectCatchUpTo(v) {
  if (conn.catchingUp) conn.catchUpTo = Number.isInteger(v) ? v : state.v;
}

// After each message: the catch-up is over once its last version is applied,
// at once if the page held it already (nothing missed), or by a `sync`.
function checkCaughtUp() {
  if (conn.catchingUp && conn.catchUpTo !== null && state.v >= conn.catchUpTo) endCatchUp();
}

function endCatchUp() {
  conn.catchingUp = false;
  conn.catchUpTo = null;
  if (conn.status === "open" && !state.refusal) {
    // A successful (re)connection: the next loss starts the backoff over.
    conn.attempt = 0;
    conn.lost = false;
  }
}

// Stops everything that belonged to the current socket: its catch-up and its
// liveness timers.
function forgetConnection() {
  clearTimeout(conn.openTimer);
  clearInterval(conn.pingTimer);
  clearTimeout(conn.pongTimer);
  conn.openTimer = conn.pingTimer = conn.pongTimer = 0;
  conn.catchingUp = false;
  conn.catchUpTo = null;
}

// Lets go of the current socket (its late events are ignored) and closes it:
// with RECONNECTING when a new one follows at once.
function detachSocket(code = 1000) {
  const socket = conn.socket;
  conn.socket = null;
  forgetConnection();
  if (socket && socket.readyState <= WebSocket.OPEN) {
    try {
      socket.close(code);
    } catch {
      // Already closing.
    }
  }
}

function onClose(event) {
  conn.socket = null;
  forgetConnection();
  if (state.unloading) {
    // Maybe the page goes into the back/forward cache; deal with it on return.
    conn.pendingClose = event.code;
    return;
  }
  connectionLost(event.code);
}

// `reason` says why, when the close code cannot (a socket we gave up on).
function connectionLost(code, reason = "") {
  if (code === SEAT_REPLACED && MODE === "online") {
    // Another tab took the seat: coming back by ourselves would take it back,
    // and the two tabs would fight. The person chooses ("Play here").
    conn.status = "replaced";
    conn.lost = false;
  } else if (state.refusal || state.result) {
    // Nothing to go back to: a refused link, or a finished game.
    conn.status = "stopped";
    conn.lost = false;
  } else {
    conn.lost = true;
    conn.lostReason = reason || (code === 1001
      ? "The server is shutting down."
      : state.inGame ? "Connection lost." : "Could not reach the server.");
    scheduleRetry();
  }
  render();
}

function scheduleRetry() {
  const ceiling = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.min(conn.attempt, 20));
  const delay = Math.random() * ceiling;
  conn.attempt += 1;
  conn.status = "retrying";
  conn.retryAt = performance.now() + delay;
  clearTimeout(conn.retryTimer);
  conn.retryTimer = setTimeout(connect, delay);
}

// Missed events: start again from the last one applied, at once.
function resync() {
  conn.lost = true;
  conn.lostReason = "Catching up.";
  conn.attempt += 1;
  connect();
}

function retryNow() {
  if (conn.status === "retrying") connect();
}

// ---------------------------------------------------------------------------
// Liveness: is the open socket still connected to anything?
// ---------------------------------------------------------------------------

// Asks the server for a sign of life, unless a question is already waiting
// for its answer (its deadline stands: asking again must not push it back).
function probe() {
  if (conn.pongTimer || !send({ type: "ping" })) return;
  const socket = conn.socket;
  conn.pongTimer = setTimeout(() => giveUp(socket, "The connection stopped answering."),
    PONG_TIMEOUT_MS);
}

// Something arrived on the socket: it is alive, whatever was asked.
function heard() {
  clearTimeout(conn.pongTimer);
  conn.pongTimer = 0;
}

// No answer, or a handshake that never completed: the socket is dead but
// does not know it. Let it go and resume on a new one, with the backoff (a
// server that is overloaded rather than gone is not hammered).
function giveUp(socket, reason = "") {
  if (socket !== conn.socket) return;
  detachSocket(RECONNECTING);
  connectionLost(1006, reason);
}

// Something happened that often kills a connection silently: the network
// came back (maybe another one), the page is looked at again, the computer
// woke up. A waiting retry goes at once; an open socket is asked now rather
// than at the next ping. (The seat is not taken afresh: that would cost the
// server a resume for every healthy socket.)
function checkConnection() {
  if (conn.status === "retrying") {
    connect();
  } else {
    probe();
  }
  render();
}

window.addEventListener("online", checkConnection);
window.addEventListener("offline", render);

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") checkConnection();
});

function watchForSleep() {
  let last = { time: Date.now(), visible: document.visibilityState === "visible" };
  setInterval(() => {
    const now = { time: Date.now(), visible: document.visibilityState === "visible" };
    // Hidden pages have their timers slowed down: only a gap between two
    // checks of a visible page means that the computer slept.
    const slept = last.visible && now.visible && now.time - last.time > SLEEP_GAP_MS;
    last = now;
    if (slept) checkConnection();
  }, SLEEP_CHECK_MS);
}

window.addEventListener("pagehide", () => {
  state.unloading = true;
});

window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  state.unloading = false;
  if (conn.pendingClose !== null) {
    const code = conn.pendingClose;
    conn.pendingClose = null;
    connectionLost(code);
  } else {
    // Back from the back/forward cache with its socket: is it still alive?
    checkConnection();
  }
});

// ---------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------

function notConnectedText() {
  return navigator.onLine ? "Not connected yet: reconnecting…" : "You are offline.";
}

// Sends an action to the server, which decides (and refuses in words).
function act(message) {
  const current = phase();
  if (current === "failed") {
    showError(state.refusal.headline);
    return false;
  }
  if (current === "replaced") {
    showError(REPLACED_TEXT);
    return false;
  }
  if (!send(message)) {
    showError(notConnectedText());
    return false;
  }
  return true;
}

function play(column) {
  // Spectators and out-of-turn clicks are still sent: the server's answer
  // ("Spectators cannot play.", "It isn't your turn.") is the one shown.
  act({ type: "play", column });
}

function claim() {
  // The server decides; too early, it says how long is left.
  act({ type: "claim" });
}

function offerDraw() {
  act({ type: "offer", offer: "draw" });
}

function answerOffer(kind, accept) {
  act({ type: accept ? "accept" : "decline", offer: kind });
}

function offerRematch() {
  act({ type: "offer", offer: "rematch" });
}

function abortGame() {
  act({ type: "abort" });
}

function askResign() {
  ui.confirmingResign = true;
  render();
  dom.resignCancel.focus();
}

function cancelResign() {
  ui.confirmingResign = false;
  render();
  dom.resign.focus();
}

function resign() {
  ui.confirmingResign = false;
  act({ type: "resign" });
  render();
}

// A join link whose seat is taken can still show the game: the join key
// works as a watch key.
function watchInstead() {
  state.role = "spectator";
  state.watchKey = params.get("join");
  state.refusal = null;
  saveSession({ role: "spectator" });
  if (conn.socket && conn.socket.readyState === WebSocket.OPEN) {
    conn.status = "open";
    startCatchUp();
    send(initMessage());
  } else {
    connect();
  }
  render();
}

// Takes the seat back from the tab that took it over.
function playHere() {
  conn.attempt = 0;
  conn.lost = true;
  conn.lostReason = "Taking the seat back.";
  connect();
}

// Whether the waiting game may be replaced now (nothing played, nobody else
// here, not being replaced already).
function replaceable() {
  return phase() === "waiting" && setupShown("waiting") && !ui.replacing;
}

// The waiting game is replaced by a new one under `control` (null: untimed),
// against the computer if `bot` ({ level, color }) is given: it is called
// off, its socket closed and its token forgotten, and the new game comes
// with new links. A game against the computer has its own address (and its
// own storage entry), so that a reload resumes it.
function replaceGame(control, bot = null) {
  if (!replaceable()) return;
  if (bot === null && sameControl(control, state.control)) return;
  send({ type: "abort" });
  detachSocket(1000);
  forgetSeat();
  resetGame();
  state.v = 0;
  state.keys = null;
  state.inGame = false;
  state.watchers = 0;
  state.present = { red: undefined, yellow: undefined };
  state.graceEnds = { red: null, yellow: null };
  state.bots = { red: null, yellow: null };
  state.control = control;
  state.create = control;
  if (bot !== null) {
    state.createBot = bot;
    state.role = bot.color;
    ui.botOpen = false;
    ui.customOpen = false;
    here = botSearch(bot);
    clearSession();
    history.replaceState(history.state, "", `/${here}`);
  } else {
    ui.replacing = true;
  }
  dom.links.hidden = true;
  conn.attempt = 0;
  conn.lost = false;
  connect();
}

function onPresetClick(event) {
  const button = event.currentTarget;
  ui.customOpen = false;
  dom.customError.textContent = "";
  replaceGame(PRESETS.get(button.dataset.preset) ?? null);
  render();
}

function onCustomToggle() {
  ui.customOpen = !ui.customOpen;
  if (ui.customOpen) {
    if (presetOf(state.control) === "custom") fillCustomForm(state.control);
    render();
    dom.customForm.querySelector('input[name="custom-kind"]:checked').focus();
  } else {
    dom.customError.textContent = "";
    render();
  }
}

function onCustomSubmit(event) {
  event.preventDefault();
  const { control, error } = customControl();
  dom.customError.textContent = error ?? "";
  if (!control) return;
  // The form closes: the focus goes back to the button that opened it.
  ui.customOpen = false;
  dom.customToggle.focus();
  if (!sameControl(control, state.control)) replaceGame(control);
  render();
}

// "Play the computer" opens its form (level, colour), and closes it.
function onBotToggle() {
  ui.botOpen = !ui.botOpen;
  if (ui.botOpen) {
    render();
    dom.botForm.querySelector('input[name="bot-level"]:checked')?.focus();
  } else {
    render();
  }
}

// Starts the game against the computer chosen in the form, with the time
// control chosen above, in place of the waiting game.
function onBotSubmit(event) {
  event.preventDefault();
  const level = dom.botForm.querySelector('input[name="bot-level"]:checked')?.value;
  const color = dom.botForm.querySelector('input[name="bot-color"]:checked')?.value;
  if (!isBotLevel(level) || !isPlayer(color) || !replaceable()) return;
  saveBotChoice({ level, color });
  replaceGame(state.control, { level, color });
  render();
}

function loadBotChoice() {
  try {
    const value = JSON.parse(localStorage.getItem(BOT_CHOICE_KEY) ?? "null");
    if (value && isBotLevel(value.level) && isPlayer(value.color)) return value;
  } catch {
    // Storage disabled or garbage in it: the default.
  }
  return DEFAULT_BOT;
}

function saveBotChoice(choice) {
  try {
    localStorage.setItem(BOT_CHOICE_KEY, JSON.stringify(choice));
  } catch {
    // Not remembered: the default next time.
  }
}

// The level choices, one per entry of BOT_LEVELS, and the last choice made.
function buildBotForm() {
  const choice = loadBotChoice();
  for (const { level, name, about } of BOT_LEVELS) {
    const label = document.createElement("label");
    label.className = "bot-choice";
    label.dataset.level = level;
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "bot-level";
    input.value = level;
    input.checked = level === choice.level;
    input.setAttribute("aria-labelledby", `bot-level-${level}`);
    input.setAttribute("aria-describedby", `bot-level-${level}-about`);
    const nameText = document.createElement("span");
    nameText.id = `bot-level-${level}`;
    nameText.className = "bot-choice-name";
    nameText.textContent = name;
    const aboutText = document.createElement("span");
    aboutText.id = `bot-level-${level}-about`;
    aboutText.className = "bot-choice-about";
    aboutText.textContent = about;
    label.append(input, nameText, aboutText);
    dom.botLevels.append(label);
  }
  const color = dom.botForm.querySelector(`input[name="bot-color"][value="${choice.color}"]`);
  if (color) color.checked = true;
}

// "Play on this device" leaves the waiting friend game: it is called off,
// and the game on this device starts afresh.
function onPlayDeviceClick(event) {
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
    return; // Another tab: this one's game stays.
  }
  if (phase() === "waiting" && state.moves.length === 0) send({ type: "abort" });
  detachSocket(1000);
  forgetSeat();
  clearSession(DEVICE_SEARCH);
}

// "New game" links go to "/" (or "/?device"), whose stored seat (or columns)
// are of the old game: forget them, or the new page would resume instead of
// starting afresh.
function onNewGameClick(event) {
  const link = event.target instanceof Element ? event.target.closest("a[data-new-game]") : null;
  if (!link) return;
  // Opening it in another tab leaves this tab's game alone.
  const modified = event.metaKey || event.ctrlKey || event.shiftKey || event.altKey;
  if (event.button !== 0 || modified) return;
  // A game nobody joined is called off, rather than left for a friend to
  // find without its creator.
  if (setupShown(phase()) && !ui.replacing) send({ type: "abort" });
  clearSession(new URL(link.href, location.href).search);
}

function setUpActions() {
  dom.claim.addEventListener("click", claim);
  dom.watchGame.addEventListener("click", watchInstead);
  dom.playHere.addEventListener("click", playHere);
  dom.retryNow.addEventListener("click", retryNow);
  dom.offerDraw.addEventListener("click", offerDraw);
  dom.offerAccept.addEventListener("click", () => answerOffer("draw", true));
  dom.offerDecline.addEventListener("click", () => answerOffer("draw", false));
  dom.abort.addEventListener("click", abortGame);
  dom.resign.addEventListener("click", askResign);
  dom.resignYes.addEventListener("click", resign);
  dom.resignCancel.addEventListener("click", cancelResign);
  dom.resignConfirm.addEventListener("keydown", (event) => {
    if (event.key === "Escape") cancelResign();
  });
  dom.rematch.addEventListener("click", offerRematch);
  dom.rematchAccept.addEventListener("click", () => answerOffer("rematch", true));
  dom.rematchDecline.addEventListener("click", () => answerOffer("rematch", false));
  dom.playAgain.addEventListener("click", playAgain);
  for (const button of dom.presets) button.addEventListener("click", onPresetClick);
  dom.customToggle.addEventListener("click", onCustomToggle);
  dom.customForm.addEventListener("submit", onCustomSubmit);
  dom.customForm.addEventListener("change", () => render());
  dom.playDevice.addEventListener("click", onPlayDeviceClick);
  dom.botToggle.addEventListener("click", onBotToggle);
  dom.botForm.addEventListener("submit", onBotSubmit);
  dom.copyRecord.addEventListener("click", () => {
    copyText(dom.recordText.textContent, dom.copyRecord).catch(() => {});
  });
  document.addEventListener("click", onNewGameClick);
}

// ---------------------------------------------------------------------------
// Invite links and the record: copying
// ---------------------------------------------------------------------------

function showLinks(keys) {
  const joinUrl = `${location.origin}/?join=${encodeURIComponent(keys.join)}`;
  const watchUrl = `${location.origin}/?watch=${encodeURIComponent(keys.watch)}`;
  dom.joinLink.value = joinUrl;
  dom.watchLink.value = watchUrl;
  dom.joinAnchor.href = joinUrl;
  dom.joinAnchor.textContent = joinUrl;
  dom.watchAnchor.href = watchUrl;
  dom.watchAnchor.textContent = watchUrl;
  dom.links.hidden = false;
}

function withTimeout(promise, ms) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), ms)),
  ]);
}

// Copies `text`: with the Clipboard API, else by selecting it in `input`
// (a field of the page, or a scratch one) and the copy command.
async function writeClipboard(text, input = null) {
  try {
    if (navigator.clipboard && typeof navigator.clipboard.writeText === "function") {
      await withTimeout(navigator.clipboard.writeText(text), CLIPBOARD_TIMEOUT_MS);
      return true;
    }
  } catch {
    // Permission denied, insecure context, unfocused document: fall back.
  }
  const scratch = input === null ? document.createElement("textarea") : null;
  try {
    const field = input ?? scratch;
    if (scratch) {
      scratch.value = text;
      scratch.setAttribute("readonly", "");
      scratch.className = "visually-hidden";
      document.body.appendChild(scratch);
    }
    field.focus();
    field.select();
    return document.execCommand("copy");
  } catch {
    return false;
  } finally {
    scratch?.remove();
  }
}

// Per-button timer that puts the "Copy" label back after the feedback.
const copyResetTimers = new Map();

function copyFeedback(button, copied, feedback) {
  if (copied) button.textContent = "Copied!";
  clearTimeout(copyResetTimers.get(button));
  copyResetTimers.set(button, setTimeout(() => {
    button.textContent = "Copy";
    if (feedback && dom.copyFeedback.textContent === feedback) dom.copyFeedback.textContent = "";
  }, COPY_FEEDBACK_MS));
}

async function copyLink(input, button) {
  let copied = false;
  try {
    copied = await writeClipboard(input.value, input);
  } catch {
    copied = false;
  }
  const feedback = copied ? "Copied!" : "Select the link and copy it";
  dom.copyFeedback.textContent = feedback;
  if (!copied) {
    // Leave the text selected so copying by hand is one keystroke away.
    input.focus();
    input.select();
  }
  copyFeedback(button, copied, feedback);
}

async function copyText(text, button) {
  let copied = false;
  try {
    copied = await writeClipboard(text);
  } catch {
    copied = false;
  }
  if (!copied) {
    // Select the record so that copying by hand is one keystroke away.
    const range = document.createRange();
    range.selectNodeContents(dom.recordText);
    const selection = window.getSelection();
    selection?.removeAllRanges();
    selection?.addRange(range);
    button.textContent = "Select and copy";
  }
  copyFeedback(button, copied, null);
}

function setUpLinks() {
  for (const [input, button] of [[dom.joinLink, dom.copyJoin], [dom.watchLink, dom.copyWatch]]) {
    button.addEventListener("click", () => {
      copyLink(input, button).catch(() => {});
    });
    // Clicking the field selects the whole link, for copying by hand.
    input.addEventListener("focus", () => input.select());
  }
}

// ---------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------

if (MODE === "device") {
  // "New game" starts this device's game afresh; the banner's link leads to
  // the friend games.
  dom.newGame.href = "/" + DEVICE_SEARCH;
}
buildBoard();
buildBotForm();
setUpLinks();
setUpActions();
if (addressBot === "invalid" && !storedSeat) {
  refuse("failed", "Could not open this game.",
    "There is no such level of the computer: choose one on a new game.");
}
render();
if (!state.refusal) connect();
watchForSleep();
