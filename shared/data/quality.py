"""Data-quality reporting for the market-data readers.

Two tiers, because a backtest must never run on silently repaired data:

* errors (a row that cannot be trusted: malformed, impossible prices, time going backwards or
  repeating) are collected over the whole input and raised once as `DataError`, so the user sees
  every broken line at the same time instead of fixing them one run at a time;
* warnings (real exchange artefacts such as maintenance gaps or zero-volume bars) are kept in a
  `DataQuality` / `TradeQuality` report and the data is returned exactly as it was, with no
  interpolation: the strategies count bars, not wall-clock time, and the backtesting.py parity
  depends on seeing the same bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

MAX_LISTED = 10  # problems spelled out in a DataError message; the total is always given


def fmt_ms(ms: int) -> str:
    """Unix ms as a short UTC timestamp; seconds and ms appear only when they are not zero."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if ms % 1000:
        return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d} UTC"
    if ms % 60_000:
        return dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    return dt.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad row (or a bad file when `line` is None): where it is and what is wrong with it."""

    source: str
    line: int | None
    message: str
    column: str | None = None

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source} line {self.line}"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


class DataError(ValueError):
    """Input that cannot be used as it is. The message lists up to 10 problems and the total."""

    def __init__(self, problems: list[Problem], total: int | None = None) -> None:
        if not problems:
            raise ValueError("DataError needs at least one problem")
        self.problems: list[Problem] = list(problems[:MAX_LISTED])
        self.total: int = max(total if total is not None else len(problems), len(self.problems))
        if self.total == 1:
            text = f"invalid market data: {self.problems[0]}"
        else:
            shown = len(self.problems)
            head = f"invalid market data: {self.total} problems"
            if shown < self.total:
                head += f" (first {shown} listed)"
            text = head + ":\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(text)


class ProblemLog:
    """Collects problems while a reader keeps scanning; keeps the first few and counts the rest."""

    __slots__ = ("first", "total")

    def __init__(self) -> None:
        self.first: list[Problem] = []
        self.total = 0

    def add(self, problem: Problem) -> None:
        self.total += 1
        if len(self.first) < MAX_LISTED:
            self.first.append(problem)

    def raise_if_any(self) -> None:
        if self.total:
            raise DataError(self.first, self.total)


@dataclass(frozen=True, slots=True)
class Gap:
    """Bars missing between two consecutive bars (kept as a hole, never filled in)."""

    prev_open_time: int
    next_open_time: int
    missing: int

    def __str__(self) -> str:
        return (f"after {fmt_ms(self.prev_open_time)} next bar {fmt_ms(self.next_open_time)}: "
                f"{self.missing} missing bar{'s' if self.missing != 1 else ''}")


@dataclass(slots=True)
class DataQuality:
    """Warnings found while reading klines; the bars themselves are returned unchanged."""

    rows: int = 0
    gaps: list[Gap] = field(default_factory=list)
    zero_volume: list[int] = field(default_factory=list)
    irregular_close_time: list[int] = field(default_factory=list)
    # Open times whose distance from the previous bar is not a whole number of intervals.
    misaligned: list[int] = field(default_factory=list)
    symbol: str = ""
    interval: str = ""
    first_open_time: int | None = None
    last_open_time: int | None = None

    @property
    def missing_bars(self) -> int:
        return sum(g.missing for g in self.gaps)

    @property
    def ok(self) -> bool:
        """True when there is nothing to warn about."""
        return not (self.gaps or self.zero_volume or self.irregular_close_time or self.misaligned)

    def summary(self) -> str:
        """One paragraph for a human: what was read and every warning, with UTC times."""
        what = f"{self.rows} bar{'s' if self.rows != 1 else ''}"
        if self.symbol or self.interval:
            what += f" of {self.symbol} {self.interval}".rstrip()
        if self.first_open_time is not None and self.last_open_time is not None:
            what += f" from {fmt_ms(self.first_open_time)} to {fmt_ms(self.last_open_time)}"
        if self.ok:
            return f"{what}: no gaps, no zero-volume bars, every close_time regular."
        parts: list[str] = []
        if self.gaps:
            parts.append(f"{len(self.gaps)} gap{'s' if len(self.gaps) != 1 else ''} "
                         f"({self.missing_bars} missing bars: " + "; ".join(map(str, self.gaps[:10]))
                         + ("; …" if len(self.gaps) > 10 else "") + ")")
        else:
            parts.append("no gaps")
        for label, times in (("zero-volume bar", self.zero_volume),
                             ("bar with an irregular close_time", self.irregular_close_time),
                             ("bar off the interval grid", self.misaligned)):
            if times:
                plural = label.replace("bar", "bars", 1) if len(times) != 1 else label
                listed = ", ".join(fmt_ms(t) for t in times[:10]) + (", …" if len(times) > 10 else "")
                parts.append(f"{len(times)} {plural} ({listed})")
        return (f"{what}: " + "; ".join(parts)
                + ". These bars are kept as they are: nothing is interpolated or dropped.")


@dataclass(frozen=True, slots=True)
class IdGap:
    """Trade ids skipped between two consecutive trades (trades we do not have)."""

    prev_id: int
    next_id: int
    missing: int

    def __str__(self) -> str:
        return f"after id {self.prev_id} next id {self.next_id}: {self.missing} missing"


@dataclass(slots=True)
class TradeQuality:
    """Warnings found while reading trades; the ticks are returned unchanged."""

    rows: int = 0
    id_gaps: list[IdGap] = field(default_factory=list)
    symbol: str = ""
    first_time: int | None = None
    last_time: int | None = None

    @property
    def missing_trades(self) -> int:
        return sum(g.missing for g in self.id_gaps)

    @property
    def ok(self) -> bool:
        return not self.id_gaps

    def summary(self) -> str:
        """One paragraph for a human: what was read and any skipped trade ids."""
        what = f"{self.rows} trade{'s' if self.rows != 1 else ''}"
        if self.symbol:
            what += f" of {self.symbol}"
        if self.first_time is not None and self.last_time is not None:
            what += f" from {fmt_ms(self.first_time)} to {fmt_ms(self.last_time)}"
        if self.ok:
            return f"{what}: trade ids contiguous, times non-decreasing."
        listed = "; ".join(map(str, self.id_gaps[:10])) + ("; …" if len(self.id_gaps) > 10 else "")
        return (f"{what}: {len(self.id_gaps)} break{'s' if len(self.id_gaps) != 1 else ''} in the trade "
                f"ids ({self.missing_trades} trades missing: {listed}). The trades are kept as they are.")
