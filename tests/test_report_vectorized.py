"""The vectorized report pieces give what their per-element definitions give."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from shared.report import writer
from shared.report.metrics import drawdown_pct, max_drawdown_pct
from shared.report.svg import pixel_envelope
from shared.report.writer import iso_utc, iso_utc_array


@given(st.lists(st.integers(0, 4_102_444_799_999), min_size=1, max_size=200))
def test_iso_utc_array_is_iso_utc(times: list[int]) -> None:
    assert iso_utc_array(np.array(times, dtype=np.int64)) == [iso_utc(t) for t in times]


@given(st.lists(st.integers(-86_400_000 * 3, 4_102_444_799_999) | st.sampled_from([0, 59_999, 60_000, 61_000]),
                max_size=200))
def test_human_utc_array_is_human_utc(times: list[int]) -> None:
    assert writer.human_utc_array(np.array(times, dtype=np.int64)) == [writer._human_utc(t) for t in times]


def test_equity_csv_is_iso_time_and_repr_per_bar(tmp_path: Path) -> None:
    """Arrow builds and writes equity.csv: the same bytes as the per-row definition, on times with
    and without milliseconds and equity runs, whole numbers, tiny, huge and negative values."""
    rng = np.random.default_rng(7)
    times = np.sort(rng.integers(0, 4_102_444_799_999, 5_000))
    whole_minutes = rng.random(5_000) < 0.5
    times[whole_minutes] = times[whole_minutes] // 60_000 * 60_000
    equity = np.repeat(rng.normal(10_000, 3_000, 1_000), 5)
    equity[::7] = np.round(equity[::7])
    equity[:4] = [10_000.0, 1e-5, -2.5e12, 0.1]
    result = SimpleNamespace(equity=equity.tolist(), bars=None)
    writer._write_equity(result, tmp_path / "equity.csv", times)  # type: ignore[arg-type]
    rows = zip(times.tolist(), equity.tolist(), strict=True)
    expected = "time,equity\n" + "".join(f"{iso_utc(t)},{e!r}\n" for t, e in rows)
    assert (tmp_path / "equity.csv").read_bytes() == expected.encode()


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=3, max_size=4000), st.integers(2, 300))
def test_pixel_envelope_keeps_every_columns_min_and_max(ys: list[float], columns: int) -> None:
    xs = np.arange(len(ys), dtype=np.float64)
    y = np.array(ys)
    x0, x1 = 0.0, float(len(ys) - 1)
    kx, ky = pixel_envelope(xs, y, x0, x1, columns)
    assert kx[0] == 0 and kx[-1] == len(ys) - 1 and (np.diff(kx) > 0).all()
    assert (y[kx.astype(int)] == ky).all()
    if len(ys) <= 2 * columns:
        return
    assert len(kx) <= 2 * (columns + 1) + 2
    col = ((xs - x0) * (columns / (x1 - x0))).astype(int)
    kept = set(kx.astype(int).tolist())
    for c in np.unique(col):
        idx = np.flatnonzero(col == c)
        assert y[idx].min() in y[[i for i in idx if i in kept]]
        assert y[idx].max() in y[[i for i in idx if i in kept]]


@given(st.lists(st.floats(1e-3, 1e9, allow_nan=False), min_size=1, max_size=500))
def test_drawdown_is_the_running_peak_definition(equity: list[float]) -> None:
    peak, expected = float("-inf"), []
    for e in equity:
        peak = max(peak, e)
        expected.append(-(1 - e / peak) * 100)
    assert drawdown_pct(equity).tolist() == expected
    assert max_drawdown_pct(equity) == min([*expected, -0.0])


@given(st.lists(st.floats(allow_nan=False) | st.sampled_from([0.0, -0.0, 1.5]), max_size=300))
def test_repr_float_array_is_repr(values: list[float]) -> None:
    from shared.report.writer import repr_float_array

    assert repr_float_array(values).to_pylist() == [repr(v) for v in values]


def test_repr_float_array_is_repr_on_850_000_values_of_every_magnitude() -> None:
    """Arrow formats the distinct values where its notation is repr's: held against `repr` on
    random doubles from 1e-8 to 1e18 (both signs), the same rounded to cents and to 8 places (an
    equity curve's values), around the 1e-4 and 1e10 switch points, and every bit pattern class
    (subnormals, whole numbers, inf, nan)."""
    from shared.report.writer import repr_float_array

    rng = np.random.default_rng(20261203)
    x = 10 ** rng.uniform(-8, 18, 250_000) * np.where(rng.random(250_000) < 0.5, -1.0, 1.0)
    switch = np.array([1e-4, -1e-4, 1e10, -1e10])
    edges = np.concatenate([switch, np.nextafter(switch, 0), np.nextafter(switch, 2 * switch)])
    special = np.array([0.0, -0.0, 5.0, -3.0, 1e15, 1e16, 2.0 ** 53, 5e-324, 2.2250738585072014e-308,
                        float("inf"), float("-inf"), float("nan"), 0.1, 1 / 3, 9_999_999_999.99])
    raw = rng.integers(0, 2 ** 63, 100_000, dtype=np.int64).view(np.float64)  # any bit pattern
    values = np.concatenate([x, np.round(x, 2), np.round(x, 8), edges, special, raw]).tolist()
    assert len(values) == 850_027
    assert repr_float_array(values).to_pylist() == [repr(v) for v in values]
