"""Dead letters in Blob Storage: one JSON blob per record in the `dead-letter` container."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from shared import topology
from shared.adapters.deadletter import DEAD_LETTER_STORAGE_SETTING, DeadLetter

from .blob_container import ContainerOnce, container_from_settings

log = logging.getLogger(__name__)


class BlobDeadLetterSink:
    """Writes each record as JSON to the `dead-letter` container.

    The first write of a record wins (`overwrite=False`; "already exists" is success): a
    redelivered bad event maps to the same blob, so it neither duplicates the record nor
    overwrites its `first_seen`. A missing container is created once (Azurite, fresh accounts).
    """

    def __init__(self, container: Any) -> None:
        self._container = container
        self._once = ContainerOnce(container, f"dead-letter container {topology.DEAD_LETTER_CONTAINER}")

    @classmethod
    def from_settings(cls, setting: str = DEAD_LETTER_STORAGE_SETTING,
                      environ: Mapping[str, str] | None = None,
                      credential: Any | None = None) -> BlobDeadLetterSink:
        """`<setting>` connection string (UseDevelopmentStorage=true locally), or
        `<setting>__blobServiceUri` with the managed identity."""
        return cls(container_from_settings(setting, topology.DEAD_LETTER_CONTAINER, environ, credential))

    def put(self, record: DeadLetter) -> None:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        name = record.blob_name()
        data = record.model_dump_json().encode("utf-8")
        try:
            self._upload(name, data)
        except ResourceExistsError:
            return  # already recorded by an earlier delivery
        except ResourceNotFoundError:
            if self._once.ensured:
                raise
            self._once.ensure()
            try:
                self._upload(name, data)
            except ResourceExistsError:
                return

    def _upload(self, name: str, data: bytes) -> None:
        from azure.storage.blob import ContentSettings

        self._container.upload_blob(name, data, overwrite=False,
                                    content_settings=ContentSettings(content_type="application/json"),
                                    metadata={"hub": name.split("/", 1)[0]})
