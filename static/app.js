// Browser client for connect4proto. See PROTOCOL.md for the wire protocol.
// Plain ES module, no dependencies, no build step.

const COLUMNS = 7;
const ROWS = 6;
const ERROR_TIMEOUT_MS = 4000;
const COPY_FEEDBACK_MS = 1800;
// navigator.clipboard.writeText can stay pending (e.g. when the document
// loses focus), so we stop waiting for it after this long and fall back.
const CLIPBOARD_TIMEOUT_MS = 1500;

const $ = (id) => document.getElementById(id);

const dom = {
  board: $("board"),
  status: $("status"),
  statusRole: $("status-role"),
  statusTurn: $("status-turn"),
  error: $("error"),
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
// State
// ---------------------------------------------------------------------------

const params = new URLSearchParams(location.search);

const state = {
  // "red" (creator), "yellow" (joiner) or "spectator" (watcher).
  role: params.has("join") ? "yellow" : params.has("watch") ? "spectator" : "red",
  socket: null,
  // Whose turn it is; red always starts.
  turn: "red",
  // Set by win/draw: { winner: "red" | "yellow" | null }.
  result: null,
  // true = connected, false = left, undefined = not known yet.
  present: { red: undefined, yellow: undefined },
  // Last player who left, so the status can say so until they come back.
  leftPlayer: null,
  // The join/watch keys, known only to the creator.
  keys: null,
  // Once we know we are in a game (any game event arrived). An error before
  // that, with no play sent, means our init was refused.
  inGame: false,
  playsSent: 0,
  // Set when init was refused: the page cannot do anything else.
  fatal: null,
  // Set when the socket closed: "Connection lost." or similar.
  closedMessage: null,
  // Moves replayed to a joiner/watcher arrive in a burst; animating each
  // would look like a glitch, so only moves after the replay are animated.
  live: false,
  // Navigating away closes the socket; that is not an error to show.
  unloading: false,
  pendingClose: null,
};

const errorTimer = { id: 0 };

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

function placeChecker(column, row, player) {
  const cell = cells[column][row];
  cell.classList.remove("red", "yellow", "drop");
  cell.classList.add(player);
  cell.setAttribute("aria-label", `${capitalize(player)} checker`);
  if (state.live) {
    // The checker falls from above the board: distance in cells.
    cell.style.setProperty("--drop", String(ROWS - row));
    // Force a reflow so re-adding the class restarts the animation.
    void cell.offsetWidth;
    cell.classList.add("drop");
  }
}

function highlightWin(winCells) {
  for (const pair of winCells) {
    if (!Array.isArray(pair)) continue;
    const [c, r] = pair;
    if (isIndex(c, COLUMNS) && isIndex(r, ROWS)) cells[c][r].classList.add("win");
  }
}

// ---------------------------------------------------------------------------
// Rendering of status, banner, badge
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
  return state.role === "red" || state.role === "yellow";
}

function opponent() {
  return state.role === "red" ? "yellow" : "red";
}

function roleText() {
  if (state.role === "spectator") return "You are watching this game as a spectator.";
  return `You are ${state.role}.`;
}

function turnText() {
  if (state.result) return "Game over.";
  // Red cannot play alone: the game really starts when yellow shows up.
  if (state.role === "red" && state.present.yellow === undefined) {
    return "Waiting for an opponent to join...";
  }
  if (state.role === "spectator") return `${capitalize(state.turn)} to play.`;
  return state.turn === state.role ? "Your turn." : `${capitalize(state.turn)}'s turn.`;
}

function leftText() {
  const who = state.leftPlayer;
  if (!who || state.present[who] !== false) return "";
  if (who === state.role) return "";
  // Yellow may come back through the join link; red cannot rejoin.
  const comeBack = !state.result && who === "yellow" && state.role === "red"
    ? " Waiting for them to come back..."
    : "";
  return `${capitalize(who)} left the game.${comeBack}`;
}

