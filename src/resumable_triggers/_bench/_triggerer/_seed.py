"""The Airflow side of ``bench-triggerer``: deferred task instances made through Airflow's own models.

Runs as a subprocess with the deployment's database in its environment (``SeedProcess`` starts it),
so the orchestrator never imports Airflow. Protocol on stdin/stdout, one JSON object per line: a
request ``{"op": ..., ...}``, then its answer ``{"ok": ...}`` or ``{"error": "..."}``.

What a real deferral writes, and how a seeded one writes the same (Airflow 3.3)::

    real:   task_runner._defer_task:   classpath, kwargs = trigger.serialize()
                                       trigger_kwargs = serde.serialize(kwargs)    (a dict)
                                       next_kwargs    = serde.serialize(defer.kwargs or {})
            Execution API PATCH /task-instances/{id}/state (TIDeferredStatePayload):
                                       Trigger(classpath, kwargs={}); encrypted_kwargs = json.dumps(...)
                                       TI: state=deferred, trigger_id, next_method, next_kwargs
    seeded: ``seed`` below:            the same calls, with the trigger the operator itself builds,
                                       on task instances of DAG runs made by ``dag.create_dagrun``

Note that a real 3.3 deferral does *not* go through ``Trigger.from_object``: that one Fernet-encrypts
the kwargs, while the Execution API stores the worker's serde dict as plain JSON (the triggerer reads
both). ``rows`` returns the shape of what is stored, for the faithfulness test to compare a seeded
row with one a real task deferred.

The seeded DAG is paused, so that a scheduler sharing the database leaves its runs alone; the
triggerer does not look at pauses. ``outcomes`` reads back what the triggerer wrote for each task
instance (its event, decoded with Airflow's own decoder, and when it was delivered).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

SEED_CHUNK = 500
NEXT_METHOD = "execute_complete"


def _trigger(implementation: str, run_id: int, *, poll_seconds: float, run_page_url: str) -> Any:
    """The trigger each operator defers on, built the way the operator builds it."""
    if implementation == "ours":
        from resumable_triggers.databricks import DatabricksSubmitRunOperator

        operator = DatabricksSubmitRunOperator(
            task_id="ours", notebook_task={"notebook_path": "/bench"}, polling_period_seconds=poll_seconds
        )
        return operator.job_trigger(str(run_id))
    from airflow.providers.databricks.operators.databricks import (
        DatabricksSubmitRunOperator as ProviderSubmitRunOperator,
    )
    from airflow.providers.databricks.triggers.databricks import DatabricksExecutionTrigger

    # The provider's type is int: a whole number of seconds is stored as one, as a DAG passes it.
    period: Any = int(poll_seconds) if float(poll_seconds).is_integer() else poll_seconds
    provider: Any = ProviderSubmitRunOperator(
        task_id="provider",
        notebook_task={"notebook_path": "/bench"},
        deferrable=True,
        polling_period_seconds=period,
    )
    # What the provider's _handle_deferrable_databricks_operator_execution passes (inline there, not a
    # method to call); its attributes are set by the provider's base operator.
    return DatabricksExecutionTrigger(
        run_id=run_id,
        databricks_conn_id=provider.databricks_conn_id,
        polling_period_seconds=provider.polling_period_seconds,
        retry_limit=provider.databricks_retry_limit,
        retry_delay=provider.databricks_retry_delay,
        retry_args=provider.databricks_retry_args,
        run_page_url=run_page_url,
        repair_run=getattr(provider, "repair_run", False),
    )


def seed(
    *,
    dag_id: str,
    task_id: str,
    implementation: str,
    run_ids: list[int],
    run_prefix: str,
    poll_seconds: float,
    workspace_url: str,
) -> dict[str, Any]:
    """One DAG run per Databricks run, its ``task_id`` deferred on that run's trigger.

    DAG runs are created first (chunked commits), then every task instance is deferred in one
    transaction, so the triggerer finds them all at once, as after a burst of deferrals."""
    import datetime as dt

    from airflow.models.dag import DagModel
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.trigger import Trigger
    from airflow.sdk.serde import serialize
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=True))
        dag = SerializedDagModel.get_dag(dag_id, session=session)
        if dag is None:
            raise LookupError(f"DAG {dag_id!r} is not serialized yet; has the DAG processor parsed it?")
    ti_ids: list[str] = []
    now = dt.datetime.now(dt.timezone.utc)
    for start in range(0, len(run_ids), SEED_CHUNK):
        with create_session() as session:
            for index in range(start, min(start + SEED_CHUNK, len(run_ids))):
                dag_run = dag.create_dagrun(
                    run_id=f"{run_prefix}-{index}",
                    run_after=now,
                    run_type=DagRunType.MANUAL,
                    triggered_by=DagRunTriggeredByType.TEST,
                    state=DagRunState.RUNNING,
                    session=session,
                )
                ti = dag_run.get_task_instance(task_id, session=session)
                assert ti is not None, f"{dag_id}.{task_id} has no task instance in {dag_run.run_id}"
                ti_ids.append(str(ti.id))
    triggers = [
        _trigger(
            implementation, run_id, poll_seconds=poll_seconds, run_page_url=f"{workspace_url}/#run/{run_id}"
        )
        for run_id in run_ids
    ]
    with create_session() as session:
        for ti_id, trigger in zip(ti_ids, triggers, strict=True):
            classpath, kwargs = trigger.serialize()
            row = Trigger(classpath=classpath, kwargs={})
            row.encrypted_kwargs = json.dumps(serialize(kwargs))
            session.add(row)
            session.flush()
            session.execute(
                update(_ti()).where(_ti().id == ti_id)
                .values(
                    state=TaskInstanceState.DEFERRED,
                    trigger_id=row.id,
                    next_method=NEXT_METHOD,
                    next_kwargs=serialize({}),
                    trigger_timeout=None,
                )
            )  # fmt: skip
    return {"task_instances": ti_ids}


def _ti() -> Any:
    from airflow.models.taskinstance import TaskInstance

    return TaskInstance


def _state(state: Any) -> str | None:
    """A state column as its plain value (the ORM hands back an enum or a str)."""
    return None if state is None else str(getattr(state, "value", state))


def _shape(value: Any) -> Any:
    """A JSON value with every leaf replaced by its type name: what two rows must share."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def rows(*, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    """What the database holds for one deferred task instance and its trigger, as shapes."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import select

    ti_cls = _ti()
    with create_session() as session:
        ti = session.scalar(
            select(ti_cls).where(ti_cls.dag_id == dag_id, ti_cls.run_id == run_id, ti_cls.task_id == task_id)
        )
        if ti is None:
            raise LookupError(f"no task instance {dag_id}/{run_id}/{task_id}")
        trigger = session.get(Trigger, ti.trigger_id) if ti.trigger_id is not None else None
        stored = None if trigger is None else trigger.encrypted_kwargs
        return {
            "state": _state(ti.state),
            "has_trigger": trigger is not None,
            "next_method": ti.next_method,
            "next_kwargs": ti.next_kwargs,
            "trigger_timeout_set": ti.trigger_timeout is not None,
            "classpath": None if trigger is None else trigger.classpath,
            "stored_kwargs_plain_json": None if stored is None else stored.startswith("{"),
            "stored_kwargs_shape": None if stored is None else _shape(json.loads(stored)),
            "kwargs": None if trigger is None else {k: repr(v) for k, v in trigger.kwargs.items()},
            "queue": None if trigger is None else trigger.queue,
        }


