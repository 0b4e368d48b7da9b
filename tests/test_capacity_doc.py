"""docs/capacity.md says what is true today: its measured figures are BENCHMARKS.md's, its event
sizes are what the publisher encodes, its deployment quantities are the tfvars', every limit row
names its source, and no price is presented as verified without a source."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import factories
import infra

from shared.adapters.azure.eventhub_publisher import encode
from shared.data import read_klines, read_trades
from shared.events import pack
from shared.samples import btcusdt_1m_paths, trx_trades_path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "capacity.md").read_text()
PROSE = " ".join(DOC.split())  # wrapped lines joined
BENCHMARKS = (ROOT / "BENCHMARKS.md").read_text()
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def section(number: int) -> str:
    match = re.search(rf"^## {number}\. .*?(?=^## |\Z)", DOC, flags=re.M | re.S)
    assert match, f"docs/capacity.md has no section {number}"
    return match.group(0)


def table_rows(text: str) -> list[list[str]]:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|") and not line.startswith("|---")]
    return rows[1:]  # the header


def test_measured_figures_are_the_current_benchmarks() -> None:
    rows = table_rows(section(1))
    assert len(rows) >= 8
    for stage, throughput, per_event in rows:
        figures = NUMBER.findall(throughput)
        assert figures, stage
        for figure in figures:
            assert figure in BENCHMARKS, f"{stage}: {figure} is not a BENCHMARKS.md figure"
        rate = re.fullmatch(r"([\d,]+) \w+/s", throughput)
        if rate and per_event and not per_event.startswith("p"):  # a percentile is not 1/throughput
            expected_us = 1e6 / float(rate.group(1).replace(",", ""))
            stated = float(NUMBER.findall(per_event)[-1].replace(",", ""))
            assert abs(stated - expected_us) / expected_us < 0.05, f"{stage}: {per_event} vs {expected_us:.1f} µs"


def test_event_sizes_are_what_the_publisher_encodes() -> None:
    bars = read_klines(btcusdt_1m_paths()).bars[:1000]
    sizes = [len(encode(b.to_kline())) for b in bars]
    assert f"{min(sizes)}-{max(sizes)} bytes (median {statistics.median(sizes):.0f} over the first 1,000" in PROSE
    for name, event in (("a signal", factories.signal()), ("a risk decision", factories.decision()),
                        ("an order intent", factories.intent()), ("a filled execution report", factories.report())):
        stated = re.search(rf"{name} about (\d+)", PROSE)
        assert stated, name
        assert abs(int(stated.group(1)) - len(encode(event))) <= 0.05 * len(encode(event)), name
    trades = [t.to_trade() for t in read_trades(trx_trades_path())[:1000]]
    assert f"1,000 bundled TRXUSDT trades about {len(encode(pack(trades)[0])):,}" in PROSE


def test_every_limit_names_its_source() -> None:
    rows = table_rows(section(2))
    assert len(rows) >= 12
    previous_url = False
    for limit, _value, source in rows:
        has_url = "https://" in source
        own = source.startswith("`")  # our own settings, named by key
        assert has_url or own or (source.startswith(("same", "quotas page", "the same")) and previous_url), limit
        previous_url = has_url or previous_url
    intro = DOC.split("## 1.")[0]
    assert "read on 2026-12-03" in intro and "westeurope" in intro


def test_no_price_is_presented_as_verified() -> None:
    """Section 5 gives quantities from the tfvars; any dollar figure sits in the paragraph that
    says it is unverified, and each pricing page is linked."""
    text = section(5)
    for paragraph in text.split("\n\n"):
        if "$" in paragraph:
            assert "unverified" in paragraph and "not verified here" in paragraph, paragraph[:200]
    for page in ("event-hubs", "functions", "kubernetes-service", "virtual-machines/linux", "container-registry",
                 "monitor", "storage/blobs"):
        assert f"https://azure.microsoft.com/pricing/details/{page}/" in text, page


def test_deployment_quantities_are_the_tfvars() -> None:
    rows = {r[0]: r[1:] for r in table_rows(section(5))}
    for column, env in enumerate(("dev", "prod")):
        tfvars = infra.unquote(infra.terraform(infra.TERRAFORM / "envs" / f"{env}.tfvars"))
        tus = tfvars["eventhub_capacity"]
        namespace = rows["Event Hubs Standard, production namespace"][column]
        ceiling = tfvars["eventhub_max_throughput_units"]
        assert namespace == f"{tus} TU{'s' if tus > 1 else ''} (auto-inflate to {ceiling})"
        assert rows["Functions Elastic Premium, one always-ready instance"][column] == tfvars["functions_sku"]
        assert rows["AKS nodes"][column] == f"{tfvars['aks_node_count']} × {tfvars['aks_vm_size']}"
        assert rows["Log Analytics (PerGB2018)"][column] == f"{tfvars['log_retention_days']} days retention"
