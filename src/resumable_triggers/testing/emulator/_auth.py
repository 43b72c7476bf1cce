"""Credentials the emulator accepts: a PAT, OAuth M2M access tokens it issued, HTTP Basic.

OAuth token expiry is judged on the emulator's clock, like run lifecycles: with a ``ManualClock`` a
test expires tokens by advancing time, and a short ``oauth_token_lifetime_seconds`` does it in real
time. Token values are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from ._errors import ErrorReply

_UNAUTHENTICATED = "Credential was not sent or was of an unsupported type for this API."


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the emulator accepts. Defaults are fixed so docs and tests can rely on them."""

    token: str = "dapi-emulator-token"
    client_id: str = "emulator-client-id"
    client_secret: str = "emulator-client-secret"
    basic_login: str = "emulator@example.com"
    basic_password: str = "emulator-password"
    oauth_token_lifetime_seconds: float = 3600.0


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _basic(header: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(header, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    login, sep, password = decoded.partition(":")
    return (login, password) if sep else None


class Authenticator:
    """Checks ``Authorization`` headers and issues OAuth tokens. Not thread-safe; the emulator locks."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.issued: dict[str, float] = {}  # access token -> expiry (clock seconds)
        # Personal access tokens accepted now: the configured one, plus any added; revoking removes.
        self.tokens: set[str] = {credentials.token}

    def add_token(self, token: str) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string.")
        self.tokens.add(token)

    def revoke_token(self, token: str) -> bool:
        """Stop accepting a PAT (as a user revoking it does); False if it was not accepted anyway."""
        if token in self.tokens:
            self.tokens.discard(token)
            return True
        return False

    def reset_tokens(self) -> None:
        self.tokens = {self.credentials.token}

    def check(self, authorization: str | None, now: float) -> None:
        """Raise the API's 401/403 unless the header carries accepted credentials."""
        if not authorization:
            raise ErrorReply(401, "UNAUTHENTICATED", _UNAUTHENTICATED)
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            if any(_equal(value, token) for token in self.tokens):
                return
            expiry = self.issued.get(value)
            if expiry is not None:
                if now < expiry:
                    return
                raise ErrorReply(403, "PERMISSION_DENIED", "Invalid access token: the token has expired.")
            raise ErrorReply(403, "PERMISSION_DENIED", "Invalid access token.")
        if scheme.lower() == "basic" and value:
            pair = _basic(value)
            if (
                pair is not None
                and _equal(pair[0], self.credentials.basic_login)
                and _equal(pair[1], self.credentials.basic_password)
            ):
                return
            raise ErrorReply(401, "UNAUTHENTICATED", "Invalid username or password.")
        raise ErrorReply(401, "UNAUTHENTICATED", _UNAUTHENTICATED)

    def issue_token(self, authorization: str | None, form_body: bytes, now: float) -> dict[str, object]:
        """``POST /oidc/v1/token`` for the client_credentials grant; errors in RFC 6749's shape."""
        form = {k: v[0] for k, v in parse_qs(form_body.decode("utf-8", "replace")).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.strip().lower().startswith("basic "):
            pair = _basic(authorization.strip()[6:].strip())
            if pair is not None:
                client_id, client_secret = pair
        if form.get("grant_type") != "client_credentials":
            raise _oauth_error(
                400, "unsupported_grant_type", "Only grant_type=client_credentials is supported."
            )
        if not (
            client_id
            and client_secret
            and _equal(client_id, self.credentials.client_id)
            and _equal(client_secret, self.credentials.client_secret)
        ):
            raise _oauth_error(401, "invalid_client", "Client authentication failed.")
        scopes = set(form.get("scope", "").split())
        if "all-apis" not in scopes:
            raise _oauth_error(400, "invalid_scope", "The requested scope must include all-apis.")
        token = "emu-oauth-" + secrets.token_urlsafe(24)
        lifetime = self.credentials.oauth_token_lifetime_seconds
        self.issued[token] = now + lifetime
        self._forget_expired(now)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(lifetime),
            "scope": "all-apis",
        }

    def _forget_expired(self, now: float) -> None:
        # Keep expired tokens for a while so their use still answers "expired", not "invalid".
        for token in [t for t, expiry in self.issued.items() if expiry + 86_400 < now]:
            del self.issued[token]

    def to_state(self) -> dict[str, float]:
        return dict(self.issued)

    def load_state(self, issued: Mapping[str, float]) -> None:
        self.issued = {str(k): float(v) for k, v in issued.items()}


def _oauth_error(status: int, error: str, description: str) -> ErrorReply:
    return ErrorReply(status, error, description, body={"error": error, "error_description": description})
