"""The Autobahn|Testsuite cases against the echo application, run by kosoku.

The echo application (``echo_app.py``) is the game's connection layer and trio driver with an
echoing hook, served on loopback in the test; kosoku (a Python 3 runner of the Autobahn case
files) drives it in fuzzingclient mode from a subprocess, so a hung case can be killed. Every
case must end OK, NON-STRICT or INFORMATIONAL, for the messages and for the close alike.
Autobahn's reports (index.html, one page per case) are left in the test's tmp_path.
"""

from __future__ import annotations

import json
import logging
import sysconfig
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from echo_app import echo_server

from connect4proto.driver import Driver, serve

pytestmark = pytest.mark.conformance

KOSOKU = Path(sysconfig.get_path("scripts")) / "kosoku"
PASSING = frozenset({"OK", "NON-STRICT", "INFORMATIONAL"})
PASSING_CLOSE = frozenset({"OK", "INFORMATIONAL"})


async def run_cases(patterns: list[str], report: Path) -> dict[str, dict[str, Any]]:
    """Serve the echo application and run kosoku on ``patterns``; the results by case id."""
    driver = Driver(echo_server())
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(serve, driver, "127.0.0.1", 0))
        address = url.removeprefix("http://").rstrip("/")
        command = [str(KOSOKU), address, "--outdir", str(report)]
        for pattern in patterns:
            command += ["--include", pattern]
        with trio.fail_after(120):
            # Exit status 1 means that some case failed: the report says which.
            done = await trio.run_process(
                command, check=False, capture_stdout=True, capture_stderr=True
            )
        nursery.cancel_scope.cancel()
    index = report / "index.json"
    assert index.exists(), (done.returncode, done.stdout, done.stderr)
    (results,) = json.loads(index.read_text()).values()  # one agent: the echo server
    cases: dict[str, dict[str, Any]] = results
    return cases


@pytest.mark.parametrize(
    ("patterns", "expected_cases"),
    [
        pytest.param(
            ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"], 247, id="cases-1-7-10"
        ),
        # The limits: messages of up to 16 MiB, 4 MiB in 64-byte fragments, 1,000 round trips.
        pytest.param(["9.*"], 54, id="cases-9"),
    ],
)
async def test_echo_server_passes_the_autobahn_cases(
    patterns: list[str],
    expected_cases: int,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="connect4proto")
    cases = await run_cases(patterns, tmp_path / "report")
    behaviors = Counter(case["behavior"] for case in cases.values())
    closes = Counter(case["behaviorClose"] for case in cases.values())
    print(f"{len(cases)} cases; behavior: {dict(behaviors)}; close: {dict(closes)}")
    failed = {
        case_id: (case["behavior"], case["behaviorClose"], case["remoteCloseCode"])
        for case_id, case in cases.items()
        if case["behavior"] not in PASSING or case["behaviorClose"] not in PASSING_CLOSE
    }
    assert not failed, f"see {tmp_path / 'report' / 'index.html'}"
    # A runner that silently runs fewer cases must not pass.
    assert len(cases) == expected_cases
    # Peers' protocol errors are logged as warnings; an error is a bug of ours (close 1011).
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
