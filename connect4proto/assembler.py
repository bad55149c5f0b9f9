"""A WebSocket message from its fragments (RFC 6455 section 5.4), within a size and a count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

__all__ = ["MessageAssembler", "TooBig"]


@dataclass(frozen=True, slots=True)
class TooBig:
    """The message outgrew a limit: close with 1009 and say which (``reason``)."""

    reason: str


class MessageAssembler:
    """Pieces of one message in, the whole message out once its last frame came.

    Sizes count UTF-8 bytes, and every frame counts toward the fragment limit (zero-byte
    continuations too), so neither a huge message nor an endless trickle is buffered.
    """

    __slots__ = ("_fragments", "_max_fragments", "_max_size", "_parts", "_size", "pending")

    def __init__(self, *, max_size: int, max_fragments: int) -> None:
        self._max_size = max_size
        self._max_fragments = max_fragments
        self._parts: list[str | bytes] = []
        self._size = 0
        self._fragments = 0
        #: Whether pieces of an unfinished message are held (an attribute, not a property:
        #: it is read for every message).
        self.pending = False

    def add(
        self, data: str | bytes, *, frame_finished: bool, message_finished: bool
    ) -> str | bytes | TooBig | None:
        """One piece; the message once complete (None until then), or why it is refused."""
        if isinstance(data, str):
            # A str's UTF-8 size is its length when it is ASCII (the common case), in O(1).
            self._size += len(data) if data.isascii() else len(data.encode())
        else:
            self._size += len(data)
        if frame_finished:
            self._fragments += 1
        if self._size > self._max_size:
            self.clear()
            return TooBig(f"Message larger than {self._max_size} bytes.")
        if self._fragments > self._max_fragments:
            self.clear()
            return TooBig(f"Message in more than {self._max_fragments} fragments.")
        if not message_finished:
            self._parts.append(data)
            self.pending = True
            return None
        parts = self._parts
        if parts:
            # Every piece has the type of the first frame (wsproto checks the opcodes).
            parts.append(data)
            if isinstance(data, str):
                data = "".join(cast("list[str]", parts))
            else:
                data = b"".join(cast("list[bytes]", parts))
        self.clear()
        return data

    def clear(self) -> None:
        self._parts = []
        self._size = 0
        self._fragments = 0
        self.pending = False
