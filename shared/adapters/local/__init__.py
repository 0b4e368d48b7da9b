"""Local adapters: SQLite and file stores for a laptop or a single node."""
