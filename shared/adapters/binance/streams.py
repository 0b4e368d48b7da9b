"""Binance market stream names, connection URLs and the limits that shape a subscription.

What Binance documents (spot web-socket-streams): stream names are lower case; raw streams are
served at `<base>/ws/<stream>` and combined ones at `<base>/stream?streams=<a>/<b>`, wrapped as
`{"stream": ..., "data": ...}`; one connection carries at most 1,024 streams and may receive at
most 5 messages per second from the client (pings, pongs, subscribe requests); an IP may open at
most 300 connections per 5 minutes; a connection is cut at the 24-hour mark.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.market import INTERVAL_MS

DEFAULT_STREAM_URL = "wss://stream.binance.com:9443"
DEFAULT_REST_URL = "https://api.binance.com"
MAX_STREAMS_PER_CONNECTION = 1024
MAX_CONNECTIONS_PER_WINDOW = 300
CONNECTION_WINDOW_S = 300.0
# Binance cuts a connection after 24 hours; it is rotated before that.
CONNECTION_LIFETIME_S = 24 * 3600.0


class StreamKind(StrEnum):
    KLINE = "kline"
    TRADE = "trade"
    BOOK_TICKER = "book_ticker"


@dataclass(frozen=True, slots=True)
class StreamKey:
    """One subscribed stream: symbol (upper case, as events carry it), kind and kline interval."""

    symbol: str
    kind: StreamKind
    interval: str | None = None

    @property
    def name(self) -> str:
        """The Binance stream name, lower case: `btcusdt@kline_1m`, `btcusdt@trade`, `btcusdt@bookTicker`."""
        sym = self.symbol.lower()
        if self.kind is StreamKind.KLINE:
            return f"{sym}@kline_{self.interval}"
        if self.kind is StreamKind.TRADE:
            return f"{sym}@trade"
        return f"{sym}@bookTicker"

    def __str__(self) -> str:
        return self.name


def stream_keys(symbols: Iterable[str], intervals: Iterable[str], *, trades: bool = False,
                book_ticker: bool = False) -> list[StreamKey]:
    """The streams to subscribe to, grouped by symbol (so a symbol's streams share a connection)."""
    ivs = list(dict.fromkeys(intervals))
    for iv in ivs:
        if iv not in INTERVAL_MS:
            raise ValueError(f"unsupported interval {iv!r}; supported: {', '.join(INTERVAL_MS)}")
    keys: list[StreamKey] = []
    for raw in dict.fromkeys(symbols):
        sym = raw.strip().upper()
        if not sym or not sym.isalnum() or len(sym) > 20:
            raise ValueError(f"symbol {raw!r} must be letters and digits, e.g. ETHUSDT")
        keys += [StreamKey(sym, StreamKind.KLINE, iv) for iv in ivs]
        if trades:
            keys.append(StreamKey(sym, StreamKind.TRADE))
        if book_ticker:
            keys.append(StreamKey(sym, StreamKind.BOOK_TICKER))
    if not keys:
        raise ValueError("nothing to subscribe to: give symbols and an interval, --trades or --book-ticker")
    return keys


def connection_groups(keys: Sequence[StreamKey],
                      per_connection: int = MAX_STREAMS_PER_CONNECTION) -> list[tuple[StreamKey, ...]]:
    """Split the streams into connections of at most `per_connection` (<= 1,024) streams, never
    splitting one symbol's streams (they stay in order relative to each other on one socket)."""
    if not 1 <= per_connection <= MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"streams per connection must be 1..{MAX_STREAMS_PER_CONNECTION}")
    by_symbol: dict[str, list[StreamKey]] = {}
    for key in keys:
        by_symbol.setdefault(key.symbol, []).append(key)
    groups: list[tuple[StreamKey, ...]] = []
    current: list[StreamKey] = []
    for symbol_keys in by_symbol.values():
        if current and len(current) + len(symbol_keys) > per_connection:
            groups.append(tuple(current))
            current = []
        current += symbol_keys
    if current:
        groups.append(tuple(current))
    return groups


def stream_url(base: str, keys: Sequence[StreamKey]) -> str:
    """`<base>/ws/<stream>` for one stream, `<base>/stream?streams=a/b` for several."""
    base = base.rstrip("/")
    if len(keys) == 1:
        return f"{base}/ws/{keys[0].name}"
    return f"{base}/stream?streams=" + "/".join(k.name for k in keys)
