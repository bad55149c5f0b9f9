"""Playing the computer, through the sans-IO core: the intents it emits (``Output.compute``),
the answers it takes back (``GameServer.computed``), and a game against it from either seat.

``Network.think`` plays the driver's worker thread: it works out each move asked for, in
order, with a seeded generator, and hands it back.
"""

from __future__ import annotations

import random

import pytest
from peers import Network
from tabs import Tab, log_of, read_all

from connect4proto import ComputeMove, Config, LocalProtocolError
from connect4proto.solver.bots import Level

NOW = Config(bot_delay=0.0)


def play_to_the_end(network: Network, tab: Tab, rng: random.Random) -> dict[str, object]:
    """The person plays random legal columns; the computer answers each."""
    network.think()
    tab.read()
    while tab.last["type"] == "play" or tab.last["type"] == "joined":
        game = network.server.lobby.game(1)
        column = rng.choice([c for c in range(7) if game.can_play(c)])
        tab.play(column)
        network.think()
        tab.read()
    return tab.last


def test_the_creator_plays_red_against_the_computer_which_answers_every_move() -> None:
    network = Network(config=NOW)
    me = Tab(network, bot="casual")
    assert me.seat is not None
    assert me.seat["player"] == "red"
    assert me.applied == [
        {"type": "joined", "player": "red", "v": 1},
        {"type": "joined", "player": "yellow", "bot": "casual", "v": 2},
    ]
    assert network.computing == []  # red moves first: nothing to think about
    me.play(3)
    me.read()
    assert network.computing == [ComputeMove(game=1, version=3, level="casual", record="4")]
    network.think()
    me.read()
    assert me.last["player"] == "yellow"
    end = play_to_the_end(network, me, random.Random(1))
    assert end["type"] in ("win", "draw")
    assert end["record"] == network.server.lobby.game(1).record


def test_as_yellow_the_computer_moves_first_and_a_spectator_sees_it_all() -> None:
    network = Network(config=NOW)
    me = Tab(network, bot="strong", color="yellow")
    assert me.seat is not None
    assert me.seat["player"] == "yellow"
    assert me.applied[0] == {"type": "joined", "player": "red", "bot": "strong", "v": 1}
    assert me.keys is not None
    watcher = Tab(network, watch=me.keys["watch"])
    network.think()
    read_all(me, watcher)
    assert me.last["type"] == "play"
    assert me.last["player"] == "red"
    play_to_the_end(network, me, random.Random(2))
    watcher.read()
    assert log_of(watcher) == log_of(me)


def test_the_computer_declines_a_draw_and_accepts_a_rematch_at_once() -> None:
    network = Network(config=NOW)
    me = Tab(network, bot="beginner")
    me.play(3)
    network.think()
    me.send("offer", offer="draw")
    me.read()
    assert [m["type"] for m in me.applied[-2:]] == ["offer", "declined"]
    assert me.last == {"type": "declined", "offer": "draw", "player": "yellow", "v": 6}
    me.send("resign")
    me.send("offer", offer="rematch")
    me.read()
    assert [m["type"] for m in me.applied[-3:]] == ["win", "offer", "rematch"]
    assert me.seat is not None
    assert me.seat["player"] == "yellow"  # colours swapped: the computer is red, and moves
    assert network.computing[-1].record == ""
    network.think()
    me.read()
    assert me.last["player"] == "red"


def test_an_answer_for_a_game_that_moved_on_is_dropped() -> None:
    network = Network(config=NOW)
    me = Tab(network, bot="casual")
    me.play(3)
    me.read()
    (asked,) = network.computing
    me.send("resign")  # while the computer thinks
    me.read()
    network.think()
    assert me.read() == []
    assert network.server.lobby.version(1) == asked.version + 1
    # An answer that was never asked for, or asked twice, is dropped too.
    network.apply(network.server.computed(asked, 3, network.now))
    assert me.read() == []


def test_the_computer_thinks_during_its_pause_and_plays_when_it_ends() -> None:
    network = Network(config=Config(bot_delay=0.5))
    me = Tab(network, bot="casual")
    me.play(3)
    assert len(network.computing) == 1  # asked at once: it thinks during its pause
    network.think()
    me.read()
    assert me.last["player"] == "red"  # its answer waits for the pause to end
    assert network.server.next_deadline == 0.5
    network.advance(0.5)
    me.read()
    assert me.last["player"] == "yellow"
    # An answer that comes after the pause is played at once.
    me.play(3)
    network.advance(2.0)
    me.read()
    assert me.last["player"] == "red"
    network.think()
    me.read()
    assert me.last["player"] == "yellow"
    # A resignation during the pause: its answer is dropped, nothing is played.
    other = Tab(network, bot="casual")
    other.play(3)
    other.send("resign")
    network.think()
    network.advance(3.0)
    assert network.server.lobby.game(2).record == "4"


