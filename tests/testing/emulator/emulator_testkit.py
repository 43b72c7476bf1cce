"""Helpers for the emulator's tests: raw JSON calls and task specs with ``emulator.*`` keys."""

from __future__ import annotations

import json as jsonlib
from typing import Any

import aiohttp

NOTEBOOK = {"notebook_path": "/Shared/example"}


def task(key: str = "main", **parameters: str) -> dict[str, Any]:
    """A notebook task whose base_parameters carry ``emulator.*`` keys (``duration_seconds=...``)."""
    base = {f"emulator.{name}": value for name, value in parameters.items()}
    return {"task_key": key, "notebook_task": {**NOTEBOOK, "base_parameters": base}}


class Api:
    """Raw JSON calls to the emulator, returning (status, body) without raising."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session, self.url, self.token = session, url, token

    async def call(
        self,
        method: str,
        endpoint: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: bytes | None = None,
        version: str = "2.2",
        headers: dict[str, str] | None = None,
        path: str | None = None,
    ) -> tuple[int, Any]:
        # Endpoint names as the emulator counts them: "runs/get", "run-now", "jobs/list".
        jobs_path = endpoint if endpoint.startswith("jobs/") else f"jobs/{endpoint}"
        url = self.url + (path if path is not None else f"/api/{version}/{jobs_path}")
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        async with self.session.request(
            method, url, params=params, json=json, data=data, headers=all_headers
        ) as response:
            text = await response.text()
            try:
                return response.status, jsonlib.loads(text)
            except ValueError:
                return response.status, text

    async def ok(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        status, body = await self.call(method, endpoint, **kwargs)
        if status != 200:
            raise AssertionError(f"{method} {endpoint} answered {status}: {body}")
        return body

    async def submit(self, *tasks: dict[str, Any], **spec: Any) -> int:
        body = await self.ok(
            "POST", "runs/submit", json={"run_name": "test", "tasks": list(tasks) or [task()], **spec}
        )
        return int(body["run_id"])

    async def get(self, run_id: int, **params: Any) -> dict[str, Any]:
        return dict(await self.ok("GET", "runs/get", params={"run_id": str(run_id), **params}))

    async def life_cycle(self, run_id: int) -> tuple[str, str | None]:
        state = (await self.get(run_id))["state"]
        return state["life_cycle_state"], state.get("result_state")
