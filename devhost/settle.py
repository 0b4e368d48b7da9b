"""How far behind each consumer group is, from the hubs' last sequence numbers and the checkpoints.

A group's lag on a partition is the partition's last enqueued sequence number minus the group's
checkpointed one. Consumers that checkpoint after every batch (the local host with
batchCheckpointFrequency 1, the executor) have lag 0 exactly when they have handled everything
published so far: the pipeline has settled. Checkpoints are read straight from the Blob checkpoint
stores' blobs (`<namespace>/<hub>/<group>/checkpoint/<partition>` with `sequencenumber` metadata),
so this needs neither the namespace's exact spelling nor a consumer client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple


class GroupLag(NamedTuple):
    hub: str
    group: str
    lag: int  # events published but not yet checkpointed by the group, all partitions
    last_sequence: dict[str, int]  # partition -> last enqueued sequence number (-1: empty)


def checkpoints(container: Any) -> dict[tuple[str, str, str], int]:
    """(hub, group, partition) -> checkpointed sequence number, from one checkpoint container."""
    found: dict[tuple[str, str, str], int] = {}
    for blob in container.list_blobs(include=["metadata"]):
        parts = blob.name.split("/")
        if len(parts) < 5 or parts[-2] != "checkpoint":
            continue
        seq = (blob.metadata or {}).get("sequencenumber")
        if seq is not None:
            found[(parts[-4], parts[-3], parts[-1])] = int(seq)
    return found


def owned(container: Any) -> set[tuple[str, str, str]]:
    """(hub, group, partition) triples some consumer has claimed (ownership blobs)."""
    found: set[tuple[str, str, str]] = set()
    for blob in container.list_blobs():
        parts = blob.name.split("/")
        if len(parts) >= 5 and parts[-2] == "ownership":
            found.add((parts[-4], parts[-3], parts[-1]))
    return found


def partition_heads(client: Any) -> dict[str, int]:
    """partition -> last enqueued sequence number (-1 when empty) of the hub `client` is bound to."""
    return {pid: int(client.get_partition_properties(pid)["last_enqueued_sequence_number"])
            for pid in client.get_partition_ids()}


def lags(heads: Mapping[str, Mapping[str, int]], groups: Mapping[str, Sequence[str]],
         saved: Iterable[Mapping[tuple[str, str, str], int]]) -> list[GroupLag]:
    """Every (hub, group) pair's lag; `heads` by hub, `groups` by hub, `saved` the checkpoint maps."""
    merged: dict[tuple[str, str, str], int] = {}
    for one in saved:
        for key, seq in one.items():
            merged[key] = max(seq, merged.get(key, -1))
    out = []
    for hub, parts in heads.items():
        for group in groups.get(hub, ()):
            lag = 0
            for pid, last in parts.items():
                done = merged.get((hub.lower(), group.lower(), pid), -1)
                lag += max(0, last - done)
            out.append(GroupLag(hub, group, lag, dict(parts)))
    return out
