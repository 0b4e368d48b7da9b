"""Secrets from the environment or Key Vault, and never in a repr, an error or a pickle.

Key Vault cannot run here; `StrictVault` answers as `SecretClient.get_secret` does (a
`KeyVaultSecret`-like object with `.value`, `ResourceNotFoundError` for an unknown name, a
`ValueError`-free name check as the service's 1-127 letters, digits and dashes).
"""

from __future__ import annotations

import pickle
import re
from types import SimpleNamespace

import pytest
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError

from shared.adapters.azure.keyvault import Secret, SecretResolver, redact, vault_secret_name
from shared.adapters.azure.settings import ConfigurationError

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"


class StrictVault:
    def __init__(self, secrets: dict[str, str], fail: Exception | None = None) -> None:
        self.secrets = secrets
        self.fail = fail
        self.calls: list[str] = []

    def get_secret(self, name: str, version: str | None = None, **kwargs):
        self.calls.append(name)
        if self.fail is not None:
            raise self.fail
        if not re.fullmatch(r"[0-9A-Za-z-]{1,127}", name):
            raise AssertionError(f"Key Vault would refuse the name {name!r}")
        if name not in self.secrets:
            raise ResourceNotFoundError(f"A secret with (name/id) {name} was not found in this key vault.")
        return SimpleNamespace(name=name, value=self.secrets[name], properties=SimpleNamespace(version="1"))


def test_the_environment_wins_and_the_vault_is_not_asked() -> None:
    vault = StrictVault({"binance-api-key": "from-vault"})
    resolver = SecretResolver({"BINANCE_API_KEY": KEY, "KEYVAULT_URL": "https://kv.vault.azure.net"}, client=vault)
    secret = resolver.get("BINANCE_API_KEY")
    assert secret is not None and secret.reveal() == KEY and secret.source == "env"
    assert vault.calls == []


def test_a_missing_variable_is_read_from_key_vault_under_its_vault_name() -> None:
    vault = StrictVault({"binance-api-secret": KEY})
    resolver = SecretResolver({"KEYVAULT_URL": "https://kv.vault.azure.net"}, client=vault)
    secret = resolver.get("BINANCE_API_SECRET")
    assert secret is not None and secret.reveal() == KEY and secret.source == "keyvault"
    assert vault.calls == ["binance-api-secret"]
    assert resolver.get("BINANCE_PRIVATE_KEY", required=False) is None
    with pytest.raises(ConfigurationError, match="binance-private-key"):
        resolver.get("BINANCE_PRIVATE_KEY")


def test_no_vault_and_no_variable_is_one_clear_error() -> None:
    with pytest.raises(ConfigurationError, match=r"BINANCE_API_KEY is not set.*KEYVAULT_URL"):
        SecretResolver({}).get("BINANCE_API_KEY")
    assert SecretResolver({}).get("BINANCE_API_KEY", required=False) is None


def test_a_vault_failure_names_the_secret_and_never_the_credential() -> None:
    failure = ClientAuthenticationError(f"token request failed with client secret {KEY}")
    resolver = SecretResolver({"KEYVAULT_URL": "https://kv.vault.azure.net"}, client=StrictVault({}, failure))
    with pytest.raises(ConfigurationError) as info:
        resolver.get("BINANCE_API_KEY")
    assert "binance-api-key" in str(info.value) and "ClientAuthenticationError" in str(info.value)
    assert KEY not in str(info.value) and info.value.__cause__ is None and info.value.__suppress_context__


def test_a_secret_hides_its_value_everywhere_but_reveal() -> None:
    resolver = SecretResolver({"BINANCE_API_KEY": KEY})
    secret = resolver.get("BINANCE_API_KEY")
    assert isinstance(secret, Secret)
    for text in (repr(secret), str(secret), f"{secret}", repr([secret]), repr({"k": secret}), repr(resolver)):
        assert KEY not in text
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert resolver.redact(f"signed with {KEY}!") == "signed with ***!"
    assert redact("abc", ["ab"]) == "abc"  # too short to scrub safely


def test_vault_names_follow_key_vaults_rules() -> None:
    assert vault_secret_name("BINANCE_API_KEY") == "binance-api-key"
    with pytest.raises(ConfigurationError):
        vault_secret_name("BAD.NAME")
