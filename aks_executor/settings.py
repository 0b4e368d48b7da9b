"""The executor service's settings, from the environment (a ConfigMap and the pod spec in AKS).

| variable | default | what |
|---|---|---|
| `MARKETFLOW_VENUE` | `paper` | `paper` or `binance` |
| `MARKETFLOW_HTTP_HOST` / `MARKETFLOW_HTTP_PORT` | `0.0.0.0` / `8000` | probes and metrics |
| `MARKETFLOW_SHUTDOWN_GRACE_S` | `25` | SIGTERM to exit, at most (under the pod's grace period, 30 s by default) |
| `MARKETFLOW_LEASE` | `blob` | `blob` (a Blob lease in `CHECKPOINT_STORAGE`, container `leases`) or `file` |
| `MARKETFLOW_LEASE_NAME` | `executor` | the lease blob's name (container `leases`) |
| `MARKETFLOW_LEASE_DURATION_S` | `15` | Blob lease duration (15-60 s): the failover time when a holder dies |
| `MARKETFLOW_LEASE_RETRY_S` | `2` | how often a standby tries to take the lease |
| `MARKETFLOW_LOAD_BALANCING_S` | `2` | consumers' load balancing; a dead owner's partitions free up after 6x this |
| `MARKETFLOW_CHECKPOINT_CONTAINER` | `checkpoints` | the consumers' checkpoint and ownership container |
| `MARKETFLOW_INTENT_STORE` | `sqlite` | `table` (shared by the replicas: AKS), `sqlite` (WAL, state dir), `memory` |
| `INTENT_STORAGE` | | `table`'s storage: a connection string, or `INTENT_STORAGE__tableServiceUri` (identity) |
| `MARKETFLOW_INTENT_TABLE` | `marketflowintents` | its table (created at start if missing) |
| `MARKETFLOW_ACCOUNT` | `executor` | the account's partition in that table: every intent and the book |
| `MARKETFLOW_STATE_DIR` | `.marketflow` | local state (the file lease, the SQLite intent store) |
| `MARKETFLOW_INTENT_SYNC` | `full` | `sqlite`'s durability: `full` (fsync per commit) or `normal` (no fsync) |
| `MARKETFLOW_START_POSITION` | `latest` | a partition with no checkpoint starts at `latest` or `earliest` |
| `MARKETFLOW_CLOCK` | `wall` | live intents judged at now (`wall`) or at their own time (`event`); replayed: own |
| `LOG_LEVEL` | `INFO` | |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared import topology
from shared.adapters.azure.settings import ConfigurationError

VENUES = ("paper", "binance")
LEASES = ("blob", "file")
CLOCKS = ("wall", "event")
START_POSITIONS = {"latest": "@latest", "earliest": "-1"}  # the SDK's starting_position values
STORES = ("sqlite", "table", "memory")
INTENT_SYNCS = ("full", "normal")  # SQLite's PRAGMA synchronous for the intent store


@dataclass(frozen=True)
class ServiceSettings:
    venue: str = "paper"
    http_host: str = "0.0.0.0"
    http_port: int = 8000
    grace_s: float = 25.0
    lease: str = "blob"
    lease_name: str = "executor"
    lease_duration_s: int = 15
    lease_retry_s: float = 2.0
    load_balancing_s: float = 2.0
    checkpoint_container: str = topology.CHECKPOINT_CONTAINER
    state_dir: Path = Path(".marketflow")
    intent_store: str = "sqlite"
    intent_sync: str = "full"
    intent_table: str = "marketflowintents"
    account: str = "executor"
    log_level: str = "INFO"
    cash: float = 10_000.0
    commission: float = 0.001
    start_position: str = "latest"
    clock: str = "wall"  # "event": replays and `marketflow up`, where every event is history

    @property
    def starting_position(self) -> str:
        return START_POSITIONS[self.start_position]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        env = os.environ if environ is None else environ

        def get(name: str, default: str) -> str:
            return env.get(name, "").strip() or default

        def number(name: str, default: str) -> float:
            raw = get(name, default)
            try:
                return float(raw)
            except ValueError:
                raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None

        venue = get("MARKETFLOW_VENUE", "paper").lower()
        if venue not in VENUES:
            raise ConfigurationError(f"MARKETFLOW_VENUE must be one of {', '.join(VENUES)}, got {venue!r}")
        lease = get("MARKETFLOW_LEASE", "blob").lower()
        if lease not in LEASES:
            raise ConfigurationError(f"MARKETFLOW_LEASE must be one of {', '.join(LEASES)}, got {lease!r}")
        start = get("MARKETFLOW_START_POSITION", "latest").lower()
        if start not in START_POSITIONS:
            raise ConfigurationError(f"MARKETFLOW_START_POSITION must be latest or earliest, got {start!r}")
        clock = get("MARKETFLOW_CLOCK", "wall").lower()
        if clock not in CLOCKS:
            raise ConfigurationError(f"MARKETFLOW_CLOCK must be wall or event, got {clock!r}")
        store = get("MARKETFLOW_INTENT_STORE", "sqlite").lower()
        if store not in STORES:
            raise ConfigurationError(f"MARKETFLOW_INTENT_STORE must be one of {', '.join(STORES)}, got {store!r}")
        sync = get("MARKETFLOW_INTENT_SYNC", "full").lower()
        if sync not in INTENT_SYNCS:
            raise ConfigurationError(f"MARKETFLOW_INTENT_SYNC must be full or normal, got {sync!r}")
        table = get("MARKETFLOW_INTENT_TABLE", "marketflowintents")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,62}", table):
            raise ConfigurationError("MARKETFLOW_INTENT_TABLE must be 3-63 letters and digits, starting with a letter")
        account = get("MARKETFLOW_ACCOUNT", "executor")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", account):
            raise ConfigurationError("MARKETFLOW_ACCOUNT must be 1-64 of A-Z a-z 0-9 _ . -")
        duration = int(number("MARKETFLOW_LEASE_DURATION_S", "15"))
        if not 15 <= duration <= 60:
            raise ConfigurationError("MARKETFLOW_LEASE_DURATION_S must be 15 to 60 (a Blob lease's range)")
        return cls(venue=venue, http_host=get("MARKETFLOW_HTTP_HOST", "0.0.0.0"),
                   http_port=int(number("MARKETFLOW_HTTP_PORT", "8000")),
                   grace_s=number("MARKETFLOW_SHUTDOWN_GRACE_S", "25"), lease=lease, lease_duration_s=duration,
                   lease_name=get("MARKETFLOW_LEASE_NAME", "executor"),
                   lease_retry_s=number("MARKETFLOW_LEASE_RETRY_S", "2"),
                   load_balancing_s=number("MARKETFLOW_LOAD_BALANCING_S", "2"),
                   checkpoint_container=get("MARKETFLOW_CHECKPOINT_CONTAINER", topology.CHECKPOINT_CONTAINER),
                   state_dir=Path(get("MARKETFLOW_STATE_DIR", ".marketflow")), intent_store=store,
                   intent_sync=sync, intent_table=table, account=account,
                   log_level=get("LOG_LEVEL", "INFO"),
                   cash=number("MARKETFLOW_ACCOUNT_CASH", "10000"),
                   commission=number("MARKETFLOW_PAPER_COMMISSION", "0.001"), start_position=start, clock=clock)
