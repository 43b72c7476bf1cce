"""SIGTERM while a job is held: raised in the main thread, but never inside a supervisor call; an
execution_timeout inside a submit: raised once its answer is kept, or at the end of a grace. Either
signal, striking while a submit's answer is awaited, hurries the submit (its backoff ends at once).

A hurried wait here is an hour long: if the hurry failed, the test would hang until pytest-timeout
fails it, so no wall-clock threshold is needed."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator

import pytest

from resumable_triggers._hurry import Hurry, current_hurry, hurrying
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


async def _submit_backing_off_until(signum: signal.Signals) -> str:
    """A submit in its hour-long backoff when ``signum`` reaches the process; its answer once the
    backoff is over."""
    hurry = current_hurry()
    assert hurry is not None
    asyncio.get_running_loop().call_later(0.01, os.kill, os.getpid(), signum)
    await hurry.wait(3600, asyncio.sleep)
    return "run 42"


def test_sigterm_while_a_submit_answer_is_awaited_hurries_the_submit_then_raises() -> None:
    """The supervisor SIGKILLs 5 s after its SIGTERM: the submit the SIGTERM waits for stops backing
    off, answers, and only then is the SIGTERM raised, with the answer kept."""
    guard = CheckpointGuard()
    answer = None
    with pytest.raises(SigtermReceived), guard.armed(), guard.awaiting_answer():
        answer = asyncio.run(_submit_backing_off_until(signal.SIGTERM))
    assert "run 42" == answer


def test_sigterm_noted_before_a_window_is_raised_when_the_window_opens() -> None:
    """Airflow's own handler only calls ``on_kill`` (which notes the SIGTERM) and lets the task go on:
    the next window opens with that SIGTERM, and only that one."""
    guard = CheckpointGuard()
    guard.note()  # as on_kill does, while the task still parses its DAG file
    outside = guard.take_noted()  # outside a window: nothing to decide yet
    with guard.armed():
        first_window = guard.take_noted()
    with guard.armed():
        next_window = guard.take_noted()  # consumed: the next window starts clean
    assert (False, True, False, 0) == (outside, first_window, next_window, guard.absorbed)


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


@pytest.mark.usefixtures("execution_timeout")
def test_execution_timeout_during_a_backing_off_submit_hurries_it_within_the_grace() -> None:
    """The grace is as short as the supervisor's: the alarm hurries the submit, so an answer that a
    backoff would have put after the grace still comes inside it."""
    hurry = Hurry()
    answer = None
    with pytest.raises(_Timeout), timeout_waits_for_answer(hurry, grace_seconds=60.0), hurrying(hurry):
        answer = asyncio.run(_submit_backing_off_until(signal.SIGALRM))
    assert ("run 42", True) == (answer, hurry.hurried)


def test_no_execution_timeout_leaves_the_block_alone() -> None:
    """Without a raising SIGALRM handler (no execution_timeout) the hold installs nothing."""
    previous = signal.signal(signal.SIGALRM, signal.SIG_DFL)  # pytest-timeout may have installed one
    try:
        with timeout_waits_for_answer():
            assert signal.SIG_DFL == signal.getsignal(signal.SIGALRM)
    finally:
        signal.signal(signal.SIGALRM, previous)
