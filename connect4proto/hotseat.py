"""Hot-seat games: both colours on one connection, as in the websockets tutorial's part 1.

A connection that sends ``play`` without ever sending ``init`` plays a game of its own: red
first, the colours alternating on each legal move. Its page is the tutorial's first one, which
knows ``play``, ``win`` and ``error`` (and this server's ``draw``) and throws on anything else,
so that is all it hears: no versions, no codes, nobody else in the game.
"""

from __future__ import annotations

from .events import ConnectionId
from .game import Game, IllegalMove
from .messages import Draw, Error, Played, ServerMessage, Win

__all__ = ["HotSeats"]


class HotSeats:
    """The hot-seat game of each connection that plays one."""

    __slots__ = ("_games",)

    def __init__(self) -> None:
        self._games: dict[ConnectionId, Game] = {}

    def __contains__(self, connection: object) -> bool:
        return connection in self._games

    def __len__(self) -> int:
        return len(self._games)

    def game(self, connection: ConnectionId) -> Game | None:
        return self._games.get(connection)

    def play(self, connection: ConnectionId, column: int) -> list[ServerMessage]:
        """``connection``'s next move (its first starts its game): what its page is told."""
        game = self._games.get(connection)
        if game is None:
            game = self._games[connection] = Game()
        move = game.play(game.turn, column)
        if isinstance(move, IllegalMove):
            return [Error(message=move.reason)]
        messages: list[ServerMessage] = [
            Played(player=move.player, column=move.column, row=move.row)
        ]
        if game.ending is not None:
            winner = game.winner
            messages.append(
                Draw() if winner is None else Win(player=winner, cells=game.winning_cells)
            )
        return messages

    def end(self, connection: ConnectionId) -> None:
        """``connection`` is gone, and its game with it."""
        self._games.pop(connection, None)
