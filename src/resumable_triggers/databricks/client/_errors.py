"""Errors raised by the Databricks Jobs client.

The hierarchy (catch the narrowest class that lets you decide what to do)::

    DatabricksError                  anything this client raises on purpose
    ├── ApiError                     the workspace answered with an HTTP error status
    │   ├── AuthError                401/403: credentials missing, expired or not allowed
    │   └── RunNotFound              the run id is unknown (never existed, or removed after 60 days)
    ├── CredentialsError             the header provider could not produce auth headers
    ├── TransportError               no usable answer: connection failed, timed out or dropped
    │   └── TlsVerificationError     the workspace's certificate is not trusted (never retried)
    ├── RetriesExhausted             a retryable failure outlived the retry budget
    └── JobLookupError               a job name matched no job, or several

Every error carries fields (status, error_code, endpoint, run id, retry-after) so callers branch on
data, never on message text. Messages say what happened, to which object, and what to do; they never
contain request headers, tokens or secrets, because those are never handed to an error.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthError",
    "CredentialsError",
    "DatabricksError",
    "JobLookupError",
    "RetriesExhausted",
    "RunNotFound",
    "TlsVerificationError",
    "TransportError",
]


class DatabricksError(Exception):
    """Base class of every error the client raises on purpose."""


class ApiError(DatabricksError):
    """The workspace answered ``endpoint`` with an HTTP error ``status``.

    ``error_code`` is Databricks' machine-readable code (``INVALID_PARAMETER_VALUE``...), ``None`` when
    the body was not Databricks JSON (a proxy's HTML page, say). ``retry_after_seconds`` is the parsed
    ``Retry-After`` header, if any.
    """

    def __init__(
        self,
        *,
        status: int,
        error_code: str | None,
        message: str,
        endpoint: str,
        retry_after_seconds: float | None = None,
    ) -> None:
        self.status = status
        self.error_code = error_code
        self.message = message
        self.endpoint = endpoint
        self.retry_after_seconds = retry_after_seconds
        code = f" {error_code}" if error_code else ""
        super().__init__(f"Databricks {endpoint} answered HTTP {status}{code}: {message}")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, error_code={self.error_code!r}, "
            f"endpoint={self.endpoint!r}, message={self.message!r})"
        )


class AuthError(ApiError):
    """401 or 403: the credentials were rejected even after one refresh.

    Check the connection's token, service principal or workspace permissions; retrying will not help.
    """


class RunNotFound(ApiError):
    """The workspace does not know ``run_id``: it never existed, was deleted, or aged out (60 days)."""

    def __init__(
        self,
        *,
        run_id: int | None,
        status: int,
        error_code: str | None,
        message: str,
        endpoint: str,
    ) -> None:
        self.run_id = run_id
        super().__init__(status=status, error_code=error_code, message=message, endpoint=endpoint)


class CredentialsError(DatabricksError):
    """The header provider for ``identity`` failed to build a databricks-sdk ``Config`` or headers.

    The cause (``__cause__``) is the SDK's own error, which names the auth method it tried.
    ``transient`` is True when trying again may help (network failure, a refresh that hung, or a
    refresh of credentials that worked before); the client retries those within its budget.
    """

    def __init__(self, message: str, *, identity: str, transient: bool = False) -> None:
        self.identity = identity
        self.transient = transient
        super().__init__(message)


class TransportError(DatabricksError):
    """``method endpoint`` got no usable HTTP answer: refused, reset, timed out or cut mid-response.

    ``request_sent`` is False only when the connection was never established, i.e. the workspace
    certainly did not act on the request.
    """

    def __init__(self, message: str, *, method: str, endpoint: str, request_sent: bool) -> None:
        self.method = method
        self.endpoint = endpoint
        self.request_sent = request_sent
        super().__init__(message)


class TlsVerificationError(TransportError):
    """The workspace's TLS certificate failed verification. Retrying cannot fix it: fix the CA bundle."""


class RetriesExhausted(DatabricksError):
    """``endpoint`` kept failing with retryable errors for ``attempts`` tries over ``elapsed_seconds``.

    ``last_error`` is the final failure (also chained as ``__cause__``); inspect it for the status.

    ``budget`` names the ``ClientSettings`` field that ran out: ``retry_budget_seconds``, or
    ``connect_budget_seconds`` when no attempt got an HTTP answer (the workspace could not be reached).
    """

    def __init__(
        self,
        *,
        endpoint: str,
        attempts: int,
        elapsed_seconds: float,
        last_error: DatabricksError,
        budget: str = "retry_budget_seconds",
    ):
        self.endpoint = endpoint
        self.attempts = attempts
        self.elapsed_seconds = elapsed_seconds
        self.last_error = last_error
        self.budget = budget
        what = (
            "the workspace could not be reached"
            if budget == "connect_budget_seconds"
            else "the workspace may be overloaded or unreachable"
        )
        super().__init__(
            f"Databricks {endpoint} still failing after {attempts} attempts in {elapsed_seconds:.1f} s "
            f"(last error: {last_error}); {what}, try again later or raise ClientSettings.{budget}"
        )


class JobLookupError(DatabricksError):
    """No job, or more than one job, is named ``job_name``; ``job_ids`` lists the matches."""

    def __init__(self, *, job_name: str, job_ids: tuple[int, ...]) -> None:
        self.job_name = job_name
        self.job_ids = job_ids
        if job_ids:
            message = (
                f"{len(job_ids)} Databricks jobs are named {job_name!r} (job ids {list(job_ids)}); "
                "pass job_id instead of job_name"
            )
        else:
            message = f"no Databricks job is named {job_name!r}; check the name or pass job_id"
        super().__init__(message)
