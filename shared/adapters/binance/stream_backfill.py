"""Public REST market data the ingestor backfills gaps from: `GET /api/v3/klines` and `/api/v3/aggTrades`.

Unsigned market-data endpoints only (no key): klines in pages of 1,000 by open time, aggregate
trades by time in windows of at most one hour (Binance's limit for startTime/endTime) and then by
`fromId`. A 429 or 418 (rate limited, banned) and any other failure raise `BackfillError`; the
caller decides how often to retry. Rows come back as Binance sends them; validating them is the
parser's job (`stream_messages.kline_item`, `trade_item`).
"""

from __future__ import annotations

from typing import Any

import aiohttp

KLINES_LIMIT = 1000
AGG_TRADES_LIMIT = 1000
AGG_WINDOW_MS = 3_600_000 - 1  # startTime..endTime must be under one hour


class BackfillError(RuntimeError):
    """A REST request failed; `retry_after` is Binance's Retry-After in seconds when it sent one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RestBackfill:
    """A small aiohttp client for the two endpoints, created lazily inside the running loop."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0

    async def _get(self, path: str, params: dict[str, str | int]) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        self.requests += 1
        url = f"{self.base_url}{path}"
        try:
            async with self._session.get(url, params=params) as resp:
                if resp.status in (418, 429):
                    after = resp.headers.get("Retry-After")
                    raise BackfillError(f"GET {path}: HTTP {resp.status} (rate limited)",
                                        float(after) if after and after.isdigit() else None)
                if resp.status != 200:
                    text = (await resp.text())[:200]
                    raise BackfillError(f"GET {path}: HTTP {resp.status}: {text}")
                return await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise BackfillError(f"GET {path}: {type(exc).__name__}: {exc}") from None

    async def klines(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> list[list[Any]]:
        """Kline arrays with start_ms <= open time <= end_ms, in order (the last may still be open)."""
        out: list[list[Any]] = []
        start = start_ms
        while start <= end_ms:
            page = await self._get("/api/v3/klines", {"symbol": symbol, "interval": interval, "startTime": start,
                                                      "endTime": end_ms, "limit": KLINES_LIMIT})
            if not isinstance(page, list):
                raise BackfillError(f"GET /api/v3/klines: expected a JSON array, got {type(page).__name__}")
            rows = [r for r in page if isinstance(r, list) and r and isinstance(r[0], int) and r[0] >= start]
            out += rows
            if len(page) < KLINES_LIMIT or not rows:
                break
            start = rows[-1][0] + 1
        return out

    async def agg_trades(self, symbol: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Aggregate trades with start_ms <= T <= end_ms, ordered by aggregate id, each once."""
        out: dict[int, dict[str, Any]] = {}
        window_start = start_ms
        while window_start <= end_ms:
            window_end = min(end_ms, window_start + AGG_WINDOW_MS)
            params: dict[str, str | int] = {"symbol": symbol, "startTime": window_start, "endTime": window_end,
                                            "limit": AGG_TRADES_LIMIT}
            while True:
                page = await self._get("/api/v3/aggTrades", params)
                if not isinstance(page, list):
                    raise BackfillError(f"GET /api/v3/aggTrades: expected a JSON array, got {type(page).__name__}")
                last_id = None
                for agg in page:
                    if isinstance(agg, dict) and isinstance(agg.get("a"), int) and isinstance(agg.get("T"), int):
                        if agg["T"] > window_end:
                            last_id = None
                            break
                        out.setdefault(agg["a"], agg)
                        last_id = agg["a"]
                if len(page) < AGG_TRADES_LIMIT or last_id is None:
                    break
                params = {"symbol": symbol, "fromId": last_id + 1, "limit": AGG_TRADES_LIMIT}
            window_start = window_end + 1
        return [out[k] for k in sorted(out)]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
