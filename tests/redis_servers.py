"""Real ``redis-server`` processes for the tests: each on a free loopback port, with the
persistence a test asks for, stopped (or killed, frozen, restarted) by its pid."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REDIS_SERVER = shutil.which("redis-server")

needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None, reason="no redis-server (Debian: apt install redis-server)"
)


@contextlib.contextmanager
def running(directory: Path, **options: Any) -> Iterator[RedisServer]:
    """A started ``RedisServer`` (``options``: its own), stopped at the end."""
    server = RedisServer(directory, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One redis-server; ``durable``: every write on disk before it is answered
    (``--appendonly yes --appendfsync always``), else no persistence at all."""

    def __init__(
        self,
        directory: Path,
        *,
        durable: bool = False,
        password: str | None = None,
        tls: bool = False,
    ) -> None:
        self.directory = directory
        self.durable = durable
        self.password = password
        self.tls = tls
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        credentials = f":{self.password}@" if self.password is not None else ""
        if self.tls:
            return f"rediss://{credentials}127.0.0.1:{self.port}/0?ca={self.certificate}"
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    @property
    def certificate(self) -> Path:
        """With ``tls``: its self-signed certificate (for 127.0.0.1), the CA to trust."""
        return self.directory / "redis-cert.pem"

    def _make_certificate(self) -> None:
        key = self.directory / "redis-key.pem"
        subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-keyout",
                str(key),
                "-out",
                str(self.certificate),
                *subject,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        """Start it and return once it accepts connections (it says so on its log)."""
        assert REDIS_SERVER is not None
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
            if self.durable
            else ["--appendonly", "no", "--save", ""]
        )
        password = ["--requirepass", self.password] if self.password is not None else []
        if self.tls and not self.certificate.exists():
            self._make_certificate()
        self.process = subprocess.Popen(
            [REDIS_SERVER, *self._options(), *persistence, *password],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        seen = self.log = []
        for line in self.process.stdout:  # ends if the server exits
            seen.append(line)
            if "Ready to accept connections" in line:
                # Its later lines are read too, so that a full pipe never blocks it.
                self._drain = threading.Thread(target=seen.extend, args=(self.process.stdout,))
                self._drain.start()
                return
        raise RuntimeError("redis-server did not start:\n" + "".join(seen))

    def _options(self) -> list[str]:
        ports = ["--port", str(self.port)]
        if self.tls:
            ports = [
                "--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
                "--tls-cert-file", str(self.certificate),
                "--tls-key-file", str(self.directory / "redis-key.pem"),
            ]  # fmt: skip
        return [
            *ports, "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--daemonize", "no", "--logfile", "", "--loglevel", "notice",
        ]  # fmt: skip

    def _signal(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def freeze(self) -> None:
        """SIGSTOP: it holds its connections and answers nothing."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: gone at once, with what its persistence kept."""
        self._signal(signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self._signal(signal.SIGCONT)  # a frozen one cannot stop
            self._signal(signal.SIGTERM)
            self._reap()

    def _reap(self) -> None:
        assert self.process is not None
        self.process.wait(timeout=10)
        if self._drain is not None:
            self._drain.join(timeout=10)  # ends with its stdout
            self._drain = None
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
