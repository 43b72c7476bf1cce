"""How many ``runs/get`` per second the emulator serves on one core.

Starts ``resumable-triggers emulator`` in a subprocess pinned to core 0 (``taskset -c 0`` when
available), fills it with runs (``--runs``, default 10,000: the scale the trigger benchmark uses),
then drives ``runs/get`` for random runs from this process (pinned to another core when there is
one) over ``--connections`` concurrent keep-alive connections for ``--seconds`` and prints the rate.

    .venv/bin/python benchmarks/emulator_throughput.py [--seconds 5] [--connections 32] [--runs 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import aiohttp

TARGET_PER_SECOND = 1000


def start_emulator() -> tuple[subprocess.Popen[bytes], str, str]:
    command = [sys.executable, "-m", "resumable_triggers._cli", "emulator", "--port", "0"]
    command += ["--run-seconds", "600"]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    values = dict(proc.stdout.readline().decode().strip().split("=", 1) for _ in range(2))
    return proc, values["DATABRICKS_HOST"], values["DATABRICKS_TOKEN"]


async def fill(session: aiohttp.ClientSession, url: str, headers: dict[str, str], runs: int) -> list[int]:
    async with session.post(f"{url}/__emulator/foreign-runs", json={"count": max(0, runs - 100)}) as response:
        ids: list[int] = (await response.json())["run_ids"]
    spec = {"run_name": "bench", "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/x"}}]}
    for _ in range(min(100, runs)):
        async with session.post(f"{url}/api/2.2/jobs/runs/submit", json=spec, headers=headers) as response:
            ids.append((await response.json())["run_id"])
    return ids


async def drive(url: str, token: str, seconds: float, connections: int, runs: int) -> tuple[int, int, float]:
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        ids = await fill(session, url, headers, runs)
        ok = errors = 0
        deadline = 0.0

        async def worker() -> None:
            nonlocal ok, errors
            while time.perf_counter() < deadline:
                params = {"run_id": str(random.choice(ids))}
                async with session.get(f"{url}/api/2.2/jobs/runs/get", params=params, headers=headers) as r:
                    await r.read()
                    if r.status == 200:
                        ok += 1
                    else:
                        errors += 1

        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker() for _ in range(connections)))
        return ok, errors, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # keep the load generator off the emulator's core
    proc, url, token = start_emulator()
    try:
        ok, errors, elapsed = asyncio.run(drive(url, token, args.seconds, args.connections, args.runs))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    rate = ok / elapsed
    print(f"runs/get: {ok} ok, {errors} errors in {elapsed:.2f} s over {args.connections} connections")
    print(f"{rate:.0f} requests/second on one core, {args.runs} runs held (target >= {TARGET_PER_SECOND})")
    return 0 if rate >= TARGET_PER_SECOND and errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
