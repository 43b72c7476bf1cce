"""Serving an ``Emulator`` over HTTP: in the current event loop, or in a thread of its own."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from types import TracebackType

from aiohttp import web

from ._emulator import Emulator

# In-flight requests (a "latency" fault, say) get this long to finish when a server stops.
_SHUTDOWN_TIMEOUT_SECONDS = 2.0
_MAX_LINE_BYTES = 256 * 1024


class EmulatorServer:
    """Serve ``emulator`` on ``host:port`` (0: a free port) in the running event loop.

    ``async with EmulatorServer(emu) as server: server.url`` -> ``"http://127.0.0.1:PORT"``.
    """

    def __init__(self, emulator: Emulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("EmulatorServer is not started; use 'async with EmulatorServer(...)'.")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def token(self) -> str:
        return self.emulator.token

    async def start(self) -> None:
        runner = web.AppRunner(
            self.emulator.make_app(),
            access_log=None,
            shutdown_timeout=_SHUTDOWN_TIMEOUT_SECONDS,
            # aiohttp's 8 KiB default would answer a long query string with a plain-text 400 (and log a
            # traceback); a larger limit lets such requests reach the API's JSON errors.
            max_line_size=_MAX_LINE_BYTES,
            max_field_size=_MAX_LINE_BYTES,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self.emulator.request_path.attach(self.url)

    async def close(self) -> None:
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        self.emulator.release_held()
        await runner.cleanup()
        self.emulator.flush()

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


@contextlib.contextmanager
def emulator_in_thread(
    emulator: Emulator, *, host: str = "127.0.0.1", port: int = 0, start_timeout_seconds: float = 30.0
) -> Iterator[EmulatorServer]:
    """Serve ``emulator`` from a daemon thread with its own event loop, for synchronous clients.

    Yields the started ``EmulatorServer`` (``.url``); stops it and joins the thread on exit.
    """
    server = EmulatorServer(emulator, host=host, port=port)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            failure.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(server.close())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=serve, name="databricks-emulator", daemon=True)
    thread.start()
    if not started.wait(start_timeout_seconds):
        raise TimeoutError(f"The emulator did not start within {start_timeout_seconds} s.")
    if failure:
        raise failure[0]
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
