"""`marketflow doctor` against the strict fake Binance: a table, exit 0 / 1 / 2, no secret printed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fake_binance import DOC_API_KEY, DOC_SECRET, FakeBinanceThread

from shared.cli import main

ENV = ("BINANCE_API_KEY", "BINANCE_API_SECRET", "BINANCE_PRIVATE_KEY_FILE", "BINANCE_BASE_URL")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def rows(out: str) -> dict[str, tuple[str, str]]:
    table = {}
    for line in out.splitlines()[2:]:
        name, result, detail = re.split(r"\s{2,}", line, maxsplit=2)
        table[name] = (result, detail)
    return table


def test_all_checks_pass_with_hmac_keys(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeBinanceThread() as fake:
        fake.add_hmac_account(DOC_API_KEY, DOC_SECRET, {"USDT": "1234.5", "ETH": "0.25"})
        monkeypatch.setenv("BINANCE_API_KEY", DOC_API_KEY)
        monkeypatch.setenv("BINANCE_API_SECRET", DOC_SECRET)
        monkeypatch.setenv("BINANCE_BASE_URL", fake.base_url)
        assert main(["doctor", "--symbols", "ETHUSDT,BTCUSDT"]) == 0
    out, err = capsys.readouterr()
    table = rows(out)
    assert list(table) == ["reachable", "server time", "filters ETHUSDT", "filters BTCUSDT", "account canTrade",
                           "balances"]
    assert all(result == "PASS" for result, _ in table.values())
    assert "tick 0.01, step 0.0001, minQty 0.0001, minNotional 5" in table["filters ETHUSDT"][1]
    assert "ETH free 0.25 locked 0; USDT free 1234.5 locked 0" in table["balances"][1]
    assert DOC_SECRET not in out + err and DOC_API_KEY not in out + err


def test_failures_exit_1_ed25519_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with FakeBinanceThread(clock=lambda: time.time() + 5) as fake:  # the fake's clock is 5 s ahead
        acct, pem = fake.add_ed25519_account("ed-key")
        acct.can_trade = False
        key_file = tmp_path / "key.pem"
        key_file.write_text(pem)
        monkeypatch.setenv("BINANCE_API_KEY", "ed-key")
        monkeypatch.setenv("BINANCE_PRIVATE_KEY_FILE", str(key_file))
        assert main(["doctor", "--symbols", "ETHUSDT,DOGEUSDT", "--base-url", fake.base_url]) == 1
    out, err = capsys.readouterr()
    table = rows(out)
    assert table["reachable"][0] == "PASS"
    assert table["server time"][0] == "FAIL" and "fix this machine's clock" in table["server time"][1]
    assert table["filters DOGEUSDT"] == ("FAIL", "not listed in exchangeInfo")
    assert table["account canTrade"][0] == "FAIL"   # signed requests still work: the offset was synced
    assert table["balances"][0] == "PASS"
    assert pem.splitlines()[1] not in out + err


def test_unreachable_and_missing_keys_fail(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--symbols", "ETHUSDT", "--base-url", "http://127.0.0.1:9"]) == 1
    table = rows(capsys.readouterr().out)
    assert table["reachable"][0] == "FAIL" and table["balances"] == ("FAIL", "skipped: not reachable")
    with FakeBinanceThread() as fake:
        assert main(["doctor", "--symbols", "ETHUSDT", "--base-url", fake.base_url]) == 1
    table = rows(capsys.readouterr().out)
    assert table["filters ETHUSDT"][0] == "PASS"
    assert table["account canTrade"] == ("FAIL", "BINANCE_API_KEY is not set")


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--symbols", " , "]) == 2
    assert main(["doctor", "--symbols", "eth-usdt"]) == 2
    assert main(["doctor", "--symbols", "ETHUSDT", "--base-url", "http://127.0.0.1:9", "--testnet"]) == 2
    err = capsys.readouterr().err
    assert err.count("marketflow: error:") == 3
    with pytest.raises(SystemExit) as e:
        main(["doctor"])
    assert e.value.code == 2
