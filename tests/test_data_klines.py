"""The kline reader on the bundled Binance samples, and on broken copies of them made in tmp_path."""

from __future__ import annotations

import hashlib
import itertools
import re
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from csvlines import set_field, write

from shared.data import DataError, DataQuality, Gap, KlineSeries, read_klines
from shared.data._files import US_THRESHOLD
from shared.data.klines import parse_kline_name
from shared.market import Bar
from shared.samples import btcusdt_1h_path, btcusdt_1m_paths, sample_path, trx_trades_path


def ms(text: str) -> int:
    """'2021-02-11 03:00' (UTC) as Unix ms, so expected times read like the data README."""
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def m1() -> KlineSeries:
    return read_klines(btcusdt_1m_paths())


@pytest.fixture(scope="module")
def h1() -> KlineSeries:
    return read_klines(btcusdt_1h_path())


def sample_lines(day: int = 1) -> list[str]:
    """The CSV lines inside one bundled daily 1m zip."""
    with zipfile.ZipFile(btcusdt_1m_paths()[day - 1]) as zf:
        return zf.read(zf.namelist()[0]).decode("ascii").splitlines()


def read_error(*paths: Path, symbol: str | None = None, interval: str | None = None) -> DataError:
    with pytest.raises(DataError) as info:
        read_klines(list(paths), symbol=symbol, interval=interval)
    return info.value


# -- bundled samples -------------------------------------------------------------------------------


def test_samples_are_files_in_time_order() -> None:
    paths = btcusdt_1m_paths()
    assert [p.name for p in paths] == [f"BTCUSDT-1m-2020-01-0{d}.zip" for d in (1, 2, 3)]
    for p in [*paths, btcusdt_1h_path(), trx_trades_path(), sample_path("ATTRIBUTION.md")]:
        assert p.is_file()
    with pytest.raises(FileNotFoundError):
        sample_path("no-such-file.csv")


@pytest.mark.parametrize("path", btcusdt_1m_paths(), ids=lambda p: p.name)
def test_bundled_zip_matches_official_checksum(path: Path) -> None:
    digest, name = path.with_name(path.name + ".CHECKSUM").read_text().split()
    assert name == path.name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_attribution_lists_the_sha256_of_every_bundled_file() -> None:
    text = sample_path("ATTRIBUTION.md").read_text(encoding="utf-8")
    listed = dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", text, re.M))
    files = [*btcusdt_1m_paths(), btcusdt_1h_path(), trx_trades_path()]
    files += [p.with_name(p.name + ".CHECKSUM") for p in btcusdt_1m_paths()]
    assert set(listed) == {p.name for p in files}
    for p in files:
        assert listed[p.name] == hashlib.sha256(p.read_bytes()).hexdigest(), p.name
    assert "CC BY-NC-SA 4.0" in text and "Binance Vision" in text


def test_1m_rows_times_and_values(m1: KlineSeries) -> None:
    bars = m1.bars
    assert (m1.symbol, m1.interval, len(bars), len(m1)) == ("BTCUSDT", "1m", 4320, 4320)
    assert bars[0].open_time == 1577836800000 == ms("2020-01-01 00:00")
    assert bars[-1].open_time == 1578095940000 == ms("2020-01-03 23:59")
    assert bars[0] == Bar("BTCUSDT", "1m", 1577836800000, 1577836859999, 7195.24, 7196.25, 7183.14,
                          7186.68, 51.642812)
    assert all(b.close_time == b.open_time + 59_999 for b in bars)
    assert all(b2.open_time - b1.open_time == 60_000 for b1, b2 in itertools.pairwise(bars))
    assert min(b.close for b in bars) == 6877.0 and max(b.close for b in bars) == 7403.11


def test_1m_first_day_aggregates_to_the_published_daily_candle(m1: KlineSeries) -> None:
    day = m1.bars[:1440]
    assert day[0].open == 7195.24 and day[-1].close == 7200.85
    assert max(b.high for b in day) == 7255.0 and min(b.low for b in day) == 7175.15
    assert round(sum(b.volume for b in day), 6) == 16792.388165


