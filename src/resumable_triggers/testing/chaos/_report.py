"""The campaign's report: its numbers (``summary``) and the table on standard output (``render``)."""

from __future__ import annotations

from collections import Counter

from resumable_triggers.testing.chaos._checker import INVARIANTS, Violation, cycle_of, describe
from resumable_triggers.testing.chaos._history import FaultEvent, History, TiSample


def summary(history: History, violations: list[Violation]) -> dict[str, object]:
    """The report's numbers, as a JSON-able dict."""
    clears: dict[str, list[float]] = {}
    for action in history.actions:
        if action.action == "clear" and action.ok:
            clears.setdefault(action.ti, []).append(action.end_time)
    attempts = set()
    for ti in {s.ti for s in history.samples}:
        attempts.add((ti, 0))
    for run in history.runs:
        if run.ti is not None:
            attempts.add((run.ti, cycle_of(run, sorted(clears.get(run.ti, [])))))
    final = Counter(s.state for s in _last_samples(history))
    ours = [r for r in history.runs if r.ti is not None]
    return {
        "seed": history.seed,
        "minutes": round((history.ended - history.started) / 60, 1),
        "settled": history.settled,
        "task_instances": len({s.ti for s in history.samples}),
        "task_instance_states": dict(sorted(final.items(), key=lambda kv: str(kv[0]))),
        "tries": len(history.tries),
        "logical_attempts": len(attempts),
        "runs": len(ours),
        "runs_by_result": dict(Counter(r.result_state or r.life_cycle_state for r in ours)),
        "requests": len(history.requests),
        "cancels": sum(1 for r in history.requests if r.endpoint == "runs/cancel" and r.run_id is not None),
        "faults": dict(Counter(fault_label(f) for f in history.faults if f.ok and f.kind != "died")),
        "died_by_themselves": dict(Counter(f.target for f in history.faults if f.kind == "died")),
        "faults_without_target": sum(1 for f in history.faults if not f.ok),
        "user_actions": dict(Counter(a.action for a in history.actions if a.ok)),
        "violations": dict(Counter(v.invariant for v in violations)),
    }


def fault_label(fault: FaultEvent) -> str:
    """A fault's kind and the family of its target: ``triggerer[1]`` and ``triggerer[0]`` are one
    ``triggerer``, so the report counts, and the plot draws, one lane for both."""
    return f"{fault.kind} {fault.target.split('[')[0]}"


def _last_samples(history: History) -> list[TiSample]:
    last: dict[str, TiSample] = {}
    for sample in sorted(history.samples, key=lambda s: s.time):
        last[sample.ti] = sample
    return list(last.values())


def render(history: History, violations: list[Violation]) -> str:
    numbers = summary(history, violations)
    lines = [f"chaos campaign, seed {history.seed}: {numbers['minutes']} minutes", ""]
    rows = [
        ("task instances", f"{numbers['task_instances']}  {numbers['task_instance_states']}"),
        ("tries", numbers["tries"]),
        ("logical attempts", numbers["logical_attempts"]),
        ("Databricks runs", f"{numbers['runs']}  {numbers['runs_by_result']}"),
        ("API requests", f"{numbers['requests']} ({numbers['cancels']} runs/cancel applied)"),
        ("user actions", numbers["user_actions"] or "none"),
        ("settled", numbers["settled"]),
    ]
    lines += [f"  {name:<18} {value}" for name, value in rows]
    lines += ["", "  faults by kind:"]
    faults = numbers["faults"]
    assert isinstance(faults, dict)
    lines += [f"    {kind:<28} {count}" for kind, count in sorted(faults.items())] or ["    none"]
    lines.append(f"    (no live target at their moment: {numbers['faults_without_target']})")
    lines.append(
        f"  components that died by themselves (restarted): {numbers['died_by_themselves'] or 'none'}"
    )
    lines += ["", "  invariants:"]
    counts = Counter(v.invariant for v in violations)
    lines += [
        f"    {name:<32} {'ok' if not counts[name] else f'{counts[name]} VIOLATION(S)'}"
        for name in INVARIANTS
    ]
    if not history.settled:
        lines.append("  NOTE: the deployment did not settle in time; some task instances were still open.")
    for violation in violations:
        lines += ["", describe(history, violation)]
    return "\n".join(lines)
