"""SIGTERM while a job is held: raised in the main thread, but never inside a supervisor call; an
execution_timeout inside a submit: raised once its answer is kept, or at the end of a grace."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from resumable_triggers.resume import CheckpointGuard, SigtermReceived
from resumable_triggers.resume._signals import timeout_waits_for_answer


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


class _Timeout(Exception):
    """What the task runner's SIGALRM handler raises (AirflowTaskTimeout, stood in for)."""


@pytest.fixture
def execution_timeout() -> Iterator[None]:
    """Install a SIGALRM handler that raises, as Airflow's ``timeout`` does for ``execution_timeout``."""

    def strike(signum: int, frame: object) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, strike)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.usefixtures("execution_timeout")
def test_execution_timeout_during_a_submit_is_raised_after_its_answer_is_kept() -> None:
    """The alarm strikes mid-call: the call finishes, its answer is assigned, then the timeout is
    raised, so the operator can cancel the job the answer names."""
    answer = None
    with pytest.raises(_Timeout), timeout_waits_for_answer(grace_seconds=60.0):
        os.kill(os.getpid(), signal.SIGALRM)
        answer = "run 42"
    assert ("run 42", (0.0, 0.0)) == (answer, signal.getitimer(signal.ITIMER_REAL))


@pytest.mark.usefixtures("execution_timeout")
def test_execution_timeout_during_a_call_that_never_answers_interrupts_it_after_the_grace() -> None:
    """A workspace that does not answer still fails the task: the grace ends in the real timeout."""
    reached = []
    with pytest.raises(_Timeout), timeout_waits_for_answer(grace_seconds=0.01):
        os.kill(os.getpid(), signal.SIGALRM)
        reached.append("held")
        threading.Event().wait(60)  # interrupted by the grace's end, not by the 60 s
        reached.append("answered")
    assert ["held"] == reached


def test_no_execution_timeout_leaves_the_block_alone() -> None:
    """Without a raising SIGALRM handler (no execution_timeout) the hold installs nothing."""
    previous = signal.signal(signal.SIGALRM, signal.SIG_DFL)  # pytest-timeout may have installed one
    try:
        with timeout_waits_for_answer():
            assert signal.SIG_DFL == signal.getsignal(signal.SIGALRM)
    finally:
        signal.signal(signal.SIGALRM, previous)
