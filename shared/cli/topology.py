"""`marketflow topology`: the one topology (shared/topology.py), printed, or as the Config.json of
Microsoft's Event Hubs emulator (docker-compose.yml mounts `emulator-config.json`).

The emulator's schema: `UserConfig.NamespaceConfig[]` with one namespace `emulatorNs1` of
`Type: EventHub`, its `Entities[]` each with `Name`, `PartitionCount` (a string) and
`ConsumerGroups[].Name`; `$Default` exists on every hub and is not declared. The emulator accepts at
most 10 hubs and 20 consumer groups per hub; a topology beyond that is refused here.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from typing import Any

from .errors import CliError

NAMESPACE = "emulatorNs1"
MAX_HUBS = 10
MAX_CONSUMER_GROUPS = 20


def emulator_config(hubs: Iterable[Any]) -> dict[str, Any]:
    """The emulator's Config.json for `hubs` (shared.topology.Hub)."""
    entities = []
    for hub in hubs:
        groups = [g for g in hub.consumer_groups if g != "$Default"]
        if len(groups) > MAX_CONSUMER_GROUPS:
            raise CliError(f"hub {hub.name} has {len(groups)} consumer groups; "
                           f"the emulator allows {MAX_CONSUMER_GROUPS}")
        entities.append({"Name": hub.name, "PartitionCount": str(hub.partitions),
                         "ConsumerGroups": [{"Name": g} for g in groups]})
    if len(entities) > MAX_HUBS:
        raise CliError(f"{len(entities)} hubs; the emulator allows {MAX_HUBS}")
    return {"UserConfig": {"NamespaceConfig": [{"Type": "EventHub", "Name": NAMESPACE, "Entities": entities}],
                           "LoggingConfig": {"Type": "File"}}}


def render(hubs: Iterable[Any]) -> str:
    return json.dumps(emulator_config(hubs), indent=2) + "\n"


def cmd_topology(args: argparse.Namespace) -> int:
    from shared import topology

    if args.emulator_config:
        print(render(topology.HUBS.values()), end="")
        return 0
    for hub in topology.HUBS.values():
        print(f"{hub.name}: {hub.partitions} partitions, key {hub.partition_key}, produced by {hub.producer}, "
              f"consumer groups {', '.join(hub.consumer_groups)}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("topology", help="the hubs, consumer groups and partitions (or the emulator's Config.json)",
                       description="Print the one messaging topology, or with --emulator-config the Config.json of "
                       "Microsoft's Event Hubs emulator generated from it (docker-compose.yml mounts it).")
    p.add_argument("--emulator-config", action="store_true", help="print the emulator's Config.json")
    p.set_defaults(func=cmd_topology)
