"""Binance Vision (data.binance.vision) spot archives: plan, download, verify, resume.

Layout (binance/binance-public-data README): `<base>/data/spot/<daily|monthly>/klines/<SYMBOL>/<interval>/
<SYMBOL>-<interval>-<YYYY-MM-DD|YYYY-MM>.zip` and `<base>/data/spot/<daily|monthly>/trades/<SYMBOL>/
<SYMBOL>-trades-<date>.zip`, each with a `<file>.CHECKSUM` holding `<sha256>  <file>`. Daily files
appear the next day, monthly ones early in the next month.

Every file is written to `<name>.part`, hashed while it streams, and renamed into place only when
its sha256 equals the published one; the CHECKSUM is kept beside it, so a later run skips a file
that still verifies and redoes anything else. Nothing unverified is ever left under the final
name. Days the archive does not have yet (recent ones) come from REST `GET /api/v3/klines` as
`<SYMBOL>-<interval>-<date>.csv` in the archive's columns (closed bars only).
"""

from __future__ import annotations

import calendar
import hashlib
import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.market import INTERVAL_MS

DEFAULT_BASE_URL = "https://data.binance.vision"
CHUNK = 1 << 16
# A missing daily file this recent is "not published yet" (REST fills klines); older is missing.
RECENT_DAYS = 3
DAY_MS = 86_400_000


class DownloadFailed(Exception):
    """One file could not be had; the message is the one line the user sees."""


class NotInArchive(DownloadFailed):
    """HTTP 404 for the file (and its checksum)."""


@dataclass(frozen=True, slots=True)
class Job:
    """One archive file to fetch (or one day to take from REST when the archive lacks it)."""

    kind: str  # "klines" | "trades"
    period: str  # "daily" | "monthly"
    symbol: str
    interval: str | None
    stamp: str  # YYYY-MM-DD or YYYY-MM
    first_day: date
    last_day: date

    @property
    def name(self) -> str:
        middle = self.interval if self.kind == "klines" else "trades"
        return f"{self.symbol}-{middle}-{self.stamp}.zip"

    def url(self, base: str) -> str:
        folder = f"{self.symbol}/{self.interval}" if self.kind == "klines" else self.symbol
        return f"{base.rstrip('/')}/data/spot/{self.period}/{self.kind}/{folder}/{self.name}"

    def label(self) -> str:
        return f"{self.symbol} {self.interval or 'trades'} {self.stamp} ({self.period} {self.kind})"

    def days(self) -> Iterator[date]:
        d = self.first_day
        while d <= self.last_day:
            yield d
            d += timedelta(days=1)


def plan(symbols: list[str], interval: str, start: date, end: date, *, trades: bool, today: date) -> list[Job]:
    """Monthly files for calendar months fully inside [start, end] and already over; daily files
    for the other days up to yesterday (today's file cannot exist yet)."""
    if interval not in INTERVAL_MS:
        raise ValueError(f"unsupported interval {interval!r}; supported: {', '.join(INTERVAL_MS)}")
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    jobs: list[Job] = []
    kinds = ["klines", "trades"] if trades else ["klines"]
    for symbol in symbols:
        for kind in kinds:
            iv = interval if kind == "klines" else None
            month = date(start.year, start.month, 1)
            while month <= end:
                last = date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
                if start <= month and last <= end and last < date(today.year, today.month, 1):
                    jobs.append(Job(kind, "monthly", symbol, iv, f"{month:%Y-%m}", month, last))
                else:
                    d = max(month, start)
                    while d <= min(last, end):
                        jobs.append(Job(kind, "daily", symbol, iv, f"{d:%Y-%m-%d}", d, d))
                        d += timedelta(days=1)
                month = last + timedelta(days=1)
    return jobs


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verified(path: Path) -> bool:
    """`path` exists with a CHECKSUM beside it that it still matches."""
    check = path.with_name(path.name + ".CHECKSUM")
    if not path.is_file() or not check.is_file():
        return False
    expected = check.read_text().split()
    return bool(expected) and expected[0].lower() == sha256_of(path)


