"""Shared fixtures (the bundled samples, read once per session, never ../shared) and the suite's Hypothesis profile."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from shared.data import read_klines
from shared.market import Bar
from shared.samples import btcusdt_1h_path, btcusdt_1m_paths

# The suite runs on shared, loaded machines: a property test is judged on its examples, never on a
# wall-clock deadline or a too-slow health check, and a failure prints the blob that replays it.
settings.register_profile("marketflow", deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("marketflow")


@pytest.fixture(scope="session")
def bars_1m() -> list[Bar]:
    """BTCUSDT 1m, 2020-01-01..03: 4320 bars, no gaps."""
    return read_klines(btcusdt_1m_paths()).bars


@pytest.fixture(scope="session")
def bars_1h() -> list[Bar]:
    """BTCUSDT 1h, 2021-Q1: 2158 bars with two gaps and a zero-volume bar."""
    return read_klines([btcusdt_1h_path()]).bars
