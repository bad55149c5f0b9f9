"""``python server.py`` as on macOS or Windows, on Linux: no ``select.epoll``, no ``resource``.

trio is imported first, so that its own I/O backend keeps the real ``select``; then
``server.py`` gets a ``select`` module without epoll, and ``import resource`` fails as it does
on Windows. The arguments are server.py's.
"""

from __future__ import annotations

import runpy
import select
import sys
import types
from pathlib import Path

import trio  # noqa: F401  (first: its backend binds the real select)

ROOT = Path(__file__).resolve().parent.parent

shim = types.ModuleType("select")
shim.__dict__.update(
    {name: value for name, value in vars(select).items() if "epoll" not in name.lower()}
)
sys.modules["select"] = shim
sys.modules["resource"] = None  # type: ignore[assignment]  # import resource: ImportError
sys.argv = [str(ROOT / "server.py"), *sys.argv[1:]]
sys.path.insert(0, str(ROOT))
runpy.run_path(str(ROOT / "server.py"), run_name="__main__")