def test_1m_quality_is_clean(m1: KlineSeries) -> None:
    q = m1.quality
    assert q.ok and q.rows == 4320
    assert (q.gaps, q.zero_volume, q.irregular_close_time, q.misaligned) == ([], [], [], [])
    assert q.summary() == ("4320 bars of BTCUSDT 1m from 2020-01-01 00:00 UTC to 2020-01-03 23:59 UTC: "
                           "no gaps, no zero-volume bars, every close_time regular.")


def test_1h_rows_and_times(h1: KlineSeries) -> None:
    assert (h1.symbol, h1.interval, len(h1.bars)) == ("BTCUSDT", "1h", 2158)
    assert h1.bars[0].open_time == 1609459200000 == ms("2021-01-01 00:00")
    assert h1.bars[-1].open_time == 1617231600000 == ms("2021-03-31 23:00")


def test_1h_gaps_and_zero_volume_bar_are_reported_and_kept(h1: KlineSeries) -> None:
    q = h1.quality
    assert not q.ok
    assert q.gaps == [Gap(ms("2021-02-11 03:00"), ms("2021-02-11 05:00"), 1),
                      Gap(ms("2021-03-06 01:00"), ms("2021-03-06 03:00"), 1)]
    assert q.missing_bars == 2 and len(h1.bars) + q.missing_bars == 2160
    assert q.zero_volume == [ms("2021-02-11 03:00")] == [1613012400000]
    assert q.irregular_close_time == [1613012400000]
    # Kept exactly as the exchange wrote it: no interpolation, no dropping.
    times = [b.open_time for b in h1.bars]
    assert ms("2021-02-11 04:00") not in times and ms("2021-03-06 02:00") not in times
    zero = h1.bars[times.index(1613012400000)]
    assert (zero.open, zero.high, zero.low, zero.close, zero.volume) == (44582.07,) * 4 + (0.0,)
    assert zero.close_time == 1613014854773
    text = q.summary()
    for part in ("2158 bars of BTCUSDT 1h", "2 gaps", "after 2021-02-11 03:00 UTC next bar 2021-02-11 05:00 UTC",
                 "after 2021-03-06 01:00 UTC next bar 2021-03-06 03:00 UTC", "1 zero-volume bar (2021-02-11 03:00 UTC)",
                 "irregular close_time (2021-02-11 03:00 UTC)", "nothing is interpolated"):
        assert part in text


# -- formats -----------------------------------------------------------------------------------------


def test_zip_and_extracted_csv_give_identical_bars(tmp_path: Path) -> None:
    zipped = btcusdt_1m_paths()[1]
    with zipfile.ZipFile(zipped) as zf:
        zf.extractall(tmp_path)
    csv_path = tmp_path / "BTCUSDT-1m-2020-01-02.csv"
    assert csv_path.is_file()
    a, b = read_klines(zipped), read_klines(csv_path)
    assert len(a.bars) == 1440 and a.bars == b.bars and a.quality == b.quality


def test_microsecond_times_convert_exactly_to_ms(tmp_path: Path) -> None:
    lines = sample_lines()[:5]
    us_lines = []
    for line in lines:
        cells = line.split(",")
        cells[0] = str(int(cells[0]) * 1000)
        cells[6] = str(int(cells[6]) * 1000 + 999)  # Binance µs close times end in ...999999
        us_lines.append(",".join(cells))
    ms_file = write(tmp_path / "BTCUSDT-1m-2020-01-01.csv", lines)
    (tmp_path / "us").mkdir()
    us_file = write(tmp_path / "us" / "BTCUSDT-1m-2020-01-01.csv", us_lines)
    assert us_lines[0].startswith("1577836800000000,")
    got, want = read_klines(us_file), read_klines(ms_file)
    assert got.bars == want.bars
    assert got.bars[0].open_time == 1577836800000 and got.bars[0].close_time == 1577836859999
    assert got.quality.ok


def test_multiple_files_concatenate_in_given_order(m1: KlineSeries) -> None:
    days = [read_klines(p).bars for p in btcusdt_1m_paths()]
    assert days[0] + days[1] + days[2] == m1.bars


