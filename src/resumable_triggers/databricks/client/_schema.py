"""The Jobs API's request schema, read from databricks-sdk's typed models, and a type checker for it.

databricks-sdk generates its models from the workspace's own API definition, so instead of a
hand-written copy that drifts, the schema is walked out of the SDK once (lazily, then cached)::

    JobsAPI.submit / run_now / create      keyword parameters = top-level body fields
        |  typing.get_type_hints + inspect.signature (no default = required)
        v
    SubmitTask, NotebookTask, compute.ClusterSpec ...   dataclasses: Optional[...] = optional,
        |  dataclasses.fields + get_type_hints          no default = required; JSON names from
        v                                               ``as_dict`` (``global_`` is sent as ``global``)
    Shape tree: Scalar | EnumOf | ListOf | MapOf | ObjectOf | Anything

``violation(shape, value, path)`` walks a JSON body against a shape and returns the first
``Violation`` (a value, not an exception: the operator turns it into ``InvalidSpecError``, the emulator
into a 400 reply). Keys the SDK does not know are ignored, as the workspace does with fields newer
than a client; a ``null`` field counts as absent. The rules the models do not carry (task keys,
``depends_on``, one compute per task) live in ``_request_rules``.

Never imports Airflow. Importing ``databricks.sdk`` costs about a second, so nothing here touches it
until the first check (or ``warm()``).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class ViolationKind(enum.Enum):
    """How the workspace classifies a bad body: a wrong JSON type, or a value it does not accept."""

    WRONG_TYPE = "MALFORMED_REQUEST"
    INVALID_VALUE = "INVALID_PARAMETER_VALUE"

    @property
    def error_code(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Violation:
    """The first reason a workspace would reject a body: ``path`` is the field (``tasks[1].task_key``)."""

    path: str
    problem: str
    kind: ViolationKind = ViolationKind.INVALID_VALUE

    @property
    def message(self) -> str:
        return f"Invalid value for parameter {self.path}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Scalar:
    type: type  # str, int, float or bool


@dataclass(frozen=True, slots=True)
class EnumOf:
    enum: type[enum.Enum]


@dataclass(frozen=True, slots=True)
class ListOf:
    item: Shape


@dataclass(frozen=True, slots=True)
class MapOf:
    value: Shape


@dataclass(frozen=True, slots=True)
class ObjectOf:
    """A JSON object whose fields come from ``source``: an SDK dataclass or a ``JobsAPI`` method."""

    source: Callable[..., Any]

    @property
    def fields(self) -> Mapping[str, Field]:
        return _fields(self.source)


@dataclass(frozen=True, slots=True)
class Anything:
    """A type the walker does not model (``Any``): every JSON value passes."""


Shape = Scalar | EnumOf | ListOf | MapOf | ObjectOf | Anything


@dataclass(frozen=True, slots=True)
class Field:
    shape: Shape
    required: bool


def submit_shape() -> ObjectOf:
    """The body of ``POST /jobs/runs/submit``."""
    return ObjectOf(_jobs().JobsAPI.submit)


def run_now_shape() -> ObjectOf:
    """The body of ``POST /jobs/run-now``."""
    return ObjectOf(_jobs().JobsAPI.run_now)


def create_shape() -> ObjectOf:
    """The body of ``POST /jobs/create`` (job settings)."""
    return ObjectOf(_jobs().JobsAPI.create)


def warm() -> None:
    """Import the SDK and walk every request model now, so the first checked request does not pay."""
    for shape in (submit_shape(), run_now_shape(), create_shape()):
        _walk_all(shape, set())


def violation(shape: Shape, value: Any, path: str) -> Violation | None:
    """The first place ``value`` breaks ``shape`` (depth first, in body order), or None."""
    if isinstance(shape, Anything) or value is None:
        return None
    if isinstance(shape, Scalar):
        return _scalar(shape.type, value, path)
    if isinstance(shape, EnumOf):
        allowed = [member.value for member in shape.enum]
        if isinstance(value, str) and value in allowed:
            return None
        shown = ", ".join(map(str, allowed[:8])) + (", ..." if len(allowed) > 8 else "")
        return Violation(path, f"{value!r} is not one of {shown}", ViolationKind.INVALID_VALUE)
    if isinstance(shape, ListOf):
        if isinstance(value, str) or not isinstance(value, Sequence):
            return _wrong(path, "a list", value)
        for index, item in enumerate(value):
            if found := violation(shape.item, item, f"{path}[{index}]"):
                return found
        return None
    if not isinstance(value, Mapping):
        return _wrong(path, "an object", value)
    if isinstance(shape, MapOf):
        for key, item in value.items():
            if found := violation(shape.value, item, join(path, str(key))):
                return found
        return None
    fields = shape.fields
    for key, item in value.items():
        if key in fields and (found := violation(fields[key].shape, item, join(path, key))):
            return found
    for name, spec in fields.items():
        if spec.required and value.get(name) is None:
            return Violation(join(path, name), "this field is required", ViolationKind.INVALID_VALUE)
    return None


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _scalar(kind: type, value: Any, path: str) -> Violation | None:
    if kind is bool:
        return None if isinstance(value, bool) else _wrong(path, "a boolean", value)
    if kind is str:
        # Numbers pass where strings are wanted: the workspace reads them as strings ("Databricks can
        # tolerate either numeric or string types", the provider's normalise_json_content), and the
        # provider's own run-now forwards DAG params such as {"batch": 3} into job_parameters unquoted.
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        return None if isinstance(value, str) or is_number else _wrong(path, "a string", value)
    if isinstance(value, bool):  # JSON true is not a number, though Python's bool is an int
        return _wrong(path, "a number" if kind is float else "an integer", value)
    if kind is float:
        return None if isinstance(value, int | float) else _wrong(path, "a number", value)
    # Integers: what protobuf's JSON mapping (the workspace's) accepts: a whole number, also written
    # 5.0 or quoted ("5"), the way int64 ids are often sent.
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return None
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return None
    return _wrong(path, "an integer", value)


def _wrong(path: str, expected: str, value: Any) -> Violation:
    shown = repr(value) if len(repr(value)) <= 40 else f"a {type(value).__name__}"
    return Violation(path, f"expected {expected}, got {shown}", ViolationKind.WRONG_TYPE)


@functools.cache
def _jobs() -> Any:
    from databricks.sdk.service import jobs

    return jobs


@functools.cache
def _fields(source: Callable[..., Any]) -> Mapping[str, Field]:
    hints = typing.get_type_hints(source)
    if isinstance(source, type) and dataclasses.is_dataclass(source):
        names = _json_names(source)
        return {
            names.get(f.name, f.name): Field(
                _shape(hints[f.name]),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(source)
        }
    parameters = inspect.signature(source).parameters
    return {
        name: Field(_shape(hints[name]), parameter.default is inspect.Parameter.empty)
        for name, parameter in parameters.items()
        if name != "self"
    }


_AS_DICT_KEY = re.compile(r'body\["(?P<json>[^"]+)"\]\s*=\s*[^\n]*?self\.(?P<attr>\w+)')


def _json_names(model: type) -> dict[str, str]:
    # The SDK writes each field under its wire name in ``as_dict``; only a few differ from the
    # attribute (a keyword such as ``global_``, some camelCase names), so read them from there.
    try:
        source = inspect.getsource(model.as_dict)  # type: ignore[attr-defined]
    except (AttributeError, OSError, TypeError):
        return {}
    return {m["attr"]: m["json"] for m in _AS_DICT_KEY.finditer(source)}


def _shape(hint: Any) -> Shape:
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _shape(options[0]) if len(options) == 1 else Anything()
    if origin in (list, Sequence):
        return ListOf(_shape(typing.get_args(hint)[0]))
    if origin in (dict, Mapping):
        return MapOf(_shape(typing.get_args(hint)[1]))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return EnumOf(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return ObjectOf(hint)
    if hint in (str, int, float, bool):
        return Scalar(hint)
    return Anything()


def _walk_all(shape: Shape, seen: set[Callable[..., Any]]) -> None:
    if isinstance(shape, ListOf):
        _walk_all(shape.item, seen)
    elif isinstance(shape, MapOf):
        _walk_all(shape.value, seen)
    elif isinstance(shape, ObjectOf) and shape.source not in seen:
        seen.add(shape.source)
        for spec in shape.fields.values():
            _walk_all(spec.shape, seen)
