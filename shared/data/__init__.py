"""Market-data readers: Binance kline and trade files into validated `Bar`s and `Tick`s.

Errors (rows that cannot be trusted) raise `DataError` naming file, line and column; warnings
(gaps, zero-volume bars, skipped trade ids) are reported in the returned quality object and the
data is kept exactly as it was.
"""

from .klines import KlineSeries, parse_kline_name, read_klines
from .quality import DataError, DataQuality, Gap, IdGap, Problem, TradeQuality
from .trades import TickList, read_trades

__all__ = ["DataError", "DataQuality", "Gap", "IdGap", "KlineSeries", "Problem", "TickList", "TradeQuality",
           "parse_kline_name", "read_klines", "read_trades"]