def outcomes(*, dag_id: str, run_prefix: str, task_id: str) -> dict[str, Any]:
    """Per DAG run index: the TI's state, when its event was delivered (epoch s) and the event."""
    from airflow.models.trigger import _decode_next_kwargs
    from airflow.utils.session import create_session
    from sqlalchemy import select

    ti_cls = _ti()
    out: dict[str, Any] = {}
    with create_session() as session:
        query = select(ti_cls).where(
            ti_cls.dag_id == dag_id, ti_cls.task_id == task_id, ti_cls.run_id.like(f"{run_prefix}-%")
        )
        for ti in session.scalars(query):
            index = ti.run_id.rsplit("-", 1)[1]
            event = None
            if ti.next_kwargs:
                try:
                    event = _decode_next_kwargs(ti.next_kwargs).get("event")
                except Exception as exc:  # noqa: BLE001 - reported, not hidden: the bench counts it
                    event = {"undecodable": repr(exc)}
            out[index] = {
                "state": _state(ti.state),
                "delivered_at": None if ti.scheduled_dttm is None else ti.scheduled_dttm.timestamp(),
                "next_method": ti.next_method,
                "event": json.loads(json.dumps(event, default=repr)),
            }
    return {"task_instances": out}


def retire(*, dag_id: str, run_prefix: str) -> dict[str, Any]:
    """Fail the phase's task instances still deferred and drop their triggers, so that the next
    phase's triggerer starts with nothing of this one's."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import delete, select, update

    ti_cls = _ti()
    with create_session() as session:
        where = (ti_cls.dag_id == dag_id, ti_cls.run_id.like(f"{run_prefix}-%"))
        trigger_ids = list(
            session.scalars(select(ti_cls.trigger_id).where(*where, ti_cls.trigger_id.is_not(None)))
        )
        session.execute(
            update(ti_cls).where(*where, ti_cls.state == TaskInstanceState.DEFERRED)
            .values(state=TaskInstanceState.FAILED, trigger_id=None)
        )  # fmt: skip
        if trigger_ids:
            session.execute(delete(Trigger).where(Trigger.id.in_(trigger_ids)))
    return {"retired": len(trigger_ids)}


_OPS = {"seed": seed, "rows": rows, "outcomes": outcomes, "retire": retire}


def main() -> int:
    """Serve requests until stdin closes."""
    # Answers get the real stdout to themselves: whatever Airflow prints goes to stderr instead.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    print(json.dumps({"ok": "ready"}), file=answers, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        op: Any = _OPS[request.pop("op")]
        try:
            answer: dict[str, Any] = {"ok": op(**request)}
        except Exception as exc:  # noqa: BLE001 - sent back whole: the orchestrator raises it
            answer = {"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"}
        print(json.dumps(answer), file=answers, flush=True)
    return 0
