"""What Airflow itself says about its triggerer: loop stalls in its log, and its StatsD metrics.

Both are Airflow's own words, read rather than re-measured. The trigger runner's watchdog
(``TriggerRunner.block_watchdog`` in ``airflow/jobs/triggerer_job_runner.py``) wakes every 0.1 s and,
when a wake-up came later than ``[triggerer] blocked_main_thread_warning_threshold`` (0.2 s by
default), logs::

    Triggerer's async thread was blocked for 6.80 seconds, exceeding the configured warning ...

and increments the counter ``triggers.blocked_main_thread``. The supervisor's ``emit_metrics`` sends
the gauges ``triggers.running`` and ``triggerer.capacity_left`` once per loop. ``parse_stalls`` reads
the log; ``parse_statsd`` one StatsD datagram; ``StatsdListener`` is the UDP server (127.0.0.1) that
Airflow is pointed at with ``[metrics] statsd_on`` — which needs the ``statsd`` package in Airflow's
environment, so without it the report has the log's stalls and no metrics.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

STALL = re.compile(r"Triggerer's async thread was blocked for (\d+(?:\.\d+)?) seconds")
BLOCKED = "triggers.blocked_main_thread"
RUNNING = "triggers.running"
CAPACITY_LEFT = "triggerer.capacity_left"


def parse_stalls(log_text: str) -> tuple[float, ...]:
    """The length (seconds) of every stall the triggerer logged, in log order."""
    return tuple(float(m.group(1)) for m in STALL.finditer(log_text))


@dataclass(frozen=True, slots=True)
class Metric:
    """One StatsD line: ``name`` without the prefix, its value and type (c, g, ms, ...)."""

    name: str
    value: float
    kind: str


def parse_statsd(datagram: str, *, prefix: str = "airflow") -> tuple[Metric, ...]:
    """Every well-formed ``name:value|type[|@rate][|#tags]`` line of a datagram; others are skipped.

    Airflow may append tags to the name (``name,tag=v``, InfluxDB style) or after ``|#``
    (DogStatsD): both are dropped, the bench only needs the name."""
    out = []
    for line in datagram.splitlines():
        name, sep, rest = line.strip().partition(":")
        if not sep or "|" not in rest:
            continue
        value_text, kind = rest.split("|")[:2]
        try:
            value = float(value_text)
        except ValueError:
            continue
        name = name.split(",", 1)[0]
        if prefix and name.startswith(prefix + "."):
            name = name[len(prefix) + 1 :]
        out.append(Metric(name=name, value=value, kind=kind))
    return tuple(out)


@dataclass(slots=True)
class MetricTotals:
    """Counters summed, gauges' last, peak and least value, per metric name."""

    counters: dict[str, float] = field(default_factory=dict)
    gauge_last: dict[str, float] = field(default_factory=dict)
    gauge_max: dict[str, float] = field(default_factory=dict)
    gauge_min: dict[str, float] = field(default_factory=dict)
    datagrams: int = 0

    def add(self, metrics: Iterable[Metric]) -> None:
        for m in metrics:
            if m.kind == "c":
                self.counters[m.name] = self.counters.get(m.name, 0.0) + m.value
            elif m.kind == "g":
                self.gauge_last[m.name] = m.value
                self.gauge_max[m.name] = max(self.gauge_max.get(m.name, m.value), m.value)
                self.gauge_min[m.name] = min(self.gauge_min.get(m.name, m.value), m.value)


class StatsdListener:
    """A UDP StatsD server on 127.0.0.1 in a thread of the orchestrator; ``reset()`` per phase."""

    def __init__(self, *, prefix: str = "airflow") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port: int = self._socket.getsockname()[1]
        self._prefix = prefix
        self._lock = threading.Lock()
        self._totals = MetricTotals()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-statsd", daemon=True)

    def __enter__(self) -> StatsdListener:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()

    def reset(self) -> None:
        with self._lock:
            self._totals = MetricTotals()

    def totals(self) -> MetricTotals:
        with self._lock:
            t = self._totals
            return MetricTotals(
                dict(t.counters), dict(t.gauge_last), dict(t.gauge_max), dict(t.gauge_min), t.datagrams
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            metrics = parse_statsd(data.decode(errors="replace"), prefix=self._prefix)
            with self._lock:
                self._totals.add(metrics)
                self._totals.datagrams += 1

    def wait_for(self, name: str, *, timeout_seconds: float) -> bool:
        """Whether a metric of that name arrived within the time (Airflow sends gauges each loop)."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            totals = self.totals()
            if name in totals.gauge_last or name in totals.counters:
                return True
            time.sleep(0.2)
        return False


def statsd_env(port: int) -> dict[str, str]:
    """Airflow's configuration that sends its metrics to ``port`` on 127.0.0.1."""
    return {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
    }