class Downloader:
    """Fetches jobs into `out`; `fetch(job)` returns what it did or raises DownloadFailed."""

    def __init__(self, out: Path, base_url: str = DEFAULT_BASE_URL, rest_url: str | None = None,
                 timeout: float = 30.0, now_ms: Callable[[], int] | None = None,
                 on_bytes: Callable[[int], object] | None = None) -> None:
        self.out = out
        self.base_url = base_url
        self.rest_url = rest_url
        self.timeout = timeout
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self._on_bytes = on_bytes

    def _open(self, url: str) -> Any:
        try:
            return urllib.request.urlopen(url, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise NotInArchive(f"not in the archive (HTTP 404: {url})") from None
            raise DownloadFailed(f"HTTP {exc.code} for {url}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DownloadFailed(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None

    def fetch(self, job: Job) -> str:
        """'skipped' (already verified), 'downloaded'; raises DownloadFailed with one clear line."""
        self.out.mkdir(parents=True, exist_ok=True)
        dest = self.out / job.name
        if verified(dest):
            return "skipped"
        url = job.url(self.base_url)
        try:
            with self._open(url + ".CHECKSUM") as resp:
                checksum_text = resp.read().decode("utf-8", "replace")
        except NotInArchive:
            try:
                self._open(url).close()
            except NotInArchive:
                raise NotInArchive(f"{job.label()}: not in the archive (HTTP 404)") from None
            raise DownloadFailed(f"{job.label()}: the archive has no .CHECKSUM for it; not kept (unverifiable)") \
                from None
        fields = checksum_text.split()
        if not fields or len(fields[0]) != 64:
            raise DownloadFailed(f"{job.label()}: unreadable .CHECKSUM {checksum_text[:80]!r}; not kept")
        expected = fields[0].lower()
        part = dest.with_name(dest.name + ".part")
        try:
            got = self._stream(url, part)
            if got != expected:
                raise DownloadFailed(f"{job.label()}: bad checksum (expected {expected[:12]}…, got {got[:12]}…); "
                                     "not kept")
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)
        dest.with_name(dest.name + ".CHECKSUM").write_text(checksum_text if checksum_text.endswith("\n")
                                                           else checksum_text + "\n")
        if job.kind == "klines":  # the archive now has these days: drop their REST stand-ins
            for d in job.days():
                self.rest_csv(job.symbol, job.interval or "", d).unlink(missing_ok=True)
        return "downloaded"

    def _stream(self, url: str, part: Path) -> str:
        h = hashlib.sha256()
        with self._open(url) as resp:
            length = resp.headers.get("Content-Length")
            size = 0
            try:
                with part.open("wb") as fh:
                    while chunk := resp.read(CHUNK):
                        fh.write(chunk)
                        h.update(chunk)
                        size += len(chunk)
                        if self._on_bytes is not None:
                            self._on_bytes(len(chunk))
            except (OSError, http.client.HTTPException) as exc:  # IncompleteRead: the server closed early
                raise DownloadFailed(f"download of {url} was cut after {size} bytes ({type(exc).__name__})") from None
        if length is not None and int(length) != size:
            raise DownloadFailed(f"download of {url} was cut: {size} of {length} bytes")
        return h.hexdigest()

    # -- REST stand-in for days the archive has not published yet --------------------------------

    def rest_csv(self, symbol: str, interval: str, day: date) -> Path:
        return self.out / f"{symbol}-{interval}-{day:%Y-%m-%d}.csv"

    def fetch_rest_day(self, symbol: str, interval: str, day: date) -> int:
        """Closed klines of `day` from REST into `<SYMBOL>-<interval>-<date>.csv`; returns rows written."""
        if self.rest_url is None:
            raise DownloadFailed(f"{symbol} {interval} {day}: not in the archive yet and no REST URL to fill it")
        step = INTERVAL_MS[interval]
        start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        end = start + DAY_MS - 1
        now = self._now_ms()
        lines: list[str] = []
        cursor = start
        while cursor <= end:
            query = urllib.parse.urlencode({"symbol": symbol, "interval": interval, "startTime": cursor,
                                            "endTime": end, "limit": 1000})
            url = f"{self.rest_url.rstrip('/')}/api/v3/klines?{query}"
            try:
                with self._open(url) as resp:
                    page = json.loads(resp.read())
            except NotInArchive:
                raise DownloadFailed(f"{symbol} {interval} {day}: REST klines answered 404 ({url})") from None
            except ValueError:
                raise DownloadFailed(f"{symbol} {interval} {day}: REST klines answer is not JSON") from None
            if not isinstance(page, list):
                raise DownloadFailed(f"{symbol} {interval} {day}: REST klines answer is not a list")
            rows = [r for r in page if isinstance(r, list) and len(r) == 12 and isinstance(r[0], int)
                    and cursor <= r[0] <= end]
            lines += [",".join(map(str, r)) for r in rows if int(r[6]) < now]  # the last may still be open
            if len(page) < 1000 or not rows:
                break
            cursor = rows[-1][0] + step
        dest = self.rest_csv(symbol, interval, day)
        tmp = dest.with_name(dest.name + ".part")
        tmp.write_text("".join(line + "\n" for line in lines))
        os.replace(tmp, dest)
        return len(lines)

    def rest_day_complete(self, symbol: str, interval: str, day: date) -> bool:
        path = self.rest_csv(symbol, interval, day)
        if not path.is_file():
            return False
        return len(path.read_text().splitlines()) >= DAY_MS // INTERVAL_MS[interval]
