"""A throwaway PostgreSQL server of one's own (``scripts/test-postgres`` on a free port), restartable.

The soak benchmark and the storage-outage test restart the server mid-study, so they start
their own instead of sharing the test suite's.
"""
import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Dict, Iterator

from benchmarks.scenario import REPO

SCRIPT = REPO / "scripts" / "test-postgres"


class PostgresUnavailable(RuntimeError):
    """``scripts/test-postgres start`` failed (no Debian postgresql, no permission, ...)."""


@dataclass(frozen=True)
class PostgresServer:
    """A running server: its URL and the environment ``scripts/test-postgres`` addresses it by."""

    url: str
    environment: Dict[str, str]

    def restart(self, down_seconds: float) -> None:
        """Stop the server (every connection is closed), wait ``down_seconds``, start it again."""
        with self.down():
            time.sleep(down_seconds)

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """The server stopped (every connection closed) inside the block, and started again after it."""
        self._run("halt")
        try:
            yield
        finally:
            self._run("resume")

    def _run(self, command: str) -> None:
        subprocess.run([str(SCRIPT), command], env=self.environment, check=True, capture_output=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[PostgresServer]:
    """Start a fresh server on a free port (its data under /tmp, which the postgres user can reach); stop it after."""
    port = free_port()
    environment = {**os.environ, "PGTEST_PORT": str(port), "PGTEST_DIR": f"/tmp/allennlp-optuna-pg-{port}"}
    started = subprocess.run([str(SCRIPT), "start"], env=environment, capture_output=True, text=True)
    if started.returncode != 0:
        raise PostgresUnavailable(
            f"cannot start PostgreSQL with scripts/test-postgres (install Debian's postgresql): "
            f"{started.stderr.strip()[-500:]}"
        )
    try:
        yield PostgresServer(started.stdout.strip().split("=", 1)[1], environment)
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=environment, capture_output=True)
