"""``resumable-triggers emulator``: serve the emulator until SIGINT/SIGTERM.

The first two lines of standard output are ``DATABRICKS_HOST=...`` and ``DATABRICKS_TOKEN=...``
(flushed at once), so a shell can ``eval`` them and a parent process can read them. Nothing else is
printed to standard output; logs go to standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from ._emulator import Emulator
from ._server import EmulatorServer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument(
        "--run-seconds", type=float, default=5.0, help="default run duration in seconds (default: 5)"
    )
    parser.add_argument(
        "--state", default=None, metavar="FILE", help="JSON state file: runs survive restarts"
    )
    parser.add_argument("--token", default="dapi-emulator-token", help="the accepted personal access token")
    parser.add_argument("--client-id", default="emulator-client-id", help="accepted OAuth M2M client id")
    parser.add_argument("--client-secret", default="emulator-client-secret", help="its client secret")
    parser.add_argument(
        "--oauth-token-lifetime-seconds", type=float, default=3600.0, help="lifetime of issued OAuth tokens"
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    try:
        emulator = Emulator(
            token=args.token,
            run_seconds=args.run_seconds,
            state_file=args.state,
            client_id=args.client_id,
            client_secret=args.client_secret,
            oauth_token_lifetime_seconds=args.oauth_token_lifetime_seconds,
        )
    except ValueError as exc:
        print(f"resumable-triggers emulator: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(emulator, args.host, args.port))
    except OSError as exc:
        print(
            f"resumable-triggers emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 1
    finally:
        emulator.close()
    return 0


async def _serve(emulator: Emulator, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with EmulatorServer(emulator, host=host, port=port) as server:
        sys.stdout.write(f"DATABRICKS_HOST={server.url}\nDATABRICKS_TOKEN={emulator.token}\n")
        sys.stdout.flush()
        await stop.wait()
