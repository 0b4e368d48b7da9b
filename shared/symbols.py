"""Symbol -> (base, quote) assets. Exchange info is authoritative when present; this is the fallback."""

from __future__ import annotations

from functools import lru_cache

# Longest first so that e.g. FDUSD wins over USD-like suffixes.
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY")


@lru_cache(maxsize=1024)
def split_symbol(symbol: str) -> tuple[str, str]:
    """('BTC', 'USDT') for 'BTCUSDT'; raises for a symbol with no known quote asset."""
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"cannot tell the quote asset of {symbol!r}; known quotes: {', '.join(_QUOTES)}")
