"""Streaming technical indicators, O(1) per update, matching TA-Lib's conventions exactly."""

from .base import Indicator
from .moving import EMA, SMA, EMAPair, SMAPair
from .oscillators import MACD, RSI
from .volatility import ATR, BollingerBands, TrueRange

__all__ = ["ATR", "EMA", "MACD", "RSI", "SMA", "BollingerBands", "EMAPair", "Indicator", "SMAPair", "TrueRange"]
