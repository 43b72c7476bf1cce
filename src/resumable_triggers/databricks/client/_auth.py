"""Auth headers for the client, delegated to databricks-sdk so every auth type it knows works here.

databricks-sdk is synchronous: building a ``Config`` does network I/O (host metadata, OIDC discovery)
and ``Config.authenticate()`` may block on an OAuth token refresh with no timeout. Both therefore run
in a worker thread, at most one at a time per provider (single flight), while every other caller
keeps being served the cached headers or awaits that one refresh without blocking the event loop.

That thread is a daemon of its own, not the loop's default executor: ``asyncio.run`` joins the
executor's threads before it returns, so a task whose ``execution_timeout`` fired (or that a user
stopped) while the SDK was still retrying an unreachable host would wait for the SDK (~300 s) before
it could fail. Nothing waits for ours; a stuck one ends with the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from resumable_triggers.databricks.client._errors import CredentialsError

if TYPE_CHECKING:
    from databricks.sdk.config import Config

__all__ = ["HeaderProvider", "SdkHeaderProvider"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Stop serving cached headers this long before the OAuth token expires, so a request in flight does
# not arrive with a token that died on the way.
_EXPIRY_MARGIN_SECONDS = 10.0


@runtime_checkable
class HeaderProvider(Protocol):
    """Supplies auth headers for one workspace identity.

    ``identity`` must be non-secret (it appears in logs and registry keys) and must differ between
    credentials that are not interchangeable: two providers with equal identities share one session.
    """

    @property
    def identity(self) -> str: ...

    async def headers(self) -> Mapping[str, str]:
        """Current auth headers. Must not block the event loop."""
        ...

    def invalidate(self, rejected: Mapping[str, str] | None = None) -> None:
        """The workspace answered 401 to ``rejected``: drop them unless they were already replaced."""
        ...


class SdkHeaderProvider:
    """Headers from a databricks-sdk ``Config`` (PAT, OAuth M2M, Azure, profiles, env...).

    ``config_factory`` builds the ``Config`` (e.g. ``lambda: Config(host=..., client_id=...,
    client_secret=...)``); it is called in a worker thread, lazily, and again after ``invalidate``
    so a revoked OAuth token is truly re-minted. Headers are cached for ``cache_ttl_seconds`` (default
    30 s), and never past the OAuth token's own expiry, to spare a thread hop per request; the SDK
    caches and refreshes the token itself behind ``authenticate()``.

    The SDK fetches OAuth tokens with no timeout, so callers stop waiting for a refresh after
    ``refresh_timeout_seconds`` (default 60 s) with a transient CredentialsError; the stuck thread is
    left to finish on its own, and later callers keep waiting for it rather than starting more.
    """

    def __init__(
        self,
        config_factory: Callable[[], Config],
        *,
        identity: str,
        cache_ttl_seconds: float = 30.0,
        refresh_timeout_seconds: float = 60.0,
    ) -> None:
        if not identity:
            raise ValueError("SdkHeaderProvider needs a non-empty, non-secret identity, e.g. 'conn:my_conn'")
        if cache_ttl_seconds < 0:
            raise ValueError(f"SdkHeaderProvider cache_ttl_seconds must be >= 0, got {cache_ttl_seconds!r}")
        if refresh_timeout_seconds <= 0:
            raise ValueError(
                f"SdkHeaderProvider refresh_timeout_seconds must be > 0, got {refresh_timeout_seconds!r}"
            )
        self._refresh_timeout = refresh_timeout_seconds
        self._factory = config_factory
        self._identity = identity
        self._ttl = cache_ttl_seconds
        self._config: Config | None = None
        self._headers: Mapping[str, str] | None = None
        self._expires_at = 0.0
        self._refresh: asyncio.Task[Mapping[str, str]] | None = None
        self._generation = 0
        # Once headers were obtained, the credentials are known to be good: later failures are
        # worth retrying (token endpoint blip) rather than failing every poller at once.
        self._ever_authenticated = False

    @property
    def identity(self) -> str:
        return self._identity

    def __repr__(self) -> str:
        return f"SdkHeaderProvider(identity={self._identity!r})"

    async def headers(self) -> Mapping[str, str]:
        if self._headers is not None and time.monotonic() < self._expires_at:
            return self._headers
        refresh = self._refresh
        # A task left over from an event loop that has since ended (the sync bridge uses one loop
        # per call) can never finish: start afresh on this loop.
        if refresh is None or refresh.get_loop() is not asyncio.get_running_loop():
            refresh = asyncio.ensure_future(self._do_refresh())
            # Retrieve the outcome even if every waiter was cancelled, so nothing is logged as lost.
            refresh.add_done_callback(lambda task: task.cancelled() or task.exception())
            self._refresh = refresh
        # shield: a caller cancelled mid-refresh (trigger cancelled) must not cancel the shared refresh.
        try:
            return await asyncio.wait_for(asyncio.shield(refresh), self._refresh_timeout)
        except asyncio.TimeoutError as exc:
            raise CredentialsError(
                f"refreshing Databricks credentials for {self._identity} did not finish within "
                f"{self._refresh_timeout:g} s; is the token endpoint reachable?",
                identity=self._identity,
                transient=True,
            ) from exc

    def invalidate(self, rejected: Mapping[str, str] | None = None) -> None:
        if rejected is not None and rejected is not self._headers:
            return  # a refresh already replaced them; 500 pollers' 401s cost one refresh, not 500
        logger.info("Databricks credentials for %s were rejected; re-creating them", self._identity)
        self._headers = None
        self._config = None
        self._generation += 1

    async def _do_refresh(self) -> Mapping[str, str]:
        generation = self._generation
        config_before, ever_authenticated = self._config, self._ever_authenticated
        try:
            config, headers, expires_at = await _in_daemon_thread(
                lambda: self._authenticate_blocking(config_before, ever_authenticated)
            )
        finally:
            if self._refresh is asyncio.current_task():
                self._refresh = None
        # State changes only here, on the loop's thread: an invalidate() that arrived while the
        # worker thread ran wins over the result it brings back.
        if generation == self._generation:
            self._config, self._headers, self._expires_at = config, headers, expires_at
        self._ever_authenticated = True
        return headers

    def _authenticate_blocking(
        self, config: Config | None, ever_authenticated: bool
    ) -> tuple[Config, Mapping[str, str], float]:
        """Runs in a worker thread: may do blocking network I/O with no timeout of its own."""
        started = time.monotonic()
        try:
            if config is None:
                config = self._factory()
            raw = config.authenticate()
            expires_in = _seconds_until_token_expiry(config)
        except (ValueError, NotImplementedError, OSError) as exc:
            # The SDK reports configuration and auth failures as ValueError (naming the method), wraps
            # token-endpoint failures in NotImplementedError, and lets requests' OSErrors through.
            raise CredentialsError(
                f"could not obtain Databricks credentials for {self._identity}: {exc}",
                identity=self._identity,
                transient=ever_authenticated or not isinstance(exc, ValueError),
            ) from exc
        # Copy every header: Azure service principals add X-Databricks-Azure-SP-Management-Token etc.
        return config, MappingProxyType(dict(raw)), started + min(self._ttl, expires_in)


async def _in_daemon_thread(call: Callable[[], T]) -> T:
    """``await call()`` run in a new daemon thread, which neither ``asyncio.run`` nor exit joins."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():  # the awaiting task was cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = call()
        except BaseException as exc:  # noqa: BLE001 - forwarded to the awaiting task, not swallowed
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="databricks-sdk-auth", daemon=True).start()
    return await future


def _seconds_until_token_expiry(config: Config) -> float:
    """Seconds until the OAuth token expires, less a margin; infinity for non-OAuth auth types."""
    try:
        token = config.oauth_token()
    except ValueError:
        return float("inf")
    if token.expiry is None:
        return float("inf")
    # The SDK stores naive local times for OAuth M2M tokens: compare in the expiry's own zone.
    remaining = (token.expiry - datetime.now(tz=token.expiry.tzinfo)).total_seconds()
    return max(0.0, remaining - _EXPIRY_MARGIN_SECONDS)
