"""``resumable-triggers emulator``: serve the emulator until SIGINT/SIGTERM, here or in the background.

In the foreground, the first two lines of standard output are ``DATABRICKS_HOST=...`` and
``DATABRICKS_TOKEN=...`` (flushed at once), for a parent process to read (``EmulatorProcess`` does).
Nothing else is printed to standard output; logs go to standard error. A shell cannot ``eval`` them
with ``$(...)``: the substitution waits for the end of the output, and a server's never comes.

``--background`` is for shells: it starts the same server as a child in a session of its own (stdin
from /dev/null, logs to ``--log-file``, stdout a pipe only this command reads), waits until it
listens, prints ``export`` lines and exits, so ``eval "$(resumable-triggers emulator --background)"``
returns with the environment set::

    export DATABRICKS_HOST=http://127.0.0.1:PORT
    export DATABRICKS_TOKEN=dapi-emulator-token
    export AIRFLOW_CONN_DATABRICKS_DEFAULT='{"conn_type": "databricks", "host": "127.0.0.1", ...}'
    export RESUMABLE_TRIGGERS_EMULATOR_PID=12345

and ``kill "$RESUMABLE_TRIGGERS_EMULATOR_PID"`` stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from ._connection import airflow_connection
from ._emulator import Emulator
from ._process import first_lines
from ._server import EmulatorServer

# (flag, attribute) of every setting a background child must be given again.
_SERVER_SETTINGS = (
    ("--host", "host"),
    ("--port", "port"),
    ("--run-seconds", "run_seconds"),
    ("--state", "state"),
    ("--token", "token"),
    ("--client-id", "client_id"),
    ("--client-secret", "client_secret"),
    ("--oauth-token-lifetime-seconds", "oauth_token_lifetime_seconds"),
)


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
    parser.add_argument(
        "--background",
        action="store_true",
        help="serve from a background process; print shell export lines (with its pid) and exit",
    )
    parser.add_argument(
        "--log-file",
        default=None,
        metavar="FILE",
        help="with --background: where the server logs (default: a file in the temporary directory)",
    )
    parser.add_argument(
        "--start-timeout-seconds", type=float, default=30.0, help="with --background: how long to wait"
    )


def run(args: argparse.Namespace) -> int:
    if args.background:
        return _start_in_background(args)
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


def _start_in_background(args: argparse.Namespace) -> int:
    command = [sys.executable, "-m", "resumable_triggers._cli", "emulator"]
    for flag, name in _SERVER_SETTINGS:
        if (value := getattr(args, name)) is not None:
            command += [flag, str(value)]
    log_file = Path(
        args.log_file or tempfile.mkstemp(prefix="resumable-triggers-emulator-", suffix=".log")[1]
    )
    with log_file.open("ab") as log:
        # A session of its own: the shell's Ctrl-C and hang-up do not reach it; only kill stops it.
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, start_new_session=True
        )
    try:
        lines = first_lines(child, 2, timeout_seconds=args.start_timeout_seconds)
    except TimeoutError as exc:
        child.kill()
        print(f"resumable-triggers emulator: {exc} Its log: {log_file}", file=sys.stderr)
        return 1
    finally:
        assert child.stdout is not None
        child.stdout.close()  # the child writes nothing more there
    if lines is None:
        child.wait()
        print(
            f"resumable-triggers emulator: the server exited at start-up ({child.returncode}):\n"
            + log_file.read_text(errors="replace")[-2000:],
            file=sys.stderr,
        )
        return 1
    values = dict(line.split("=", 1) for line in lines)
    exports = {
        **values,
        "AIRFLOW_CONN_DATABRICKS_DEFAULT": airflow_connection(
            values["DATABRICKS_HOST"], values["DATABRICKS_TOKEN"]
        ),
        "RESUMABLE_TRIGGERS_EMULATOR_PID": str(child.pid),
    }
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    print(
        f'# serving in the background, logging to {log_file}; stop: kill "$RESUMABLE_TRIGGERS_EMULATOR_PID"'
    )
    return 0


def _new_log_file() -> Path:
    fd, path = tempfile.mkstemp(prefix="resumable-triggers-emulator-", suffix=".log")
    os.close(fd)
    return Path(path)