def test_symbol_and_interval_from_arguments_or_inference(tmp_path: Path) -> None:
    plain = write(tmp_path / "klines.csv", sample_lines()[:50])
    with pytest.raises(ValueError, match=r"cannot tell the symbol of klines\.csv"):
        read_klines(plain)
    inferred = read_klines(plain, symbol="BTCUSDT")
    assert inferred.interval == "1m" and inferred.symbol == "BTCUSDT"
    assert inferred.bars == read_klines(btcusdt_1m_paths()[0]).bars[:50]
    assert read_klines(plain, symbol="BTCUSDT", interval="1m").bars == inferred.bars
    # A span matching no interval, and nothing else to go on.
    odd = write(tmp_path / "odd.csv", [set_field(line, 6, str(int(line.split(",")[0]) + 12_345))
                                       for line in sample_lines()[:3]])
    err = read_error(odd, symbol="BTCUSDT")
    assert "odd.csv" in str(err) and "cannot infer the interval" in str(err)
    assert read_klines(odd, symbol="BTCUSDT", interval="1m").quality.irregular_close_time


def test_names_must_agree_with_arguments_and_each_other(tmp_path: Path) -> None:
    assert parse_kline_name("BTCUSDT-1h-2021-Q1.csv") == ("BTCUSDT", "1h")
    assert parse_kline_name("ETHBTC-15m-2024-05.zip") == ("ETHBTC", "15m")
    assert parse_kline_name("klines.csv") == (None, None)
    path = btcusdt_1m_paths()[0]
    with pytest.raises(ValueError, match="interval='1h' contradicts the file name"):
        read_klines(path, interval="1h")
    with pytest.raises(ValueError, match="symbol='ETHUSDT' contradicts"):
        read_klines(path, symbol="ETHUSDT")
    with pytest.raises(ValueError, match="files mix intervals"):
        read_klines([path, btcusdt_1h_path()])
    with pytest.raises(ValueError, match="unsupported interval"):
        read_klines(write(tmp_path / "BTCUSDT-1w-2020.csv", sample_lines()[:2]))
    with pytest.raises(ValueError, match="upper-case"):
        read_klines(write(tmp_path / "k.csv", sample_lines()[:2]), symbol="btc-usdt")


def test_header_row_of_the_futures_layout_is_recognised(tmp_path: Path) -> None:
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume," \
             "taker_buy_quote_volume,ignore"
    path = write(tmp_path / "BTCUSDT-1m-2020-01-01.csv", [header, *sample_lines()[:10]])
    assert read_klines(path).bars == read_klines(btcusdt_1m_paths()[0]).bars[:10]
    # Line numbers in errors still count the header line.
    bad = write(tmp_path / "BTCUSDT-1m-2020-01-02.csv", [header, *sample_lines()[:3], "x"])
    assert "line 5" in str(read_error(bad))


def test_progress_reports_increments_adding_up_to_the_rows(tmp_path: Path) -> None:
    calls: list[int] = []
    read_klines(btcusdt_1m_paths(), progress=calls.append)
    assert calls == [1440, 1440, 1440]
    # A long file reports about every 10,000 rows: the 1m days repeated with shifted times.
    lines = [line for d in (1, 2, 3) for line in sample_lines(d)]
    span = 3 * 86_400_000
    long_lines = []
    for copy in range(6):
        for line in lines:
            cells = line.split(",")
            cells[0] = str(int(cells[0]) + copy * span)
            cells[6] = str(int(cells[6]) + copy * span)
            long_lines.append(",".join(cells))
    calls.clear()
    series = read_klines(write(tmp_path / "BTCUSDT-1m-long.csv", long_lines), progress=calls.append)
    assert len(series.bars) == 25_920 and series.quality.ok
    assert calls == [10_000, 10_000, 5_920]


