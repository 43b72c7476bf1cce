"""A short chaos campaign: a fixed seed on the single-node topology, judged by the history checker.

It starts an Airflow and an emulator of its own (not the session's: the campaign owns its DAGs
folder and restarts the emulator), so it takes the machine for ~3-4 minutes: one seed, ~2 minutes of
faults, then settling.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from resumable_triggers.testing.chaos import Campaign, check, describe, make_plan

# Chosen for its mix: a 429 storm, dropped connections, a SIGKILLed task process, a frozen
# api-server and triggerer, SIGTERMed api-server and scheduler; a clear and a mark success.
SEED = 1
MINUTES = 2.0

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.timeout(900)]


def test_a_short_campaign_keeps_every_invariant_while_faults_fire(tmp_path: Path) -> None:
    """Kills of tasks, supervisors and components, emulator faults and user actions, overlapping:
    every logical attempt gets one run, nothing is cancelled without a reason, nothing is orphaned,
    and every success is backed by the run its XCom names."""
    plan = make_plan(seed=SEED, minutes=MINUTES)
    history = Campaign(plan, workdir=tmp_path).run()
    violations = check(history)
    struck = [f for f in history.faults if f.ok]
    assert [] == [describe(history, v) for v in violations]
    assert history.settled
    assert len(struck) >= 5, [f"{f.kind} {f.target}: {f.detail}" for f in history.faults]
    assert "emulator" in {f.target for f in struck}
    assert {f.target for f in struck} - {"emulator"}
    assert any(r.ti is not None for r in history.runs)
