"""Turning a worker's SIGTERM into a checkpoint, without deadlocking the task process.

Airflow's task runner answers SIGTERM by calling ``task.on_kill()`` inside the signal handler. Anything
that talks to the supervisor from there (task state store, XCom, task states) hangs forever when the
main thread was interrupted in the middle of such a call: the comms lock is not re-entrant, and an
interrupted request leaves its response unread on the socket.

So while a task holds a submitted job outside the triggerer, ``CheckpointGuard`` replaces the
handler with one that does no I/O at all: it raises ``SigtermReceived`` in the main thread, or, if
the main thread is inside a supervisor call that the guard knows of, remembers the signal and raises
as soon as that call has returned. The operator then decides, in ordinary code, whether this was a
worker shutdown (checkpoint: defer again) or a user's kill (cancel the job).

A SIGTERM that waits for a submit's answer also *hurries* the submit (``_hurry``): the supervisor
SIGKILLs the task 5 s later, and a submit whose answers got lost would otherwise sit out its
client's backoff past that, leaving a job nobody knows the id of (chaos seed 60, HA, replayed).

Airflow 3.3's own handler only calls ``on_kill`` and lets the task go on. A SIGTERM that strikes
before the first window opens (a user's mark success while the task still parses its DAG file, a
shutdown during its decision) is therefore *noted* by the operator's ``on_kill`` (``note``: no I/O)
and handled when the next window opens (``take_noted``): before a submit, a user's kill then
submits nothing; with a job in hand, it is judged as if it had arrived right then. It used to be
forgotten: the task submitted a job, its deferral was refused, and the job ran on (chaos seed 61).

One SIGTERM per window: later ones are absorbed while the operator decides. A container stopped with
its whole process group signalled sends the task two at once (its own, and the one its supervisor
forwards), and the second used to interrupt the decision it had started, failing the try (measured on
the Celery topology). Whatever a second SIGTERM means, the first already asked the same question;
Airflow's supervisor escalates to SIGKILL if the answer takes too long.

``execution_timeout`` is the other signal that strikes mid-call: the task runner's SIGALRM handler
raises ``AirflowTaskTimeout`` wherever the main thread is. Inside a submit, that throws away the
answer that names the job the workspace may just have created, so the operator cannot cancel it and
the job outlives its failed task. ``timeout_waits_for_answer`` holds the alarm for up to a short
grace, and hurries the call: an answer inside the grace is kept and the timeout is raised right
after it, with the job in hand; a call still hanging at the end of the grace is interrupted as
before, so a workspace that does not answer still fails the task within its timeout (plus the grace).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from resumable_triggers._hurry import Hurry, hurrying

TIMEOUT_GRACE_SECONDS = 5.0


class SigtermReceived(BaseException):
    """Raised in the main thread when SIGTERM arrives while a job is held.

    A BaseException so that libraries' ``except Exception`` blocks do not swallow it.
    """


class CheckpointGuard:
    """Holds SIGTERM handling for the windows in which the task holds a submitted job."""

    def __init__(self) -> None:
        self._supervisor_calls = 0
        self._pending = False
        self._armed = False
        self._received = False
        self._hurry: Hurry | None = None  # the awaited answer's, while one is awaited
        self._noted = False  # a SIGTERM reached Airflow's handler (our on_kill) outside the windows
        self.absorbed = 0  # SIGTERMs that arrived after the one being handled (for logs and tests)

    @contextmanager
    def armed(self) -> Iterator[None]:
        """Install the I/O-free handler for the duration of the block (main thread only)."""
        if self._armed or threading.current_thread() is not threading.main_thread():
            # Signals are delivered to the main thread only; nothing to guard elsewhere. Re-entrant:
            # an inner window (a repair's re-deferral) must not disarm the outer one on its way out.
            yield
            return
        previous: Any = signal.signal(signal.SIGTERM, self._handle)
        self._armed, self._received = True, False
        try:
            yield
        finally:
            self._armed = False
            signal.signal(signal.SIGTERM, previous)

    def note(self) -> None:
        """Remember a SIGTERM that Airflow's own handler passed to ``on_kill``. Signal-handler safe."""
        self._noted = True

    def take_noted(self) -> bool:
        """At the start of an armed window: whether a SIGTERM was noted before it. True means the
        caller handles it as if it arrived now, and later ones are absorbed while it decides."""
        if not (self._noted and self._armed):
            return False
        self._noted, self._received = False, True
        return True

    @contextmanager
    def supervisor_call(self) -> Iterator[None]:
        """Wrap every call that talks to the supervisor: SIGTERM waits until it has returned."""
        self._supervisor_calls += 1
        try:
            yield
        finally:
            self._supervisor_calls -= 1
        if self._supervisor_calls == 0 and self._pending and self._armed:
            self._pending, self._received = False, True
            raise SigtermReceived

    @contextmanager
    def awaiting_answer(self) -> Iterator[Hurry]:
        """A remote call whose answer a SIGTERM must wait for (a submit, which may create a job): held
        like a supervisor call, and hurried by the SIGTERM. The hurry is current inside the block."""
        hurry = Hurry()
        with self.supervisor_call(), hurrying(hurry):
            outer, self._hurry = self._hurry, hurry
            try:
                yield hurry
            finally:
                self._hurry = outer

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._received or self._pending:
            self.absorbed += 1
            return
        if self._supervisor_calls:
            self._pending = True
            if self._hurry is not None:
                self._hurry.now()
            return
        self._received = True
        raise SigtermReceived


@contextmanager
def timeout_waits_for_answer(
    hurry: Hurry | None = None, grace_seconds: float = TIMEOUT_GRACE_SECONDS
) -> Iterator[None]:
    """Hold an ``execution_timeout`` that strikes inside the block until the block ends (see above).

    Ending within ``grace_seconds`` of the alarm, the block is followed by the held timeout; still
    running at the end of the grace, it is interrupted by it. The alarm hurries ``hurry``, the
    block's call. Outside the main thread, or with no timeout installed (no ``execution_timeout``),
    the block runs as it is.
    """
    timeout: Any = signal.getsignal(signal.SIGALRM)
    if not callable(timeout) or threading.current_thread() is not threading.main_thread():
        yield
        return
    struck: list[tuple[int, FrameType | None]] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        struck.append((signum, frame))
        signal.signal(signal.SIGALRM, timeout)  # the grace's end is the real timeout again
        signal.setitimer(signal.ITIMER_REAL, grace_seconds)
        if hurry is not None:
            hurry.now()

    signal.signal(signal.SIGALRM, hold)
    try:
        yield
    finally:
        if struck:
            signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, timeout)
    if struck:
        timeout(*struck[0])
