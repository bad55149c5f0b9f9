from __future__ import annotations

import sys
from pathlib import Path

# The in-memory peers live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))

import pytest

#: The core's suites that run twice: with the in-memory store, and as one process whose games
#: are shared through a store outside it (``shared_log.SharedLog``, answering at once). A
#: player must not be able to tell the two apart.
_BOTH_STORES = {
    "test_core_computer",
    "test_core_games",
    "test_core_match",
    "test_core_protocol",
    "test_core_sessions",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (
        "games_store" in metafunc.fixturenames
        and metafunc.module.__name__ in _BOTH_STORES
        and metafunc.definition.get_closest_marker("memory_store") is None
    ):
        metafunc.parametrize("games_store", ["memory", "shared"], indirect=True)


@pytest.fixture(autouse=True)
def games_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where the test's ``Network``s keep their games."""
    kind: str = getattr(request, "param", "memory")
    if kind == "shared":
        from shared_log import SharedLog, SharedNetwork

        def shared_network(*arguments: object, **options: object) -> SharedNetwork:
            return SharedNetwork(SharedLog(), *arguments, **options)  # type: ignore[arg-type]

        monkeypatch.setattr(request.module, "Network", shared_network)
    return kind