# -- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line_no", "edit", "expected"),
    [
        (5, lambda s: ",".join(s.split(",")[:11]), "line 5: expected 12 comma-separated columns, found 11"),
        (5, lambda s: s + ",7", "line 5: expected 12 comma-separated columns, found 13"),
        (3, lambda s: set_field(s, 2, "abc"), "line 3, column high: 'abc' is not a number"),
        (3, lambda s: set_field(s, 0, "2020-01-01"), "line 3, column open_time: '2020-01-01' is not an integer"),
        (7, lambda s: set_field(s, 6, ""), "line 7, column close_time: '' is not an integer"),
        (4, lambda s: set_field(s, 4, "nan"), "line 4, column close: 'nan' is not a finite number"),
        (2, lambda s: set_field(s, 3, "0"), "line 2, column low: non-positive price 0.0"),
        (2, lambda s: set_field(s, 1, "-7195.24"), "line 2, column open: non-positive price -7195.24"),
        (6, lambda s: set_field(s, 2, "1.0"), "line 6, column high: high 1.0 is below max(open, close)"),
        (6, lambda s: set_field(s, 3, "99999.0"), "line 6, column low: low 99999.0 is above min(open, close)"),
        (8, lambda s: set_field(s, 5, "-1"), "line 8, column volume: negative volume -1.0"),
        (8, lambda s: set_field(s, 6, "1"), "line 8, column close_time: close_time 1 is before open_time"),
    ],
)
def test_each_bad_row_kind_names_file_line_and_column(tmp_path: Path, line_no: int,
                                                      edit: Callable[[str], str], expected: str) -> None:
    lines = sample_lines()[:10]
    lines[line_no - 1] = edit(lines[line_no - 1])
    path = write(tmp_path / "BTCUSDT-1m-2020-01-01.csv", lines)
    err = read_error(path)
    assert isinstance(err, ValueError)
    assert f"{path} {expected}" in str(err)
    # Only that line is reported (a negative open is also below the low, hence two problems there).
    assert {p.line for p in err.problems} == {line_no} and err.total == len(err.problems)


def test_out_of_order_and_duplicate_open_times(tmp_path: Path) -> None:
    lines = sample_lines()[:10]
    lines[5], lines[6] = lines[6], lines[5]  # lines 6 and 7 swapped
    lines.append(lines[-1])  # line 11 repeats line 10
    err = read_error(write(tmp_path / "BTCUSDT-1m-2020-01-01.csv", lines))
    text = str(err)
    assert err.total == 2
    assert "line 7, column open_time: open_time 1577837100000 (2020-01-01 00:05 UTC) is out of order" in text
    assert "line 11, column open_time: duplicate open_time 1577837340000 (2020-01-01 00:09 UTC)" in text
    assert "before the previous bar's 1577837160000 (2020-01-01 00:06 UTC)" in text


def test_duplicates_across_files_are_errors_naming_both_files(tmp_path: Path) -> None:
    lines = sample_lines()
    first = write(tmp_path / "BTCUSDT-1m-2020-01-01.csv", lines[:10])
    second = write(tmp_path / "BTCUSDT-1m-2020-01-01b.csv", lines[9:15])
    err = read_error(first, second)
    assert err.total == 1
    assert str(err) == (f"invalid market data: {second} line 1, column open_time: duplicate open_time "
                        f"1577837340000 (2020-01-01 00:09 UTC), already read in {first} (bar 10 of that file)")
    # The same day twice: every row of the second copy is a duplicate; ten are listed.
    day1 = btcusdt_1m_paths()[0]
    err = read_error(day1, day1)
    assert err.total == 1440 and len(err.problems) == 10
    assert str(err).startswith("invalid market data: 1440 problems (first 10 listed):")
    p = err.problems[0]
    assert (p.line, p.column) == (1, "open_time") and p.source.startswith(str(day1))
    assert p.message.startswith("duplicate open_time 1577836800000 (2020-01-01 00:00 UTC), already read in "
                                f"{day1}")
    # Days in the wrong order: every row of the later file is out of order.
    err = read_error(btcusdt_1m_paths()[1], day1)
    assert err.total == 1440 and "is out of order: before the previous bar's 1578009540000" in str(err)


def test_many_problems_listed_up_to_ten_with_the_total(tmp_path: Path) -> None:
    lines = [set_field(line, 2, "x") if i % 2 else line for i, line in enumerate(sample_lines())]
    err = read_error(write(tmp_path / "BTCUSDT-1m-2020-01-01.csv", lines))
    assert err.total == 720 and len(err.problems) == 10
    assert [p.line for p in err.problems] == list(range(2, 21, 2))
    assert str(err).count("\n  - ") == 10 and "720 problems (first 10 listed)" in str(err)


