"""The executor's lease in Azure: a Blob lease on one blob (Azurite in tests).

The blob `<container>/<name>` is created empty on first use. A lease lasts `duration_s` (Blob
leases are 15-60 s) unless renewed; the holder renews well before that (see `LeaseKeeper`).
The epoch lives in the blob's metadata and is written under the lease right after each
acquisition, so every holder's epoch is greater than every earlier holder's.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from typing import Any

from .settings import aio_credential, blob_client_options, resolve_connection

LEASE_STORAGE_SETTING = "CHECKPOINT_STORAGE"  # the lease lives beside the consumers' checkpoints
LEASE_CONTAINER = "leases"
EXECUTOR_LEASE = "executor"
EPOCH_KEY = "epoch"


class BlobLease:
    """A Blob lease; `acquire` returns the new epoch or None when another holder has the lease."""

    def __init__(self, container: Any, name: str = EXECUTOR_LEASE, *, duration_s: int = 15,
                 holder: str | None = None) -> None:
        if not 15 <= duration_s <= 60:
            raise ValueError("a Blob lease lasts 15 to 60 s")
        self._container = container  # azure.storage.blob.aio.ContainerClient
        self._blob = container.get_blob_client(name)
        self._duration = duration_s
        self._lease_id = str(uuid.uuid4())
        self._lease: Any = None
        self.holder = holder or self._lease_id

    @classmethod
    def from_settings(cls, setting: str = LEASE_STORAGE_SETTING, *, container: str = LEASE_CONTAINER,
                      name: str = EXECUTOR_LEASE, duration_s: int = 15, holder: str | None = None,
                      environ: Mapping[str, str] | None = None, credential: Any | None = None) -> BlobLease:
        """`<setting>` connection string (UseDevelopmentStorage=true locally), or
        `<setting>__blobServiceUri` with the workload identity."""
        from azure.storage.blob.aio import ContainerClient

        conn = resolve_connection(setting, "blobServiceUri", environ)
        if conn.connection_string is not None:
            client = ContainerClient.from_connection_string(conn.connection_string, container,
                                                            **blob_client_options(aio=True))
        else:
            assert conn.endpoint is not None
            cred = credential if credential is not None else aio_credential(conn.client_id)
            client = ContainerClient(conn.endpoint, container, credential=cred, **blob_client_options(aio=True))
        return cls(client, name, duration_s=duration_s, holder=holder)

    @property
    def name(self) -> str:
        return f"{self._blob.container_name}/{self._blob.blob_name}"

    @property
    def duration_s(self) -> float:
        return float(self._duration)

    def __repr__(self) -> str:
        return f"BlobLease({self.name!r}, duration_s={self._duration})"

    async def _ensure_blob(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):  # another replica made it first
            await self._container.create_container()
        with contextlib.suppress(ResourceExistsError):
            await self._blob.upload_blob(b"", overwrite=False, metadata={EPOCH_KEY: "0"})

    async def acquire(self) -> int | None:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        try:
            try:
                lease = await self._blob.acquire_lease(lease_duration=self._duration, lease_id=self._lease_id)
            except ResourceNotFoundError:  # first use of this account: make the blob, then try again
                await self._ensure_blob()
                lease = await self._blob.acquire_lease(lease_duration=self._duration, lease_id=self._lease_id)
        except HttpResponseError as exc:
            if exc.status_code == 409:  # LeaseAlreadyPresent: another replica holds it
                return None
            raise
        props = await self._blob.get_blob_properties()
        epoch = int((props.metadata or {}).get(EPOCH_KEY, "0")) + 1
        await self._blob.set_blob_metadata({EPOCH_KEY: str(epoch), "holder": self.holder}, lease=lease)
        self._lease = lease
        return epoch

    async def renew(self) -> bool:
        from azure.core.exceptions import HttpResponseError

        if self._lease is None:
            return False
        try:
            await self._lease.renew()
        except HttpResponseError as exc:
            if exc.status_code == 409:  # LeaseIdMismatch / LeaseLost: another replica took it
                self._lease = None
                return False
            raise
        return True

    async def release(self) -> None:
        from azure.core.exceptions import HttpResponseError

        lease, self._lease = self._lease, None
        if lease is None:
            return
        with contextlib.suppress(HttpResponseError):  # 409: it was no longer ours
            await lease.release()

    async def close(self) -> None:
        await self._blob.close()
        await self._container.close()

