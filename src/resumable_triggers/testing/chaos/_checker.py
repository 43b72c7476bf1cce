"""The history checker: the library's promises, judged from the history alone.

It imports nothing of the code under test (``resumable_triggers.resume``, ``.databricks``): runs are
attributed to task instances by the identity the generated DAGs put on them (``_dags``), attempts
are told apart by what Airflow and the user did. The notion of a logical attempt is the documented
one (docs/how-resuming-works.md):

- a task instance's *clear cycle* is opened by its first try and by every user clear that Airflow
  accepted or left unanswered (it may have applied it); a run belongs to the cycle in which it was
  created (after the clear's answer: the new try cannot submit sooner);
- within a cycle, a new *generation* (a new run) is justified only once the previous run ended and
  did not succeed (a retry after a failure); a crash, a lost response, a SIGTERM or a lost watch
  reconnects to the same run.

Invariants (``INVARIANTS``), each a function of the history:

``one-run-per-attempt``
    within a cycle, no run is created while an earlier one is active, nor after one succeeded;
``cancel-needs-a-reason``
    a ``runs/cancel`` that the emulator applied names a run of a task instance that a user acted on
    (mark failed, mark success, clear) before it, or whose try ran past its ``execution_timeout``;
``no-run-outlives-its-task``
    once a task instance is finished (for longer than ``FINISH_GRACE_SECONDS``: a user's kill cancels
    through the trigger's ``on_kill``), none of its runs is active;
``success-needs-a-succeeded-run``
    a task instance that ends ``success`` (not marked so by a user) has a run of its last cycle that
    ended SUCCESS before the task did;
``xcom-names-the-finished-run``
    that task instance's ``run_id`` XCom names that run.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from resumable_triggers.testing.chaos._history import (
    FINAL_TI_STATES,
    ActionEvent,
    History,
    RunRecord,
    TiSample,
)

ONE_RUN = "one-run-per-attempt"
CANCEL = "cancel-needs-a-reason"
OUTLIVES = "no-run-outlives-its-task"
SUCCESS = "success-needs-a-succeeded-run"
XCOM = "xcom-names-the-finished-run"
INVARIANTS = (ONE_RUN, CANCEL, OUTLIVES, SUCCESS, XCOM)

FINISH_GRACE_SECONDS = 20.0
# A run's end and a task's end_date come from two processes' clocks on one machine, in ms.
CLOCK_SLACK_SECONDS = 2.0
SLICE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    ti: str | None
    time: float
    message: str


def check(history: History) -> list[Violation]:
    """Every violation of ``INVARIANTS`` in ``history``, by time."""
    found = [
        *_one_run_per_attempt(history),
        *_cancel_needs_a_reason(history),
        *_no_run_outlives_its_task(history),
        *_success_and_xcom(history),
    ]
    return sorted(found, key=lambda v: (v.time, v.invariant))


# -- helpers ------------------------------------------------------------------------------------------


def _runs_by_ti(history: History) -> dict[str, list[RunRecord]]:
    runs: dict[str, list[RunRecord]] = defaultdict(list)
    for run in history.runs:
        if run.ti is not None:
            runs[run.ti].append(run)
    for listed in runs.values():
        listed.sort(key=lambda r: (r.start, r.run_id))
    return runs


def _actions_by_ti(history: History) -> dict[str, list[ActionEvent]]:
    actions: dict[str, list[ActionEvent]] = defaultdict(list)
    for action in history.actions:
        actions[action.ti].append(action)
    return actions


def _clear_ends(actions: Iterable[ActionEvent]) -> list[float]:
    # A clear that got no answer may have been applied: counted, so that it cannot fake a violation.
    return sorted(a.end_time for a in actions if a.action == "clear" and (a.ok or not a.answered))


def cycle_of(run: RunRecord, clear_ends: list[float]) -> int:
    """The clear cycle (0 = before any clear) in which ``run`` was created."""
    return sum(1 for end in clear_ends if end <= run.start)


def _samples_by_ti(history: History) -> dict[str, list[TiSample]]:
    samples: dict[str, list[TiSample]] = defaultdict(list)
    for sample in history.samples:
        samples[sample.ti].append(sample)
    for listed in samples.values():
        listed.sort(key=lambda s: s.time)
    return samples


def _name(run: RunRecord) -> str:
    ended = "active" if run.end is None else f"{run.result_state or run.life_cycle_state}"
    return f"run {run.run_id} ({ended})"


# -- invariants -----------------------------------------------------------------------------------


def _one_run_per_attempt(history: History) -> Iterable[Violation]:
    actions = _actions_by_ti(history)
    for ti, runs in _runs_by_ti(history).items():
        clears = _clear_ends(actions.get(ti, ()))
        by_cycle: dict[int, list[RunRecord]] = defaultdict(list)
        for run in runs:
            by_cycle[cycle_of(run, clears)].append(run)
        for cycle, listed in by_cycle.items():
            for earlier, later in itertools.pairwise(listed):
                if earlier.end is None or earlier.end > later.start:
                    yield Violation(
                        ONE_RUN,
                        ti,
                        later.start,
                        f"cycle {cycle}: {_name(later)} was created while {_name(earlier)} was still "
                        "active: two runs for one logical attempt",
                    )
                elif earlier.result_state == "SUCCESS":
                    yield Violation(
                        ONE_RUN,
                        ti,
                        later.start,
                        f"cycle {cycle}: {_name(later)} was created after {_name(earlier)} had "
                        "succeeded: a succeeded attempt was submitted again",
                    )


def _cancel_needs_a_reason(history: History) -> Iterable[Violation]:
    run_ti = {run.run_id: run.ti for run in history.runs}
    actions = _actions_by_ti(history)
    tries: dict[str, list[float]] = defaultdict(list)
    for t in history.tries:
        if t.start is not None:
            tries[t.ti].append(t.start)
    for request in history.requests:
        if request.endpoint != "runs/cancel" or request.run_id is None:
            continue  # a cancel the emulator did not apply changed nothing
        ti = run_ti.get(request.run_id)
        if ti is None:
            continue  # not a run of the campaign's
        if any(a.time <= request.time for a in actions.get(ti, ())):
            continue
        dag_id, _, task_id, _ = ti.split("|")
        timeout = history.timeouts.get(f"{dag_id}|{task_id}")
        if timeout is not None and any(request.time >= s + timeout - 1 for s in tries.get(ti, ())):
            continue
        yield Violation(
            CANCEL,
            ti,
            request.time,
            f"runs/cancel of run {request.run_id} with no user action on its task before it and no "
            "execution_timeout reached",
        )


def finished_intervals(samples: list[TiSample], ended: float) -> list[tuple[float, float]]:
    """When a task instance was finished: [from, to) intervals, from its sampled states."""
    intervals: list[tuple[float, float]] = []
    start: float | None = None
    for sample in samples:
        final = sample.state in FINAL_TI_STATES
        if final and start is None:
            start = sample.time
            if sample.end_date is not None and sample.end_date <= sample.time:
                start = sample.end_date
        elif not final and start is not None:
            intervals.append((start, sample.time))
            start = None
    if start is not None:
        intervals.append((start, ended))
    return intervals


def _no_run_outlives_its_task(history: History) -> Iterable[Violation]:
    runs = _runs_by_ti(history)
    for ti, samples in _samples_by_ti(history).items():
        for since, until in finished_intervals(samples, history.ended):
            deadline = since + FINISH_GRACE_SECONDS
            for run in runs.get(ti, ()):
                end = math.inf if run.end is None else run.end
                if max(run.start, deadline) < min(end, until):
                    state = next(s.state for s in samples if s.time >= since)
                    yield Violation(
                        OUTLIVES,
                        ti,
                        max(run.start, deadline),
                        f"{_name(run)} was active {FINISH_GRACE_SECONDS:.0f} s after its task became {state}",
                    )


def _success_and_xcom(history: History) -> Iterable[Violation]:
    runs = _runs_by_ti(history)
    actions = _actions_by_ti(history)
    for ti, samples in _samples_by_ti(history).items():
        last = samples[-1]
        if last.state != "success":
            continue
        clears = _clear_ends(actions.get(ti, ()))
        cycle = len(clears)
        cycle_start = clears[-1] if clears else -math.inf
        if any(a.action == "mark_success" and a.end_time >= cycle_start for a in actions.get(ti, ())):
            continue  # the user said so; no run has to back it
        ended = last.end_date if last.end_date is not None else last.time
        succeeded = [
            run
            for run in runs.get(ti, ())
            if cycle_of(run, clears) == cycle
            and run.result_state == "SUCCESS"
            and run.end is not None
            and run.end <= ended + CLOCK_SLACK_SECONDS
        ]
        if not succeeded:
            seen = ", ".join(_name(r) for r in runs.get(ti, ()) if cycle_of(r, clears) == cycle) or "none"
            yield Violation(
                SUCCESS,
                ti,
                ended,
                f"the task ended success, but no run of its cycle {cycle} succeeded (runs: {seen})",
            )
            continue
        xcom = history.xcom_run_ids.get(ti)
        if xcom not in {run.run_id for run in succeeded}:
            yield Violation(
                XCOM,
                ti,
                ended,
                f"the run_id XCom is {xcom!r}; the run that finished is {succeeded[-1].run_id}",
            )


# -- reporting ------------------------------------------------------------------------------------


def timeline_slice(history: History, violation: Violation, *, seconds: float = SLICE_SECONDS) -> list[str]:
    """The events around a violation, as lines: its task's states and runs, requests about its runs
    (``runs/get`` counted, not listed), and every fault and user action, seconds from the start."""
    low, high = violation.time - seconds, violation.time + seconds
    t0 = history.started
    own_runs = {r.run_id for r in history.runs if r.ti == violation.ti}
    events: list[tuple[float, str]] = []
    for sample in history.samples:
        if sample.ti == violation.ti:
            events.append((sample.time, f"task {sample.state} (try {sample.try_number})"))
    for run in history.runs:
        if run.run_id in own_runs:
            events.append((run.start, f"run {run.run_id} created"))
            if run.end is not None:
                events.append((run.end, f"run {run.run_id} ended {run.result_state or run.life_cycle_state}"))
    polls = 0
    for request in history.requests:
        if request.run_id in own_runs and low <= request.time <= high:
            if request.endpoint == "runs/get" and request.fault is None:
                polls += 1
                continue
            hit = f" [{request.fault}]" if request.fault else ""
            events.append(
                (
                    request.time,
                    f"{request.method} {request.endpoint} run {request.run_id} -> {request.status}{hit}",
                )
            )
    for fault in history.faults:
        events.append((fault.time, f"FAULT {fault.kind} {fault.target} {fault.detail}".rstrip()))
    for action in history.actions:
        mark = "" if action.ok else f" (failed: {action.detail})"
        events.append((action.time, f"USER {action.action} {action.ti}{mark}"))
    lines = [
        f"  {t - t0:8.1f}s  {text}{'   <== here' if abs(t - violation.time) < 1e-6 else ''}"
        for t, text in sorted(events)
        if low <= t <= high
    ]
    if polls:
        lines.append(f"  ({polls} runs/get polls of its runs in this window)")
    return lines


def describe(history: History, violation: Violation) -> str:
    head = (
        f"VIOLATION seed={history.seed} invariant={violation.invariant} task={violation.ti} "
        f"at {violation.time - history.started:.1f}s: {violation.message}"
    )
    return "\n".join([head, *timeline_slice(history, violation)])
