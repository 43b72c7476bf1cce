"""Request parameters: typed reads from a query string or a JSON body, with the API's 400 errors.

GET parameters may come in the query string (databricks-sdk, the provider's sync hook) or in a JSON
body (the provider's async hook sends ``json=`` on GET). Query values are strings; body values are
JSON-typed. Every reader names the parameter in its error message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import invalid, malformed

if TYPE_CHECKING:
    from ._store import EmulatedWorkspace

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parse_body(raw: bytes) -> dict[str, Any]:
    """A JSON object from a request body; empty means ``{}``."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise malformed(f"Could not parse request object: {exc}") from exc
    if not isinstance(value, dict):
        raise malformed(f"Could not parse request object: expected a JSON object, got {type(value).__name__}")
    return value


class Params:
    """Read-only access to one request's parameters."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __contains__(self, name: str) -> bool:
        return self._values.get(name) is not None

    def body(self) -> Mapping[str, Any]:
        """All parameters as sent, for checks that walk the whole request."""
        return self._values

    def raw(self, name: str) -> Any:
        return self._values.get(name)

    def int64(self, name: str, *, required: bool = False, default: int | None = None) -> int | None:
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise invalid(f"Missing required field: {name}")
            return default
        number: int
        if isinstance(value, bool):
            raise invalid(f"Invalid value for parameter {name}: expected an integer, got {value!r}")
        if isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str):
            try:
                number = int(value.strip(), 10)
            except ValueError as exc:
                raise invalid(
                    f"Invalid value for parameter {name}: expected an integer, got {value!r}"
                ) from exc
        else:
            raise invalid(f"Invalid value for parameter {name}: expected an integer, got {_short(value)}")
        if not INT64_MIN <= number <= INT64_MAX:
            raise invalid(f"Invalid value for parameter {name}: {_short(value)} is out of range for int64")
        return number

    def required_int64(self, name: str) -> int:
        value = self.int64(name, required=True)
        assert value is not None  # required=True raised otherwise
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise invalid(f"Invalid value for parameter {name}: expected true or false, got {_short(value)}")

    def string(self, name: str, default: str | None = None, *, max_length: int | None = None) -> str | None:
        value = self._values.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise malformed(f"Invalid value for parameter {name}: expected a string, got {_short(value)}")
        if max_length is not None and len(value) > max_length:
            raise invalid(f"Invalid value for parameter {name}: must be at most {max_length} characters long")
        return value

    def array(self, name: str) -> list[Any]:
        value = self._values.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise malformed(f"Invalid value for parameter {name}: expected an array, got {_short(value)}")
        return value

    def obj(self, name: str) -> dict[str, Any]:
        value = self._values.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise malformed(f"Invalid value for parameter {name}: expected an object, got {_short(value)}")
        return value

    def page_limit(self, name: str, *, default: int, maximum: int) -> int:
        limit = self.int64(name, default=default)
        assert limit is not None
        if limit == 0:
            return maximum
        if not 1 <= limit <= maximum:
            raise invalid(f"Invalid value for parameter {name}: must be between 1 and {maximum}, got {limit}")
        return limit


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True, slots=True)
class Context:
    now: float
    version: str  # "2.1" or "2.2"
    page_url: str  # run_page_url template with {job_id} and {run_id}


# A handler answers a body and the run id it concerns (for the request log).
Result = tuple[dict[str, Any], "int | None"]
Handler = Callable[["EmulatedWorkspace", Params, Context], Result]
