"""SIGTERM while a job is held: raised in the main thread, but never inside a supervisor call."""

from __future__ import annotations

import os
import signal

import pytest

from resumable_triggers.resume import CheckpointGuard, SigtermReceived


def test_sigterm_while_armed_raises_in_the_main_thread() -> None:
    """A SIGTERM inside the armed window surfaces as SigtermReceived where the main thread is."""
    guard = CheckpointGuard()
    with pytest.raises(SigtermReceived), guard.armed():
        os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_during_a_supervisor_call_waits_until_the_call_returned() -> None:
    """The handler never interrupts a supervisor call (the measured deadlock); it raises right after."""
    guard = CheckpointGuard()
    completed = []
    with pytest.raises(SigtermReceived), guard.armed():
        with guard.supervisor_call():
            os.kill(os.getpid(), signal.SIGTERM)
            completed.append("call finished")
        completed.append("after the call")  # never reached: the pending signal is raised on exit
    assert ["call finished"] == completed


def test_second_sigterm_while_the_first_is_handled_is_absorbed() -> None:
    """A whole process group stopped at once sends the task two SIGTERMs (its own and the one its
    supervisor forwards): the second must not interrupt the decision the first started."""
    guard = CheckpointGuard()
    decided = []
    with guard.armed():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except SigtermReceived:
            with guard.supervisor_call():  # reading the task's state, as _on_sigterm does
                os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            decided.append("checkpoint")
    assert (["checkpoint"], 2) == (decided, guard.absorbed)


def test_a_new_window_raises_again_after_an_absorbed_one() -> None:
    """Absorbing is per window: a later armed window (a later resumption) hears SIGTERM anew."""
    guard = CheckpointGuard()
    with pytest.raises(SigtermReceived), guard.armed():
        os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(SigtermReceived), guard.armed():
        os.kill(os.getpid(), signal.SIGTERM)


def test_previous_handler_is_restored_after_the_window() -> None:
    """Outside held windows, Airflow's own SIGTERM handler is back in place."""

    def airflow_handler(signum: int, frame: object) -> None:
        raise AssertionError("not expected to run")

    previous = signal.signal(signal.SIGTERM, airflow_handler)
    try:
        with CheckpointGuard().armed():
            assert airflow_handler is not signal.getsignal(signal.SIGTERM)
        assert airflow_handler is signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
