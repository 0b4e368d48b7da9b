"""Versioned documents as blobs: compare-and-set on the blob's ETag (If-Match / If-None-Match).

One blob per document in one container (`marketflow-state` by default). A conditional write that
loses the race gets HTTP 412 (or 409 for a create), which becomes `DocumentConflict`; any other
storage error propagates as it is, so the trigger's retry policy runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from shared import topology
from shared.adapters.documents import DocumentConflict, Versioned, dumps

from .blob_container import ContainerOnce, container_from_settings
from .settings import blob_client_options

log = logging.getLogger(__name__)

STATE_STORAGE_SETTING = "STATE_STORAGE"
STATE_CONTAINER = topology.STATE_CONTAINER


class BlobDocumentStore:
    """`DocumentStore` over one Blob container (creates it on first write when missing)."""

    def __init__(self, container: Any) -> None:
        self._container = container
        self._once = ContainerOnce(container, "state container")

    @classmethod
    def from_settings(cls, setting: str = STATE_STORAGE_SETTING, container: str = STATE_CONTAINER,
                      environ: Mapping[str, str] | None = None, credential: Any | None = None) -> BlobDocumentStore:
        """`<setting>` connection string (UseDevelopmentStorage=true locally) or
        `<setting>__blobServiceUri` with the managed identity, as the dead-letter sink reads its own."""
        return cls(container_from_settings(setting, container, environ, credential, **blob_client_options(aio=False)))

    @property
    def container_name(self) -> str:
        return str(self._container.container_name)

    def get(self, key: str) -> Versioned | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            downloader = self._container.get_blob_client(key).download_blob()
            body = downloader.readall()
        except ResourceNotFoundError:
            return None
        return Versioned(json.loads(body), str(downloader.properties.etag))

    def etag(self, key: str) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return str(self._container.get_blob_client(key).get_blob_properties().etag)
        except ResourceNotFoundError:
            return None

    def put(self, key: str, data: dict[str, Any], etag: str | None) -> str:
        from azure.core.exceptions import ResourceNotFoundError

        body = dumps(data)
        try:
            return self._upload(key, body, etag)
        except ResourceNotFoundError:
            if etag is not None or self._once.ensured:
                raise DocumentConflict(f"document {key!r} is gone since it was read") from None
            self._once.ensure()
            return self._upload(key, body, etag)

    def _upload(self, key: str, body: bytes, etag: str | None) -> str:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
        from azure.storage.blob import ContentSettings

        blob = self._container.get_blob_client(key)
        settings = ContentSettings(content_type="application/json")
        try:
            if etag is None:
                result = blob.upload_blob(body, overwrite=False, content_settings=settings)
            else:
                result = blob.upload_blob(body, overwrite=True, etag=etag,
                                          match_condition=MatchConditions.IfNotModified, content_settings=settings)
        except (ResourceExistsError, ResourceModifiedError) as exc:
            raise DocumentConflict(f"document {key!r} changed since it was read "
                                   f"({type(exc).__name__})") from None
        return str(result["etag"])