def test_the_computers_seat_cannot_be_taken_and_shows_in_a_snapshot() -> None:
    network = Network(config=NOW)
    me = Tab(network, bot="strong")
    stranger = network.websocket()
    stranger.send({"type": "init", "v": 0, "join": "key-1"})
    assert stranger.take()[0]["code"] == "seat_taken"
    late = network.websocket()
    late.send({"type": "init", "v": 99, "watch": "key-2"})
    _, sync, _ = late.take()
    assert sync["yellow"] == {"state": "here", "bot": "strong"}
    me.send("claim")
    me.read()
    assert me.errors[-1]["code"] == "opponent_connected"


@pytest.mark.parametrize(
    ("init", "code", "text"),
    [
        # Not decoded, so not known to be versioned: the text alone, as for any bad message.
        ({"bot": "grandmaster"}, None, "Invalid enum value 'grandmaster' - at `$.bot`"),
        ({"bot": "casual", "color": "green"}, None, "Invalid enum value 'green' - at `$.color`"),
        ({"color": "yellow"}, "bad_init", "A color is chosen only against the computer"),
        ({"bot": "casual", "join": "key-1"}, "bad_init", "A computer opponent is chosen"),
    ],
)
def test_a_bad_choice_of_computer_or_colour_says_what_is_wrong(
    init: dict[str, str], code: str | None, text: str
) -> None:
    network = Network(config=NOW)
    page = network.websocket()
    page.send({"type": "init", "v": 0, **init})
    (refused,) = page.take()
    assert refused.get("code") == code
    assert text in refused["message"]


def test_a_move_the_computer_cannot_play_is_the_drivers_mistake() -> None:
    network = Network(config=NOW)
    me = Tab(network, bot="casual")
    me.play(3)
    me.read()
    (asked,) = network.computing
    with pytest.raises(LocalProtocolError, match="the computer cannot play 9"):
        network.server.computed(asked, 9, network.now)


def test_the_computer_is_asked_once_per_position_and_can_run_out_of_time() -> None:
    network = Network(config=NOW)
    me = Tab(network, bot="strong", clock={"kind": "move", "seconds": 1})
    me.play(3)
    me.play(4)  # not my turn: refused, and the computer is not asked again
    me.read()
    assert me.errors[-1]["code"] == "not_your_turn"
    assert len(network.computing) == 1
    network.now = 2.0  # it thought for too long
    network.think()
    me.read()
    assert me.last["reason"] == "time"
    assert me.last["player"] == "red"


def test_the_computers_move_lands_while_its_opponent_is_away_and_back() -> None:
    network = Network(config=NOW)
    me = Tab(network, bot="casual")
    me.play(3)
    me.read()
    me.drop()  # logged (away): the board is the same, so the move asked for still stands
    network.think()
    assert network.server.lobby.game(1).record.startswith("4")
    assert len(network.server.lobby.game(1).moves) == 2
    me.resume()
    assert [m["type"] for m in me.applied[-3:]] == ["away", "play", "joined"]
    me.play(3)
    network.think()
    me.read()
    assert me.last["player"] == "yellow"


def test_after_a_rematch_the_computer_accepted_a_clock_still_falls() -> None:
    network = Network(config=NOW)
    me = Tab(network, bot="casual", color="yellow", clock={"kind": "move", "seconds": 5})
    network.think()  # the computer, red, opens
    me.send("resign")
    me.send("offer", offer="rematch")  # accepted at once: I am red now, and my clock runs
    me.read()
    assert me.last["type"] == "rematch"
    network.advance(network.now + 5.0)
    me.read()
    assert me.last["reason"] == "time"
    assert me.last["player"] == "yellow"


@pytest.mark.parametrize("color", ["red", "yellow"])
def test_the_perfect_computer_plays_a_whole_game_and_never_loses(color: str) -> None:
    network = Network(config=NOW)
    me = Tab(network, bot="perfect", color=color)
    assert me.applied[0 if color == "yellow" else 1]["bot"] == "perfect"
    end = play_to_the_end(network, me, random.Random(4))
    computer = "yellow" if color == "red" else "red"
    assert end["type"] == "win", end
    assert end["player"] == computer


def test_a_level_the_server_does_not_offer_is_refused_with_the_others_named() -> None:
    levels = frozenset({Level.BEGINNER, Level.STRONG})
    network = Network(config=Config(bot_delay=0.0, computer_levels=levels))
    page = network.websocket()
    page.send({"type": "init", "v": 0, "bot": "perfect"})
    (refused,) = page.take()
    assert refused == {
        "type": "error",
        "code": "level_unavailable",
        "message": "This server does not offer the perfect level; choose another: "
        "beginner, strong.",
    }
    assert network.server.lobby.game_count == 0  # nothing was created
    page.send({"type": "init", "v": 0, "bot": "strong"})
    assert page.take()[0]["type"] == "init"


def test_the_levels_offered_are_validated() -> None:
    with pytest.raises(ValueError, match="computer_levels must be a frozenset of levels"):
        Config(computer_levels={"perfect"})  # type: ignore[arg-type]
