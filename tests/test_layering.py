"""The core is sans-IO: nothing in ``connect4proto`` outside its driver imports a module of
I/O, time, threads or randomness, nor the driver; importing the core loads none of them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "connect4proto"
#: What only the driver may use: sockets, polling, the clock, threads and processes,
#: randomness, the OS, signals, the event loop, the metrics' format.
FORBIDDEN = {
    "asyncio", "concurrent", "multiprocessing", "os", "prometheus_client", "random",
    "secrets", "select", "selectors", "signal", "socket", "subprocess", "threading", "time",
    "trio",
}  # fmt: skip
CORE = sorted(
    path
    for path in PACKAGE.rglob("*.py")
    if "driver" not in path.relative_to(PACKAGE).parts and path.name != "__main__.py"
)


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, as absolute names (relative ones resolved)."""
    package = ".".join(("connect4proto", *path.relative_to(PACKAGE).parent.parts))
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.add(f"{base}.{node.module}" if node.module else base)
            else:
                assert node.module is not None
                names.add(node.module)
    return names


@pytest.mark.parametrize("path", CORE, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_the_core_imports_no_io_and_not_the_driver(path: Path) -> None:
    names = imported(path)
    assert not {name for name in names if name.split(".")[0] in FORBIDDEN}
    assert not {name for name in names if name.startswith("connect4proto.driver")}


def test_importing_the_core_loads_no_io_module() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, connect4proto; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "trio" not in loaded
    assert "prometheus_client" not in loaded
    assert "connect4proto.driver" not in loaded
