"""``Hurry``: a wait ends the moment its caller is hurried, whoever hurries, and nothing is swallowed.

Waits here are an hour long: a hurry that failed to end one hangs the test until pytest-timeout fails
it, so no wall-clock threshold is needed.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from resumable_triggers._hurry import (
    HURRIED_WAIT_SECONDS,
    Hurry,
    current_hurry,
    hurrying,
    wait_unless_hurried,
)


@pytest.mark.asyncio
async def test_hurry_from_another_thread_ends_a_wait_in_progress() -> None:
    """``now()`` wakes the loop through its self-pipe, so any thread (or a signal handler) may call it."""
    hurry = Hurry()
    asyncio.get_running_loop().call_later(0.01, lambda: threading.Thread(target=hurry.now).start())
    await hurry.wait(3600, asyncio.sleep)
    assert hurry.hurried


@pytest.mark.asyncio
async def test_once_hurried_waits_are_capped_not_skipped() -> None:
    """A hurried retry loop still waits a little between tries: it must not spin on a failing call."""
    hurry = Hurry()
    hurry.now()
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)

    await hurry.wait(16.9, sleep)
    await hurry.wait(0.1, sleep)
    assert [HURRIED_WAIT_SECONDS, 0.1] == asked


@pytest.mark.asyncio
async def test_an_error_of_the_wait_is_raised_not_swallowed() -> None:
    """A wait that fails before any hurry (a budget that raises, say) fails the call as it would
    without one."""

    async def broken() -> None:
        raise ValueError("the budget broke")

    with pytest.raises(ValueError, match="the budget broke"):
        await wait_unless_hurried(broken(), Hurry())


@pytest.mark.asyncio
async def test_an_already_hurried_caller_skips_the_wait_without_leaving_it_unawaited() -> None:
    """Skipped pacing is closed, so Python reports no coroutine that was never awaited (pytest turns
    that warning into an error here)."""
    hurry = Hurry()
    hurry.now()
    await wait_unless_hurried(asyncio.sleep(3600), hurry)


def test_the_hurry_reaches_an_event_loop_started_inside_the_block() -> None:
    """``asyncio.run`` copies the context: the worker's remote calls see the hurry of their caller."""
    hurry = Hurry()

    async def seen() -> Hurry | None:
        return current_hurry()

    with hurrying(hurry):
        assert hurry is asyncio.run(seen())
    assert None is asyncio.run(seen())
