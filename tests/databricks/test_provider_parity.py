"""Every argument of the provider's operators is accounted for, read from the installed provider.

The provider's argument sets are built here, at test time, with ``inspect.signature`` over the
``__init__`` of each class in its MRO above BaseOperator (BaseOperator's own arguments are Airflow's,
taken as they are): a provider release that adds an argument fails this file until the table in
``resumable_triggers.databricks._provider_args`` says what it does here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest

from resumable_triggers.databricks import ProviderArgumentRejected, _provider_args
from resumable_triggers.databricks._provider_args import ARGUMENTS, NOT_PROVIDED, Status

provider = pytest.importorskip("airflow.providers.databricks.operators.databricks")
DOCS = Path(__file__).parents[2] / "docs" / "provider-arguments.md"
NOTEBOOK = {"notebook_path": "/x"}
REQUIRED: dict[str, dict[str, Any]] = {
    "DatabricksSubmitRunOperator": {"notebook_task": NOTEBOOK, "existing_cluster_id": "0101-abc"},
    "DatabricksRunNowOperator": {"job_id": 42},
    "DatabricksNotebookOperator": {
        "notebook_path": "/x",
        "source": "WORKSPACE",
        "existing_cluster_id": "0101-abc",
    },
    "DatabricksTaskOperator": {"task_config": {"notebook_task": NOTEBOOK}, "existing_cluster_id": "0101-abc"},
}
# A value each rejected argument refuses (the table's accepted values are the provider's defaults).
REFUSED = {
    "wait_for_termination": False,
    "durable": False,
    "workflow_run_metadata": {"run_id": 7, "conn_id": "databricks_default", "job_id": 3},
}

IGNORED = {
    "databricks_retry_limit": 5,
    "databricks_retry_delay": 2,
    "databricks_retry_args": {"stop": None},
    "job_cluster_key": "shared",
    "caller": "MyOperator",
}


def init_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The named ``__init__`` parameters declared by ``cls`` and its bases above BaseOperator."""
    from airflow.sdk import BaseOperator

    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if issubclass(BaseOperator, klass) or "__init__" not in vars(klass):
            continue  # BaseOperator and its own bases, or a class that inherits its __init__
        for name, parameter in inspect.signature(vars(klass)["__init__"]).parameters.items():
            if name != "self" and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                found.setdefault(name, parameter)
    return found


def ours(operator: str) -> Any:
    import resumable_triggers.databricks

    return getattr(resumable_triggers.databricks, operator)


@pytest.mark.parametrize("operator", sorted(ARGUMENTS))
def test_every_provider_argument_is_supported_ignored_or_rejected(operator: str) -> None:
    """No provider argument is missing from the table, and the table names none the provider lacks."""
    theirs = set(init_parameters(getattr(provider, operator)))
    assert (set(), set()) == (theirs - set(ARGUMENTS[operator]), set(ARGUMENTS[operator]) - theirs)


@pytest.mark.parametrize("operator", sorted(ARGUMENTS))
def test_our_operator_takes_every_provider_argument_and_templates_what_the_provider_templates(
    operator: str,
) -> None:
    """Each provider argument is a keyword of our ``__init__`` (so none falls to BaseOperator's
    unknown-argument error), and each provider template field is one of ours."""
    missing = set(ARGUMENTS[operator]) - set(init_parameters(ours(operator)))
    untemplated = set(getattr(provider, operator).template_fields) - set(ours(operator).template_fields)
    assert (set(), set()) == (missing, untemplated)


@pytest.mark.parametrize("operator", sorted(ARGUMENTS))
def test_the_provider_defaults_of_rejected_arguments_are_accepted(operator: str) -> None:
    """Leaving a rejected argument at the provider's default asks for nothing we lack: it must pass,
    so that a DAG written for the provider parses unchanged unless it asks for more."""
    defaults = {name: p.default for name, p in init_parameters(getattr(provider, operator)).items()}
    rejected = [a for a in ARGUMENTS[operator].values() if a.status is Status.REJECTED]
    assert [] == [a.name for a in rejected if defaults[a.name] not in a.accepted]
    ours(operator)(task_id="t", **REQUIRED[operator], **{a.name: defaults[a.name] for a in rejected})


