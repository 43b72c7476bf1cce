"""Make a resumable operator die at a chosen point of its first try (a test-only mixin).

A "crash" is an exception: dag.test() runs tasks in-process, so the worker cannot really die here
(the real-process kills are in tests/e2e). "sigterm" sends a real SIGTERM to this process.
"""

from __future__ import annotations

import os
import signal
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")


class SimulatedCrash(RuntimeError):
    """Stands in for a worker dying at this point."""


def first_try() -> bool:
    from airflow.sdk import get_current_context

    return get_current_context()["ti"].try_number == 1


class FaultOnFirstTry:
    """Mixin for a ResumableDeferrableOperator; ``fault`` names where try 1 dies.

    No ``__init__`` of its own: Airflow's operator metaclass wraps every ``__init__`` in the hierarchy
    and cannot wrap a plain mixin's, so the fault is a class attribute (see :func:`faulty`).
    """

    fault: ClassVar[str] = "none"
    _status_reads = 0

    async def submit_job(self, token: str, context: Any) -> Any:
        if self.fault == "sigterm_during_submit" and first_try():
            os.kill(os.getpid(), signal.SIGTERM)  # lands while the submit's request is on its way
        external_id = await super().submit_job(token, context)  # type: ignore[misc]
        if first_try():
            self.after_first_submit(external_id, context)
        return external_id

    def after_first_submit(self, external_id: Any, context: Any) -> None:
        key = self.resume_key  # type: ignore[attr-defined]
        if self.fault == "crash_after_submit":
            raise SimulatedCrash("worker died after submit, before the run id was persisted")
        if self.fault == "foreign_record_then_crash":
            context["task_state_store"].set(key, {"written_by": "someone else"})
            raise SimulatedCrash("worker died; the record was overwritten by something else")
        if self.fault == "newer_record_then_crash":
            from resumable_triggers.resume._record import SCHEMA

            context["task_state_store"].set(key, {"schema": SCHEMA, "version": 99})
            raise SimulatedCrash("worker died; a newer library version wrote the record")

    async def job_status(self, external_id: Any) -> Any:
        self._status_reads += 1
        if first_try():
            if self.fault == "crash_after_persist":
                raise SimulatedCrash("worker died after persisting the run id, before deferring")
            if self.fault == "sigterm_before_defer" or (
                self.fault == "sigterm_while_polling" and self._status_reads == 2
            ):
                os.kill(os.getpid(), signal.SIGTERM)
        return await super().job_status(external_id)  # type: ignore[misc]

    def job_result(self, context: Any, event: Any) -> Any:
        if self.fault == "crash_in_completion" and first_try():
            raise SimulatedCrash("worker died in the completion method")
        return super().job_result(context, event)  # type: ignore[misc]


def faulty(base: type[T], fault: str, mixin: type[FaultOnFirstTry] = FaultOnFirstTry) -> type[T]:
    """``base`` with ``fault`` injected into its first try."""
    return type(f"Faulty{base.__name__}", (mixin, base), {"fault": fault})  # type: ignore[return-value]
