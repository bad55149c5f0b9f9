"""The web UI's files, read from disk once at start-up and handed to the core as bytes."""

from __future__ import annotations

import importlib.resources
import logging
import posixpath
from collections.abc import Iterator
from importlib.abc import Traversable
from pathlib import Path

from connect4proto import Site
from connect4proto.web import CONTENT_TYPES

__all__ = ["load_site", "static_files"]

log = logging.getLogger("connect4proto")


def static_files() -> Traversable:
    """The web UI: the checkout's ``static/``, which the package installs as its data
    ``connect4proto.static`` (pyproject.toml maps it), so that the same files serve from a
    checkout, an editable install and a wheel. A checkout run without installing anything
    has no such package: its ``static/`` is then beside the package."""
    try:
        return importlib.resources.files("connect4proto.static")
    except ModuleNotFoundError:  # pragma: no cover - a checkout that was never installed
        return Path(__file__).resolve().parents[2] / "static"


def load_site(directory: Traversable | None = None) -> Site:
    """Every file under ``directory`` (default: ``static_files()``); a file of no known
    type (a ``Thumbs.db`` or ``desktop.ini`` that a desktop drops there, an editor's backup)
    is left out, with a warning."""
    files = {}
    for name, entry in sorted(_walk(static_files() if directory is None else directory)):
        suffix = posixpath.splitext(name)[1]
        if suffix.lower() not in CONTENT_TYPES:
            log.warning("static/%s is not served: no known content type for %r", name, suffix)
            continue
        files[name] = entry.read_bytes()
    return Site.from_files(files)


def _walk(directory: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    """Every file under ``directory`` but hidden ones and the package's own (``__init__.py``,
    which makes it installable as package data), by its path relative to it."""
    for entry in directory.iterdir():
        if entry.name.startswith(".") or entry.name in ("__init__.py", "__pycache__"):
            continue
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")
        elif entry.is_file():
            yield prefix + entry.name, entry
