"""One active executor: the Blob lease (on Azurite), the file lock, and the keeper's failover.

The failover figures the README quotes come from these tests (printed with -s):
a released lease is taken over within the standby's retry interval; a holder that dies keeps a
Blob lease until it lapses (15 s) and a file lock not at all (the kernel drops it at exit).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from shared.adapters.lease import InMemoryLease, LeaseKeeper
from shared.adapters.local.file_lease import FileLease

AZURITE = "UseDevelopmentStorage=true"


def run(coro):
    return asyncio.run(coro)


# --- the keeper ------------------------------------------------------------------------------


class _FlakyLease(InMemoryLease):
    """An in-memory lease with a duration whose renewals can be made to fail in transport."""

    def __init__(self, store: InMemoryLease.Store, duration: float) -> None:
        super().__init__(store)
        self.duration = duration
        self.fail_renewals = False

    @property
    def duration_s(self) -> float | None:
        return self.duration

    async def renew(self) -> bool:
        if self.fail_renewals:
            raise ConnectionError("storage unreachable")
        return await super().renew()


def test_keeper_gives_up_the_lease_when_renewals_fail_past_its_local_deadline() -> None:
    now = [100.0]
    lease = _FlakyLease(InMemoryLease.Store(), duration=15.0)
    keeper = LeaseKeeper(lease, renew_every_s=5.0, safety_s=3.0, clock=lambda: now[0])
    assert run(keeper.try_acquire()) and keeper.held and keeper.epoch == 1
    lease.fail_renewals = True
    now[0] = 110.0
    assert run(keeper.renew_once())  # a transport failure inside the deadline keeps the lease
    now[0] = 112.1  # acquired at 100: valid until 100 + 15 - 3
    assert not run(keeper.renew_once())
    assert not keeper.held and keeper.lost.is_set()


def test_keeper_rejects_a_renewal_period_that_leaves_no_margin() -> None:
    with pytest.raises(ValueError, match="lease duration"):
        LeaseKeeper(_FlakyLease(InMemoryLease.Store(), duration=15.0), renew_every_s=13.0, safety_s=3.0)


def test_a_standby_takes_over_a_released_lease_with_a_greater_epoch() -> None:
    async def scenario() -> None:
        store = InMemoryLease.Store()
        active, standby = LeaseKeeper(InMemoryLease(store)), LeaseKeeper(InMemoryLease(store), retry_every_s=0.01)
        stop = asyncio.Event()
        assert await active.try_acquire()
        waiting = asyncio.create_task(standby.acquire(stop))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await active.release()
        assert await asyncio.wait_for(waiting, 1.0)
        assert standby.epoch == 2 and not await active.renew_once()

    run(scenario())


# --- the file lock ---------------------------------------------------------------------------


def test_file_lease_is_exclusive_and_its_epoch_grows(tmp_path: Path) -> None:
    async def scenario() -> None:
        path = tmp_path / "state" / "executor.lease"
        a, b = FileLease(path, holder="a"), FileLease(path, holder="b")
        assert await a.acquire() == 1
        assert await b.acquire() is None
        assert await a.renew() and not await b.renew()
        await a.release()
        assert not await a.renew()
        assert await b.acquire() == 2
        path.unlink()  # a lock on a deleted file protects nothing
        assert not await b.renew()
        await b.release()

    run(scenario())


def test_file_lease_is_taken_over_the_moment_its_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "executor.lease"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import asyncio, sys, time
            from shared.adapters.local.file_lease import FileLease
            lease = FileLease({str(path)!r})
            assert asyncio.run(lease.acquire()) == 1
            print("held", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"

        async def takeover() -> float:
            keeper = LeaseKeeper(FileLease(path), retry_every_s=0.05)
            assert not await keeper.try_acquire()
            holder.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            assert await asyncio.wait_for(keeper.acquire(asyncio.Event()), 5.0)
            assert keeper.epoch == 2
            await keeper.release()
            return time.monotonic() - killed

        failover = run(takeover())
        print(f"file lease failover after SIGKILL: {failover * 1000:.0f} ms (retry every 50 ms)")
        assert failover < 1.0
    finally:
        holder.kill()
        holder.wait()


# --- the Blob lease on Azurite -----------------------------------------------------------------


def _blob_lease(container: str, **kwargs):
    from shared.adapters.azure.blob_lease import BlobLease

    return BlobLease.from_settings(container=container, environ={"CHECKPOINT_STORAGE": AZURITE}, **kwargs)


@pytest.mark.azurite
def test_blob_lease_is_exclusive_released_to_a_standby_and_lapses_when_its_holder_dies() -> None:
    container = f"lease-{uuid.uuid4().hex[:12]}"

    async def scenario() -> tuple[float, float]:
        a, b = _blob_lease(container, holder="a"), _blob_lease(container, holder="b")
        try:
            active = LeaseKeeper(a, renew_every_s=5.0)
            standby = LeaseKeeper(b, retry_every_s=0.2)
            assert await active.try_acquire() and active.epoch == 1  # creates container and blob
            assert not await standby.try_acquire()
            assert await active.renew_once()

            # Graceful: released on SIGTERM, taken over within the standby's retry interval.
            waiting = asyncio.create_task(standby.acquire(asyncio.Event()))
            await asyncio.sleep(0.3)
            released = time.monotonic()
            await active.release()
            assert await asyncio.wait_for(waiting, 5.0)
            graceful = time.monotonic() - released
            assert standby.epoch == 2

            # Crash: the holder stops renewing; the store keeps the lease until it lapses (15 s).
            crashed = time.monotonic()
            again = LeaseKeeper(a, retry_every_s=0.2)
            assert await asyncio.wait_for(again.acquire(asyncio.Event()), 30.0)
            lapse = time.monotonic() - crashed
            assert again.epoch == 3
            assert not await standby.renew_once() and standby.lost.is_set()  # the displaced one learns
            await again.release()
            return graceful, lapse
        finally:
            await a.close()
            await b.close()

    graceful, lapse = run(scenario())
    print(f"blob lease failover: released {graceful * 1000:.0f} ms, holder died {lapse:.1f} s (lease 15 s)")
    assert graceful < 1.0
    assert 13.0 < lapse < 20.0


class _OneDroppedRequest:
    """A loopback Blob endpoint whose first lease request fails with 503 (a storage node's
    transient error); then it grants the lease, as Blob storage does, and keeps the metadata."""

    def __init__(self) -> None:
        self.lease_requests = 0
        self.metadata: dict[str, str] = {"epoch": "4"}

    async def handle(self, request):
        from aiohttp import web

        comp = request.query.get("comp")
        if comp == "lease":
            self.lease_requests += 1
            if self.lease_requests == 1:
                return web.Response(status=503, headers={"x-ms-error-code": "ServerBusy"})
            return web.Response(status=201, headers={
                "x-ms-lease-id": request.headers["x-ms-proposed-lease-id"], "ETag": '"0x1"',
                "Last-Modified": "Thu, 03 Dec 2026 08:00:00 GMT"})
        if comp == "metadata":
            self.metadata = {k[len("x-ms-meta-"):]: v for k, v in request.headers.items()
                             if k.lower().startswith("x-ms-meta-")}
            return web.Response(status=200, headers={"ETag": '"0x2"'})
        headers = {"x-ms-blob-type": "BlockBlob", "Content-Length": "0", "ETag": '"0x1"',
                   "Last-Modified": "Thu, 03 Dec 2026 08:00:00 GMT"}
        headers.update({f"x-ms-meta-{k}": v for k, v in self.metadata.items()})
        return web.Response(status=200, headers=headers)


def test_blob_lease_retries_a_transient_error_within_seconds_not_the_sdks_15_s() -> None:
    """The storage SDK's default retry waits 15 s before its first retry: a renewal that met one
    503 would outlast a 15 s lease. The lease's client retries a second later."""
    from aiohttp import web

    from shared.adapters.azure.blob_lease import BlobLease

    server = _OneDroppedRequest()

    async def scenario() -> tuple[int | None, float]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", server.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        conn = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
                f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
        lease = BlobLease.from_settings(container="leases", environ={"CHECKPOINT_STORAGE": conn})
        try:
            started = time.monotonic()
            epoch = await asyncio.wait_for(lease.acquire(), 10.0)
            return epoch, time.monotonic() - started
        finally:
            await lease.close()
            await runner.cleanup()

    epoch, took = run(scenario())
    assert server.lease_requests == 2  # the 503, then the retry that got the lease
    assert epoch == 5 and server.metadata["epoch"] == "5"
    assert took < 3.0, f"acquire took {took:.1f} s"
