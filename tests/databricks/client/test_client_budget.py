"""RequestBudget: burst, steady rate, FIFO order and pauses, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from resumable_triggers.databricks.client import RequestBudget
from resumable_triggers.testing import VirtualTime


@pytest.mark.asyncio
async def test_a_burst_is_granted_at_once_then_the_steady_rate_applies() -> None:
    """With burst 3 at 2/s, three requests pass immediately, the next ones every 0.5 s."""
    fake = VirtualTime()
    budget = RequestBudget(requests_per_second=2, burst=3, clock=fake.monotonic, sleep=fake.sleep)
    granted = []
    for _ in range(6):
        await budget.acquire()
        granted.append(fake.now)

    assert [0.0, 0.0, 0.0, 0.5, 1.0, 1.5] == granted


@pytest.mark.asyncio
async def test_concurrent_waiters_are_served_first_come_first_served() -> None:
    """Callers that arrive together are released one slot apart, in arrival order."""
    budget = RequestBudget(requests_per_second=1000, burst=1)
    order: list[int] = []

    async def caller(index: int) -> None:
        await budget.acquire()
        order.append(index)

    await asyncio.gather(*(caller(index) for index in range(20)))

    assert list(range(20)) == order


@pytest.mark.asyncio
async def test_a_pause_holds_every_caller_then_resumes_at_the_normal_rate() -> None:
    """After pause(5) nothing is granted for 5 s; then one request per interval, not a burst."""
    fake = VirtualTime()
    budget = RequestBudget(requests_per_second=1, burst=10, clock=fake.monotonic, sleep=fake.sleep)
    budget.pause(5)
    granted = []
    for _ in range(3):
        await budget.acquire()
        granted.append(fake.now)

    assert [5.0, 6.0, 7.0] == granted


def test_nonsense_rates_are_rejected() -> None:
    """A zero rate would wait forever; it is refused at construction."""
    with pytest.raises(ValueError) as excinfo:
        RequestBudget(requests_per_second=0, burst=1)

    assert "requests_per_second > 0" in str(excinfo.value)
