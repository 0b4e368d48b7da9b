"""Per-partition handler state in a shared `DocumentStore`, so a partition survives a takeover.

Event Hubs hands each partition to one instance at a time, and moves it on a scale-out, a
restart or a slot swap. The handlers' memory for a partition (indicators, strategies, the
duplicate-detection window) is saved after every batch as one document,
`partitions/<hub>/<consumer>/<partition>.json`, with the batch's last sequence number, written
compare-and-set on the ETag. Before each batch the owner checks the ETag (one metadata read):
when it moved, another instance processed the partition since, and its state is restored first.
Events at or below the saved sequence number were handled (and published) by whoever saved it,
so they are skipped as duplicates.

Order per batch, and why at-least-once holds: outputs are published, then the state is saved.
A crash before the save leaves the previous state, so the next owner handles the batch again
from it and publishes the same outputs with the same deterministic ids (every consumer
downstream deduplicates by id, content-checked). Saving first would be worse: a crash after
the save and before the publish would lose those outputs for good.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from .documents import DocumentStore

SnapshotFn = Callable[[str], dict[str, Any]]
RestoreFn = Callable[[str, dict[str, Any] | None], None]


class Restored(NamedTuple):
    """What the batch loop installs after another instance's save: its last sequence number and
    dedup window (None when the document is gone: start cold)."""

    sequence_number: int | None
    dedup: list[list[str]]


class PartitionStates:
    """Loads and saves one consumer's per-partition handler state.

    `snapshot(partition)` returns the handlers' state of a partition (JSON-safe) and
    `restore(partition, state)` installs one (None: a cold start).
    """

    def __init__(self, documents: DocumentStore, hub: str, consumer: str, snapshot: SnapshotFn,
                 restore: RestoreFn) -> None:
        self.documents = documents
        self.hub = hub
        self.consumer = consumer
        self._snapshot = snapshot
        self._restore = restore
        self._etags: dict[str, str | None] = {}  # partition -> ETag of our last load or save
        self.restores = 0
        self.saves = 0

    def key(self, partition: str) -> str:
        return f"partitions/{self.hub}/{self.consumer}/{partition}.json"

    def sync(self, partition: str) -> Restored | None:
        """Restore the partition's state when someone else saved it since we last did (or we
        never held it); None when our memory is current."""
        key = self.key(partition)
        current = self.documents.etag(key)
        if partition in self._etags and current == self._etags[partition]:
            return None
        found = self.documents.get(key)
        self.restores += 1
        if found is None:
            self._restore(partition, None)
            self._etags[partition] = None
            return Restored(None, [])
        self._restore(partition, found.data["handler"])
        self._etags[partition] = found.etag
        seq = found.data.get("sequence_number")
        return Restored(None if seq is None else int(seq), list(found.data.get("dedup", [])))

    def save(self, partition: str, sequence_number: int | None, dedup: list[list[str]]) -> None:
        """Compare-and-set on the ETag read or written last; DocumentConflict when another
        instance saved in between (the batch is retried, and `sync` then restores its state)."""
        doc = {"hub": self.hub, "consumer": self.consumer, "partition": partition,
               "sequence_number": sequence_number, "dedup": dedup, "handler": self._snapshot(partition)}
        self._etags[partition] = self.documents.put(self.key(partition), doc, self._etags.get(partition))
        self.saves += 1

    def forget(self, partition: str) -> None:
        """Drop what we know of a partition (the next batch restores it from the store)."""
        self._etags.pop(partition, None)
