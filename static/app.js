// Browser client for connect4proto. See PROTOCOL.md for the wire protocol.
// Plain ES module, no dependencies, no build step.
//
// The page speaks the versioned protocol: every game event carries `v`, its
// place in the game's log, and the page applies each `v` exactly once, in
// order. A seat belongs to whoever holds its token; the page keeps the token
// in sessionStorage, so a reload or a dropped connection resumes the game
// where it was instead of losing it.

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
const ENDED_TEXT = "This game has ended or expired.";
const SEAT_TAKEN_TEXT = "This game already has two players.";
const REPLACED_TEXT = "This game is open in another tab or window.";

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
  banner: $("banner"),
  bannerTitle: $("banner-title"),
  bannerDetail: $("banner-detail"),
  badge: $("role-badge"),
  links: $("links"),
  joinLink: $("join-link"),
  watchLink: $("watch-link"),
  joinAnchor: $("join-anchor"),
  watchAnchor: $("watch-anchor"),
  copyJoin: $("copy-join"),
  copyWatch: $("copy-watch"),
  copyFeedback: $("copy-feedback"),
};

// ---------------------------------------------------------------------------
// What survives a reload: sessionStorage, one entry per page address
// ---------------------------------------------------------------------------

// Kept per tab (a reload finds it, an address pasted elsewhere does not, so
// sharing the address bar never hands over a seat) and per address (red's
// "", yellow's "?join=K", a spectator's "?watch=K"). Never in a cookie: the
// token must not travel with every request.

function storageKey(search) {
  return STORAGE_PREFIX + search;
}

function loadSession() {
  try {
    const value = JSON.parse(sessionStorage.getItem(storageKey(location.search)) ?? "null");
    if (value && typeof value === "object") return value;
  } catch {
    // Storage disabled or garbage in it: start afresh.
  }
  return null;
}

function saveSession(value) {
  try {
    sessionStorage.setItem(storageKey(location.search), JSON.stringify(value));
  } catch {
    // Storage full or disabled: the game still works until a reload.
  }
}

