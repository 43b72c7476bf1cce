"""A recording HTTP proxy in front of the emulator: the exact JSON bodies an operator sent, in order.

The emulator keeps what it needs of a request (runs, their parameters), not every field sent, and its
request log has no bodies; the proxy sits on the wire, so "sends what the provider sends" is asserted
from the bytes that left the operator. Served from a thread of its own, like the emulator, so that a
synchronous ``dag.test()`` can reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web


@dataclass(frozen=True, slots=True)
class Sent:
    """One request as it left the client: ``endpoint`` without the API version (``jobs/run-now``)."""

    method: str
    endpoint: str
    body: Any


class WireRecorder:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.url = ""
        self._sent: list[Sent] = []
        self._lock = threading.Lock()

    def sent(self, endpoint: str | None = None) -> list[Sent]:
        with self._lock:
            return [s for s in self._sent if endpoint is None or s.endpoint == endpoint]

    def bodies(self, endpoint: str) -> list[Any]:
        return [s.body for s in self.sent(endpoint)]

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        # /api/2.2/jobs/run-now -> jobs/run-now
        endpoint = request.path.split("/", 3)[-1] if request.path.startswith("/api/") else request.path
        with self._lock:
            self._sent.append(Sent(request.method, endpoint, json.loads(raw) if raw else None))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, f"{self.upstream}{request.path_qs}", data=raw, headers=headers
            ) as answer,
        ):
            body = await answer.read()
            return web.Response(
                status=answer.status, body=body, content_type=answer.content_type or "application/json"
            )


@contextlib.contextmanager
def recording_proxy(upstream: str) -> Iterator[WireRecorder]:
    """A WireRecorder forwarding to ``upstream``, served on 127.0.0.1 until the block ends."""
    recorder = WireRecorder(upstream)
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder._forward)
    runner = web.AppRunner(app)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        recorder.url = f"http://127.0.0.1:{port}"
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="wire-recorder", daemon=True)
    thread.start()
    if not started.wait(10):
        raise TimeoutError("the recording proxy did not start within 10 s")
    try:
        yield recorder
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
