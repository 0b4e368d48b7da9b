"""The trade reader on the bundled TRXUSDT websocket capture, and on archive-layout copies of it."""

from __future__ import annotations

import itertools
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from csvlines import set_field, write

from shared.data import DataError, IdGap, TickList, TradeQuality, read_trades
from shared.events import Trade
from shared.market import Tick
from shared.samples import trx_trades_path

FIRST_ID = 348656870
LAST_ID = 348666869


@pytest.fixture(scope="module")
def trx() -> TickList:
    return read_trades(trx_trades_path())


def capture_lines() -> list[str]:
    """The bundled capture, header first."""
    return trx_trades_path().read_text(encoding="ascii").splitlines()


def archive_lines(ticks: list[Tick], micro: bool = False) -> list[str]:
    """The same trades in the data.binance.vision archive layout (headerless, 7 columns)."""
    out = []
    for t in ticks:
        time = t.time * 1000 + 123 if micro else t.time
        out.append(f"{t.trade_id},{t.price!r},{t.qty!r},{t.price * t.qty!r},{time},{t.is_buyer_maker},True")
    return out


def read_error(*paths: Path, symbol: str | None = None) -> DataError:
    with pytest.raises(DataError) as info:
        read_trades(list(paths), symbol=symbol)
    return info.value


def test_capture_rows_ids_and_times(trx: TickList) -> None:
    assert isinstance(trx, list) and len(trx) == 10_000 and trx.symbol == "TRXUSDT"
    assert trx[0] == Tick("TRXUSDT", FIRST_ID, 0.2312, 2619.4, 1741046401271, True)
    assert trx[1] == Tick("TRXUSDT", FIRST_ID + 1, 0.2313, 83.9, 1741046401321, False)
    assert trx[-1] == Tick("TRXUSDT", LAST_ID, 0.2327, 18104.8, 1741049279150, True)
    assert [t.trade_id for t in trx] == list(range(FIRST_ID, LAST_ID + 1))
    assert all(a.time <= b.time for a, b in itertools.pairwise(trx))
    assert {t.is_buyer_maker for t in trx} == {True, False}


