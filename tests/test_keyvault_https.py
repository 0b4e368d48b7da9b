"""The Key Vault path through the real `azure.keyvault.secrets.SecretClient` over HTTPS, against
the strict local stand-in (tests/keyvault_standin.py): the SDK's challenge flow (401, then the
token for the challenge's resource and tenant), Key Vault's JSON, 404 and 401 handled by
`SecretResolver` as one line that names the secret and never holds a value."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.keyvault.secrets import SecretClient
from keyvault_standin import RESOURCE, TENANT, StandinCredential, StandinVault

from shared.adapters.azure.keyvault import SecretResolver
from shared.adapters.azure.settings import ConfigurationError

VALUE = "kv-secret-value-7f3a9c"


def client(vault: StandinVault, credential: object) -> SecretClient:
    # The stand-in's host (127.0.0.1) is not under vault.azure.net, so the SDK's check that the
    # challenge's resource matches the vault's domain is off here; in Azure it stays on.
    return SecretClient(vault_url=vault.url, credential=credential, verify_challenge_resource=False,
                        connection_verify=str(vault.cert))


def test_a_secret_through_the_bearer_challenge(tmp_path: Path) -> None:
    with StandinVault(tmp_path, {"binance-api-secret": VALUE}) as vault:
        credential = StandinCredential()
        resolver = SecretResolver({"KEYVAULT_URL": vault.url}, client=client(vault, credential))
        secret = resolver.get("BINANCE_API_SECRET")
        assert secret is not None and secret.reveal() == VALUE and secret.source == "keyvault"
        assert VALUE not in repr(secret) and VALUE not in str(secret) and VALUE not in repr(resolver)
        assert resolver.redact(f"signed with {VALUE}") == "signed with ***"
        # The first request went without a token and was challenged; the token was asked for the
        # challenge's resource and tenant, and the retry carried it.
        assert vault.requests[0]["auth"] is None
        assert vault.requests[-1]["auth"] == "Bearer standin-access-token"
        assert credential.asked[0] == ((f"{RESOURCE}/.default",), TENANT)


def test_a_missing_secret_is_one_line_naming_it(tmp_path: Path) -> None:
    with StandinVault(tmp_path, {}) as vault:
        resolver = SecretResolver({"KEYVAULT_URL": vault.url}, client=client(vault, StandinCredential()))
        assert resolver.get("BINANCE_API_KEY", required=False) is None
        with pytest.raises(ConfigurationError) as err:
            resolver.get("BINANCE_API_KEY")
        assert "'binance-api-key'" in str(err.value) and "ResourceNotFoundError" in str(err.value)


def test_a_rejected_token_fails_without_the_value_or_the_token(tmp_path: Path) -> None:
    class WrongToken(StandinCredential):
        def get_token(self, *scopes: str, tenant_id: str | None = None, **kw: object) -> object:
            from azure.core.credentials import AccessToken

            super().get_token(*scopes, tenant_id=tenant_id)
            return AccessToken("not-the-issued-token", 4_102_444_800)

    with StandinVault(tmp_path, {"binance-api-secret": VALUE}) as vault:
        resolver = SecretResolver({"KEYVAULT_URL": vault.url}, client=client(vault, WrongToken()))
        with pytest.raises(ConfigurationError) as err:
            resolver.get("BINANCE_API_SECRET")
        text = str(err.value)
        assert "HttpResponseError" in text or "ClientAuthenticationError" in text
        assert VALUE not in text and "not-the-issued-token" not in text


def test_tls_is_verified(tmp_path: Path) -> None:
    """Without the stand-in's certificate in the trust store the SDK refuses the connection."""
    with StandinVault(tmp_path, {"binance-api-secret": VALUE}) as vault:
        untrusting = SecretClient(vault_url=vault.url, credential=StandinCredential(),
                                  verify_challenge_resource=False)
        resolver = SecretResolver({"KEYVAULT_URL": vault.url}, client=untrusting)
        with pytest.raises(ConfigurationError, match="ServiceRequestError"):
            resolver.get("BINANCE_API_SECRET")
        assert vault.requests == []
