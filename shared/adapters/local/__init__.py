"""Local adapters: SQLite and file stores for a laptop or a single node."""

from .sqlite_documents import SqliteDocumentStore

__all__ = ["SqliteDocumentStore"]