def test_capture_times_are_transaction_time_floored_to_ms(trx: TickList) -> None:
    rows = [line.split(",") for line in capture_lines()[1:]]
    assert [int(r[4]) // 1000 for r in rows] == [t.time for t in trx]
    assert rows[0][4] == "1741046401271497"  # TransactionTime, not EventTime or receive time


def test_capture_quality_is_clean(trx: TickList) -> None:
    q = trx.quality
    assert q.ok and q.rows == 10_000 and q.id_gaps == [] and q.missing_trades == 0
    assert q.summary() == ("10000 trades of TRXUSDT from 2025-03-04 00:00:01.271 UTC to 2025-03-04 "
                           "00:47:59.150 UTC: trade ids contiguous, times non-decreasing.")


@pytest.mark.parametrize("micro", [False, True], ids=["ms", "us"])
def test_archive_layout_csv_and_zip_match_the_capture(tmp_path: Path, trx: TickList, micro: bool) -> None:
    lines = archive_lines(trx[:500], micro=micro)
    csv_path = write(tmp_path / "TRXUSDT-trades-2025-03-04.csv", lines)
    zip_path = tmp_path / "TRXUSDT-trades-2025-03-04.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(csv_path, csv_path.name)
    for path in (csv_path, zip_path):
        got = read_trades(path)
        assert got == trx[:500] and got.symbol == "TRXUSDT" and got.quality.ok


def test_files_concatenate_and_symbol_comes_from_name_column_or_argument(tmp_path: Path, trx: TickList) -> None:
    a = write(tmp_path / "TRXUSDT-trades-a.csv", archive_lines(trx[:100]))
    b = write(tmp_path / "TRXUSDT-trades-b.csv", archive_lines(trx[100:250]))
    assert read_trades([a, b]) == trx[:250]
    anonymous = write(tmp_path / "trades.csv", archive_lines(trx[:10]))
    with pytest.raises(ValueError, match="cannot tell the symbol"):
        read_trades(anonymous)
    assert read_trades(anonymous, symbol="TRXUSDT") == trx[:10]
    assert "the file name says TRXUSDT" in str(read_error(a, symbol="BTCUSDT"))
    capture = write(tmp_path / "capture.csv", capture_lines()[:20])
    assert read_trades(capture) == trx[:19]
    assert "the Symbol column says TRXUSDT" in str(read_error(capture, symbol="BTCUSDT"))
    with pytest.raises(ValueError, match="upper-case"):
        read_trades(a, symbol="trx")


def test_skipped_trade_ids_are_warnings(tmp_path: Path) -> None:
    lines = capture_lines()[:101]
    del lines[50:53]  # the trades on lines 51..53, ids FIRST_ID+49 .. +51
    ticks = read_trades(write(tmp_path / "TRXUSDT-trade-stream.csv", lines))
    assert len(ticks) == 97
    q = ticks.quality
    assert not q.ok and q.id_gaps == [IdGap(FIRST_ID + 48, FIRST_ID + 52, 3)] and q.missing_trades == 3
    assert f"1 break in the trade ids (3 trades missing: after id {FIRST_ID + 48} next id {FIRST_ID + 52}" \
        in q.summary()


def test_progress_reports_increments(trx: TickList) -> None:
    calls: list[int] = []
    read_trades(trx_trades_path(), progress=calls.append)
    assert calls == [10_000]


@pytest.mark.parametrize(
    ("line_no", "edit", "expected"),
    [
        (4, lambda s: ",".join(s.split(",")[:10]), "line 4: expected 11 comma-separated columns, found 10"),
        (3, lambda s: set_field(s, 7, "abc"), "line 3, column Price: 'abc' is not a number"),
        (3, lambda s: set_field(s, 8, "inf"), "line 3, column Quantity: 'inf' is not a finite number"),
        (5, lambda s: set_field(s, 6, "x1"), "line 5, column TradeId: 'x1' is not an integer"),
        (5, lambda s: set_field(s, 4, "1.5"), "line 5, column TransactionTime: '1.5' is not an integer"),
        (6, lambda s: set_field(s, 9, "yes"), "line 6, column IsBuyerMarketMaker: 'yes' is not a boolean"),
        (2, lambda s: set_field(s, 7, "0"), "line 2, column Price: non-positive price 0.0"),
        (7, lambda s: set_field(s, 8, "-5"), "line 7, column Quantity: non-positive quantity -5.0"),
        (8, lambda s: set_field(s, 5, "BTCUSDT"), "line 8, column Symbol: symbol 'BTCUSDT' in a file of TRXUSDT"),
        (9, lambda s: set_field(s, 4, "1741046000000000"),
         "line 9, column TransactionTime: time 1741046000000 (2025-03-03 23:53:20 UTC) is out of order"),
    ],
)
def test_each_bad_row_kind_names_file_line_and_column(tmp_path: Path, line_no: int,
                                                      edit: Callable[[str], str], expected: str) -> None:
    lines = capture_lines()[:12]
    lines[line_no - 1] = edit(lines[line_no - 1])
    path = write(tmp_path / "TRXUSDT-trade-stream.csv", lines)
    err = read_error(path)
    assert isinstance(err, ValueError) and err.total == 1
    assert str(err).startswith(f"invalid market data: {path} {expected}")


def test_duplicate_and_out_of_order_trade_ids(tmp_path: Path) -> None:
    lines = capture_lines()[:12]
    lines[5] = lines[4]  # line 6 repeats line 5
    lines[9], lines[10] = lines[10], lines[9]  # lines 10 and 11 swapped
    err = read_error(write(tmp_path / "TRXUSDT-trade-stream.csv", lines))
    text = str(err)
    assert err.total == 2
    assert f"line 6, column TradeId: duplicate trade id {FIRST_ID + 3}" in text
    assert f"line 11, column TradeId: trade id {FIRST_ID + 8} is out of order: below the previous id " \
           f"{FIRST_ID + 9}" in text


def test_duplicates_across_files(tmp_path: Path, trx: TickList) -> None:
    a = write(tmp_path / "TRXUSDT-trades-a.csv", archive_lines(trx[:10]))
    b = write(tmp_path / "TRXUSDT-trades-b.csv", archive_lines(trx[9:20]))
    err = read_error(a, b)
    assert err.total == 1
    assert str(err) == (f"invalid market data: {b} line 1, column id: duplicate trade id {FIRST_ID + 9} "
                        f"(previous trade in {a})")


def test_header_without_required_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "TRXUSDT-trades.csv", ["TradeId,Price,When", "1,2,3"])
    err = read_error(path)
    assert "line 1: header has no column for qty, time, is_buyer_maker" in str(err)


def test_tick_converts_to_and_from_the_wire_trade(trx: TickList) -> None:
    tick = trx[0]
    wire = tick.to_trade()
    assert isinstance(wire, Trade) and wire.quantity == 2619.4 and wire.trade_time == tick.time
    assert Tick.from_trade(wire) == tick
    assert "taker=sell" in repr(tick) and tick != trx[1]
    assert TradeQuality().summary() == "0 trades: trade ids contiguous, times non-decreasing."
