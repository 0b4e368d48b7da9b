"""The executor's settings: the intent store choices and their checks (one line naming the setting)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aks_executor.main import build_store
from aks_executor.settings import ServiceSettings
from shared.adapters.azure.settings import ConfigurationError
from shared.adapters.azure.table_intent_store import TableIntentStore
from shared.adapters.local.intent_store import SqliteIntentStore


def test_table_store_from_a_connection_string_or_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ServiceSettings.from_env({"MARKETFLOW_INTENT_STORE": "table", "MARKETFLOW_INTENT_TABLE": "intentsDev",
                                         "MARKETFLOW_ACCOUNT": "spot-1"})
    assert (settings.intent_store, settings.intent_table, settings.account) == ("table", "intentsDev", "spot-1")
    monkeypatch.setenv("INTENT_STORAGE__tableServiceUri", "https://mfprod.table.core.windows.net/")
    store = build_store(settings)
    assert isinstance(store, TableIntentStore) and store.account == "spot-1"
    monkeypatch.delenv("INTENT_STORAGE__tableServiceUri")
    with pytest.raises(ConfigurationError, match="INTENT_STORAGE"):
        build_store(settings)


@pytest.mark.parametrize(("name", "value"), [("MARKETFLOW_INTENT_STORE", "redis"),
                                             ("MARKETFLOW_INTENT_TABLE", "1bad"),
                                             ("MARKETFLOW_INTENT_TABLE", "has-dash"),
                                             ("MARKETFLOW_ACCOUNT", "a/b"),
                                             ("MARKETFLOW_INTENT_SYNC", "off")])
def test_bad_store_settings_name_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        ServiceSettings.from_env({name: value})


@pytest.mark.parametrize(("value", "mode"), [(None, "FULL"), ("full", "FULL"), ("NORMAL", "NORMAL")])
def test_the_sqlite_store_runs_the_durability_it_is_given(tmp_path: Path, value: str | None, mode: str) -> None:
    env = {"MARKETFLOW_STATE_DIR": str(tmp_path)} | ({"MARKETFLOW_INTENT_SYNC": value} if value else {})
    store = build_store(ServiceSettings.from_env(env))
    try:
        assert isinstance(store, SqliteIntentStore)
        assert store.synchronous == mode  # PRAGMA synchronous read back from the writing connection
    finally:
        asyncio.run(store.close())
