"""The control surface is defined once: ``ControlSurface`` declares every operation, and ``Emulator``
(in process) and ``EmulatorControl`` (over HTTP) are the same surface, operation for operation."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from resumable_triggers.testing import Emulator, EmulatorControl, EmulatorFactory, ManualClock
from resumable_triggers.testing.emulator._surface import OPERATIONS, ControlSurface


def _members(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


def _signature(cls: type, name: str) -> inspect.Signature:
    member = inspect.getattr_static(cls, name)
    return inspect.signature(member.fget if isinstance(member, property) else member)


def test_every_member_of_the_surface_is_an_operation_with_a_route() -> None:
    """OPERATIONS, from which the control routes and the client's calls derive, names every member of
    ControlSurface, and no two operations share a route unless both are GETs told apart by arguments."""
    routes = [(op.http_method, op.route) for op in OPERATIONS]
    shared = {route for route in routes if routes.count(route) > 1}

    assert (_members(ControlSurface), {("GET", "runs")}) == ({op.name for op in OPERATIONS}, shared)


@pytest.mark.parametrize("implementation", [Emulator, EmulatorControl])
def test_both_implementations_have_the_surfaces_signatures_and_docstrings(implementation: type) -> None:
    """Same parameters, defaults, annotations, property-ness, and the surface's docstring (help())."""
    names = sorted(_members(ControlSurface))
    differences = {
        name: (_signature(ControlSurface, name), _signature(implementation, name))
        for name in names
        if _signature(ControlSurface, name) != _signature(implementation, name)
        or isinstance(inspect.getattr_static(ControlSurface, name), property)
        != isinstance(inspect.getattr_static(implementation, name), property)
        or inspect.getdoc(getattr(ControlSurface, name)) != inspect.getdoc(getattr(implementation, name))
    }
    assert {} == differences


def _script(surface: ControlSurface) -> list[Any]:
    """Every operation once, in an order where each has something to act on; what each returned."""
    surface.set_default_outcome("FAILED", 30.0, "boom")
    foreign = surface.add_foreign_runs(2, active=True)
    results: list[Any] = [foreign]
    surface.script_run(foreign[0], "SUCCESS", 5.0, None, 1)
    surface.finish_run(foreign[1], "CANCELED", "stopped")
    surface.inject_fault("runs/get", "http_error", 2, 503, 1.0, 0.0)
    surface.set_rate_limit("runs/list", 10.0, 20.0)
    surface.add_token("dapi-rotated")
    results.append(surface.revoke_token("dapi-rotated"))
    results.append(surface.revoke_token("dapi-never-accepted"))
    results.append(surface.release_held())
    results.append(surface.counters())
    results.append(surface.request_log)
    results.append(_without_page_urls(surface.runs()))
    results.append(_without_page_urls(surface.get_run(foreign[0])))
    surface.reset()
    results.append((surface.counters(), surface.runs()))
    return results


def _without_page_urls(value: Any) -> Any:
    # A served emulator's run pages point at its port; the unserved one's at plain 127.0.0.1.
    if isinstance(value, dict):
        return {k: _without_page_urls(v) for k, v in value.items() if k != "run_page_url"}
    if isinstance(value, list):
        return [_without_page_urls(v) for v in value]
    return value


def test_every_operation_answers_the_same_in_process_and_over_http(
    databricks_emulator_factory: EmulatorFactory,
) -> None:
    """The same script of every operation, on one emulator directly and on its twin through
    EmulatorControl, returns equal values (typed: Counters, RequestRecords), and leaves equal state."""
    direct = Emulator(clock=ManualClock())
    twin = databricks_emulator_factory(clock=ManualClock())
    control = EmulatorControl(twin.url)

    assert _script(direct) == _script(control)


def test_an_unknown_run_is_unknown_on_both_sides(databricks_emulator_factory: EmulatorFactory) -> None:
    """get_run, script_run and finish_run of a run id nobody holds raise UnknownRunError on both."""
    from resumable_triggers.testing import UnknownRunError

    control = EmulatorControl(databricks_emulator_factory().url)
    raised = []
    for surface in (Emulator(), control):
        for call in (lambda s: s.get_run(7), lambda s: s.script_run(7), lambda s: s.finish_run(7)):
            with pytest.raises(UnknownRunError) as caught:
                call(surface)
            raised.append(caught.value.run_id)
    assert [7] * 6 == raised


def test_script_run_with_fail_attempts_fails_the_run_on_both_sides(
    databricks_emulator_factory: EmulatorFactory,
) -> None:
    """script_run(fail_attempts=1) makes the run end FAILED in process and over HTTP alike; a negative
    fail_attempts is a ValueError on both."""
    clock = ManualClock()
    control = EmulatorControl(databricks_emulator_factory(clock=clock).url)
    scripted: list[tuple[ControlSurface, int]] = []
    refusals = []
    for surface in (Emulator(clock=clock), control):
        [run_id] = surface.add_foreign_runs(1, active=True)
        surface.script_run(run_id, "SUCCESS", 5.0, None, 1)
        scripted.append((surface, run_id))
        with pytest.raises(ValueError, match=r"^fail_attempts must be an integer >= 0") as caught:
            surface.script_run(run_id, fail_attempts=-1)
        refusals.append(type(caught.value))
    clock.advance(3600)
    outcomes = [surface.get_run(run_id)["state"]["result_state"] for surface, run_id in scripted]
    assert (["FAILED", "FAILED"], [ValueError, ValueError]) == (outcomes, refusals)
