"""Secrets from the environment or Azure Key Vault, in a wrapper that never prints its value.

`SecretResolver.get("BINANCE_API_KEY")` returns the environment variable when it is set (local
runs, a Kubernetes Secret mounted as env), otherwise the Key Vault secret `binance-api-key`
(the variable's name, lower case, `_` -> `-`: Key Vault names allow only letters, digits and
dashes) from the vault `KEYVAULT_URL` names, read with `DefaultAzureCredential` (the AKS
workload identity or a Function App's managed identity in Azure; `az login` on a laptop).

A `Secret`'s repr and str are `***`; only `reveal()` gives the value, at the one place that
signs or connects. Every value resolved is remembered by its resolver so log formatters can
scrub it (`redact`) as a last line of defence. Errors name settings and secret names, never
values.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from .settings import ConfigurationError

KEYVAULT_URL_SETTING = "KEYVAULT_URL"
KEYVAULT_CLIENT_ID_SETTING = "KEYVAULT_CLIENT_ID"  # a user-assigned identity's client id, optional
REDACTED = "***"
_VAULT_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")


class Secret:
    """A secret value that does not show itself: repr/str are `***`, never pickled or compared."""

    __slots__ = ("_value", "name", "source")

    def __init__(self, name: str, value: str, source: str) -> None:
        self.name = name
        self.source = source  # "env" or "keyvault"
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name!r}, {REDACTED}, source={self.source!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class SecretClient(Protocol):
    """The part of `azure.keyvault.secrets.SecretClient` the resolver uses."""

    def get_secret(self, name: str, version: str | None = None, **kwargs: Any) -> Any: ...


def vault_secret_name(env_name: str) -> str:
    """`BINANCE_API_KEY` -> `binance-api-key`."""
    name = env_name.strip().lower().replace("_", "-")
    if not _VAULT_NAME.match(name):
        raise ConfigurationError(f"{env_name!r} does not map to a valid Key Vault secret name")
    return name


class SecretResolver:
    """Environment first, then Key Vault (when `KEYVAULT_URL` is set); see the module docstring."""

    def __init__(self, environ: Mapping[str, str] | None = None, *, vault_url: str | None = None,
                 client: SecretClient | None = None) -> None:
        self._env = os.environ if environ is None else environ
        self.vault_url = vault_url if vault_url is not None else (self._env.get(KEYVAULT_URL_SETTING, "").strip()
                                                                  or None)
        self._client = client
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SecretResolver(vault_url={self.vault_url!r}, resolved={len(self._known)})"

    def _vault(self) -> SecretClient:
        if self._client is None:
            from azure.identity import DefaultAzureCredential
            from azure.keyvault.secrets import SecretClient as AzureSecretClient

            client_id = self._env.get(KEYVAULT_CLIENT_ID_SETTING, "").strip() or None
            credential = (DefaultAzureCredential(managed_identity_client_id=client_id) if client_id
                          else DefaultAzureCredential())
            self._client = AzureSecretClient(vault_url=str(self.vault_url), credential=credential)
        return self._client

    def get(self, env_name: str, *, vault_name: str | None = None, required: bool = True) -> Secret | None:
        """The secret from `env_name`, else from Key Vault; None (or ConfigurationError when
        `required`) when neither has it."""
        value = self._env.get(env_name, "").strip()
        if value:
            return self._remember(Secret(env_name, value, "env"))
        if self.vault_url is None:
            if required:
                raise ConfigurationError(f"secret {env_name} is not set, and no Key Vault is configured "
                                         f"({KEYVAULT_URL_SETTING})")
            return None
        name = vault_name or vault_secret_name(env_name)
        try:
            fetched = self._vault().get_secret(name)
        except Exception as exc:
            from azure.core.exceptions import ResourceNotFoundError

            if isinstance(exc, ResourceNotFoundError) and not required:
                return None
            # The SDK's message names the vault and the secret, never a value; keep only the type.
            raise ConfigurationError(f"secret {env_name}: Key Vault secret {name!r} could not be read from "
                                     f"{self.vault_url} ({type(exc).__name__})") from None
        value = (fetched.value or "").strip()
        if not value:
            raise ConfigurationError(f"secret {env_name}: Key Vault secret {name!r} is empty")
        return self._remember(Secret(env_name, value, "keyvault"))

    def _remember(self, secret: Secret) -> Secret:
        self.remember(secret.reveal())
        return secret

    def remember(self, value: str) -> None:
        """Scrub a value this resolver did not hand out (a connection string read elsewhere)."""
        if value:
            with self._lock:
                self._known.add(value)

    def known_values(self) -> tuple[str, ...]:
        """Every value resolved so far, longest first (so `redact` replaces a whole value before
        any value it contains)."""
        with self._lock:
            return tuple(sorted(self._known, key=len, reverse=True))

    def redact(self, text: str) -> str:
        return redact(text, self.known_values())


def redact(text: str, values: Iterable[str]) -> str:
    """`text` with every occurrence of each value replaced by `***` (values of 4+ characters)."""
    for value in values:
        if len(value) >= 4 and value in text:
            text = text.replace(value, REDACTED)
    return text
