"""The campaign's report (a table on standard output) and its timeline plot."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from resumable_triggers.testing.chaos._checker import INVARIANTS, Violation, cycle_of, describe
from resumable_triggers.testing.chaos._history import History, TiSample


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
        "faults": dict(
            Counter(f"{f.kind} {_family(f.target)}" for f in history.faults if f.ok and f.kind != "died")
        ),
        "died_by_themselves": dict(Counter(f.target for f in history.faults if f.kind == "died")),
        "faults_without_target": sum(1 for f in history.faults if not f.ok),
        "user_actions": dict(Counter(a.action for a in history.actions if a.ok)),
        "violations": dict(Counter(v.invariant for v in violations)),
    }


def _family(target: str) -> str:
    return target.split("[")[0]


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


def plot(history: History, violations: list[Violation], path: Path) -> str | None:
    """Write a timeline PNG; return None, or why no plot was written (matplotlib missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (pip install matplotlib to get one)"
    t0 = history.started
    tis = sorted({r.ti for r in history.runs if r.ti is not None})
    row = {ti: i for i, ti in enumerate(tis)}
    fig, ax = plt.subplots(figsize=(14, max(4, len(tis) * 0.18 + 2)))
    colours = {"SUCCESS": "tab:green", "FAILED": "tab:red", "CANCELED": "tab:gray", "TIMEDOUT": "tab:orange"}
    for run in history.runs:
        if run.ti is None:
            continue
        end = (run.end or history.ended) - t0
        colour = colours.get(run.result_state or "", "tab:blue")
        ax.plot([run.start - t0, end], [row[run.ti]] * 2, color=colour, linewidth=3, solid_capstyle="butt")
    for fault in history.faults:
        if fault.ok:
            ax.axvspan(
                fault.time - t0, max(fault.end_time, fault.time + 0.5) - t0, color="tab:purple", alpha=0.25
            )
    for action in history.actions:
        if action.ti in row:
            ax.plot(action.time - t0, row[action.ti], marker="v", color="black")
    for violation in violations:
        ax.axvline(violation.time - t0, color="red", linestyle="--")
    for request in history.requests:
        if request.endpoint == "runs/cancel" and request.run_id is not None:
            ax.axvline(request.time - t0, color="tab:gray", linewidth=0.5, alpha=0.5)
    ax.set_yticks(range(len(tis)), [ti.split("|", 1)[1] for ti in tis], fontsize=5)
    ax.set_xlabel("seconds since the campaign started")
    ax.set_title(
        f"chaos seed {history.seed}: runs by task instance (green success, red failed, grey cancelled, "
        "blue active); purple: faults; triangles: user actions; red dashes: violations",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
