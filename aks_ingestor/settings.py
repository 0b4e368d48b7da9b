"""The ingestor's settings: one dataclass filled from `marketflow ingest` options or the environment.

`python -m aks_ingestor` reads the same settings as the CLI options, from these variables:

| variable | option | default |
|---|---|---|
| INGEST_SYMBOLS | --symbols | (required) |
| INGEST_INTERVALS | --interval | 1m |
| INGEST_TRADES | --trades | false |
| INGEST_BOOK_TICKER | --book-ticker | false |
| INGEST_SINK | --sink | eventhub |
| INGEST_STREAM_URL | --stream-url | wss://stream.binance.com:9443 |
| INGEST_REST_URL | --rest-url | https://api.binance.com |
| INGEST_STALE_TIMEOUT | --stale-timeout | 30 (seconds) |
| INGEST_DEADLETTER | --deadletter | blob with an eventhub sink, dir:<sink>/deadletter with a dir sink |
| INGEST_BATCH_WINDOW_MS | --batch-window-ms | 50 |
| INGEST_MAX_BATCH | --max-batch | 500 |
| INGEST_MAX_PENDING | --max-pending | 20000 |
| INGEST_HTTP_PORT | --http-port | MARKETFLOW_HTTP_PORT (the image: 8000) or 8000 for the service, off for the CLI |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.adapters.binance.streams import DEFAULT_REST_URL, DEFAULT_STREAM_URL, StreamKey, stream_keys

DEFAULT_STALE_TIMEOUT_S = 30.0
MAX_STALE_TIMEOUT_S = 60.0
# Events wait at most this long for more to share their Event Hubs batch. 50 ms keeps a closed bar
# well under a second from Binance to the hub while a busy trade stream still fills batches.
DEFAULT_BATCH_WINDOW_MS = 50.0
DEFAULT_MAX_BATCH = 500
DEFAULT_MAX_PENDING = 20_000


class SettingsError(ValueError):
    """A setting that cannot be used (one clear line for the CLI and the service log)."""


@dataclass(frozen=True, slots=True)
class Target:
    """`eventhub`, `blob` or `dir:PATH`."""

    kind: str
    path: Path | None = None

    @classmethod
    def parse(cls, text: str, what: str, allowed: tuple[str, ...]) -> Target:
        text = text.strip()
        if text.startswith("dir:"):
            if not text[4:]:
                raise SettingsError(f"{what}: dir: needs a folder, e.g. dir:./data")
            return cls("dir", Path(text[4:]))
        if text in allowed:
            return cls(text)
        raise SettingsError(f"{what}: expected {' or '.join((*allowed, 'dir:PATH'))}, got {text!r}")


@dataclass(frozen=True, slots=True)
class IngestSettings:
    symbols: tuple[str, ...]
    intervals: tuple[str, ...] = ("1m",)
    trades: bool = False
    book_ticker: bool = False
    sink: Target = field(default_factory=lambda: Target("eventhub"))
    stream_url: str = DEFAULT_STREAM_URL
    rest_url: str | None = DEFAULT_REST_URL
    stale_timeout: float = DEFAULT_STALE_TIMEOUT_S
    deadletter: Target | None = None
    batch_window_ms: float = DEFAULT_BATCH_WINDOW_MS
    max_batch: int = DEFAULT_MAX_BATCH
    max_pending: int = DEFAULT_MAX_PENDING
    http_port: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.stale_timeout <= MAX_STALE_TIMEOUT_S:
            raise SettingsError(f"stale timeout must be in (0, {MAX_STALE_TIMEOUT_S:g}] seconds, "
                                f"got {self.stale_timeout:g}")
        if self.batch_window_ms < 0:
            raise SettingsError("batch window must be >= 0 ms")
        if self.max_batch < 1 or self.max_pending < self.max_batch:
            raise SettingsError("need 1 <= max batch <= max pending")
        for url, what in ((self.stream_url, "stream url"), (self.rest_url, "rest url")):
            if url is not None and "://" not in url:
                raise SettingsError(f"{what} {url!r} is not a URL")
        try:
            self.stream_keys()
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    def stream_keys(self) -> list[StreamKey]:
        return stream_keys(self.symbols, self.intervals, trades=self.trades, book_ticker=self.book_ticker)

    def deadletter_target(self) -> Target:
        if self.deadletter is not None:
            return self.deadletter
        if self.sink.kind == "dir":
            assert self.sink.path is not None
            return Target("dir", self.sink.path / "deadletter")
        return Target("blob")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestSettings:
        def flag(name: str) -> bool:
            return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")

        def number(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            try:
                return float(raw) if raw else default
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not a number") from None

        symbols = split_list(env.get("INGEST_SYMBOLS", ""))
        if not symbols:
            raise SettingsError("INGEST_SYMBOLS is not set (e.g. BTCUSDT,ETHUSDT)")
        port = env.get("INGEST_HTTP_PORT", env.get("MARKETFLOW_HTTP_PORT", "8000")).strip()
        dl = env.get("INGEST_DEADLETTER", "").strip()
        return cls(symbols=symbols, intervals=split_list(env.get("INGEST_INTERVALS", "1m")),
                   trades=flag("INGEST_TRADES"), book_ticker=flag("INGEST_BOOK_TICKER"),
                   sink=Target.parse(env.get("INGEST_SINK", "eventhub"), "INGEST_SINK", ("eventhub",)),
                   stream_url=env.get("INGEST_STREAM_URL", DEFAULT_STREAM_URL),
                   rest_url=env.get("INGEST_REST_URL", DEFAULT_REST_URL) or None,
                   stale_timeout=number("INGEST_STALE_TIMEOUT", DEFAULT_STALE_TIMEOUT_S),
                   deadletter=Target.parse(dl, "INGEST_DEADLETTER", ("blob",)) if dl else None,
                   batch_window_ms=number("INGEST_BATCH_WINDOW_MS", DEFAULT_BATCH_WINDOW_MS),
                   max_batch=int(number("INGEST_MAX_BATCH", DEFAULT_MAX_BATCH)),
                   max_pending=int(number("INGEST_MAX_PENDING", DEFAULT_MAX_PENDING)),
                   http_port=int(port) if port and port != "off" else None)


def split_list(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())
