"""Binance API credentials from the environment: an HMAC secret or an Ed25519 private key.

`BINANCE_API_KEY` with either `BINANCE_API_SECRET` (HMAC-SHA256) or `BINANCE_PRIVATE_KEY_FILE`
(a PKCS#8 PEM Ed25519 key, the type Binance recommends). The values never appear in a repr, a
str, an error or a log line: every message names the settings, never their values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

KeyKind = Literal["hmac", "ed25519"]


class CredentialsError(ValueError):
    """Credentials are missing or unusable. The message names settings, never values."""


class Credentials:
    """An API key and its signing secret. Redacted in repr and str; compare by identity only."""

    __slots__ = ("_api_key", "_private_key_pem", "_secret")

    def __init__(self, api_key: str, *, secret: str | None = None, private_key_pem: str | None = None) -> None:
        if not api_key:
            raise CredentialsError("the API key is empty")
        if (secret is None) == (private_key_pem is None):
            raise CredentialsError("give exactly one of an HMAC secret and an Ed25519 private key")
        if private_key_pem is not None and "PRIVATE KEY" not in private_key_pem:
            raise CredentialsError("the Ed25519 private key is not a PEM document")
        self._api_key = api_key
        self._secret = secret
        self._private_key_pem = private_key_pem

    @property
    def kind(self) -> KeyKind:
        return "hmac" if self._secret is not None else "ed25519"

    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def secret(self) -> str | None:
        return self._secret

    @property
    def private_key_pem(self) -> str | None:
        return self._private_key_pem

    def __repr__(self) -> str:
        return f"Credentials(kind={self.kind!r}, api_key=<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> str:
        raise TypeError("Credentials are not picklable")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """Read `BINANCE_API_KEY` + `BINANCE_API_SECRET`, or `BINANCE_API_KEY` + `BINANCE_PRIVATE_KEY_FILE`."""
        env = os.environ if environ is None else environ
        key = env.get("BINANCE_API_KEY", "").strip()
        secret = env.get("BINANCE_API_SECRET", "").strip()
        key_file = env.get("BINANCE_PRIVATE_KEY_FILE", "").strip()
        if not key:
            raise CredentialsError("BINANCE_API_KEY is not set")
        if secret and key_file:
            raise CredentialsError("set one of BINANCE_API_SECRET and BINANCE_PRIVATE_KEY_FILE, not both")
        if secret:
            return cls(key, secret=secret)
        if not key_file:
            raise CredentialsError("set BINANCE_API_SECRET (HMAC) or BINANCE_PRIVATE_KEY_FILE (Ed25519)")
        try:
            pem = Path(key_file).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialsError(f"BINANCE_PRIVATE_KEY_FILE cannot be read ({type(exc).__name__})") from None
        return cls(key, private_key_pem=pem)
