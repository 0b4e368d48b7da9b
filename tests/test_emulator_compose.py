"""docker-compose.yml and the emulator's Config.json agree with the one topology."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.config import parse_config
from shared import topology
from shared.cli.errors import CliError
from shared.cli.topology import emulator_config, render
from shared.topology import Hub

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_config_is_the_generated_one_in_the_official_schema() -> None:
    text = (ROOT / "emulator-config.json").read_text()
    assert text == render(topology.HUBS.values()), "regenerate: marketflow topology --emulator-config"
    doc = json.loads(text)
    [ns] = doc["UserConfig"]["NamespaceConfig"]
    assert (ns["Type"], ns["Name"]) == ("EventHub", "emulatorNs1")
    assert len(ns["Entities"]) <= 10
    for ent in ns["Entities"]:
        hub = topology.hub(ent["Name"])
        assert ent["PartitionCount"] == str(hub.partitions) and isinstance(ent["PartitionCount"], str)
        names = [g["Name"] for g in ent["ConsumerGroups"]]
        assert names == list(hub.consumer_groups) and "$Default" not in names and len(names) <= 20
    parsed = parse_config(doc)  # the project's own emulator reads the same file
    assert {h.name for h in parsed.hubs} == set(topology.HUBS)


def test_limits_are_refused() -> None:
    with pytest.raises(CliError, match="10"):
        emulator_config([Hub(f"h{i}", 1, ("g",), "p") for i in range(11)])
    with pytest.raises(CliError, match="20"):
        emulator_config([Hub("h", 1, tuple(f"g{i}" for i in range(21)), "p")])


def test_compose_runs_the_emulator_with_azurite_and_mounts_the_config() -> None:
    text = (ROOT / "docker-compose.yml").read_text()  # plain text: no YAML parser in the runtime pins
    assert '"mcr.microsoft.com/azure-messaging/eventhubs-emulator:latest"' in text
    assert '"./emulator-config.json:/Eventhubs_Emulator/ConfigFiles/Config.json"' in text
    assert "BLOB_SERVER: azurite" in text and "METADATA_SERVER: azurite" in text and '"5672:5672"' in text
    assert '"mcr.microsoft.com/azure-storage/azurite:latest"' in text and '"10000:10000"' in text
    settings = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    assert "UseDevelopmentEmulator=true" in settings["EVENTHUB"]
