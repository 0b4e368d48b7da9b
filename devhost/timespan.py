"""Functions' TimeSpan strings ("00:00:01", "1.02:03:04.5") as seconds."""

from __future__ import annotations


def parse_timespan(text: str) -> float:
    """Seconds in a `[d.]hh:mm:ss[.fff]` TimeSpan, the format host.json and retry policies use."""
    value = text.strip()
    days = 0
    head, sep, rest = value.partition(".")
    if sep and ":" not in head:  # a leading day count: "1.02:03:04"
        days, value = int(head), rest
    parts = value.split(":")
    if len(parts) != 3:
        raise ValueError(f"not a TimeSpan (expected [d.]hh:mm:ss): {text!r}")
    hours, minutes = int(parts[0]), int(parts[1])
    seconds = float(parts[2])
    if hours < 0 or not 0 <= minutes < 60 or not 0 <= seconds < 60:
        raise ValueError(f"not a TimeSpan (out of range): {text!r}")
    return days * 86400 + hours * 3600 + minutes * 60 + seconds
