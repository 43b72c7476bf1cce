"""Errors of `resumable_triggers.testing.airflow` (the hierarchy is drawn in its docstring)."""

from __future__ import annotations


class DeploymentError(Exception):
    """Base class of the deployment harness's errors."""


class ComponentExitedError(DeploymentError):
    """A component's main process exited while the deployment waited for it to become ready."""

    def __init__(self, component: str, returncode: int | None, log_tail: str) -> None:
        self.component = component
        self.returncode = returncode
        self.log_tail = log_tail
        super().__init__(
            f"Airflow {component} exited with code {returncode} before it was ready; "
            f"the end of its log follows:\n{log_tail}"
        )


class AirflowApiError(DeploymentError):
    """The REST API answered ``method path`` with an error ``status`` (``None``: no answer at all)."""

    def __init__(self, method: str, path: str, status: int | None, detail: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        answer = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{method} {path} failed with {answer}: {detail}")


class UnexpectedStateError(DeploymentError):
    """A task instance or DAG run reached a final ``state`` other than the awaited ones."""

    def __init__(self, what: str, state: str, states_seen: list[str | None]) -> None:
        self.what = what
        self.state = state
        self.states_seen = states_seen
        super().__init__(f"waited for {what}, but it ended {state!r} (states seen in order: {states_seen})")


class WaitTimeoutError(DeploymentError, TimeoutError):
    """A wait gave up after ``timeout_seconds``; ``last_seen`` is the last value it observed."""

    def __init__(self, what: str, timeout_seconds: float, last_seen: object) -> None:
        self.what = what
        self.timeout_seconds = timeout_seconds
        self.last_seen = last_seen
        super().__init__(f"gave up waiting for {what} after {timeout_seconds:g} s; last seen: {last_seen!r}")


class UnknownJobError(DeploymentError, LookupError):
    """No instance of the deployment registered the Airflow job ``job_id`` (``hostname``: the job's)."""

    def __init__(self, job_id: int, hostname: str | None, job_type: str | None) -> None:
        self.job_id = job_id
        self.hostname = hostname
        self.job_type = job_type
        found = "no such job" if job_type is None else f"a {job_type} on host {hostname!r}"
        super().__init__(
            f"job {job_id} is {found}, which no instance of this deployment registered; "
            "pass the id of a job of this deployment (e.g. a task instance's triggerer_job.id)"
        )
