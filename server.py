"""Run ``python server.py`` and open the address it prints.

The server itself is the package's trio driver, ``connect4proto.driver`` (installed, it is
also ``python -m connect4proto`` and the ``connect4-server`` command); this file only starts
it from a checkout.
"""

from connect4proto.driver import run

if __name__ == "__main__":
    run("server.py")