function phase() {
  if (state.fatal) return "failed";
  if (state.closedMessage) return "closed";
  if (state.result) return "over";
  if (!state.inGame) return "connecting";
  if (state.role === "red" && state.present.yellow === undefined) return "waiting";
  return "playing";
}

function renderStatus() {
  const role = state.fatal ? "" : roleText();
  let turn;
  if (state.fatal) {
    turn = state.fatal;
  } else if (state.closedMessage) {
    turn = state.result ? `Game over. ${state.closedMessage}` : state.closedMessage;
  } else if (!state.inGame && !(state.role === "red" && state.keys)) {
    turn = "Connecting…";
  } else {
    turn = [turnText(), leftText()].filter(Boolean).join(" ");
  }
  // A refused init means we hold no seat: a colour badge would mislead.
  if (state.fatal) dom.badge.hidden = true;
  dom.statusRole.textContent = role;
  dom.statusTurn.textContent = turn;

  const current = phase();
  document.body.dataset.phase = current;
  document.body.dataset.role = state.role;
  renderBoardState(current);
  renderTitle(current);
}

function renderBoardState(current) {
  const disabled = current === "failed" || current === "closed";
  const myTurn = current === "playing" && state.turn === state.role;
  dom.board.classList.toggle("disabled", disabled);
  dom.board.classList.toggle("my-turn", myTurn);
  dom.board.classList.toggle("turn-red", state.turn === "red");
  dom.board.classList.toggle("turn-yellow", state.turn === "yellow");
  dom.board.dataset.turn = state.result ? "" : state.turn;
  for (const column of columns) {
    column.setAttribute("aria-disabled", String(disabled));
  }
}

function renderTitle(current) {
  const prefix = current === "playing" && state.turn === state.role ? "Your turn · " : "";
  document.title = `${prefix}Connect Four`;
}

function renderBadge() {
  if (state.role === "spectator") {
    dom.badge.textContent = "Spectator";
  } else {
    dom.badge.textContent = capitalize(state.role);
  }
  dom.badge.className = `badge badge-${state.role}`;
  dom.badge.hidden = false;
}

function showBanner(title, detail, tone) {
  dom.bannerTitle.textContent = title;
  dom.bannerDetail.textContent = detail;
  dom.banner.className = `banner banner-${tone}`;
  dom.banner.hidden = false;
}

