"""``pip install`` gives a working server: the wheel holds the driver and the web UI, and
``python -m connect4proto`` and the ``connect4-server`` command serve a whole game from a
directory that is not the checkout, importing the installed copy, not this one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
from processes import ROOT, play_a_full_game, start_server, stop_server

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the scripts' layout: POSIX")


#: The two ways to start an installed server.
HOW = ["python -m connect4proto", "connect4-server"]


def command(how: str, installed: Path) -> list[str]:
    if how == "connect4-server":
        return [str(installed / "bin" / "connect4-server")]  # its shebang: this interpreter
    return [sys.executable, "-m", "connect4proto"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from a copy of the sources (the build leaves the checkout alone)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("connect4proto", "static"):
        shutil.copytree(
            ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    wheels = tmp_path_factory.mktemp("wheels")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        check=True,
        timeout=300,
    )
    (built,) = wheels.glob("connect4proto-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into a directory of its own (its dependencies are this venv's)."""
    target = tmp_path_factory.mktemp("installed")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
    )
    return target


@pytest.fixture
def environment(installed: Path) -> dict[str, str]:
    """The installed copy first on the path: it is what ``import connect4proto`` finds."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    # (Not traced by coverage: this copy is not the checkout's.)
    return {**environment, "PYTHONPATH": str(installed), "CONNECT4_POLLER": "auto"}


def test_the_wheel_holds_the_driver_the_web_ui_and_the_command(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("pump.py", "pollers.py", "cli.py", "thinkers.py", "serving.py"):
        assert f"connect4proto/driver/{name}" in names
    assert "connect4proto/__main__.py" in names
    for name in ("index.html", "app.js", "style.css", "favicon.svg"):
        assert f"connect4proto/static/{name}" in names
    assert "connect4proto/py.typed" in names
    assert not any(name.startswith(("tests/", "benchmarks/", "server.py")) for name in names)
    (entry_points,) = (name for name in names if name.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "connect4-server = connect4proto.driver:run" in text


def test_the_installed_copy_is_the_one_imported(
    installed: Path, environment: dict[str, str], tmp_path: Path
) -> None:
    where = subprocess.run(
        [sys.executable, "-c", "import connect4proto.driver as d; print(d.__file__)"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed)


@pytest.mark.parametrize("how", HOW)
def test_the_installed_server_plays_a_game_from_any_directory(
    how: str, installed: Path, environment: dict[str, str], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()  # no static/, no server.py, no connect4proto/ here
    process, url = start_server(
        tmp_path, command=command(how, installed), cwd=elsewhere, env=environment
    )
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.read() == (ROOT / "static" / "index.html").read_bytes()
        with urllib.request.urlopen(url + "app.js", timeout=5) as response:
            assert response.read() == (ROOT / "static" / "app.js").read_bytes()
        play_a_full_game(url)
    finally:
        logs = stop_server(process, tmp_path)
    assert "SIGTERM: shutting down" in logs
    assert "is not served" not in logs  # the package's own __init__.py is not a page


@pytest.mark.parametrize(
    ("how", "name"),
    [
        ("python -m connect4proto", "python -m connect4proto"),
        ("connect4-server", "connect4-server"),
    ],
)
def test_mistakes_name_the_command_the_user_typed(
    how: str, name: str, installed: Path, environment: dict[str, str], tmp_path: Path
) -> None:
    command = (
        [sys.executable, "-m", "connect4proto"]
        if how.startswith("python")
        else [str(installed / "bin" / "connect4-server")]
    )
    stopped = subprocess.run(
        [*command, "--port", "99999"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stopped.returncode == 2
    assert stopped.stderr.startswith(f"{how}: argument --port: 99999 is not a port")
