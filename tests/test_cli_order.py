"""`marketflow order`: one manual order through the last look, the SQLite intent store and the
venue (the paper venue, and Binance as played by the strict fake); a re-run with the same
intent id sends nothing and prints the same report; a refusal is one line, exit 2, nothing sent."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest
from fake_binance import DOC_API_KEY, DOC_SECRET, FakeBinanceThread

from shared.cli import main

ENV = ("BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_PRIVATE_KEY_FILE", "BINANCE_BASE_URL", "MARKETFLOW_VENUE",
       "MARKETFLOW_STATE_DIR", "KEYVAULT_URL")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["order", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def records(state: Path) -> int:
    from shared.adapters.local.intent_store import SqliteIntentStore

    store = SqliteIntentStore(state)
    try:
        return store.count()
    finally:
        asyncio.run(store.close())


def test_paper_market_buy_fills_once_and_a_rerun_prints_the_same_report(tmp_path: Path, capsys) -> None:
    args = ("--symbol", "BTCUSDT", "--side", "BUY", "--quote-quantity", "100", "--price", "50000",
            "--intent-id", "desk-0001", "--state-dir", str(tmp_path))
    status, out, err = run(capsys, *args)
    assert status == 0, err
    (line,) = out.splitlines()
    report = json.loads(line)
    assert report["status"] == "FILLED" and report["symbol"] == "BTCUSDT" and report["side"] == "BUY"
    assert report["venue"] == "paper" and report["client_order_id"].startswith("mf-")
    assert 0 < report["executed_qty"] * 50000 <= 100
    again = run(capsys, *args)
    assert again == (0, out, "")  # nothing sent: the intent store answered
    assert records(tmp_path) == 1


def test_an_order_the_filters_refuse_is_one_line_exit_2_and_nothing_is_stored_as_sent(tmp_path: Path,
                                                                                       capsys) -> None:
    args = ("--symbol", "BTCUSDT", "--side", "BUY", "--type", "LIMIT", "--quantity", "0.000001", "--price", "50000",
            "--intent-id", "desk-0002", "--state-dir", str(tmp_path))
    status, out, err = run(capsys, *args)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("marketflow: error: order refused, nothing sent:")
    assert "LOT_SIZE" in err
    assert run(capsys, *args) == (2, "", err)


def test_usage_errors_are_one_line(tmp_path: Path, capsys) -> None:
    status, _out, err = run(capsys, "--symbol", "BTCUSDT", "--side", "BUY", "--quantity", "0.001",
                           "--state-dir", str(tmp_path))
    assert status == 2 and "--price" in err and err.count("\n") == 1
    status, _out, err = run(capsys, "--symbol", "BTCUSDT", "--side", "BUY", "--type", "LIMIT",
                           "--quote-quantity", "10", "--price", "1", "--state-dir", str(tmp_path))
    assert status == 2 and "--quantity" in err


def test_binance_market_order_through_the_fake_is_sent_once_quantized_toward_safety(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    with FakeBinanceThread() as fake:
        fake.add_hmac_account(DOC_API_KEY, DOC_SECRET, {"USDT": "10000", "BTC": "1"})
        monkeypatch.setenv("BINANCE_API_KEY", DOC_API_KEY)
        monkeypatch.setenv("BINANCE_API_SECRET", DOC_SECRET)
        args = ("--symbol", "BTCUSDT", "--side", "SELL", "--quantity", "0.0012345678", "--price", "60000",
                "--base-url", fake.base_url, "--intent-id", "desk-0003", "--state-dir", str(tmp_path))
        status, out, err = run(capsys, *args)
        assert status == 0, err
        report = json.loads(out)
        assert report["status"] == "FILLED" and report["venue"] == "binance" and report["side"] == "SELL"
        (order,) = fake.orders
        assert order.orig_qty == Decimal("0.00123")  # BTCUSDT's lot step 0.00001, rounded down
        assert order.client_order_id == report["client_order_id"]
        assert report["executed_qty"] == pytest.approx(0.00123)
        assert run(capsys, *args) == (0, out, "")
        assert len(fake.orders) == 1 and not fake.duplicates()

        refused = ("--symbol", "BTCUSDT", "--side", "SELL", "--quantity", "0.000001", "--price", "60000",
                   "--base-url", fake.base_url, "--intent-id", "desk-0004", "--state-dir", str(tmp_path))
        status, out, err = run(capsys, *refused)
        assert status == 2 and out == "" and "nothing sent" in err
        assert len(fake.orders) == 1
    assert DOC_SECRET not in out + err and DOC_API_KEY not in out + err
