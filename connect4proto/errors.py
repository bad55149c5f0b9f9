"""Whose fault is it: errors raised at the code that drives the core.

A peer's mistakes are never raised: they are answered on the wire (an ``error`` event, an
HTTP error, a close frame). Only misuse of the core by its driver raises.
"""

from __future__ import annotations

__all__ = ["LocalProtocolError"]


class LocalProtocolError(Exception):
    """The driver used the core wrongly (for example fed a connection it was told to close)."""
