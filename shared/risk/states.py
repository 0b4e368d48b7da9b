"""Trading states as NautilusTrader defines them, persisted, with every change an event.

- ACTIVE: trading is enabled.
- REDUCING: only orders that reduce an open position pass (here: SELLs of a long).
- HALTED: no new orders; cancels still pass.

The effective state is the most severe of three sources:
1. the configured floor (`trading_state` key; a deploy-time kill switch via the environment),
2. the base state an operator set (the kill switch sets HALTED by hand),
3. automatic locks (daily loss, drawdown, loss streak, exchange ban), some with an expiry.

The whole record is saved on every change, so a restart resumes in the same state; a state file
that cannot be read fails closed (HALTED) instead of silently trading.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from shared.events import TradingStateChanged

from .reasons import Reason


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


@dataclass(slots=True)
class Lock:
    """An automatic restriction. `until` None means it stays until an operator resets the state."""

    source: str            # a Reason value: DAILY_LOSS_LIMIT, MAX_DRAWDOWN, LOSS_STREAK_COOLDOWN, EXCHANGE_BAN
    state: TradingState
    why: str
    since: int
    until: int | None = None


@dataclass(slots=True)
class StateRecord:
    """Everything the state machine persists."""

    version: int = 0
    base: TradingState = TradingState.ACTIVE
    who: str = "default"
    why: str = "initial state"
    changed_at: int = 0
    locks: list[Lock] = field(default_factory=list)
    # Trigger keys that already fired (e.g. the UTC day of a daily-loss lock), so an operator's
    # reset is not immediately undone by the same, already acknowledged, breach.
    fired: dict[str, int] = field(default_factory=dict)
    # consecutive_losses at the last loss-streak lock: the next lock needs N new losses.
    streak_mark: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StateRecord:
        locks = [Lock(source=lk["source"], state=TradingState(lk["state"]), why=lk["why"], since=int(lk["since"]),
                      until=None if lk.get("until") is None else int(lk["until"])) for lk in data.get("locks", [])]
        return cls(version=int(data["version"]), base=TradingState(data["base"]), who=str(data["who"]),
                   why=str(data["why"]), changed_at=int(data["changed_at"]), locks=locks,
                   fired={str(k): int(v) for k, v in data.get("fired", {}).items()},
                   streak_mark=int(data.get("streak_mark", 0)))


class StateStore(Protocol):
    """Where the trading state lives between restarts (a file locally, a blob in the cloud)."""

    def load(self) -> StateRecord | None:
        """The saved record, or None when nothing was ever saved. Raises if it cannot be read."""
        ...

    def save(self, record: StateRecord) -> None: ...


class InMemoryStateStore:
    """For tests and replays; `restart` in tests means a new engine on the same store object."""

    def __init__(self) -> None:
        self._data: dict[str, Any] | None = None

    def load(self) -> StateRecord | None:
        return None if self._data is None else StateRecord.from_json(json.loads(json.dumps(self._data)))

    def save(self, record: StateRecord) -> None:
        self._data = json.loads(json.dumps(record.to_json()))


class JsonFileStateStore:
    """One JSON file, replaced atomically (write a temp file, fsync, rename) so a crash mid-write
    leaves either the old or the new state, never a torn one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> StateRecord | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return StateRecord.from_json(json.loads(text))

    def save(self, record: StateRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(record.to_json(), fh, sort_keys=True, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


Listener = Callable[[TradingStateChanged], None]


class TradingStateMachine:
    """Computes the effective state, applies changes, persists them and emits one event per change.

    `current(now)` is on the hot path of every check: it only expires locks when the earliest
    expiry has passed, otherwise it returns a cached value.
    """

    def __init__(self, store: StateStore | None = None, floor: TradingState = TradingState.ACTIVE,
                 listener: Listener | None = None, now: int = 0) -> None:
        self.store: StateStore = store if store is not None else InMemoryStateStore()
        self.floor = TradingState.ACTIVE
        self.listener = listener
        self.events: list[TradingStateChanged] = []
        self.record = StateRecord()
        self._cache_state()
        try:
            loaded = self.store.load()
        except Exception as exc:
            # Not saved: the unreadable file stays for inspection until an operator sets a state.
            self._change(now, "risk:state_store", f"{Reason.STATE_STORE_UNREADABLE}: {exc}",
                         base=TradingState.HALTED, persist=False)
            loaded = self.record
        self.record = loaded if loaded is not None else StateRecord()
        self._cache_state()
        floor = TradingState(floor)
        if floor.severity > self._state.severity:
            self.floor = floor
            self._change(now, "config", f"trading_state={floor.value} (configured floor)", force=True)
        self.floor = floor
        self._cache_state()

    # -- reads ---------------------------------------------------------------------------------
    @property
    def state(self) -> TradingState:
        """The effective state as of the last `current()` call."""
        return self._state

    def current(self, now: int) -> TradingState:
        if now >= self._next_expiry:
            self._expire(now)
        return self._state

    def lock_reason(self) -> str | None:
        """The source of the most severe active lock, or of the manual/floor state."""
        state = self._state
        for lk in self.record.locks:
            if lk.state is state:
                return lk.source
        if self.record.base is state and state is TradingState.HALTED:
            return Reason.KILL_SWITCH.value
        return None

    # -- changes -------------------------------------------------------------------------------
    def set_state(self, state: TradingState, who: str, why: str, now: int) -> TradingStateChanged | None:
        """An operator's change. Resetting to ACTIVE or REDUCING also clears the risk-trigger locks
        (their breach is acknowledged), but not an exchange ban: only its expiry lifts that."""
        state = TradingState(state)
        locks = self.record.locks
        if state.severity < TradingState.HALTED.severity:
            locks = [lk for lk in locks if lk.source == Reason.EXCHANGE_BAN]
        return self._change(now, who, why, base=state, locks=locks, force=True)

    def add_lock(self, lock: Lock, who: str, now: int, fired_key: str | None = None) -> TradingStateChanged | None:
        """An automatic restriction; it never lowers the state and replaces a lock of the same source."""
        locks = [lk for lk in self.record.locks if lk.source != lock.source] + [lock]
        if fired_key is not None:
            self.record.fired[fired_key] = now
        return self._change(now, who, f"{lock.source}: {lock.why}", locks=locks, until=lock.until, force=True)

    def _expire(self, now: int) -> None:
        keep = [lk for lk in self.record.locks if lk.until is None or lk.until > now]
        if len(keep) != len(self.record.locks):
            gone = sorted({lk.source for lk in self.record.locks if lk not in keep})
            self._change(now, "risk:expiry", f"lock expired: {', '.join(gone)}", locks=keep, force=True)
        else:
            self._cache_state()

    def _change(self, now: int, who: str, why: str, *, base: TradingState | None = None,
                locks: list[Lock] | None = None, until: int | None = None, force: bool = False,
                persist: bool = True) -> TradingStateChanged | None:
        rec = self.record
        previous = self._state
        if base is not None:
            rec.base, rec.who, rec.why = base, who, why
        if locks is not None:
            rec.locks = locks
        rec.changed_at = now
        self._cache_state()
        event: TradingStateChanged | None = None
        if self._state is not previous or base is not None:
            rec.version += 1
            event = TradingStateChanged.create(previous=previous.value, state=self._state.value, who=who, why=why,
                                               until=until if self._state is not previous else None,
                                               version=rec.version, event_time=now)
        if persist and (event is not None or force):
            self.store.save(rec)
        if event is not None:
            self.events.append(event)
            if self.listener is not None:
                self.listener(event)
        return event

    def _cache_state(self) -> None:
        rec = self.record
        state = max((self.floor, rec.base, *(lk.state for lk in rec.locks)), key=_SEVERITY.__getitem__)
        self._state = state
        expiries = [lk.until for lk in rec.locks if lk.until is not None]
        self._next_expiry = min(expiries) if expiries else 1 << 62