@pytest.mark.parametrize(
    ("operator", "name"),
    [
        (operator, argument.name)
        for operator, table in sorted(ARGUMENTS.items())
        for argument in table.values()
        if argument.status is Status.REJECTED
    ],
)
def test_a_rejected_argument_raises_at_parse_saying_why_and_what_to_use(operator: str, name: str) -> None:
    """Construction (DAG parse) raises, naming the operator and the argument, with the table's reason
    and alternative; nothing is silently accepted."""
    with pytest.raises(ProviderArgumentRejected) as raised:
        ours(operator)(task_id="t", **REQUIRED[operator], **{name: REFUSED[name]})
    note = ARGUMENTS[operator][name].note
    assert (name, f"{operator}: {name}={REFUSED[name]!r} is not supported: {note}") == (
        raised.value.argument,
        str(raised.value),
    )
    assert " use " in note, "a rejection says what to use instead"


def test_repair_run_is_accepted_with_its_budget_checked_at_parse() -> None:
    """repair_run is supported (at most max_repairs repairs, default 1 as the provider makes); a
    budget or a repair reason that cannot work fails at DAG parse, naming the argument."""
    from resumable_triggers.databricks import InvalidSpecError

    operator = ours("DatabricksRunNowOperator")
    assert (1, 0) == (
        operator(task_id="t", job_id=42, repair_run=True).max_repairs,
        operator(task_id="t", job_id=42).max_repairs,
    )
    bad_settings = {"OOM": {"max_concurrent_runs": "many"}}
    for bad, field in [
        ({"max_repairs": 0}, "max_repairs"),
        ({"max_repairs": True}, "max_repairs"),
        ({"databricks_repair_reason_new_settings": bad_settings}, "max_concurrent_runs"),
        ({"databricks_repair_reason_new_settings": ["OOM"]}, "databricks_repair_reason_new_settings"),
    ]:
        with pytest.raises(InvalidSpecError, match=field):
            operator(task_id="t", job_id=42, repair_run=True, **bad)


@pytest.mark.parametrize("operator", sorted(ARGUMENTS))
def test_ignored_arguments_warn_that_they_have_no_effect(operator: str) -> None:
    """Each IGNORED argument given a value is accepted with a UserWarning that names it and says why;
    arguments ignored for the same reason share one warning."""
    ignored = [a for a in ARGUMENTS[operator].values() if a.status is Status.IGNORED]
    expected = {
        f"{', '.join(sorted(a.name for a in ignored if a.note == note))} has no effect: {note}"
        for note in {a.note for a in ignored}
    }
    with pytest.warns(UserWarning, match=" has no effect: ") as warned:
        ours(operator)(task_id="t", **REQUIRED[operator], **{a.name: IGNORED[a.name] for a in ignored})
    assert expected == {str(w.message) for w in warned if w.category is UserWarning}


def test_every_provider_operator_is_mirrored_or_listed_as_not_provided() -> None:
    """Each public operator class the provider ships is either one we mirror or in NOT_PROVIDED."""
    import airflow.providers.databricks.operators as package
    from airflow.sdk import BaseOperator

    shipped = {
        name
        for module in pkgutil.iter_modules(package.__path__)
        for name, value in vars(importlib.import_module(f"{package.__name__}.{module.name}")).items()
        if inspect.isclass(value)
        and issubclass(value, BaseOperator)
        and value.__module__.startswith(package.__name__)
        and name.endswith("Operator")
        and not name.startswith("_")
        and not inspect.isabstract(value)
    }
    listed = {*ARGUMENTS, *NOT_PROVIDED}
    assert (sorted(shipped), len(NOT_PROVIDED)) == (sorted(listed), len(set(NOT_PROVIDED)))


def test_the_docs_page_shows_the_table_as_the_code_has_it() -> None:
    """docs/provider-arguments.md holds ``markdown()`` between its markers, so the page cannot drift.
    To regenerate: ``python -c 'from resumable_triggers.databricks._provider_args import markdown;
    print(markdown())'`` and paste between the markers."""
    page = DOCS.read_text()
    found = re.search(r"<!-- table: begin -->\n(.*)<!-- table: end -->", page, re.DOTALL)
    assert found is not None, "the page lost its <!-- table: begin --> / <!-- table: end --> markers"
    assert _provider_args.markdown() == found.group(1)
