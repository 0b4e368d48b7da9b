"""`marketflow download`: Binance Vision kline (and trade) archives for a date range, verified and resumable.

Monthly archives where a whole, finished month is asked for, daily ones otherwise (a monthly file
not published yet falls back to its days); each checked against its `.CHECKSUM` (sha256) before it
takes its final name; a file that still verifies is skipped, anything else redone. Days the
archive does not have yet (the last few) come from REST klines as CSV. The output folder is what
`marketflow replay --source DIR/BTCUSDT-1m-*` reads. Each failure is one line on stderr; the run
goes on with the other files and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import CliError


def register(sub: Any) -> None:
    from shared.adapters.binance.streams import DEFAULT_REST_URL
    from shared.adapters.binance.vision_archive import DEFAULT_BASE_URL

    p = sub.add_parser("download", help="download Binance Vision kline/trade archives (verified, resumable)",
                       description="Download Binance Vision spot kline (and with --trades trade) archives for "
                       "--from..--to (inclusive, UTC days), verify each against its .CHECKSUM, skip what is "
                       "already verified, and take days the archive does not have yet from REST klines.")
    p.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    p.add_argument("--interval", default="1m", help="kline interval (default 1m)")
    p.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD (inclusive)")
    p.add_argument("--out", required=True, help="output folder (created when missing)")
    p.add_argument("--trades", action="store_true", help="also the trade archives")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"archive base URL (default {DEFAULT_BASE_URL})")
    p.add_argument("--rest-url", default=DEFAULT_REST_URL, help=f"REST base URL for days not archived yet "
                   f"(default {DEFAULT_REST_URL}; 'none' to skip them)")
    p.set_defaults(func=cmd_download)


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def cmd_download(args: argparse.Namespace, today: date | None = None) -> int:
    from tqdm import tqdm

    from shared.adapters.binance.vision_archive import (
        RECENT_DAYS,
        Downloader,
        DownloadFailed,
        Job,
        NotInArchive,
        plan,
    )

    today = today or datetime.now(UTC).date()
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    if not symbols or not all(s.isalnum() for s in symbols):
        raise CliError(f"--symbols {args.symbols!r}: letters and digits, comma-separated")
    start, end = _day(args.start, "--from"), _day(args.end, "--to")
    end = min(end, today - timedelta(days=1)) if end >= today else end  # today is not over: no file, no bars
    try:
        jobs = plan(symbols, args.interval, start, end, trades=args.trades, today=today)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"--out {out}: {exc.strerror or exc}") from None
    rest_url = None if args.rest_url.lower() == "none" else args.rest_url
    done = {"downloaded": 0, "skipped": 0, "rest": 0}
    failed = 0
    queue: list[Job] = list(jobs)
    with tqdm(total=len(queue), desc="download", unit=" files", disable=None, file=sys.stderr, leave=False) as bar:
        dl = Downloader(out, args.base_url, rest_url)
        while queue:
            job = queue.pop(0)
            try:
                done[dl.fetch(job)] += 1
            except NotInArchive as exc:
                if job.period == "monthly":  # not published yet: its days instead
                    days = [Job(job.kind, "daily", job.symbol, job.interval, f"{d:%Y-%m-%d}", d, d) for d in job.days()]
                    queue[:0] = days
                    bar.total += len(days)
                elif job.kind == "klines" and (today - job.first_day).days <= RECENT_DAYS and rest_url:
                    try:
                        if not dl.rest_day_complete(job.symbol, job.interval or "", job.first_day):
                            dl.fetch_rest_day(job.symbol, job.interval or "", job.first_day)
                        done["rest"] += 1
                    except DownloadFailed as rexc:
                        failed += 1
                        tqdm.write(f"download: {rexc}", file=sys.stderr)
                else:
                    failed += 1
                    tqdm.write(f"download: {exc}", file=sys.stderr)
            except DownloadFailed as exc:
                failed += 1
                tqdm.write(f"download: {exc}", file=sys.stderr)
            bar.update(1)
    print(f"download: {done['downloaded']} downloaded, {done['skipped']} already verified, "
          f"{done['rest']} days from REST, {failed} failed -> {out}")
    return 1 if failed else 0
