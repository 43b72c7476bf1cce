"""ClientSettings: safe defaults and precise validation messages."""

from __future__ import annotations

import pytest

from resumable_triggers.databricks.client import ClientSettings


def test_defaults_are_conservative_and_verify_tls() -> None:
    """Without arguments the budget stays below the Go SDK's 15 req/s and TLS is verified."""
    settings = ClientSettings()

    assert settings.requests_per_second <= 15
    assert settings.verify_tls is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"requests_per_second": 0}, "ClientSettings.requests_per_second must be > 0, got 0"),
        ({"burst": 0}, "ClientSettings.burst must be a whole number >= 1, got 0"),
        ({"burst": 2.5}, "ClientSettings.burst must be a whole number >= 1, got 2.5"),
        ({"max_connections": 0}, "ClientSettings.max_connections must be a whole number >= 1, got 0"),
        ({"retry_budget_seconds": -1}, "ClientSettings.retry_budget_seconds must be >= 0, got -1"),
        ({"request_timeout_seconds": 0}, "ClientSettings.request_timeout_seconds must be > 0, got 0"),
        (
            {"backoff_initial_seconds": 5, "backoff_max_seconds": 1},
            "ClientSettings.backoff_max_seconds (1) must be >= backoff_initial_seconds (5)",
        ),
    ],
)
def test_invalid_values_are_rejected_with_the_field_and_value(kwargs: dict[str, float], message: str) -> None:
    """Each invalid value raises ValueError naming the field, the rule and the value given."""
    with pytest.raises(ValueError) as excinfo:
        ClientSettings(**kwargs)  # type: ignore[arg-type]

    assert message == str(excinfo.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"requests_per_second": "10"},
            "ClientSettings.requests_per_second must be a finite number, got '10'",
        ),
        ({"jitter_seconds": float("nan")}, "ClientSettings.jitter_seconds must be a finite number, got nan"),
        ({"verify_tls": "yes"}, "ClientSettings.verify_tls must be a bool, got 'yes'"),
    ],
)
def test_wrong_types_are_rejected(kwargs: dict[str, object], message: str) -> None:
    """Strings and NaN (easy to get from a serialised trigger) fail fast with TypeError."""
    with pytest.raises(TypeError) as excinfo:
        ClientSettings(**kwargs)  # type: ignore[arg-type]

    assert message == str(excinfo.value)


def test_settings_are_keyword_only() -> None:
    """Positional numbers would be ambiguous; they are refused."""
    with pytest.raises(TypeError):
        ClientSettings(10.0)  # type: ignore[call-arg]
