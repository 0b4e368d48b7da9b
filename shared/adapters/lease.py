"""One active writer: a lease that one replica holds while a standby waits for it to lapse.

Layer 2 risk is authoritative only with one writer of orders, so the executor consumes nothing
until it holds the lease, renews it while it runs, and stops the moment a renewal fails or its
local deadline passes (a holder that cannot reach the store must assume the lease is gone
before the store lets a standby take it). Each acquisition bumps an epoch stored with the
lease; the executor uses it as the Event Hubs `owner_level`, so a displaced replica's receivers
are disconnected by the service even if it missed that it lost the lease.

Implementations: `shared.adapters.azure.blob_lease.BlobLease` (a Blob lease, in Azure and on
Azurite), `shared.adapters.local.file_lease.FileLease` (an `flock` on a file, one machine) and
`InMemoryLease` here (tests of the keeper's logic).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Lease(Protocol):
    """A lease on one named resource; every method is one attempt (the keeper loops)."""

    @property
    def name(self) -> str:
        """What is leased (a blob URL path, a file path): for logs, never a credential."""
        ...

    @property
    def duration_s(self) -> float | None:
        """How long the store keeps the lease without a renewal; None if it lapses only when the
        holder's process dies (a file lock)."""
        ...

    async def acquire(self) -> int | None:
        """Try once: the new epoch (greater than every earlier holder's) when won, None when
        another holder has it. Raises on a transport failure."""
        ...

    async def renew(self) -> bool:
        """Extend the lease; False when it is no longer ours. Raises on a transport failure."""
        ...

    async def release(self) -> None:
        """Give the lease up now, so a standby takes over without waiting for it to lapse."""
        ...


class LeaseKeeper:
    """Acquires a lease, renews it, and says the moment it can no longer be trusted.

    `held` is True only between a successful acquisition and the first of: a failed renewal, a
    local deadline passing without a successful renewal (duration minus `safety_s`, measured on
    the monotonic clock from the last success's start), or `release()`. `lost` is set when the
    lease was lost rather than released; the service stops consuming then.
    """

    def __init__(self, lease: Lease, *, renew_every_s: float | None = None, retry_every_s: float = 2.0,
                 safety_s: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        duration = lease.duration_s
        if renew_every_s is None:
            renew_every_s = duration / 3 if duration else 5.0
        if duration is not None and renew_every_s + safety_s >= duration:
            raise ValueError(f"renew_every_s ({renew_every_s}) + safety_s ({safety_s}) must be under the "
                             f"lease duration ({duration})")
        self.lease = lease
        self.renew_every_s = renew_every_s
        self.retry_every_s = retry_every_s
        self.safety_s = safety_s
        self._clock = clock
        self.epoch: int | None = None
        self.lost = asyncio.Event()
        self._valid_until = float("-inf")
        self._held = False

    @property
    def held(self) -> bool:
        if not self._held:
            return False
        if self.lease.duration_s is not None and self._clock() > self._valid_until:
            self._lose("local deadline passed without a successful renewal")
        return self._held

    def _mark_valid(self, started: float) -> None:
        duration = self.lease.duration_s
        self._valid_until = float("inf") if duration is None else started + duration - self.safety_s

    def _lose(self, why: str) -> None:
        if self._held:
            log.error("lease %s lost (epoch %s): %s", self.lease.name, self.epoch, why)
        self._held = False
        self.lost.set()

    async def try_acquire(self) -> bool:
        """One attempt; a transport failure counts as not acquired (logged)."""
        started = self._clock()
        try:
            epoch = await self.lease.acquire()
        except Exception as exc:
            log.warning("lease %s: acquire failed: %s", self.lease.name, type(exc).__name__)
            return False
        if epoch is None:
            return False
        self.epoch, self._held = epoch, True
        self.lost.clear()
        self._mark_valid(started)
        log.info("lease %s acquired (epoch %d)", self.lease.name, epoch)
        return True

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait as a standby until the lease is ours (True) or `stop` is set (False)."""
        waiting_logged = False
        while not stop.is_set():
            if await self.try_acquire():
                return True
            if not waiting_logged:
                log.info("lease %s held by another replica: standing by (retry every %.1f s)",
                         self.lease.name, self.retry_every_s)
                waiting_logged = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.retry_every_s)
        return False

    async def renew_once(self) -> bool:
        """One renewal; returns whether the lease is still held."""
        if not self._held:
            return False
        started = self._clock()
        try:
            ok = await self.lease.renew()
        except Exception as exc:  # transport: keep it until the local deadline says otherwise
            log.warning("lease %s: renewal failed: %s", self.lease.name, type(exc).__name__)
            return self.held
        if not ok:
            self._lose("another replica holds it")
            return False
        self._mark_valid(started)
        return self.held

    async def keep(self, stop: asyncio.Event) -> None:
        """Renew until `stop` is set or the lease is lost (then `lost` is set and this returns)."""
        while self._held and not stop.is_set():
            wait = self.renew_every_s
            if self.lease.duration_s is not None:  # never sleep past the local deadline
                wait = max(0.0, min(wait, self._valid_until - self._clock()))
            try:
                await asyncio.wait_for(stop.wait(), wait)
                return
            except TimeoutError:
                pass
            if not await self.renew_once():
                return

    async def release(self) -> None:
        """Release if held (best effort: a failure leaves the lease to lapse by itself)."""
        if not self._held:
            return
        self._held = False
        try:
            await self.lease.release()
            log.info("lease %s released (epoch %s)", self.lease.name, self.epoch)
        except Exception as exc:
            log.warning("lease %s: release failed (%s); it lapses by itself", self.lease.name,
                        type(exc).__name__)


class InMemoryLease:
    """Leases sharing one `InMemoryLease.Store` compete as replicas would (tests of the keeper)."""

    class Store:
        def __init__(self) -> None:
            self.holder: str | None = None
            self.epoch = 0

    def __init__(self, store: InMemoryLease.Store, name: str = "memory") -> None:
        self.store = store
        self._name = name
        self._id = uuid.uuid4().hex

    @property
    def name(self) -> str:
        return self._name

    @property
    def duration_s(self) -> float | None:
        return None

    async def acquire(self) -> int | None:
        if self.store.holder not in (None, self._id):
            return None
        self.store.holder = self._id
        self.store.epoch += 1
        return self.store.epoch

    async def renew(self) -> bool:
        return self.store.holder == self._id

    async def release(self) -> None:
        if self.store.holder == self._id:
            self.store.holder = None
