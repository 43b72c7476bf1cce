"""Watching a campaign: task instance states polled over REST, the emulator's request log merged
across restarts, and the final reading of runs, tries and XComs into a ``History``."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
import urllib.parse
from collections.abc import Collection
from typing import Any

from resumable_triggers.testing.airflow import AirflowApiError, AirflowRestClient
from resumable_triggers.testing.chaos._dags import TI_PARAMETER, parse_identity
from resumable_triggers.testing.chaos._history import RequestEvent, RunRecord, TiSample, TryRecord, ti_key
from resumable_triggers.testing.emulator import EmulatorControl, RequestRecord

# Errors of a component that is down for a while (a fault): "not now", never the end of the campaign.
OUTAGES = (AirflowApiError, ConnectionError, OSError, ValueError)


def timestamp(value: str | None) -> float | None:
    """An Airflow ISO date as epoch seconds."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _ti_path(ti: dict[str, Any]) -> str:
    dag_id, run_id, task_id = (_quote(ti[k]) for k in ("dag_id", "dag_run_id", "task_id"))
    return f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"


class Observer:
    """Polls in a thread of its own; ``stop()`` then ``read_*`` for the final history."""

    def __init__(
        self,
        rest: AirflowRestClient,
        control: EmulatorControl,
        dag_ids: Collection[str],
        *,
        interval_seconds: float = 1.0,
    ) -> None:
        self._rest = rest
        self.control = control
        self._dag_ids = sorted(dag_ids)
        self._interval = interval_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-observer", daemon=True)
        self.samples: list[TiSample] = []
        self.requests: list[RequestEvent] = []
        self._last: dict[str, tuple[str | None, int]] = {}
        self.ti_ids: dict[str, str] = {}  # try id -> ti key, to name a struck process's task
        self._log_high_water = 0.0
        self._ticks = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with contextlib.suppress(*OUTAGES):
                self.sample()
            self._ticks += 1
            if self._ticks % 3 == 0:
                with contextlib.suppress(*OUTAGES):
                    self.merge_log()

    # -- Airflow ----------------------------------------------------------------------------------

    def task_instances(self) -> list[dict[str, Any]]:
        answer = self._rest.api(
            "POST",
            "/dags/~/dagRuns/~/taskInstances/list",
            json_body={"dag_ids": self._dag_ids, "page_limit": 1000},
        )
        return list(answer["task_instances"])

    def sample(self) -> list[dict[str, Any]]:
        tis = self.task_instances()
        now = time.time()
        with self._lock:
            for ti in tis:
                key = ti_key(ti["dag_id"], ti["dag_run_id"], ti["task_id"], int(ti["map_index"]))
                self.ti_ids[ti["id"]] = key
                seen = (ti.get("state"), int(ti.get("try_number") or 0))
                if self._last.get(key) != seen:
                    self._last[key] = seen
                    self.samples.append(TiSample(now, key, seen[0], seen[1], timestamp(ti.get("end_date"))))
        return tis

    def dag_run_states(self, runs: Collection[tuple[str, str]]) -> dict[tuple[str, str], str]:
        states = {}
        for dag_id, run_id in runs:
            with contextlib.suppress(AirflowApiError):
                states[(dag_id, run_id)] = str(self._rest.dag_run(dag_id, run_id).get("state"))
        return states

    def tries(self, tis: list[dict[str, Any]]) -> list[TryRecord]:
        found = []
        for ti in tis:
            key = ti_key(ti["dag_id"], ti["dag_run_id"], ti["task_id"], int(ti["map_index"]))
            path = _ti_path(ti)
            if int(ti["map_index"]) >= 0:
                path += f"/{int(ti['map_index'])}"
            with contextlib.suppress(AirflowApiError):
                for t in self._rest.api("GET", path + "/tries")["task_instances"]:
                    found.append(
                        TryRecord(
                            key,
                            int(t["try_number"]),
                            t.get("state"),
                            timestamp(t.get("start_date")),
                            timestamp(t.get("end_date")),
                        )
                    )
        return found

    def xcom_run_ids(self, tis: list[dict[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for ti in tis:
            if ti.get("state") != "success":
                continue
            key = ti_key(ti["dag_id"], ti["dag_run_id"], ti["task_id"], int(ti["map_index"]))
            path = _ti_path(ti) + "/xcomEntries/run_id"
            try:
                value = self._rest.api("GET", path, params={"map_index": int(ti["map_index"])})["value"]
            except AirflowApiError:
                value = None
            with contextlib.suppress(TypeError, ValueError):
                value = int(value)
            found[key] = value
        return found

    # -- the emulator -----------------------------------------------------------------------------

    def merge_log(self) -> None:
        """Add the request log's new records (the emulator keeps the last 10,000 and forgets them
        on a restart: merged every few seconds, and just before a restart)."""
        records: list[RequestRecord] = self.control.request_log
        with self._lock:
            fresh = [r for r in records if r.time > self._log_high_water]
            self.requests.extend(
                RequestEvent(r.time, r.method, r.endpoint, r.status, r.run_id, r.fault) for r in fresh
            )
            if fresh:
                self._log_high_water = fresh[-1].time

    def runs(self) -> list[RunRecord]:
        found = []
        for run in self.control.runs():
            identity = run.get("run_name") or ""
            for parameter in run.get("job_parameters") or ():
                if parameter.get("name") == TI_PARAMETER:
                    identity = str(parameter.get("value") or parameter.get("default") or "")
            parsed = parse_identity(identity)
            state = run.get("state") or {}
            end = run.get("end_time") or 0
            found.append(
                RunRecord(
                    run_id=int(run["run_id"]),
                    ti=None if parsed is None else ti_key(*parsed),
                    start=run["start_time"] / 1000,
                    end=end / 1000 if end else None,
                    life_cycle_state=str(state.get("life_cycle_state")),
                    result_state=state.get("result_state"),
                )
            )
        return found
