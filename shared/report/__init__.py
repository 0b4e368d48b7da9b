"""Replay reports: backtesting.py-compatible summary figures and the report folder writer."""

from .metrics import SUMMARY_KEYS, summarize
from .writer import write_report

__all__ = ["SUMMARY_KEYS", "summarize", "write_report"]