def test_microsecond_open_time_must_be_a_whole_millisecond(tmp_path: Path) -> None:
    line = sample_lines()[0]
    bad = set_field(line, 0, str(int(line.split(",")[0]) * 1000 + 5))
    err = read_error(write(tmp_path / "BTCUSDT-1m-2020-01-01.csv", [bad]))
    assert "column open_time: microsecond open_time 1577836800000005 is not a whole millisecond" in str(err)


def test_unreadable_files_are_data_errors(tmp_path: Path) -> None:
    empty = tmp_path / "BTCUSDT-1m-2020-01-01.csv"
    empty.write_text("")
    assert "file is empty" in str(read_error(empty))
    not_zip = tmp_path / "BTCUSDT-1m-2020-01-02.zip"
    not_zip.write_bytes(b"not a zip")
    assert "not a readable zip archive" in str(read_error(not_zip))
    two = tmp_path / "BTCUSDT-1m-2020-01-03.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("a.csv", "1,2")
        zf.writestr("b.csv", "1,2")
    assert "expected one CSV in the zip, found 2" in str(read_error(two))
    assert "cannot read file" in str(read_error(tmp_path / "BTCUSDT-1m-2020-01-04.csv"))


def test_data_quality_summary_of_an_empty_report() -> None:
    assert DataQuality().summary() == "0 bars: no gaps, no zero-volume bars, every close_time regular."


# -- the column-wise fast path -------------------------------------------------------------------------
#
# `_parse` (Arrow's CSV parser) and `_columns` convert and check a block of rows at once and hand
# any block they refuse to `_rows`, the per-row loop. Forcing every block through `_rows` is the
# reference: the results (bars, warnings, errors and their wording) must not depend on which path a
# block took, nor on where the file is cut into pieces and blocks.


def three_days() -> list[str]:
    return [line for d in (1, 2, 3) for line in sample_lines(d)]


def shift_times(line: str, by: int) -> str:
    cells = line.split(",")
    cells[0] = str(int(cells[0]) + by)
    cells[6] = str(int(cells[6]) + by)
    return ",".join(cells)


def to_us(line: str) -> str:
    cells = line.split(",")
    cells[0] = str(int(cells[0]) * 1000)
    cells[6] = str(int(cells[6]) * 1000 + 999)
    return ",".join(cells)


def outcome(paths: list[Path], **kwargs: object) -> tuple[object, ...]:
    """Everything read_klines hands back, or the error it raises, in comparable form."""
    calls: list[int] = []
    try:
        series = read_klines(paths, progress=calls.append, **kwargs)  # type: ignore[arg-type]
    except DataError as err:
        return ("error", str(err), err.total, calls)
    return ("ok", [(b.symbol, b.interval, b.open_time, b.close_time, repr(b.open), repr(b.high), repr(b.low),
                    repr(b.close), repr(b.volume)) for b in series.bars], series.quality, calls)


def edit_lines(lines: list[str], edits: dict[int, Callable[[str], str]]) -> list[str]:
    return [edits[i](line) if i in edits else line for i, line in enumerate(lines)]


def gaps_and_misaligned(lines: list[str]) -> list[str]:
    kept = [line for i, line in enumerate(lines) if i not in (5, 900, 901, 3000)]
    return kept[:2000] + [shift_times(kept[2000], 7)] + [shift_times(line, 120_000) for line in kept[2001:]]


