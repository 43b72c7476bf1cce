"""The servers a production-like `AirflowDeployment` runs beside Airflow: PostgreSQL and Redis.

Each server lives in a temporary directory of its own, listens on a free port of 127.0.0.1 only, and
runs in the foreground as a process the deployment starts, tracks and stops by PID, like any Airflow
component: so a test can ``kill("postgres", SIGKILL)`` or ``restart("redis")`` it. A server object
knows how to prepare its directory, which command to run, how to tell that it accepts clients, and
which signal shuts it down quickly; the deployment does the launching, so that orphans (PostgreSQL
backends of a SIGKILLed postmaster) are found and killed like any other leftover.

``initdb`` and ``postgres`` refuse to run as root: as root, both run as the ``postgres`` OS user
(Debian's package creates it), and the data directory is chowned to it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from resumable_triggers.testing.airflow._errors import DeploymentError

# Debian installs PostgreSQL's server binaries outside PATH, one directory per major version.
_DEBIAN_POSTGRES_ROOT = Path("/usr/lib/postgresql")
POSTGRES_USER = "postgres"  # the OS user as which the server runs when we are root
DATABASE = "airflow"  # the database (and role) created for Airflow


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago (the server binds it shortly after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_postgres_binary(name: str) -> Path:
    """``initdb`` or ``postgres``: from PATH, else from Debian's newest ``/usr/lib/postgresql/<v>/bin``."""
    found = shutil.which(name)
    if found:
        return Path(found)
    versions = sorted(
        (p for p in _DEBIAN_POSTGRES_ROOT.glob("*/bin") if (p / name).is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1] / name
    raise DeploymentError(
        f"PostgreSQL's {name!r} is neither on PATH nor under {_DEBIAN_POSTGRES_ROOT}/<version>/bin; "
        "install it (Debian: apt-get install postgresql; scripts/_bootstrap.sh does so as root)"
    )


def _require_binary(name: str, package: str) -> Path:
    found = shutil.which(name)
    if found is None:
        raise DeploymentError(f"{name!r} is not on PATH; install it (Debian: apt-get install {package})")
    return Path(found)


class Server(Protocol):
    """What the deployment needs to know to run a server as one of its components."""

    name: str
    port: int
    stop_signal: signal.Signals  # the signal of a quick, clean shutdown
    directory: Path | None  # its own temporary directory, once prepared; it runs there

    def prepare(self) -> None:
        """Create the server's directory and files; called once, before its first start."""

    def command(self) -> list[str]:
        """The foreground command line of the server."""

    def run_as(self) -> str | None:
        """The OS user to run the server as, or None for ours."""

    def is_ready(self) -> bool:
        """Whether the server accepts clients now."""

    def cleanup(self) -> None:
        """Delete the server's directory; called once it was stopped for good."""


@dataclass
class PostgresServer:
    """A throw-away PostgreSQL cluster: trust authentication, no durability (``fsync=off``).

    ``url`` is the SQLAlchemy URL of its ``airflow`` database (the ``postgresql+psycopg2`` driver;
    Airflow opens an asyncpg engine on the same URL itself). Fast shutdown is SIGINT: it ends the
    sessions and stops without waiting for clients, as a container stop would.
    """

    name: str = "postgres"
    port: int = 0
    stop_signal: signal.Signals = signal.SIGINT
    directory: Path | None = None

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port()

    @property
    def data_dir(self) -> Path:
        return self._directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self._directory / "socket"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{DATABASE}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def _directory(self) -> Path:
        if self.directory is None:
            raise DeploymentError(f"{self.name} has no directory yet; prepare() it first")
        return self.directory

    def run_as(self) -> str | None:
        return POSTGRES_USER if os.geteuid() == 0 else None

    def prepare(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="airflow-deployment-postgres-"))
        self.socket_dir.mkdir()
        user = self.run_as()
        if user is not None:
            try:
                account = pwd.getpwnam(user)
            except KeyError as exc:
                raise DeploymentError(
                    f"we run as root, and PostgreSQL refuses root, but there is no {user!r} OS user to "
                    "run it as; install Debian's postgresql package (it creates the user)"
                ) from exc
            for path in (self._directory, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        result = subprocess.run(
            # The superuser is named after Airflow's database, so Airflow connects as its owner.
            [
                str(find_postgres_binary("initdb")),
                "-D",
                str(self.data_dir),
                "-U",
                DATABASE,
                *("--auth=trust", "--encoding=UTF8", "--no-sync"),
            ],
            user=user,
            cwd=self._directory,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")[-2000:]
            raise DeploymentError(f"initdb of {self.data_dir} failed with code {result.returncode}: {output}")

    def command(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            # Durability buys nothing in a test and costs seconds on a loaded machine.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            # Two schedulers, two triggerers, workers, the API server: each holds a pool of its own.
            "max_connections": "300",
        }
        flags = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        return [str(find_postgres_binary("postgres")), "-D", str(self.data_dir), *flags]

    def is_ready(self) -> bool:
        import psycopg2  # the test extra's dependency; only a postgres deployment needs it

        try:
            connection = psycopg2.connect(
                host="127.0.0.1", port=self.port, user=DATABASE, dbname="postgres", connect_timeout=2
            )
        except psycopg2.OperationalError:  # refused, or "the database system is starting up"
            return False
        connection.close()
        return True

    def create_database(self) -> None:
        """Create Airflow's database (once, after the first start)."""
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=DATABASE, dbname="postgres")
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            connection.close()

    def cleanup(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class RedisServer:
    """A throw-away Redis for Celery's broker: no persistence, so a restart starts empty.

    That is what a broker restart without a volume does: messages queued but not yet taken by a
    worker are lost, and Airflow's scheduler must notice. SIGTERM is Redis's clean, quick shutdown.
    """

    name: str = "redis"
    port: int = 0
    stop_signal: signal.Signals = signal.SIGTERM
    directory: Path | None = None

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def run_as(self) -> str | None:
        return None

    def prepare(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="airflow-deployment-redis-"))

    def command(self) -> list[str]:
        return [
            str(_require_binary("redis-server", "redis-server")),
            *("--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory)),
            *("--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"),
        ]

    def is_ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:  # refused while starting, or reset while stopping
            return False

    def cleanup(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
