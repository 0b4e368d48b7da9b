"""A function's retry policy (`@bp.retry(...)`), as the Functions host applies it to a trigger.

The host re-runs the whole invocation (the same batch) after each failure, waiting `delay_interval`
(fixed_delay) or an interval that doubles from `minimum_interval` up to `maximum_interval`
(exponential_backoff); `max_retry_count` -1 retries for ever. Once the policy is done, the host
moves on and checkpoints the batch anyway.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from .timespan import parse_timespan

FIXED_DELAY = "fixed_delay"
EXPONENTIAL_BACKOFF = "exponential_backoff"


class RetryPolicy(NamedTuple):
    strategy: str
    max_retry_count: int  # -1: for ever
    delay_s: float = 0.0  # fixed_delay
    minimum_s: float = 0.0  # exponential_backoff
    maximum_s: float = 0.0

    @classmethod
    def from_setting(cls, setting: Mapping[str, Any] | None) -> RetryPolicy | None:
        """From `Function.get_settings_dict("retry_policy")`; None when the function has none."""
        if not setting:
            return None
        strategy = str(setting.get("strategy", "")).lower()
        count = int(str(setting.get("max_retry_count", "0")))
        if count < -1:
            raise ValueError(f"max_retry_count must be -1 or more, got {count}")
        if strategy == FIXED_DELAY:
            return cls(strategy, count, delay_s=parse_timespan(str(setting.get("delay_interval") or "00:00:00")))
        if strategy == EXPONENTIAL_BACKOFF:
            low = parse_timespan(str(setting.get("minimum_interval") or "00:00:00"))
            high = parse_timespan(str(setting.get("maximum_interval") or "00:00:00"))
            if high < low:
                raise ValueError("maximum_interval is shorter than minimum_interval")
            return cls(strategy, count, minimum_s=low, maximum_s=high)
        raise ValueError(f"unknown retry strategy {strategy!r} (fixed_delay or exponential_backoff)")

    def delays(self) -> Iterator[float]:
        """The wait before each retry, in order; endless when max_retry_count is -1."""
        counter = itertools.count() if self.max_retry_count < 0 else range(self.max_retry_count)
        for attempt in counter:
            if self.strategy == FIXED_DELAY:
                yield self.delay_s
            else:
                yield min(self.maximum_s, self.minimum_s * (2 ** min(attempt, 62)))
