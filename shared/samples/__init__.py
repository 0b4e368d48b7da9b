"""Real Binance sample data shipped inside the package (CC BY-NC-SA 4.0, see ATTRIBUTION.md).

Test and demo fixtures only: found through importlib.resources so they work from an installed
package as well as from a checkout. Not for live trading decisions.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

BTCUSDT_1M_FILES = ("BTCUSDT-1m-2020-01-01.zip", "BTCUSDT-1m-2020-01-02.zip", "BTCUSDT-1m-2020-01-03.zip")
BTCUSDT_1H_FILE = "BTCUSDT-1h-2021-Q1.csv"
TRX_TRADES_FILE = "TRXUSDT-trade-stream-2025-03-04.csv"


def sample_path(name: str) -> Path:
    """Filesystem path of a bundled file (the package must be installed unzipped, as pip does)."""
    res = files(__name__) / name
    if not isinstance(res, Path):
        raise RuntimeError(f"shared.samples is not on the filesystem ({res!r}); install it unzipped")
    if not res.is_file():
        raise FileNotFoundError(f"bundled sample {name} is missing from {res.parent}")
    return res


def btcusdt_1m_paths() -> list[Path]:
    """BTCUSDT 1m spot klines, 2020-01-01..03, three daily zips in time order (4320 bars)."""
    return [sample_path(n) for n in BTCUSDT_1M_FILES]


def btcusdt_1h_path() -> Path:
    """BTCUSDT 1h spot klines, 2021-Q1 (2158 bars: two maintenance gaps, one zero-volume bar)."""
    return sample_path(BTCUSDT_1H_FILE)


def trx_trades_path() -> Path:
    """TRXUSDT trades captured from the websocket trade stream, 2025-03-04 00:00-00:48 (10,000)."""
    return sample_path(TRX_TRADES_FILE)