function clearSession(search = location.search) {
  try {
    sessionStorage.removeItem(storageKey(search));
  } catch {
    // Nothing stored, nothing to clear.
  }
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

const params = new URLSearchParams(location.search);
const stored = loadSession();
const storedSeat = stored && typeof stored.token === "string" && isPlayer(stored.player)
  ? stored
  : null;
// A join link whose seat was taken may have been turned into a spectator view.
const storedSpectator = stored?.role === "spectator" && params.has("join");

function initialRole() {
  if (storedSeat) return storedSeat.player;
  if (storedSpectator || params.has("watch")) return "spectator";
  return params.has("join") ? "yellow" : "red";
}

const state = {
  // "red" (creator), "yellow" (joiner) or "spectator" (watcher).
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
  // Set by win/draw/sync: { winner: "red" | "yellow" | null, reason }.
  result: null,
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
  // null until one of them arrives). Events after it are live.
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

const timers = { error: 0, tick: 0 };

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

// Writes only on change: re-setting the same text would make screen readers
// announce live regions again at every redraw (countdowns redraw often).
function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function setHidden(element, hidden) {
  if (element.hidden !== hidden) element.hidden = hidden;
}

function secondsLeft(deadline) {
  return Math.max(0, Math.ceil((deadline - performance.now()) / 1000));
}

function formatClock(seconds) {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, "0")}`;
}

// ---------------------------------------------------------------------------
// Board
// ---------------------------------------------------------------------------

// cells[column][row] -> element; row 0 is the bottom.
const cells = [];
const columns = [];

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
  if (state.role === "red" && state.present.yellow === undefined) return "waiting";
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

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

function render() {
  const current = phase();
  renderStatus(current);
  renderNotice(current);
  renderAway(current);
  renderBoardState(current);
  renderBadge();
  document.body.dataset.phase = current;
  document.body.dataset.role = state.role;
  // Whether events now are live (animated) or a catch-up: for tests and styles.
  document.body.dataset.live = String(conn.status === "open" && !conn.catchingUp);
  document.title = `${isMyTurn(current) ? "Your turn · " : ""}Connect Four`;
  scheduleTick();
}

function isMyTurn(current) {
  return current === "playing" && state.turn === state.role;
}

function roleText() {
  if (state.role === "spectator") return "You are watching this game as a spectator.";
  return `You are ${state.role}.`;
}

function turnText() {
  // Red cannot play alone: the game really starts when yellow shows up.
  if (state.role === "red" && state.present.yellow === undefined) {
    return "Waiting for an opponent to join...";
  }
  if (state.role === "spectator") return `${capitalize(state.turn)} to play.`;
  return state.turn === state.role ? "Your turn." : `${capitalize(state.turn)}'s turn.`;
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
  const name = capitalize(player);
  const deadline = state.graceEnds[player];
  const seconds = deadline === null ? 0 : secondsLeft(deadline);
  let text;
  if (seconds > 0) {
    text = `${name} is away, reconnecting...`;
  } else if (canClaim(player)) {
    text = `${name} has not come back. You can claim the win.`;
  } else {
    text = `${name} has not come back. ${capitalize(other(player))} may claim the win.`;
  }
  setText(line.querySelector(".away-text"), text);
  setText(line.querySelector(".countdown"), seconds > 0 ? formatClock(seconds) : "");
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

function renderBadge() {
  // A refused init means we hold no seat: a colour badge would mislead.
  setHidden(dom.badge, Boolean(state.refusal));
  setText(dom.badge, state.role === "spectator" ? "Spectator" : capitalize(state.role));
  dom.badge.className = `badge badge-${state.role}`;
}

function renderResult() {
  const result = state.result;
  if (!result) {
    dom.banner.hidden = true;
    return;
  }
  if (result.winner === null) {
    showBanner("Draw!", "The board is full.", "draw");
    return;
  }
  const winner = capitalize(result.winner);
  // A claimed win is the opponent's absence, not four in a row.
  const claimed = result.reason === "claim";
  const absent = `${capitalize(other(result.winner))} did not come back.`;
  const four = `${winner} wins with four in a row.`;
  if (!isPlayerRole()) {
    showBanner(`${winner} wins!`, claimed ? absent : "Four in a row.", result.winner);
  } else if (result.winner === state.role) {
    showBanner("You win!", claimed ? absent : four, "won");
  } else {
    const took = `${winner} claimed the win while you were away.`;
    showBanner("You lose.", claimed ? took : four, "lost");
  }
}

function showBanner(title, detail, tone) {
  dom.bannerTitle.textContent = title;
  dom.bannerDetail.textContent = detail;
  dom.banner.className = `banner banner-${tone}`;
  dom.banner.hidden = false;
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
// Errors: refusals of a move or a claim, shown for a moment
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

function setResult(winner, reason, winCells) {
  state.result = { winner, reason };
  highlightWin(winCells);
  renderResult();
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

const handlers = {
  // To the creator, again on each resume: the keys for the invite links.
  init(event) {
    if (typeof event.join !== "string" || typeof event.watch !== "string") return;
    state.keys = { join: event.join, watch: event.watch };
    showLinks(state.keys);
  },

  seat(event) {
    if (!isPlayer(event.player) || typeof event.token !== "string") return;
    state.role = event.player;
    state.token = event.token;
    state.inGame = true;
    saveSession({ token: event.token, player: event.player });
    expectCatchUpTo(event.v);
  },

  // A spectator's counterpart of `seat`: how far the catch-up goes.
  watching(event) {
    expectCatchUpTo(event.v);
  },

  play(event) {
    const { player, column, row } = event;
    if (!isPlayer(player) || !isIndex(column, COLUMNS) || !isIndex(row, ROWS)) return;
    // Moves of a replay or a resume are not animated: they happened earlier
    // (the last one of the catch-up too: the catch-up ends after it).
    placeChecker(column, row, player, { animate: !conn.catchingUp });
    state.turn = other(player);
  },

  win(event) {
    if (!isPlayer(event.player)) return;
    setResult(event.player, event.reason, event.cells);
  },

  draw(event) {
    setResult(null, event.reason, []);
  },

  joined(event) {
    if (isPlayer(event.player)) markHere(event.player);
  },

  away(event) {
    // Our own drop comes back in a resume's catch-up; we are here, though.
    if (isPlayer(event.player) && event.player !== state.role) markAway(event.player, event.grace);
  },

  // The whole game at once, for a resume that cannot be caught up event by event.
  sync(event) {
    clearBoard();
    let last = null;
    for (const move of Array.isArray(event.moves) ? event.moves : []) {
      const { player, column, row } = move ?? {};
      if (!isPlayer(player) || !isIndex(column, COLUMNS) || !isIndex(row, ROWS)) continue;
      placeChecker(column, row, player, { animate: false });
      last = player;
    }
    state.turn = last === null ? "red" : other(last);
    for (const player of ["red", "yellow"]) applySeatView(player, event[player]);
    state.result = null;
    const result = event.result;
    const ended = result && typeof result === "object";
    if (ended && (result.winner === null || isPlayer(result.winner))) {
      setResult(result.winner, result.reason, result.cells);
    } else {
      renderResult();
    }
  },

  error(event) {
    const message = typeof event.message === "string" && event.message
      ? event.message
      : "The server refused that.";
    switch (event.code) {
      case "seat_taken":
        refuse("seat-taken", SEAT_TAKEN_TEXT, "You can still watch it.");
        break;
      case "unknown_token":
      case "game_not_found":
        // Whatever the token was for is gone: a reload must not try it again.
        forgetSeat();
        refuse("ended", ENDED_TEXT, "Start a new game, or ask for a new link.");
        detachSocket();
        break;
      case "bad_init":
      case "already_in_game":
        refuse("failed", "Could not open this game.", message);
        detachSocket();
        break;
      default:
        // A refused move or claim (not_your_turn, too_early...): nothing changed.
        showError(message);
    }
  },
};

function applySeatView(player, seat) {
  const seatState = seat && typeof seat === "object" ? seat.state : undefined;
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
  // Unknown types (`pong` among them: heard() was all it is for) are ignored
  // on purpose: the server may add new ones.
  if (!Object.hasOwn(handlers, event.type)) return;
  const logged = Number.isInteger(event.v) && !CATCH_UP_MARKERS.has(event.type);
  if (logged && !acceptVersion(event)) return;
  if (event.type !== "error") clearError();
  if (event.type !== "error" && event.type !== "init") state.inGame = true;
  handlers[event.type](event);
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
// WebSocket: connecting, resuming, backing off
// ---------------------------------------------------------------------------

function initMessage() {
  if (state.token) return { type: "init", token: state.token, v: state.v };
  if (state.role === "spectator") return { type: "init", watch: state.watchKey, v: state.v };
  // A new seat (create or join): the whole log, from the start.
  if (params.has("join")) return { type: "init", join: params.get("join"), v: 0 };
  return { type: "init", v: 0 };
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
  startCatchUp();
  send(initMessage());
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
  if (code === SEAT_REPLACED) {
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

function play(column) {
  const current = phase();
  if (current === "failed") {
    showError(state.refusal.headline);
    return;
  }
  if (current === "replaced") {
    showError(REPLACED_TEXT);
    return;
  }
  // Spectators and out-of-turn clicks are still sent: the server's answer
  // ("Spectators cannot play.", "It isn't your turn.") is the one shown.
  if (!send({ type: "play", column })) {
    showError(navigator.onLine ? "Not connected yet: reconnecting…" : "You are offline.");
  }
}

function claim() {
  // The server decides; too early, it says how long is left.
  if (!send({ type: "claim" })) showError("Not connected: reconnecting…");
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

// "New game" links go to "/", whose stored seat is red's of the old game:
// forget it, or the new page would resume instead of creating.
function onNewGameClick(event) {
  const link = event.target instanceof Element ? event.target.closest("a[data-new-game]") : null;
  if (!link) return;
  // Opening it in another tab leaves this tab's game alone.
  const modified = event.metaKey || event.ctrlKey || event.shiftKey || event.altKey;
  if (event.button !== 0 || modified) return;
  clearSession("");
}

function setUpActions() {
  dom.claim.addEventListener("click", claim);
  dom.watchGame.addEventListener("click", watchInstead);
  dom.playHere.addEventListener("click", playHere);
  dom.retryNow.addEventListener("click", retryNow);
  document.addEventListener("click", onNewGameClick);
}

// ---------------------------------------------------------------------------
// Invite links
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

async function writeClipboard(input) {
  try {
    if (navigator.clipboard && typeof navigator.clipboard.writeText === "function") {
      await withTimeout(navigator.clipboard.writeText(input.value), CLIPBOARD_TIMEOUT_MS);
      return true;
    }
  } catch {
    // Permission denied, insecure context, unfocused document: fall back.
  }
  try {
    input.focus();
    input.select();
    return document.execCommand("copy");
  } catch {
    return false;
  }
}

// Per-button timer that puts the "Copy" label back after the feedback.
const copyResetTimers = new Map();

async function copyLink(input, button) {
  let copied = false;
  try {
    copied = await writeClipboard(input);
  } catch {
    copied = false;
  }
  const feedback = copied ? "Copied!" : "Select the link and copy it";
  dom.copyFeedback.textContent = feedback;
  if (copied) {
    button.textContent = "Copied!";
  } else {
    // Leave the text selected so copying by hand is one keystroke away.
    input.focus();
    input.select();
  }
  clearTimeout(copyResetTimers.get(button));
  copyResetTimers.set(button, setTimeout(() => {
    button.textContent = "Copy";
    if (dom.copyFeedback.textContent === feedback) dom.copyFeedback.textContent = "";
  }, COPY_FEEDBACK_MS));
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

buildBoard();
setUpLinks();
setUpActions();
render();
connect();
watchForSleep();