function renderResult() {
  const result = state.result;
  if (!result) return;
  if (result.winner === null) {
    showBanner("Draw!", "The board is full.", "draw");
    return;
  }
  const winner = capitalize(result.winner);
  if (!isPlayerRole()) {
    showBanner(`${winner} wins!`, "Four in a row.", result.winner);
  } else if (result.winner === state.role) {
    showBanner("You win!", `${winner} wins with four in a row.`, "won");
  } else {
    showBanner("You lose.", `${winner} wins with four in a row.`, "lost");
  }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

function showError(message, { sticky = false } = {}) {
  clearTimeout(errorTimer.id);
  dom.error.textContent = message;
  dom.error.hidden = false;
  dom.error.dataset.sticky = String(sticky);
  if (!sticky) errorTimer.id = setTimeout(clearError, ERROR_TIMEOUT_MS);
}

function clearError() {
  // Sticky errors (connection lost, refused init) describe a final state.
  if (dom.error.dataset.sticky === "true") return;
  clearTimeout(errorTimer.id);
  dom.error.textContent = "";
  dom.error.hidden = true;
}

// ---------------------------------------------------------------------------
// Server events
// ---------------------------------------------------------------------------

const handlers = {
  init(event) {
    if (typeof event.join !== "string" || typeof event.watch !== "string") return;
    state.keys = { join: event.join, watch: event.watch };
    state.inGame = true;
    state.live = true;
    state.present.red = true;
    showLinks(state.keys);
  },

  play(event) {
    const { player, column, row } = event;
    if (!isPlayer(player) || !isIndex(column, COLUMNS) || !isIndex(row, ROWS)) return;
    state.inGame = true;
    placeChecker(column, row, player);
    state.turn = player === "red" ? "yellow" : "red";
    // A move by yellow proves yellow joined, even if `joined` was missed.
    if (player === "yellow" && state.present.yellow === undefined) state.present.yellow = true;
  },

  win(event) {
    if (!isPlayer(event.player)) return;
    state.inGame = true;
    state.result = { winner: event.player };
    if (Array.isArray(event.cells)) highlightWin(event.cells);
    renderResult();
  },

  draw() {
    state.inGame = true;
    state.result = { winner: null };
    renderResult();
  },

  joined(event) {
    if (!isPlayer(event.player)) return;
    state.inGame = true;
    // `joined` events end the replay: later moves are live.
    state.live = true;
    state.present[event.player] = true;
    if (state.leftPlayer === event.player) state.leftPlayer = null;
  },

  left(event) {
    if (!isPlayer(event.player)) return;
    // A late comer may learn that red is gone before anything else.
    state.inGame = true;
    state.live = true;
    state.present[event.player] = false;
    state.leftPlayer = event.player;
  },

  error(event) {
    const message = typeof event.message === "string" && event.message
      ? event.message
      : "The server refused that.";
    // The first answer to our init being an error means we are not in any
    // game (unknown key, seat taken...): nothing else will work here.
    if (!state.inGame && state.playsSent === 0) {
      state.fatal = `Could not open this game: ${message}`;
      showError(message, { sticky: true });
      return;
    }
    showError(message);
  },
};

function onMessage(messageEvent) {
  let event;
  try {
    event = JSON.parse(messageEvent.data);
  } catch {
    return; // Not JSON: nothing we can do with it.
  }
  if (event === null || typeof event !== "object" || Array.isArray(event)) return;
  // Unknown types are ignored on purpose: the server may add new ones.
  if (!Object.hasOwn(handlers, event.type)) return;
  if (event.type !== "error") clearError();
  handlers[event.type](event);
  renderStatus();
}

// ---------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------

function initMessage() {
  const message = { type: "init" };
  if (params.has("join")) message.join = params.get("join");
  if (params.has("watch")) message.watch = params.get("watch");
  return message;
}

function send(message) {
  const socket = state.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(message));
  return true;
}

function play(column) {
  if (state.fatal) {
    showError(state.fatal, { sticky: true });
    return;
  }
  if (state.closedMessage) {
    showError(state.closedMessage, { sticky: true });
    return;
  }
  // Spectators and out-of-turn clicks are still sent: the server's answer
  // ("Spectators cannot play.", "It isn't your turn.") is the one shown.
  if (send({ type: "play", column })) {
    state.playsSent += 1;
  } else {
    showError("Still connecting, try again in a moment.");
  }
}

function connect() {
  const url = (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + "/";
  let socket;
  try {
    socket = new WebSocket(url);
  } catch {
    onClose({ code: 1006 });
    return;
  }
  state.socket = socket;
  socket.addEventListener("open", () => send(initMessage()));
  socket.addEventListener("message", onMessage);
  // "error" is always followed by "close", which does the reporting.
  socket.addEventListener("close", onClose);
}

function onClose(event) {
  if (state.unloading) {
    // Maybe the page goes into the back/forward cache; report it on return.
    state.pendingClose = event;
    return;
  }
  state.socket = null;
  state.closedMessage = event.code === 1001 ? "The server is shutting down." : "Connection lost.";
  // After a finished game a closed socket is expected, not an error.
  if (!state.result && !state.fatal) showError(state.closedMessage, { sticky: true });
  renderStatus();
}

window.addEventListener("pagehide", () => {
  state.unloading = true;
});

window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  state.unloading = false;
  if (state.pendingClose) {
    const closeEvent = state.pendingClose;
    state.pendingClose = null;
    onClose(closeEvent);
  }
});

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
renderBadge();
renderStatus();
connect();
