"""The runs a phase watches: planned end times, submitted to the emulator before the triggers start.

Each run declares its own duration and outcome (``emulator.*`` parameters), so the runs finish at
staggered, known times: ``end = go + lead + offset``, offsets spread evenly over ``spread_seconds`` in
a shuffled order, every ``failure_every``-th run FAILED. Durations are computed at the moment of
each submission, so however long submitting takes, the ends stay where they were planned.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from resumable_triggers.databricks.client import ClientSettings, DatabricksClient, HeaderProvider

SUBMIT_CONCURRENCY = 32


@dataclass(frozen=True, slots=True)
class StaticToken:
    """Bearer auth for the bench's own setup requests (a HeaderProvider without databricks-sdk)."""

    token: str
    identity: str = "bench:setup"

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def invalidate(self, rejected: object = None) -> None:
        pass


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    """When each run ends (epoch seconds) and how (SUCCESS or FAILED)."""

    ends_at: tuple[float, ...]
    outcomes: tuple[str, ...]

    @classmethod
    def staggered(
        cls, *, count: int, go_at: float, lead_seconds: float, spread_seconds: float, failure_every: int
    ) -> RunPlan:
        offsets = [spread_seconds * (i + 0.5) / count for i in range(count)]
        random.Random(count).shuffle(offsets)  # deterministic, but not in submission order
        return cls(
            ends_at=tuple(go_at + lead_seconds + o for o in offsets),
            outcomes=tuple(
                "FAILED" if failure_every and i % failure_every == 0 else "SUCCESS" for i in range(count)
            ),
        )


# The orchestrator's own requests, made before the triggers start: never counted as theirs.
SETUP_ENDPOINT = "runs/submit"


async def submit_runs(url: str, token: str, plan: RunPlan) -> list[int]:
    """Submit one run per planned end, as fast as the emulator takes them; their run ids in order."""
    headers: HeaderProvider = StaticToken(token)
    settings = ClientSettings(requests_per_second=100_000, burst=1000, max_connections=SUBMIT_CONCURRENCY)
    slots = asyncio.Semaphore(SUBMIT_CONCURRENCY)
    async with DatabricksClient(url, headers, settings=settings) as client:

        async def submit(index: int) -> int:
            async with slots:
                outcome = plan.outcomes[index]
                parameters = {
                    "emulator.duration_seconds": f"{max(1.0, plan.ends_at[index] - time.time()):.3f}",
                    "emulator.result_state": outcome,
                }
                if outcome != "SUCCESS":
                    parameters["emulator.error"] = "planned failure (bench)"
                spec = {
                    "run_name": f"bench-{index}",
                    "tasks": [
                        {
                            "task_key": "main",
                            "notebook_task": {"notebook_path": "/bench", "base_parameters": parameters},
                        }
                    ],
                }
                return await client.submit_run(spec, idempotency_token=None)

        return list(await asyncio.gather(*(submit(i) for i in range(len(plan.ends_at)))))