EDITS: dict[str, Callable[[list[str]], list[str]]] = {
    "clean": lambda ls: ls,
    "gaps and a misaligned bar": lambda ls: gaps_and_misaligned(ls),
    "zero and negative-zero volume": lambda ls: edit_lines(ls, {10: lambda s: set_field(s, 5, "0.00000000"),
                                                               2500: lambda s: set_field(s, 5, "-0.0")}),
    "irregular close times": lambda ls: edit_lines(ls, {7: lambda s: set_field(s, 6, str(int(s.split(",")[0]) + 5)),
                                                       4000: lambda s: set_field(s, 6, s.split(",")[0])}),
    "microseconds": lambda ls: [to_us(line) for line in ls],
    "microsecond close times only": lambda ls: [set_field(line, 6, str(int(line.split(",")[6]) * 1000 + 999))
                                                for line in ls],
    "ms and µs mixed": lambda ls: [to_us(line) if i % 3 == 0 else line for i, line in enumerate(ls)],
    "µs open_time not a whole ms": lambda ls: edit_lines(
        [to_us(line) for line in ls], {1234: lambda s: set_field(s, 0, str(int(s.split(",")[0]) + 1))}),
    "nanoseconds": lambda ls: edit_lines(ls, {99: lambda s: set_field(s, 0, s.split(",")[0] + "000000")}),
    "odd but valid numbers": lambda ls: edit_lines(ls, {
        3: lambda s: set_field(s, 1, " 7195.24 "), 4: lambda s: set_field(s, 2, "7.25e3"),
        5: lambda s: set_field(s, 5, "5_1.5"), 6: lambda s: set_field(s, 0, "+" + s.split(",")[0]),
        7: lambda s: set_field(s, 4, "7186")}),
    "bad values": lambda ls: edit_lines(ls, {
        1: lambda s: set_field(s, 2, "abc"), 1500: lambda s: set_field(s, 4, "nan"),
        1501: lambda s: set_field(s, 5, "inf"), 1502: lambda s: set_field(s, 2, "inf"),
        1503: lambda s: set_field(s, 3, "-inf"), 2999: lambda s: set_field(s, 3, "0"),
        3001: lambda s: set_field(s, 5, "-1e-9"), 4100: lambda s: set_field(s, 6, "1")}),
    "column counts": lambda ls: edit_lines(ls, {2: lambda s: s + ",x", 2600: lambda s: s.rsplit(",", 1)[0],
                                               2601: lambda s: "", 4319: lambda s: s[:40]}),
    "unparsed columns are not checked": lambda ls: edit_lines(ls, {8: lambda s: set_field(s, 7, "not a number"),
                                                                  9: lambda s: set_field(s, 11, '"x"')}),
    "columns moved between lines": lambda ls: edit_lines(ls, {2000: lambda s: s.rsplit(",", 1)[0],
                                                             2001: lambda s: "0," + s}),
    "infinite high alone": lambda ls: edit_lines(ls, {2222: lambda s: set_field(s, 2, "inf")}),
    "infinite volume alone": lambda ls: edit_lines(ls, {2222: lambda s: set_field(s, 5, "inf")}),
    "nan volume alone": lambda ls: edit_lines(ls, {2222: lambda s: set_field(s, 5, "nan")}),
    "nan low alone": lambda ls: edit_lines(ls, {2222: lambda s: set_field(s, 3, "nan")}),
    "zero low alone": lambda ls: edit_lines(ls, {2222: lambda s: set_field(s, 3, "0")}),
    "negative volume alone": lambda ls: edit_lines(ls, {2222: lambda s: set_field(s, 5, "-0.5")}),
    "close before open alone": lambda ls: edit_lines(
        ls, {2222: lambda s: set_field(s, 6, str(int(s.split(",")[0]) - 1))}),
    "high below close alone": lambda ls: edit_lines(ls, {2222: lambda s: set_field(s, 2, s.split(",")[3])}),
    "close above high alone": lambda ls: edit_lines(ls, {2222: lambda s: set_field(s, 4, s.split(",")[2] + "1")}),
    "close below low alone": lambda ls: edit_lines(ls, {2222: lambda s: set_field(s, 4, "1.0")}),
    "ns close_time in a µs file": lambda ls: edit_lines([to_us(line) for line in ls],
                                                        {2222: lambda s: set_field(s, 6, s.split(",")[6] + "000")}),
    "ns open_time in a µs file": lambda ls: edit_lines([to_us(line) for line in ls],
                                                       {2222: lambda s: set_field(s, 0, s.split(",")[0] + "000")}),
    "first open_time in ms, the rest in µs": lambda ls: [set_field(to_us(ls[0]), 0, ls[0].split(",")[0])]
    + [to_us(line) for line in ls[1:]],
    "last close_time crossing into µs": lambda ls: [shift_times(line, US_THRESHOLD - int(ls[0].split(",")[0])
                                                                - 2_000 * 60_000 - 30_000) for line in ls[:2001]],
    "negative open_time alone": lambda ls: edit_lines(ls, {0: lambda s: set_field(s, 0, "-60000")}),
    "out of order and duplicates": lambda ls: ls[:100] + ls[101:102] + ls[100:101] + ls[102:2000] + ls[1990:],
    "huge volume total": lambda ls: edit_lines(ls, {50: lambda s: set_field(s, 5, "1e308"),
                                                   51: lambda s: set_field(s, 5, "1e308")}),
}


