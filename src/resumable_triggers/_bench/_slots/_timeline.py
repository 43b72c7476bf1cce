"""From what was observed to worker-slot segments: pure functions, no I/O.

Two sources, each turned into segments per task-instance try (one try = one logical attempt here: the
bench's DAGs have no retries):

- **Processes** (what the worker really holds). The bench samples the deployment's processes every
  ``--sample-seconds``; a LocalExecutor worker that runs a try carries the try's id in its title
  (``supervisor``), and so does the task process it forks (``task``). A try is *holding a slot* in
  every sample that shows one of them. A segment is a maximal stretch of samples that show the try,
  split also where the task process or the worker changes (a try that resumes within one sample
  interval of deferring)::

        sample:   s0    s1    s2    s3   ...   s40   s41   s42
        try A:    -     sup   task  task  -     -    sup   task  -
                        [ segment 1  ]              [segment 2]

  A segment's true start lies in (the sample before it, its first sample], its true end in [its last
  sample, the sample after it); its duration is estimated from the midpoints of those intervals, so
  the error is at most one sample interval, either way.

- **Airflow's audit log** (``/eventLogs``): the Execution API writes ``running`` when a try starts or
  resumes, and the state it leaves running for (``deferred``, ``success``, ``failed``...). A segment is
  a ``running`` event and the next event of the same try. These are the API server's clock at the
  moments the worker reported, so they sit inside the process segments (process start-up before,
  and shutdown after): the cross-check.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Audit-log events that end a segment: the try stopped running, for this reason.
ENDING_EVENTS = frozenset(
    {"deferred", "success", "failed", "up_for_retry", "up_for_reschedule", "skipped", "removed"}
)


@dataclass(frozen=True, slots=True)
class SeenProcess:
    """One process of a try in one sample: ``role`` is ``"supervisor"`` or ``"task"``."""

    ti_id: str
    role: str
    pid: int


@dataclass(frozen=True, slots=True)
class Sample:
    """What one look at the deployment's processes found; ``t`` is epoch seconds."""

    t: float
    processes: tuple[SeenProcess, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """One stretch during which a try held a worker slot (epoch seconds).

    ``appeared_after`` / ``gone_by`` are the samples around it that did not show it (None at the
    edges of the sampling): the true start is in (appeared_after, first_seen], the end in
    [last_seen, gone_by)."""

    first_seen: float
    last_seen: float
    appeared_after: float | None
    gone_by: float | None

    @property
    def start(self) -> float:
        return self.first_seen if self.appeared_after is None else (self.appeared_after + self.first_seen) / 2

    @property
    def end(self) -> float:
        return self.last_seen if self.gone_by is None else (self.last_seen + self.gone_by) / 2

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditSegment:
    """A ``running`` event and the event that ended it (``ended_by``), epoch seconds."""

    start: float
    end: float
    ended_by: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit-log entry of a try: ``key`` names the task instance (e.g. its map index)."""

    key: str
    try_number: int
    when: float
    event: str


def process_segments(samples: Sequence[Sample]) -> dict[str, list[Segment]]:
    """Segments per try id, in time order, from samples in time order."""
    times = [s.t for s in samples]
    # ti_id -> [(sample index, supervisor pid, task pid)]
    sightings: dict[str, list[tuple[int, int | None, int | None]]] = {}
    for index, sample in enumerate(samples):
        per_try: dict[str, dict[str, int]] = {}
        for proc in sample.processes:
            per_try.setdefault(proc.ti_id, {})[proc.role] = proc.pid
        for ti_id, roles in per_try.items():
            sightings.setdefault(ti_id, []).append((index, roles.get("supervisor"), roles.get("task")))
    return {ti_id: _split(seen, times) for ti_id, seen in sightings.items()}


def _split(seen: list[tuple[int, int | None, int | None]], times: Sequence[float]) -> list[Segment]:
    runs: list[list[int]] = []
    supervisor = task = None
    previous = -2
    for index, sup, tsk in seen:
        changed = (sup is not None and supervisor is not None and sup != supervisor) or (
            tsk is not None and task is not None and tsk != task
        )
        if index != previous + 1 or changed:
            runs.append([])
            supervisor = task = None
        runs[-1].append(index)
        supervisor = sup if sup is not None else supervisor
        task = tsk if tsk is not None else task
        previous = index
    return [
        Segment(
            first_seen=times[run[0]],
            last_seen=times[run[-1]],
            # A segment that begins right after another (no gap) has no empty sample before it: the
            # last sample of the one before is the best bound there is.
            appeared_after=times[run[0] - 1] if run[0] > 0 else None,
            gone_by=times[run[-1] + 1] if run[-1] + 1 < len(times) else None,
        )
        for run in runs
    ]


def audit_segments(events: Iterable[AuditEvent]) -> dict[tuple[str, int], list[AuditSegment]]:
    """Segments per (task instance key, try number), in time order. A ``running`` without an ending
    event (the try still ran when the log was read) gives no segment."""
    by_try: dict[tuple[str, int], list[AuditEvent]] = {}
    for event in events:
        by_try.setdefault((event.key, event.try_number), []).append(event)
    out: dict[tuple[str, int], list[AuditSegment]] = {}
    for key, evs in by_try.items():
        evs.sort(key=lambda e: e.when)
        segments: list[AuditSegment] = []
        started: float | None = None
        for ev in evs:
            if ev.event == "running":
                started = ev.when
            elif ev.event in ENDING_EVENTS and started is not None:
                segments.append(AuditSegment(start=started, end=ev.when, ended_by=ev.event))
                started = None
        out[key] = segments
    return out


def contains(outer: Segment, inner: AuditSegment) -> bool:
    """Whether the audit segment can lie inside the process segment: it starts after the last sample
    that did not show the try, and ends before the first sample that no longer did."""
    after = outer.appeared_after if outer.appeared_after is not None else -math.inf
    before = outer.gone_by if outer.gone_by is not None else math.inf
    return after < inner.start and inner.end < before
