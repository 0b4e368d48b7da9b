"""Connection settings resolved the way the Functions host resolves a binding's `connection`.

The publisher and the dead-letter sink read the same app settings as the trigger bindings, with
the same rules, so one slot-sticky setting decides where a slot reads AND writes:

* `<NAME>` (or `AzureWebJobs<NAME>`) holding a connection string (local development, Azurite);
* `<NAME>__<identity property>` (e.g. `EVENTHUB__fullyQualifiedNamespace`,
  `DEADLETTER_STORAGE__blobServiceUri`) for an identity-based connection, with the optional
  `<NAME>__credential=managedidentity` and `<NAME>__clientId` for a user-assigned identity.

An exact `<NAME>` match wins over the prefix form, as the host documents. Values are secrets or
close to them: nothing here ever puts a value into a message, a repr or a log line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

WEBJOBS_PREFIX = "AzureWebJobs"


class ConfigurationError(RuntimeError):
    """A required app setting is missing or unusable. The message names settings, never values."""


@dataclass(frozen=True, slots=True)
class Connection:
    """Where and how to connect; `connection_string` is kept out of repr so it cannot leak in logs."""

    setting: str
    connection_string: str | None = field(default=None, repr=False)
    endpoint: str | None = None
    client_id: str | None = None

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None


def resolve_connection(setting: str, identity_property: str,
                       environ: Mapping[str, str] | None = None) -> Connection:
    """Find `setting` as a connection string or as an identity-based `<setting>__<property>` group."""
    env = os.environ if environ is None else environ
    for name in (setting, WEBJOBS_PREFIX + setting):
        value = env.get(name, "").strip()
        if value:
            return Connection(setting=name, connection_string=value)
    for prefix in (setting, WEBJOBS_PREFIX + setting):
        endpoint = env.get(f"{prefix}__{identity_property}", "").strip()
        if endpoint:
            client_id = env.get(f"{prefix}__clientId", "").strip() or None
            return Connection(setting=prefix, endpoint=endpoint, client_id=client_id)
    raise ConfigurationError(
        f"no connection configured: set {setting} (connection string) or "
        f"{setting}__{identity_property} (identity-based); the AzureWebJobs{setting} forms work too")


def default_credential(client_id: str | None) -> Any:
    """DefaultAzureCredential: the Function App's managed identity in Azure, `az login` locally."""
    from azure.identity import DefaultAzureCredential

    if client_id:
        return DefaultAzureCredential(managed_identity_client_id=client_id)
    return DefaultAzureCredential()


def aio_credential(client_id: str | None) -> Any:
    """The async DefaultAzureCredential (the workload identity in AKS), for the aio clients."""
    from azure.identity.aio import DefaultAzureCredential

    if client_id:
        return DefaultAzureCredential(managed_identity_client_id=client_id)
    return DefaultAzureCredential()


def blob_client_options(*, aio: bool) -> dict[str, Any]:
    """Retry and timeout options for the Blob clients on a decision path (the executor's lease,
    the shared state documents). The storage SDK's default retry waits 15 s before its first
    retry, then 18 s and 24 s: one dropped connection would outlast a 15 s lease, or hold a
    batch and its partition for a minute. These retry twice, a second apart. A request waits up
    to 30 s for its answer (Azurite on a loaded machine takes seconds; a slow renewal is bounded
    by the lease keeper's own deadline); past the retries the caller's own retry runs (the lease
    keeper's loop, the trigger's retry policy)."""
    if aio:
        from azure.storage.blob.aio import LinearRetry as AioLinearRetry

        policy: Any = AioLinearRetry(backoff=1, random_jitter_range=0, retry_total=2)
    else:
        from azure.storage.blob import LinearRetry

        policy = LinearRetry(backoff=1, random_jitter_range=0, retry_total=2)
    return {"retry_policy": policy, "connection_timeout": 10, "read_timeout": 30}
