"""The web UI's files (not Python): installed as the package data ``connect4proto.static``."""