@pytest.fixture(scope="module")
def days() -> list[str]:
    return three_days()


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
@pytest.mark.parametrize("piece_bytes", [1 << 18, 9_999], ids=["default pieces", "small pieces"])
def test_column_path_matches_the_row_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, days: list[str],
                                          edit: str, piece_bytes: int) -> None:
    from shared.data import _files, klines

    monkeypatch.setattr(_files, "PIECE_BYTES", piece_bytes)
    path = write(tmp_path / "BTCUSDT-1m-2020-01-01.csv", EDITS[edit](days))
    fast: list[bool] = []  # per block: True when Arrow and the column checks took it whole
    rows, columns = klines._rows, klines._columns

    def spy_columns(*args: object) -> int | None:
        last = columns(*args)  # type: ignore[arg-type]
        fast.append(last is not None)
        return last

    def spy_rows(*args: object) -> int:
        fast.append(False)
        return rows(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(klines, "_columns", spy_columns)
    monkeypatch.setattr(klines, "_rows", spy_rows)
    got = outcome([path])
    if edit in ("clean", "gaps and a misaligned bar", "zero and negative-zero volume", "irregular close times",
                "microseconds", "microsecond close times only", "unparsed columns are not checked",
                "huge volume total"):
        assert all(fast) and len(fast) > (10 if piece_bytes < 10_000 else 1)
    else:
        assert not all(fast)
    monkeypatch.setattr(klines, "_parse", lambda *args: None)  # every block through the row path
    assert got == outcome([path])


@pytest.mark.parametrize("layout", ["crlf", "mixed endings", "no final newline", "bom", "header", "blank lines"])
def test_line_endings_and_layout_match_the_row_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   days: list[str], layout: str) -> None:
    from shared.data import _files, klines

    monkeypatch.setattr(_files, "PIECE_BYTES", 7_777)  # CRLF pairs and lines cut across pieces
    lines = days[:3000]
    text = {
        "crlf": "\r\n".join(lines) + "\r\n",
        "mixed endings": "\n".join(lines[:1000]) + "\r\n" + "\r\n".join(lines[1000:]) + "\r\r\n",
        "no final newline": "\r\n".join(lines),
        "bom": "\ufeff" + "\n".join(lines) + "\n",
        "header": "open_time,open,high,low,close,volume,close_time,a,b,c,d,e\r\n" + "\r\n".join(lines) + "\r\n",
        "blank lines": "\n".join(lines[:1500]) + "\n\r\n\n" + "\n".join(lines[1500:]) + "\n\n",
    }[layout]
    path = tmp_path / "BTCUSDT-1m-2020-01-01.csv"
    path.write_bytes(text.encode("utf-8"))
    got = outcome([path])
    if layout not in ("blank lines", "mixed endings"):
        assert got[0] == "ok" and len(got[1]) == 3000  # type: ignore[arg-type]
    monkeypatch.setattr(klines, "_columns", lambda *args: None)
    assert got == outcome([path])


def test_several_files_and_interval_inference_match_the_row_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                days: list[str]) -> None:
    from shared.data import _files, klines

    monkeypatch.setattr(_files, "PIECE_BYTES", 5_000)
    a = write(tmp_path / "a.csv", days[:1000])
    b = write(tmp_path / "b.csv", days[1002:2000])  # a gap between the files
    c = write(tmp_path / "c.csv", days[1990:2500])  # overlaps b: duplicates naming b
    clean = outcome([a, b], symbol="BTCUSDT")
    broken = outcome([a, b, c], symbol="BTCUSDT")
    monkeypatch.setattr(klines, "_columns", lambda *args: None)
    assert clean == outcome([a, b], symbol="BTCUSDT")
    assert broken == outcome([a, b, c], symbol="BTCUSDT")
    assert clean[0] == "ok" and clean[2] == DataQuality(
        rows=1998, gaps=[Gap(ms("2020-01-01 16:39"), ms("2020-01-01 16:42"), 2)], symbol="BTCUSDT", interval="1m",
        first_open_time=ms("2020-01-01 00:00"), last_open_time=ms("2020-01-02 09:19"))
    assert broken[0] == "error" and broken[2] == 10 and f"already read in {b}" in str(broken[1])


