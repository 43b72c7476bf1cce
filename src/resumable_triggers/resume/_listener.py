"""The API server's half of a user's mark failed / mark success on a deferred task.

Airflow 3.3 calls a trigger's ``on_kill`` only while a triggerer runs it (``TriggerRunner``
cancels the triggers in its own table). A task marked failed or success while its trigger runs
nowhere (deferred a moment ago and not picked up yet, or held by a triggerer that died) just loses
its Trigger row, and the job runs on with nobody to stop it: found by the HA chaos campaign, a task
marked failed 0.06 s after it deferred. The provider's operators have the same gap.

The API server is where Airflow still acts on that task. After a user's state change it fires the
``on_task_instance_failed`` / ``on_task_instance_success`` listener hooks with ``previous_state``
None and the task instance, whose ``trigger_id`` still names its Trigger row (``Trigger.clean_unused``
clears it later). This listener rebuilds our trigger from that row and has it decide exactly as its
``on_kill`` would (``ResumableJobTrigger.user_set_state``)::

    the hook came from a task runner or the scheduler (previous_state set) ..... nothing
    the task instance names no trigger (it was not deferred) ................... nothing
    the trigger row is gone, or its classpath is not a resumable trigger ....... nothing
    a resumable trigger ........................................................ its kill decision:
                                                                                 cancel an active job
                                                                                 (cancel_on_kill)

When a triggerer does run the trigger, its ``on_kill`` decides too; whichever reads the job second
finds it being cancelled and leaves it (``JobStatus.ending``). Nothing here raises: a user's state
change must go through whatever the workspace says, so failures are logged, naming the job. The hook
runs inside the user's request, so the decision gets the budget a trigger's ``on_kill`` gets,
``[triggerer] on_kill_timeout`` (30 s by default), not the client's minutes of retries: a workspace
that does not answer holds the user's click that long at most, and the job is named in the log.

Registered in every Airflow component by the package's ``airflow.plugins`` entry point; only the API
server's user path fires it with a trigger in hand.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from airflow.configuration import conf
from airflow.listeners import hookimpl

from resumable_triggers.resume._bridge import run_blocking
from resumable_triggers.resume._trigger import ResumableJobTrigger

__all__ = ["UserStateListener", "trigger_of"]

log = logging.getLogger(__name__)


def trigger_of(classpath: str, kwargs: dict[str, Any]) -> ResumableJobTrigger[Any] | None:
    """Our trigger, rebuilt from a Trigger row as the triggerer rebuilds it; None for anyone else's."""
    from airflow._shared.module_loading import import_string

    try:
        cls = import_string(classpath)
    except ImportError:
        return None
    if not (isinstance(cls, type) and issubclass(cls, ResumableJobTrigger)):
        return None
    return cls(**kwargs)


class UserStateListener:
    """Listener hooks (pluggy) for the task states a user sets through Airflow's API.

    ``decision_seconds``: how long one decision may hold the user's request (default: ``[triggerer]
    on_kill_timeout``)."""

    def __init__(self, *, decision_seconds: float | None = None) -> None:
        self.decision_seconds = (
            conf.getfloat("triggerer", "on_kill_timeout", fallback=30.0)
            if decision_seconds is None
            else decision_seconds
        )

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        self._user_set_state(previous_state, task_instance, "failed")

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        self._user_set_state(previous_state, task_instance, "success")

    def _user_set_state(self, previous_state: Any, ti: Any, state: str) -> None:
        trigger_id = getattr(ti, "trigger_id", None)
        if previous_state is not None or trigger_id is None:
            return
        job = None
        try:
            trigger = _stored_trigger(trigger_id)
            if trigger is None:
                return
            job = trigger.args.external_id
            log.info(
                "task %s.%s (run %s) was set to %s while deferred on job %s: deciding whether to cancel it",
                ti.dag_id,
                ti.task_id,
                ti.run_id,
                state,
                job,
            )
            decision = asyncio.wait_for(trigger.user_set_state(state), self.decision_seconds)
            run_blocking(decision, waiting_for=lambda: "the job's workspace")
        except asyncio.TimeoutError:
            log.error(
                "gave up deciding on job %s of task %s.%s (run %s) after %g s ([triggerer] "
                "on_kill_timeout): the workspace did not answer; if the job still runs, cancel it by hand",
                job,
                ti.dag_id,
                ti.task_id,
                ti.run_id,
                self.decision_seconds,
            )
        except Exception:  # logged and swallowed: see the module docstring
            log.exception(
                "could not decide on the job of task %s.%s (run %s); if it still runs, cancel it by hand",
                ti.dag_id,
                ti.task_id,
                ti.run_id,
            )


def _stored_trigger(trigger_id: int) -> ResumableJobTrigger[Any] | None:
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.get(Trigger, trigger_id)
        if row is None:
            return None
        classpath, kwargs = row.classpath, dict(row.kwargs)
    return trigger_of(classpath, kwargs)
