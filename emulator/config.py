"""What the emulator serves: a namespace of hubs with partitions, consumer groups, retention and Capture.

Read from the official emulator's Config.json (`UserConfig.NamespaceConfig[].Entities[]` with
`Name`, `PartitionCount` and `ConsumerGroups[].Name`), with two optional per-entity extensions
of ours: `RetentionHours` and `Capture` (`{"Enabled": true, "IntervalSeconds": 60, "SizeBytes":
10485760}`). Without a config the caller passes hub descriptions (MarketFlow's CLI passes
`shared.topology.HUBS`); this package does not import MarketFlow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_NAMESPACE = "emulatorNs1"  # what Microsoft's emulator names its one namespace
DEFAULT_GROUP = "$Default"
DEFAULT_RETENTION_HOURS = 24.0


class ConfigError(ValueError):
    """The config file is missing, not JSON, or not in the emulator's format."""


@dataclass(frozen=True)
class CaptureConfig:
    enabled: bool = False
    interval_seconds: float = 300.0
    size_bytes: int = 300 * 1024 * 1024


@dataclass(frozen=True)
class HubConfig:
    name: str
    partitions: int
    consumer_groups: tuple[str, ...] = (DEFAULT_GROUP,)
    retention_hours: float = DEFAULT_RETENTION_HOURS
    capture: CaptureConfig = field(default_factory=CaptureConfig)


@dataclass(frozen=True)
class NamespaceConfig:
    name: str
    hubs: tuple[HubConfig, ...]

    def hub(self, name: str) -> HubConfig | None:
        """Hub names are case-insensitive, as in Event Hubs."""
        lowered = name.lower()
        return next((h for h in self.hubs if h.name.lower() == lowered), None)


def _groups(names: Iterable[str]) -> tuple[str, ...]:
    out = [DEFAULT_GROUP]
    out += [n for n in names if n.lower() != DEFAULT_GROUP.lower()]
    return tuple(out)


def from_hubs(hubs: Iterable[Any], *, namespace: str = DEFAULT_NAMESPACE,
              capture: CaptureConfig | None = None) -> NamespaceConfig:
    """Hubs from objects with `name`, `partitions`, `consumer_groups` and optionally `retention_hours`
    (such as MarketFlow's topology); every hub also has `$Default`, as in Event Hubs."""
    out = []
    for h in hubs:
        out.append(HubConfig(name=h.name, partitions=int(h.partitions), consumer_groups=_groups(h.consumer_groups),
                             retention_hours=float(getattr(h, "retention_hours", DEFAULT_RETENTION_HOURS)),
                             capture=capture or CaptureConfig()))
    return NamespaceConfig(namespace, tuple(out))


def _capture(raw: Any, where: str) -> CaptureConfig:
    if raw is None:
        return CaptureConfig()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}.Capture must be an object")
    try:
        return CaptureConfig(enabled=bool(raw.get("Enabled", True)),
                             interval_seconds=float(raw.get("IntervalSeconds", 300)),
                             size_bytes=int(raw.get("SizeBytes", 300 * 1024 * 1024)))
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.Capture has a non-numeric IntervalSeconds or SizeBytes") from None


def parse_config(doc: Any) -> NamespaceConfig:
    """The first EventHub namespace of an emulator Config.json document."""
    try:
        namespaces = doc["UserConfig"]["NamespaceConfig"]
    except (KeyError, TypeError):
        raise ConfigError("expected UserConfig.NamespaceConfig (the Event Hubs emulator's Config.json "
                          "format)") from None
    if not isinstance(namespaces, list) or not namespaces:
        raise ConfigError("UserConfig.NamespaceConfig must be a non-empty list")
    ns = next((n for n in namespaces if isinstance(n, dict) and str(n.get("Type", "EventHub")).lower() == "eventhub"),
              None)
    if ns is None:
        raise ConfigError("no namespace of Type EventHub in UserConfig.NamespaceConfig")
    hubs = []
    for i, ent in enumerate(ns.get("Entities") or []):
        where = f"Entities[{i}]"
        if not isinstance(ent, dict) or not isinstance(ent.get("Name"), str) or not ent["Name"]:
            raise ConfigError(f"{where} needs a Name")
        try:
            partitions = int(ent.get("PartitionCount", 1))
        except (TypeError, ValueError):
            raise ConfigError(f"{where}.PartitionCount must be a number") from None
        if not 1 <= partitions <= 32:
            raise ConfigError(f"{where}.PartitionCount must be between 1 and 32")
        groups = []
        for g in ent.get("ConsumerGroups") or []:
            if not isinstance(g, dict) or not isinstance(g.get("Name"), str):
                raise ConfigError(f"{where}.ConsumerGroups entries need a Name")
            groups.append(g["Name"])
        try:
            retention = float(ent.get("RetentionHours", DEFAULT_RETENTION_HOURS))
        except (TypeError, ValueError):
            raise ConfigError(f"{where}.RetentionHours must be a number") from None
        hubs.append(HubConfig(ent["Name"], partitions, _groups(groups), retention, _capture(ent.get("Capture"), where)))
    if not hubs:
        raise ConfigError("the EventHub namespace has no Entities")
    return NamespaceConfig(str(ns.get("Name") or DEFAULT_NAMESPACE), tuple(hubs))


def load_config(path: str | Path) -> NamespaceConfig:
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no such config file: {p}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {p}: {exc}") from None
    return parse_config(doc)


def with_overrides(ns: NamespaceConfig, *, retention_hours: float | None = None,
                   capture: CaptureConfig | None = None) -> NamespaceConfig:
    """The same namespace with one retention and/or Capture setting for every hub (CLI options)."""
    hubs = []
    for h in ns.hubs:
        hubs.append(HubConfig(h.name, h.partitions, h.consumer_groups,
                              h.retention_hours if retention_hours is None else retention_hours,
                              h.capture if capture is None else capture))
    return NamespaceConfig(ns.name, tuple(hubs))
