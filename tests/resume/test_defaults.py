"""Operator defaults that users rely on."""

from __future__ import annotations

import pytest

from resumable_triggers.databricks import DatabricksSubmitRunOperator


def test_deferrable_is_the_default() -> None:
    """Without any configuration the operator defers (the point of the library)."""
    assert DatabricksSubmitRunOperator(task_id="t", notebook_task={"notebook_path": "/x"}).deferrable


def test_generated_airflow_cfg_does_not_turn_deferral_off() -> None:
    """Airflow spells out every default in the airflow.cfg it generates, ``default_deferrable = false``
    included; that is no choice of the deployment's, so the operator still defers."""
    import configparser

    from airflow.sdk import conf  # what the operators read; tasks load airflow.cfg into it

    had_option = configparser.ConfigParser.has_option(conf, "operators", "default_deferrable")
    previous = conf.get("operators", "default_deferrable") if had_option else None
    conf.set("operators", "default_deferrable", "false")
    try:
        assert DatabricksSubmitRunOperator(task_id="t", notebook_task={"notebook_path": "/x"}).deferrable
    finally:
        if previous is None:
            conf.remove_option("operators", "default_deferrable")
        else:
            conf.set("operators", "default_deferrable", previous)


def test_explicit_default_deferrable_setting_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment that explicitly sets [operators] default_deferrable=False gets worker-side polling."""
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert not DatabricksSubmitRunOperator(task_id="t", notebook_task={"notebook_path": "/x"}).deferrable


def test_explicit_argument_beats_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """deferrable=True on the operator wins over the deployment's default."""
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    operator = DatabricksSubmitRunOperator(
        task_id="t", notebook_task={"notebook_path": "/x"}, deferrable=True
    )
    assert operator.deferrable


def test_nonpositive_polling_period_is_rejected_naming_the_argument() -> None:
    """A zero polling period fails at DAG parse time with the argument's name."""
    with pytest.raises(ValueError, match="polling_period_seconds"):
        DatabricksSubmitRunOperator(
            task_id="t", notebook_task={"notebook_path": "/x"}, polling_period_seconds=0
        )
