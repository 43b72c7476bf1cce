"""Samples the trigger process from outside (CPU, RSS, TCP connections) and the emulator's counters.

A thread of the orchestrator, so sampling never runs on the measured process or its event loop.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil

from resumable_triggers._bench._workload import SETUP_ENDPOINT
from resumable_triggers.testing import EmulatorControl


@dataclass(slots=True)
class Samples:
    """One row per sample; ``t`` is seconds since sampling started."""

    t: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    rss_bytes: list[int] = field(default_factory=list)
    connections: list[int] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)


class Sampler:
    """``with Sampler(pid, port, control, every_seconds=...) as s:`` samples until the block ends."""

    def __init__(
        self, pid: int, emulator_port: int, control: EmulatorControl, *, every_seconds: float
    ) -> None:
        self.samples = Samples()
        self._process = psutil.Process(pid)
        self._port = emulator_port
        self._control = control
        self._every = every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _connections(self) -> int:
        # Sockets of the trigger process to the emulator, in any state: that is what a workspace
        # (and the triggerer's file-descriptor limit) sees.
        return sum(
            1 for c in self._process.net_connections(kind="tcp") if c.raddr and c.raddr.port == self._port
        )

    def _run(self) -> None:
        origin = time.monotonic()
        while not self._stop.is_set():
            try:
                cpu = self._process.cpu_times()
                rss = self._process.memory_info().rss
                connections = self._connections()
            except psutil.NoSuchProcess:
                return
            counters = self._control.counters()
            s = self.samples
            s.t.append(round(time.monotonic() - origin, 3))
            s.cpu_seconds.append(cpu.user + cpu.system)
            s.rss_bytes.append(rss)
            s.connections.append(connections)
            s.requests.append(
                sum(n for endpoint, n in counters.requests_by_endpoint.items() if endpoint != SETUP_ENDPOINT)
            )
            self._stop.wait(self._every)
