"""Errors the emulator answers with, shaped like the real Databricks REST errors.

``ErrorReply`` is raised by request handlers and turned into ``{"error_code", "message"}`` bodies by
the app; it never escapes to a client as a traceback. It is the emulator's side of what the client
raises as ``resumable_triggers.databricks.client.ApiError``. Control methods on the Python handle raise
plain ``ValueError`` (bad arguments or a run in the wrong state) and ``UnknownRunError`` (a
``LookupError``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resumable_triggers.databricks.client._schema import Violation


class ErrorReply(Exception):
    """An HTTP error response in the Databricks error shape."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers or {}
        # OAuth endpoints answer in RFC 6749's shape, not Databricks'; they pass it explicitly.
        self.body = body if body is not None else {"error_code": error_code, "message": message}


class UnknownRunError(LookupError):
    """A control method named a run id the emulator does not hold."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"Run {run_id} does not exist in the emulator.")
        self.run_id = run_id


def invalid(message: str) -> ErrorReply:
    """400 INVALID_PARAMETER_VALUE, the Jobs API's answer to most bad input."""
    return ErrorReply(400, "INVALID_PARAMETER_VALUE", message)


def malformed(message: str) -> ErrorReply:
    """400 MALFORMED_REQUEST: the body is not JSON, or a field has the wrong JSON type."""
    return ErrorReply(400, "MALFORMED_REQUEST", message)


def rejected(violation: Violation | None) -> None:
    """Raise the workspace's 400 for a body the shared request rules reject (nothing when None):
    MALFORMED_REQUEST for a wrong JSON type, INVALID_PARAMETER_VALUE for a value it does not accept."""
    if violation is not None:
        raise ErrorReply(400, violation.kind.error_code, violation.message)


def run_not_found(run_id: int) -> ErrorReply:
    # The exact text matters: databricks-sdk maps it to ResourceDoesNotExist by regex.
    return invalid(f"Run {run_id} does not exist.")


def job_not_found(job_id: int) -> ErrorReply:
    return invalid(f"Job {job_id} does not exist.")


def endpoint_not_found(method: str, path: str) -> ErrorReply:
    return ErrorReply(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")
