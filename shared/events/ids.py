"""Deterministic identifiers: the same input always yields the same id.

At-least-once delivery and replays both redeliver events; ids derived from content (not from
clocks or random numbers) are what lets every handler deduplicate.
"""

from __future__ import annotations

import hashlib

ID_HEX_LEN = 32
_sha256 = hashlib.sha256


def deterministic_id(kind: str, *parts: object) -> str:
    """A 128-bit hex id for `kind` and its identifying parts, stable across processes and runs."""
    return id_of("\x1f".join([kind, *map(str, parts)]))


def id_of(text: str) -> str:
    """The id of an already joined `kind<US>part<US>...` text. The factories that run for every
    decision join their parts with an f-string instead of the generic join; tests pin each
    against `deterministic_id`."""
    return _sha256(text.encode("utf-8")).hexdigest()[:ID_HEX_LEN]


def client_order_id(intent_id: str) -> str:
    """Binance `newClientOrderId` for an intent: <= 36 chars of [A-Za-z0-9_-], derived, never random.

    A resend after a timeout reuses it, so Binance itself rejects a duplicate order
    (-2010 "Duplicate order sent") instead of opening a second position.
    """
    return "mf-" + intent_id[:32]
