"""The Airflow a ``bench-triggerer`` run measures: PostgreSQL, an API server, a DAG processor, a triggerer.

No scheduler: a task instance whose event arrived stays ``scheduled``, so the bench reads what the
triggerer delivered, and no worker competes with the triggerer for the machine's cores. The DAG
(``DAG_ID``, one task per implementation, the operators that would defer on each trigger) is written
into a dags folder of the bench's own, for the DAG processor to serialize: seeded DAG runs are made
from that serialized DAG, as the scheduler makes them.

``SeedProcess`` is the orchestrator's handle on ``_seed`` (the Airflow models side); ``TreeProbe``
measures the triggerer's whole process tree (the supervisor, its trigger runner and anything else it
forks) from outside.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psutil

from resumable_triggers.testing.airflow._config import inherited_env, secret

DAG_ID = "resumable_triggers_bench_triggerer"
TASK_IDS = {"ours": "ours", "provider": "provider"}

DAG_FILE = f'''"""The DAG whose task instances ``bench-triggerer`` defers (paused: nothing runs them)."""

import datetime as dt

from airflow.providers.databricks.operators.databricks import DatabricksSubmitRunOperator as ProviderSubmit
from airflow.sdk import DAG

from resumable_triggers.databricks import DatabricksSubmitRunOperator

with DAG(
    dag_id="{DAG_ID}",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    is_paused_upon_creation=True,
    max_active_runs=100_000,
):
    DatabricksSubmitRunOperator(task_id="ours", notebook_task={{"notebook_path": "/bench"}})
    ProviderSubmit(task_id="provider", notebook_task={{"notebook_path": "/bench"}}, deferrable=True)
'''


def write_dags_folder(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bench_triggerer.py").write_text(DAG_FILE)
    return directory


_SEED_MAIN = "import sys; from resumable_triggers._bench._triggerer._seed import main; sys.exit(main())"


class SeedProcess:
    """``_seed`` in a subprocess on the deployment's database: ``call(op, **arguments)``."""

    def __init__(self, *, database_url: str, fernet_key: str, workdir: Path) -> None:
        env = inherited_env()
        env.update(
            AIRFLOW_HOME=str(workdir / "seed-home"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=database_url,
            AIRFLOW__CORE__FERNET_KEY=fernet_key,
            PYTHONUNBUFFERED="1",
        )
        self._stderr_path = workdir / "seed.stderr"
        self._stderr: IO[bytes] = open(self._stderr_path, "wb")  # noqa: SIM115 - closed in close()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SEED_MAIN],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            text=True,
        )
        self._answer()  # "ready": Airflow imported and configured

    def __enter__(self) -> SeedProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def call(self, op: str, **arguments: Any) -> Any:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self._proc.stdin.flush()
        return self._answer()

    def _answer(self) -> Any:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            tail = self._stderr_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"bench-triggerer: the seed process exited:\n{tail}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"bench-triggerer: seeding failed: {answer['error']}")
        return answer["ok"]

    def close(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()


@dataclass(frozen=True, slots=True)
class TreeSample:
    """The triggerer's process tree at one moment: CPU seconds (alive processes, user + system), RSS
    summed, and TCP sockets to the workspace and to the database."""

    processes: int
    cpu_seconds: float
    rss_bytes: int
    workspace_connections: int
    database_connections: int


class TreeProbe:
    """The triggerer's main process and every descendant, measured from outside."""

    def __init__(self, pid: int, *, workspace_port: int, database_port: int | None) -> None:
        self._root = psutil.Process(pid)
        self._workspace_port = workspace_port
        self._database_port = database_port

    def sample(self) -> TreeSample:
        processes = [self._root, *self._root.children(recursive=True)]
        cpu = 0.0
        rss = workspace = database = 0
        alive = 0
        for process in processes:
            try:
                times = process.cpu_times()
                memory = process.memory_info()
                sockets = process.net_connections(kind="tcp")
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            alive += 1
            cpu += times.user + times.system
            rss += memory.rss
            for c in sockets:
                if not c.raddr:
                    continue
                workspace += c.raddr.port == self._workspace_port
                database += c.raddr.port == self._database_port
        return TreeSample(alive, cpu, rss, workspace, database)


def database_port(url: str) -> int | None:
    """The TCP port of a SQLAlchemy URL on 127.0.0.1 (None for SQLite)."""
    if "@127.0.0.1:" not in url:
        return None
    return int(url.split("@127.0.0.1:", 1)[1].split("/", 1)[0])


def new_fernet_key() -> str:
    return secret()


def bench_dags_folder() -> Path:
    return write_dags_folder(Path(tempfile.mkdtemp(prefix="rt-bench-triggerer-dags-")))
