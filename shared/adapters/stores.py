"""Which shared store a process uses, from its settings (the same names everywhere).

* `STATE_STORAGE` (a storage connection string; `UseDevelopmentStorage=true` for Azurite) or
  `STATE_STORAGE__blobServiceUri` (managed identity): Blob documents in container
  `marketflow-state` (`STATE_STORAGE_CONTAINER` names another, e.g. one per test or per slot);
* else `MARKETFLOW_STATE_DB`: a SQLite file (a laptop, a single node);
* else none: `risk` then refuses every signal and `positions` will not start.

The account snapshot, the trading state and the per-partition handler state are documents in
that one store (keys `account/...`, `trading-state/...`, `partitions/...`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .azure.blob_documents import STATE_CONTAINER, STATE_STORAGE_SETTING, BlobDocumentStore
from .documents import DocumentStore

STATE_CONTAINER_SETTING = "STATE_STORAGE_CONTAINER"
STATE_DB_SETTING = "MARKETFLOW_STATE_DB"


def documents_from_settings(environ: Mapping[str, str] | None = None) -> DocumentStore | None:
    """The configured document store, or None when none is configured."""
    env = os.environ if environ is None else environ
    names = (STATE_STORAGE_SETTING, "AzureWebJobs" + STATE_STORAGE_SETTING)
    if any(env.get(n, "").strip() or env.get(f"{n}__blobServiceUri", "").strip() for n in names):
        container = env.get(STATE_CONTAINER_SETTING, "").strip() or STATE_CONTAINER
        return BlobDocumentStore.from_settings(container=container, environ=env)
    path = env.get(STATE_DB_SETTING, "").strip()
    if path:
        from .local import SqliteDocumentStore

        return SqliteDocumentStore(path)
    return None
