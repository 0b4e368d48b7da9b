"""The venue's credentials through the one secret resolver: environment first, then Key Vault.

`BINANCE_API_KEY` with `BINANCE_API_SECRET` (HMAC-SHA256), or with an Ed25519 private key:
`BINANCE_PRIVATE_KEY_FILE` (a PEM file, e.g. a mounted Kubernetes Secret) or the PEM itself as
`BINANCE_PRIVATE_KEY` (in Key Vault: `binance-private-key`). Every value resolved is scrubbed from
the logs by the resolver's formatter; errors name settings, never values.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.adapters.azure.keyvault import SecretResolver
from shared.adapters.azure.settings import ConfigurationError


def binance_credentials(resolver: SecretResolver, environ: Mapping[str, str]) -> Any:
    from shared.adapters.binance.credentials import Credentials, CredentialsError

    key = resolver.get("BINANCE_API_KEY")
    assert key is not None
    secret = resolver.get("BINANCE_API_SECRET", required=False)
    key_file = environ.get("BINANCE_PRIVATE_KEY_FILE", "").strip()
    pem: str | None = None
    if secret is None:
        if key_file:
            try:
                pem = Path(key_file).read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(f"BINANCE_PRIVATE_KEY_FILE cannot be read ({type(exc).__name__})") from None
            resolver.remember(pem.strip())
        else:
            private = resolver.get("BINANCE_PRIVATE_KEY", required=False)
            if private is None:
                raise ConfigurationError("set BINANCE_API_SECRET (HMAC) or BINANCE_PRIVATE_KEY_FILE / "
                                         "BINANCE_PRIVATE_KEY (Ed25519), in the environment or Key Vault")
            pem = private.reveal()
    elif key_file:
        raise ConfigurationError("set one of BINANCE_API_SECRET and BINANCE_PRIVATE_KEY_FILE, not both")
    try:
        if pem is not None:
            return Credentials(key.reveal(), private_key_pem=pem)
        assert secret is not None
        return Credentials(key.reveal(), secret=secret.reveal())
    except CredentialsError as exc:
        raise ConfigurationError(f"Binance credentials: {exc}") from None
