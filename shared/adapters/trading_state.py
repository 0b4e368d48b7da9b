"""The trading state as a shared document: one record every engine, the CLI and the HTTP endpoint see.

`DocumentStateStore` gives the risk engine's `StateStore` protocol (load, versioned save, change
token) over any `DocumentStore`: a Blob in Azure, SQLite locally, a dict in tests. A save is a
compare-and-set twice over: on the record's version (the state machine's rule) and on the
document's ETag (the storage's), so two engines saving on top of the same version cannot both
win. Each engine re-reads the record when the ETag moved, at most every `state_refresh_s`, so a
kill switch thrown anywhere reaches every engine within that time.
"""

from __future__ import annotations

from shared.risk.states import StateConflictError, StateRecord

from .documents import DocumentConflict, DocumentStore

TRADING_STATE_KEY = "trading-state/account.json"


class DocumentStateStore:
    """`shared.risk.StateStore` over a `DocumentStore` document."""

    def __init__(self, documents: DocumentStore, key: str = TRADING_STATE_KEY) -> None:
        self.documents = documents
        self.key = key

    def load(self) -> StateRecord | None:
        found = self.documents.get(self.key)
        return None if found is None else StateRecord.from_json(found.data)

    def save(self, record: StateRecord, expected_version: int) -> None:
        found = self.documents.get(self.key)
        stored = 0 if found is None else int(found.data.get("version", -1))
        if stored != expected_version:
            raise StateConflictError(f"{self.key}: stored version {stored}, expected {expected_version}")
        try:
            self.documents.put(self.key, record.to_json(), None if found is None else found.etag)
        except DocumentConflict as exc:
            raise StateConflictError(str(exc)) from None

    def token(self) -> object:
        return self.documents.etag(self.key)
