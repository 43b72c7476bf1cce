"""TLS: verified by default, refused without retries when the certificate is not trusted.

The emulator speaks plain HTTP, so these tests stand up a tiny HTTPS server with a self-signed
certificate of their own.
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from client_testkit import FakeConfig
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from resumable_triggers.databricks.client import (
    ClientSettings,
    DatabricksClient,
    SdkHeaderProvider,
    TlsVerificationError,
)
from resumable_triggers.testing import VirtualTime


def _self_signed(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest_asyncio.fixture
async def untrusted_https_url(tmp_path: Path) -> AsyncIterator[str]:
    """An HTTPS workspace stand-in whose certificate no CA vouches for."""

    async def get_run(request: web.Request) -> web.Response:
        return web.json_response({"run_id": 1, "state": {"life_cycle_state": "RUNNING"}})

    app = web.Application()
    app.router.add_get("/api/2.2/jobs/runs/get", get_run)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=_self_signed(tmp_path))
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def provider() -> SdkHeaderProvider:
    return SdkHeaderProvider(lambda: FakeConfig({"Authorization": "Bearer t"}), identity="test:tls")  # type: ignore[arg-type,return-value]


@pytest.mark.asyncio
async def test_an_untrusted_certificate_is_refused_at_once_without_retries(untrusted_https_url: str) -> None:
    """Default settings verify TLS; a failed verification is TlsVerificationError, never retried."""
    fake = VirtualTime()
    async with DatabricksClient(
        untrusted_https_url, provider(), clock=fake.monotonic, sleep=fake.sleep
    ) as client:
        with pytest.raises(TlsVerificationError) as excinfo:
            await client.get_run(1)

    assert "TLS verification" in str(excinfo.value)
    assert not excinfo.value.request_sent
    assert [] == [wait for wait in fake.sleeps if wait > 0]


@pytest.mark.asyncio
async def test_verification_can_be_turned_off_explicitly(untrusted_https_url: str) -> None:
    """verify_tls=False (dangerous, documented as such) reaches a self-signed workspace."""
    settings = ClientSettings(verify_tls=False)
    async with DatabricksClient(untrusted_https_url, provider(), settings=settings) as client:
        run = await client.get_run(1)

    assert 1 == run.run_id
