"""Seeded chaos campaigns against a real Airflow, judged by a history checker (issue 14).

::

    plan = make_plan(seed=7, minutes=3)          # pure: the workload, faults and user actions
    history = Campaign(plan).run()               # a real Airflow and emulator; everything observed
    violations = check(history)                  # the library's promises, from the history alone

``resumable-triggers chaos --seed 7 --minutes 3`` does all three and prints a report. The checker
imports nothing of the code it judges; ``docs/chaos.md`` lists its invariants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from resumable_triggers.testing import _lazy

if TYPE_CHECKING:
    from resumable_triggers.testing.chaos._checker import INVARIANTS, Violation, check, describe
    from resumable_triggers.testing.chaos._history import (
        ActionEvent,
        FaultEvent,
        History,
        RequestEvent,
        RunRecord,
        TiSample,
        TryRecord,
        ti_key,
    )
    from resumable_triggers.testing.chaos._plan import (
        ActionSpec,
        DagRunSpec,
        DagSpec,
        FaultSpec,
        Plan,
        TaskSpec,
        make_plan,
    )
    from resumable_triggers.testing.chaos._runner import Campaign

__all__ = [
    "INVARIANTS",
    "ActionEvent",
    "ActionSpec",
    "Campaign",
    "DagRunSpec",
    "DagSpec",
    "FaultEvent",
    "FaultSpec",
    "History",
    "Plan",
    "RequestEvent",
    "RunRecord",
    "TaskSpec",
    "TiSample",
    "TryRecord",
    "Violation",
    "check",
    "describe",
    "make_plan",
    "ti_key",
]

# Lazy (PEP 562): checking a history must not import the Airflow harness.
__getattr__, __dir__ = _lazy.lazy_exports(
    globals(),
    {name: "._checker" for name in ("INVARIANTS", "Violation", "check", "describe")}
    | {
        name: "._history"
        for name in (
            "ActionEvent",
            "FaultEvent",
            "History",
            "RequestEvent",
            "RunRecord",
            "TiSample",
            "TryRecord",
            "ti_key",
        )
    }
    | {
        name: "._plan"
        for name in ("ActionSpec", "DagRunSpec", "DagSpec", "FaultSpec", "Plan", "TaskSpec", "make_plan")
    }
    | {"Campaign": "._runner"},
)
