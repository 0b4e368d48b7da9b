"""One Binance market-stream connection that keeps itself alive, on the `websockets` library.

Why not python-binance's `BinanceSocketManager` (1.0.37): its read loop ends on a full queue
(`BinanceWebsocketQueueOverflow`, 100 messages by default) and on the first message that is not
JSON, after which `recv()` raises `ReadLoopClosed` and what was queued is discarded; after an abrupt
close it reconnects by itself and frames still buffered can be lost without the caller knowing;
and its no-message timeout only logs. Each of those would have to be worked around from outside
its private loop. `websockets` gives one plain `async for` over frames with TCP back-pressure (its
small receive buffer stops reading the socket instead of dropping), answers pings itself, and
leaves reconnecting, the stale timer and the raw text of a bad message to us, which is what
resilience needs: every way a connection ends is a return from `run_once`, then a backoff, then
a new connection, and the ingestor's gap check backfills whatever was missed meanwhile.

Limits respected here: connection attempts go through a shared `ConnectionThrottle` (300 per
5 minutes per IP); the client sends no pings of its own (`ping_interval=None`: only pongs to
Binance's pings, far below 5 messages per second); a connection is rotated before Binance's
24-hour cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from .stream_messages import Reconnect
from .streams import CONNECTION_LIFETIME_S, CONNECTION_WINDOW_S, MAX_CONNECTIONS_PER_WINDOW, StreamKey, stream_url

log = logging.getLogger(__name__)

# A handler gets the frame (text, or bytes for a binary frame) and the perf_counter_ns it was received at.
MessageHandler = Callable[[str | bytes, int], Awaitable[Reconnect | None]]


class ConnectionThrottle:
    """At most `limit` connection attempts per `window` seconds (Binance: 300 per 5 minutes per IP),
    shared by every connection of the process. Keeps at most `limit` timestamps."""

    def __init__(self, limit: int = MAX_CONNECTIONS_PER_WINDOW, window: float = CONNECTION_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._limit, self._window, self._clock, self._sleep = limit, window, clock, sleep
        self._attempts: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                while self._attempts and now - self._attempts[0] >= self._window:
                    self._attempts.popleft()
                if len(self._attempts) < self._limit:
                    self._attempts.append(now)
                    return
                await self._sleep(self._window - (now - self._attempts[0]))


class Backoff:
    """Jittered exponential backoff: attempt n waits uniformly in [d/2, d], d = min(cap, base * 2**n)."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self._rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self) -> float:
        d = min(self.cap, self.base * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return d / 2 + self._rng.random() * d / 2

    def reset(self) -> None:
        self.attempt = 0


@dataclass(slots=True)
class ConnectionState:
    """What the ops endpoints and the totals need to know about one connection."""

    url: str
    connected: bool = False
    connects: int = 0
    reconnects: int = 0
    stale_reconnects: int = 0
    rotations: int = 0
    last_message: float = 0.0  # time.monotonic() of the last frame received
    last_close_reason: str = ""


class StreamConnection:
    """Runs one connection for `keys` until `stop` is set: connect, read, and on any end reconnect
    with backoff. The stale timer runs from the last frame received (event times may be old)."""

    def __init__(self, base_url: str, keys: Sequence[StreamKey], handler: MessageHandler, *,
                 stale_timeout: float = 30.0, rotate_after: float = CONNECTION_LIFETIME_S - 600.0,
                 throttle: ConnectionThrottle | None = None, backoff: Backoff | None = None,
                 open_timeout: float = 10.0, close_timeout: float = 2.0) -> None:
        if stale_timeout <= 0:
            raise ValueError("stale_timeout must be positive")
        self.keys = tuple(keys)
        self.state = ConnectionState(url=stream_url(base_url, self.keys))
        self._handler = handler
        self._stale = stale_timeout
        self._rotate_after = rotate_after
        self._throttle = throttle or ConnectionThrottle()
        self._backoff = backoff or Backoff()
        self._open_timeout, self._close_timeout = open_timeout, close_timeout
        self._busy = False

    async def run(self, stop: asyncio.Event) -> None:
        first = True
        while not stop.is_set():
            if not first:
                self.state.reconnects += 1
                delay = self._backoff.next_delay()
                log.info("stream %s: reconnecting in %.2fs (%s)", self.state.url, delay, self.state.last_close_reason)
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            first = False
            await self._throttle.acquire()
            if stop.is_set():
                break
            self.state.last_close_reason = await self.run_once(stop)

    async def run_once(self, stop: asyncio.Event) -> str:
        """One connection, from connect to its end; returns why it ended."""
        state = self.state
        try:
            ws = await connect(state.url, ping_interval=None, open_timeout=self._open_timeout,
                               close_timeout=self._close_timeout, compression=None, max_size=1 << 20,
                               proxy=None)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            return f"connect failed: {type(exc).__name__}: {exc}"
        state.connected = True
        state.connects += 1
        opened = state.last_message = time.monotonic()
        reason: list[str] = []
        watchdog = asyncio.create_task(self._watch(ws, stop, opened, reason))
        handler, got_any = self._handler, False
        try:
            async for frame in ws:
                state.last_message = time.monotonic()
                if not got_any:
                    got_any = True
                    self._backoff.reset()  # a connection that delivers ends the backoff series
                self._busy = True  # a long backfill inside the handler is not silence
                control = await handler(frame, time.perf_counter_ns())
                self._busy = False
                state.last_message = time.monotonic()
                if control is not None:
                    reason.append(control.reason)
                    await ws.close()
                    break
        except ConnectionClosed as exc:
            if not reason:
                reason.append(f"closed: {exc}")
        except OSError as exc:
            reason.append(f"socket error: {exc}")
        finally:
            watchdog.cancel()
            self._busy = False
            state.connected = False
            await ws.close()
        return reason[0] if reason else "closed by the server"

    async def _watch(self, ws: ClientConnection, stop: asyncio.Event, opened: float, reason: list[str]) -> None:
        """Closes the socket when stopping, when silent for the stale timeout, or when due for rotation."""
        tick = min(1.0, self._stale / 4)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)
            now = time.monotonic()
            if stop.is_set():
                reason.append("stopping")
            elif not self._busy and now - self.state.last_message > self._stale:
                self.state.stale_reconnects += 1
                reason.append(f"stale: no message for {now - self.state.last_message:.1f}s")
            elif now - opened > self._rotate_after:
                self.state.rotations += 1
                reason.append("rotated before Binance's 24-hour cut")
            else:
                continue
            await ws.close()
            return
