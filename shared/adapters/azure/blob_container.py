"""One Blob container of a storage account named by a setting, created on first need.

The dead-letter sink and the shared documents each write to one container: both open it the same
way (a connection string, or `<setting>__blobServiceUri` with the managed identity) and create it
the first time a write finds it missing (Azurite, a fresh account), once per process, tolerating
another instance creating it at the same moment.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

from .settings import default_credential, resolve_connection

log = logging.getLogger(__name__)


def container_from_settings(setting: str, container: str, environ: Mapping[str, str] | None = None,
                            credential: Any | None = None, **client_options: Any) -> Any:
    """The `ContainerClient` of `container` in the account `setting` names; `client_options` go to
    the `BlobServiceClient` (retry policy, timeouts)."""
    from azure.storage.blob import BlobServiceClient

    conn = resolve_connection(setting, "blobServiceUri", environ)
    if conn.connection_string is not None:
        service = BlobServiceClient.from_connection_string(conn.connection_string, **client_options)
    else:
        assert conn.endpoint is not None
        cred = credential if credential is not None else default_credential(conn.client_id)
        service = BlobServiceClient(account_url=conn.endpoint, credential=cred, **client_options)
    return service.get_container_client(container)


class ContainerOnce:
    """Creates a container the first time it is found missing; after that, `ensured` is True and
    a missing container is an error again (someone deleted it: say so, do not loop)."""

    def __init__(self, container: Any, name: str) -> None:
        self.container = container
        self.name = name  # for the log line
        self.ensured = False
        self._lock = threading.Lock()

    def ensure(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        with self._lock:
            if self.ensured:
                return
            with contextlib.suppress(ResourceExistsError):  # another instance won the race
                self.container.create_container()
            self.ensured = True
            log.info("created %s", self.name)
