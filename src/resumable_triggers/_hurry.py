"""Cutting a retry loop's waits short once its caller has only seconds left.

A worker's supervisor SIGKILLs a task 5 s after it SIGTERMs it (``kill(escalation_delay=5.0)`` in
Airflow's task SDK). A SIGTERM that strikes during a submit waits for the submit's answer
(``resume._signals``): only that answer names the job a user's kill must cancel. But a submit whose
answers keep getting lost is retried with exponential backoff (1, 2, 4, 8, 16 s), and its next try
can come after the SIGKILL: the job runs on, and nobody ever learns its id (chaos seed 60, HA,
replayed: a task marked success mid-submit, its run outliving it by 33 s). Resending at once is
safe, because a submit carries its idempotency token and every resend hands back the same job. So
whoever holds the signal *hurries* the call::

    the task's main thread                     the call's event loop (the same thread)
    ──────────────────────                     ───────────────────────────────────────
    with hurrying(hurry):                      Transport, before retry n:
        run_blocking(submit) ───────────────▶      await hurry.wait(backoff, sleep) ──┐
                                                                                      │ returns
    SIGTERM handler: hurry.now() ─────────────────────────────────────────────────────┘ at once
                                               every later wait: at most HURRIED_WAIT_SECONDS;
                                               no pacing by the request budget

``now()`` may be called from a signal handler: it sets a flag and wakes each waiting loop with
``call_soon_threadsafe``, whose self-pipe write ends the ``select`` the loop sleeps in.

The hurry reaches the client through a context variable, which ``asyncio.run`` copies into the
call: the Databricks client needs no argument threaded through every endpoint, and imports neither
Airflow nor the resume machinery. Outside ``hurrying`` nothing changes, and a triggerer's thousands
of pollers pay one context-variable read per request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from resumable_triggers._clock import Sleep

__all__ = ["HURRIED_WAIT_SECONDS", "Hurry", "current_hurry", "hurried", "hurrying"]

HURRIED_WAIT_SECONDS = 0.25
"""The longest wait between tries once hurried. A lost answer already costs a round trip; a 429
costs the workspace almost nothing to send, so this floor keeps a hurried call from hammering a
workspace that is rate limiting it: about 20 tries in the supervisor's 5 s."""

_current: ContextVar[Hurry | None] = ContextVar("resumable_triggers_hurry", default=None)


class Hurry:
    """Whether the caller has run out of patience; once hurried, for good."""

    def __init__(self) -> None:
        self._hurried = False
        self._wakers: set[Callable[[], None]] = set()

    @property
    def hurried(self) -> bool:
        return self._hurried

    def now(self) -> None:
        """Hurry: every wait in progress ends at once, later ones are short. Signal-handler safe."""
        if self._hurried:
            return
        self._hurried = True
        for wake in list(self._wakers):
            wake()

    def cap(self, seconds: float) -> float:
        """How long a retry that wanted to wait ``seconds`` waits now."""
        return min(seconds, HURRIED_WAIT_SECONDS) if self._hurried else seconds

    async def wait(self, seconds: float, sleep: Sleep) -> None:
        """``sleep(seconds)``, ended the moment ``now()`` is called; a short sleep once hurried."""
        if self._hurried:
            await sleep(self.cap(seconds))
        else:
            await self.unless_hurried(sleep(seconds))

    async def unless_hurried(self, waiting: Awaitable[None]) -> None:
        """Await ``waiting`` until it is done or ``now()`` is called, whichever comes first (then it
        is cancelled). Errors of ``waiting`` propagate."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, woken)

        # Registered before the flag is read: a signal between the two would otherwise be missed.
        self._wakers.add(wake)
        task = asyncio.ensure_future(waiting)
        try:
            if not self._hurried:
                await asyncio.wait((task, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._wakers.discard(wake)
            woken.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if not task.cancelled():
            task.result()


def hurried() -> Hurry:
    """A hurry that has already come: for the calls made after the signal (the cancel of a user's kill)."""
    hurry = Hurry()
    hurry.now()
    return hurry


def current_hurry() -> Hurry | None:
    """The hurry of the ``hurrying`` block this code runs in, if any."""
    return _current.get()


@contextmanager
def hurrying(hurry: Hurry) -> Iterator[Hurry]:
    """Make ``hurry`` the current one for the block, and for event loops started inside it."""
    token = _current.set(hurry)
    try:
        yield hurry
    finally:
        _current.reset(token)


async def wait_unless_hurried(waiting: Awaitable[None], hurry: Hurry | None) -> None:
    """Await ``waiting`` as it is with no hurry; cut short by one; skipped by one already hurried."""
    if hurry is None:
        await waiting
    elif hurry.hurried:
        if asyncio.iscoroutine(waiting):
            waiting.close()  # never awaited: close it, so it is not reported as such
    else:
        await hurry.unless_hurried(waiting)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
