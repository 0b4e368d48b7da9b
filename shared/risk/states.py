"""Trading states as NautilusTrader defines them, persisted, with every change an event.

- ACTIVE: trading is enabled.
- REDUCING: only orders that reduce an open position pass (here: SELLs of a long).
- HALTED: no new orders; cancels still pass.

The effective state is the most severe of three sources:
1. the configured floor (`trading_state` key; a deploy-time kill switch via the environment),
2. the base state an operator set (the kill switch sets HALTED by hand),
3. automatic locks (daily loss, drawdown, loss streak, exchange ban), some with an expiry.

The whole record is saved on every change, so a restart resumes in the same state; a state file
that cannot be read fails closed (HALTED) instead of silently trading. Several processes share one
store (the `risk` Function and the executor): each re-reads it when its change token moves (at most
every `refresh_ms` of event time), and a save is a compare-and-set on the record's version, so a
kill switch thrown anywhere reaches every engine and no change overwrites another.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import tempfile
from collections import deque
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
# How long a fired trigger key is remembered (so the record stays small over years of trading).
FIRED_MEMORY_MS = 30 * 86_400_000
STATE_EVENTS_WINDOW = 1_000  # trading-state changes kept in memory (the latest)


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


class StateConflictError(RuntimeError):
    """The stored record changed since it was read; reload and apply the change again."""


class StateStore(Protocol):
    """Where the trading state lives between restarts (a file locally, a blob in the cloud: a
    blob implementation makes `save` a conditional write on the ETag)."""

    def load(self) -> StateRecord | None:
        """The saved record, or None when nothing was ever saved. Raises if it cannot be read."""
        ...

    def save(self, record: StateRecord, expected_version: int) -> None:
        """Store `record` if the stored version is still `expected_version` (0: nothing stored),
        else raise StateConflictError."""
        ...

    def token(self) -> object:
        """A cheap marker that changes whenever the stored record does."""
        ...


class InMemoryStateStore:
    """For tests and replays; sharing one instance between engines models a shared store."""

    def __init__(self) -> None:
        self._data: dict[str, Any] | None = None
        self._writes = 0

    def load(self) -> StateRecord | None:
        return None if self._data is None else StateRecord.from_json(copy.deepcopy(self._data))

    def save(self, record: StateRecord, expected_version: int) -> None:
        stored = 0 if self._data is None else int(self._data["version"])
        if stored != expected_version:
            raise StateConflictError(f"stored version {stored}, expected {expected_version}")
        self._data = copy.deepcopy(record.to_json())
        self._writes += 1

    def token(self) -> object:
        return self._writes


class JsonFileStateStore:
    """One JSON file, replaced atomically (write a temp file, fsync, rename) under an exclusive
    lock on a sibling `.lock` file, so a crash mid-write leaves either the old or the new state and
    two processes cannot both write on top of the same version."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    def load(self) -> StateRecord | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return StateRecord.from_json(json.loads(text))

    def save(self, record: StateRecord, expected_version: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                stored = self._stored_version()
                if stored != expected_version:
                    raise StateConflictError(f"{self.path}: stored version {stored}, expected {expected_version}")
                self._write(record)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def token(self) -> object:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _stored_version(self) -> int:
        try:
            return int(json.loads(self.path.read_text(encoding="utf-8"))["version"])
        except FileNotFoundError:
            return 0
        except (ValueError, KeyError, TypeError):
            return -1  # unreadable: only an explicit reset (expected -1) may overwrite it

    def _write(self, record: StateRecord) -> None:
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
Mutation = Callable[[StateRecord], None]
_NEVER = 1 << 62


class TradingStateMachine:
    """Computes the effective state, applies changes, persists them and emits one event per change.

    `current(now)` is on the hot path of every check: it re-reads the store only when `refresh_ms`
    has passed and its token moved, and expires locks only when the earliest expiry has passed;
    otherwise it returns a cached value.
    """

    def __init__(self, store: StateStore | None = None, floor: TradingState = TradingState.ACTIVE,
                 listener: Listener | None = None, now: int = 0, refresh_ms: int = 1_000) -> None:
        self.store: StateStore = store if store is not None else InMemoryStateStore()
        self.listener = listener
        self.refresh_ms = refresh_ms
        # The latest changes, for a replay's result and tests; the store and the listener get all.
        self.events: deque[TradingStateChanged] = deque(maxlen=STATE_EVENTS_WINDOW)
        self.floor = TradingState.ACTIVE
        self.record = StateRecord()
        self._stored_version = 0
        self._next_refresh = now + refresh_ms
        self._cache_state()
        try:
            self._token = self.store.token()
            loaded = self.store.load()
        except Exception as exc:  # any unreadable state must fail closed
            # Not saved: the unreadable state stays for inspection until an operator sets a state.
            self._stored_version = -1
            self._apply(now, "risk:state_store", f"{Reason.STATE_STORE_UNREADABLE}: {exc}",
                        _set_base(TradingState.HALTED, "risk:state_store", str(exc)), persist=False)
            loaded = None
        if loaded is not None:
            self.record = loaded
            self._stored_version = loaded.version
        self._cache_state()
        floor = TradingState(floor)
        if floor.severity > self._state.severity:
            previous = self._state
            self.floor = floor
            self._cache_state()
            self._emit(previous, "config", f"trading_state={floor.value} (configured floor)", None, now)
        self.floor = floor
        self._cache_state()

    # -- reads ---------------------------------------------------------------------------------
    @property
    def state(self) -> TradingState:
        """The effective state as of the last `current()` call."""
        return self._state

    def current(self, now: int) -> TradingState:
        if now >= self._next_refresh:
            self._next_refresh = now + self.refresh_ms
            self.sync(now)
        if now >= self._next_expiry:
            self._expire(now)
        return self._state

    def sync(self, now: int) -> None:
        """Adopt a newer record another process saved (an operator's kill switch, say)."""
        try:
            token = self.store.token()
            if token == self._token:
                return
            self._token = token
            latest = self.store.load()
        except Exception as exc:  # unreadable now: stop trading until it is readable or reset
            if self._state is not TradingState.HALTED:
                self._apply(now, "risk:state_store", f"{Reason.STATE_STORE_UNREADABLE}: {exc}",
                            _set_base(TradingState.HALTED, "risk:state_store", str(exc)), persist=False)
            return
        if latest is not None and latest.version > self._stored_version:
            self.record = latest
            self._stored_version = latest.version
            self._cache_state()

    def lock_reason(self) -> str | None:
        """The source of the most severe active lock, or KILL_SWITCH for an operator's HALT."""
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
        set_base = _set_base(state, who, why)

        def mutate(rec: StateRecord) -> None:
            set_base(rec)
            if state is not TradingState.HALTED:
                rec.locks = [lk for lk in rec.locks if lk.source == Reason.EXCHANGE_BAN]

        return self._apply(now, who, why, mutate, force_event=True)

    def add_lock(self, lock: Lock, who: str, now: int, fired_key: str | None = None) -> TradingStateChanged | None:
        """An automatic restriction; it never lowers the state and replaces a lock of the same source."""
        def mutate(rec: StateRecord) -> None:
            rec.locks = [lk for lk in rec.locks if lk.source != lock.source] + [copy.copy(lock)]
            if fired_key is not None:
                rec.fired = {k: t for k, t in rec.fired.items() if t > now - FIRED_MEMORY_MS}
                rec.fired[fired_key] = now

        return self._apply(now, who, f"{lock.source}: {lock.why}", mutate, until=lock.until)

    def set_streak_mark(self, mark: int, now: int) -> None:
        """Persist the loss count a cooldown was started at (the next needs N new losses)."""
        def mutate(rec: StateRecord) -> None:
            rec.streak_mark = mark

        self._apply(now, "risk:loss_streak", "streak mark", mutate)

    def _expire(self, now: int) -> None:
        def mutate(rec: StateRecord) -> None:
            rec.locks = [lk for lk in rec.locks if lk.until is None or lk.until > now]

        gone = sorted({lk.source for lk in self.record.locks if lk.until is not None and lk.until <= now})
        if gone:
            self._apply(now, "risk:expiry", f"lock expired: {', '.join(gone)}", mutate)
        else:
            self._cache_state()

    def _apply(self, now: int, who: str, why: str, mutate: Mutation, *, until: int | None = None,
               force_event: bool = False, persist: bool = True) -> TradingStateChanged | None:
        """Mutate a copy of the record, save it as version + 1 (compare-and-set), then publish.
        On a conflict the newer stored record is adopted and the change applied to it again."""
        for _ in range(5):
            previous = self._state
            rec = copy.deepcopy(self.record)
            mutate(rec)
            rec.changed_at = now
            rec.version = self.record.version + 1
            if persist:
                try:
                    self.store.save(rec, self._stored_version)
                except StateConflictError:
                    self._token = None
                    self.sync(now)
                    continue
                self._stored_version = rec.version
                self._token = self.store.token()
            self.record = rec
            self._cache_state()
            if self._state is not previous or force_event:
                return self._emit(previous, who, why, until if self._state is not previous else None, now)
            return None
        raise StateConflictError("trading state store kept changing; change not applied")

    def _emit(self, previous: TradingState, who: str, why: str, until: int | None,
              now: int) -> TradingStateChanged:
        event = TradingStateChanged.create(previous=previous.value, state=self._state.value, who=who, why=why,
                                           until=until, version=max(self.record.version, 1), event_time=now)
        self.events.append(event)
        if self.listener is not None:
            self.listener(event)
        return event

    def _cache_state(self) -> None:
        rec = self.record
        state = self.floor
        if rec.base.severity > state.severity:
            state = rec.base
        for lk in rec.locks:
            if lk.state.severity > state.severity:
                state = lk.state
        self._state = state
        expiries = [lk.until for lk in rec.locks if lk.until is not None]
        self._next_expiry = min(expiries) if expiries else _NEVER


def _set_base(state: TradingState, who: str, why: str) -> Mutation:
    def mutate(rec: StateRecord) -> None:
        rec.base, rec.who, rec.why = state, who, why

    return mutate
