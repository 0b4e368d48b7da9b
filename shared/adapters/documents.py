"""Versioned JSON documents with compare-and-set: what the shared stores are built on.

The account snapshot (`positions` writes, `risk` reads), the trading state (every engine, the CLI
and the `trading_state` endpoint) and the per-partition handler state are each one small JSON
document. Several instances write them, so every write is conditional on the ETag read before
it (`put(key, data, etag)`): a write on top of a changed document raises `DocumentConflict`, and
the writer reloads and applies its change again. `etag=None` means "create only".

Implementations: `InMemoryDocumentStore` (tests, replays; sharing one instance models a shared
store), `shared.adapters.local.SqliteDocumentStore` (a laptop, a single node) and
`shared.adapters.azure.BlobDocumentStore` (Blob Storage ETags, Azurite in tests). Any other
exception from a store is an infrastructure failure: callers let it propagate so the trigger's
retry policy runs.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from typing import Any, NamedTuple, Protocol


class Versioned(NamedTuple):
    """A stored document and the ETag a conditional write must name."""

    data: dict[str, Any]
    etag: str


class DocumentConflict(RuntimeError):
    """The document changed (or already exists) since it was read: reload and apply again."""


class DocumentStore(Protocol):
    """Named JSON documents with ETags. Raises on anything but a conflict only when it cannot
    reach its storage (transient: the caller retries)."""

    def get(self, key: str) -> Versioned | None:
        """The document and its ETag, or None when nothing is stored under `key`."""
        ...

    def put(self, key: str, data: dict[str, Any], etag: str | None) -> str:
        """Store `data` if the stored ETag is still `etag` (None: only if absent); returns the new
        ETag. Raises DocumentConflict otherwise."""
        ...

    def etag(self, key: str) -> str | None:
        """The current ETag only (cheaper than `get`): a change token."""
        ...


def dumps(data: dict[str, Any]) -> bytes:
    """The stored form: compact, key-sorted JSON (stable, so equal documents are equal bytes)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


class InMemoryDocumentStore:
    """Documents in a dict, deep-copied in and out (a caller's later mutation changes nothing)."""

    def __init__(self) -> None:
        self._docs: dict[str, tuple[bytes, str]] = {}
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.puts = 0
        self.gets = 0

    def get(self, key: str) -> Versioned | None:
        with self._lock:
            self.gets += 1
            found = self._docs.get(key)
        if found is None:
            return None
        return Versioned(json.loads(found[0]), found[1])

    def put(self, key: str, data: dict[str, Any], etag: str | None) -> str:
        body = dumps(copy.deepcopy(data))
        with self._lock:
            current = self._docs.get(key)
            if (current is None) != (etag is None) or (current is not None and current[1] != etag):
                raise DocumentConflict(f"document {key!r} changed since it was read")
            new = f'"{next(self._counter)}"'
            self._docs[key] = (body, new)
            self.puts += 1
            return new

    def etag(self, key: str) -> str | None:
        with self._lock:
            found = self._docs.get(key)
        return None if found is None else found[1]

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._docs)
