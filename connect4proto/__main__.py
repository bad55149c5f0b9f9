"""``python -m connect4proto``: the server, as ``server.py`` starts it from a checkout."""

from connect4proto.driver import run

run("python -m connect4proto")