def test_progress_counts_rows_whatever_the_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 days: list[str]) -> None:
    from shared.data import _files

    lines = [shift_times(line, copy * 3 * 86_400_000) for copy in range(3) for line in days]
    path = write(tmp_path / "BTCUSDT-1m-long.csv", ["open_time,open", *lines][:1] + lines)
    for piece_bytes in (1 << 18, 3_333, 1 << 24):
        monkeypatch.setattr(_files, "PIECE_BYTES", piece_bytes)
        calls: list[int] = []
        assert len(read_klines(path, progress=calls.append).bars) == 12_960
        assert calls == [10_000, 2_960]


def test_unreadable_bytes_found_while_streaming_are_data_errors(tmp_path: Path, days: list[str]) -> None:
    body = ("\n".join(days) + "\n").encode("ascii")
    bad = tmp_path / "BTCUSDT-1m-2020-01-01.csv"
    bad.write_bytes(body[:500_000] + b"\xff" + body[500_000:])  # well after the first piece
    assert "not UTF-8 text (byte 500000)" in str(read_error(bad))
    bom = tmp_path / "BTCUSDT-1m-2020-01-02.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + body[:400_000] + b"\xc3" + body[400_000:])
    assert "not UTF-8 text (byte 400000)" in str(read_error(bom))  # counted after the BOM, as before
    cut = tmp_path / "BTCUSDT-1m-2020-01-05.csv"
    cut.write_bytes(body + b"\xe2\x82")  # ends inside a character
    assert f"not UTF-8 text (byte {len(body)})" in str(read_error(cut))
    # A zip whose member fails its CRC check, which is only known once the member is read.
    good = tmp_path / "BTCUSDT-1m-2020-01-03.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("BTCUSDT-1m-2020-01-03.csv", body)
    raw = good.read_bytes()
    at = raw.index(b"7195.24")
    corrupt = tmp_path / "BTCUSDT-1m-2020-01-04.zip"
    corrupt.write_bytes(raw[:at] + b"7195.25" + raw[at + 7:])
    assert "not a readable zip archive (Bad CRC-32" in str(read_error(corrupt))


def test_read_lines_splits_crlf_exactly_as_before(tmp_path: Path) -> None:
    from shared.data._files import read_lines

    for text in ("a\r\nb\r\n", "a\r\nb", "a\nb\r\nc\r\r\nd\re\n", "\r\n", "a\r\n\r\n", "x\r", "a\n\r\nb"):
        path = tmp_path / "t.csv"
        path.write_bytes(text.encode())
        expected = text.replace("\r\n", "\n").split("\n")
        if expected[-1] == "":
            expected.pop()
        assert read_lines(path) == (str(path), expected), repr(text)




def test_a_replay_process_imports_neither_pandas_nor_the_services(tmp_path: Path) -> None:
    """`marketflow replay` of a CSV (Arrow's block reader) writes its report without importing
    pandas: pyarrow's `to_numpy` and `pa.array` would, about 0.4 s of every process. Nor does
    building the parser load the emulator's server, the batch adapters or an Azure SDK (the
    `emulator` and `ingest` commands read their option defaults from light modules)."""
    import subprocess
    import sys

    from shared.samples import btcusdt_1m_paths

    src = tmp_path / "BTCUSDT-1m.csv"
    with zipfile.ZipFile(btcusdt_1m_paths()[0]) as zf:
        src.write_bytes(zf.read(zf.namelist()[0]))
    argv = ["replay", "--source", str(src), "--symbol", "BTCUSDT", "--strategy", "sma_cross",
            "--out", str(tmp_path / "out")]
    code = (f"import sys\nfrom shared.cli import main\nrc = main({argv!r})\n"
            "assert rc == 0, rc\nprint(sorted(m for m in sys.modules if m in {'pandas', 'emulator.server', "
            "'shared.adapters.deadletter', 'shared.adapters.processing'} or m.startswith('azure.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
    assert (tmp_path / "out" / "equity.csv").is_file()
