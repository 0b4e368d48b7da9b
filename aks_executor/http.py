"""`/healthz`, `/readyz` and `/metrics` on one aiohttp server (port 8000 by default).

- `/healthz`: 200 while the event loop answers (the liveness probe; a wedged loop fails it).
- `/readyz`: 200 only when every readiness check passes (consumer connected, time synced, not
  banned, lease held), else 503; the body names each check's result. A standby replica is
  alive but not ready, so the Service routes nothing to it and a rollout waits for the lease.
- `/metrics`: Prometheus text format from `ExecutorMetrics`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .metrics import CONTENT_TYPE, ExecutorMetrics

log = logging.getLogger(__name__)

Check = Callable[[], bool]
READINESS_CHECKS = ("consumer_connected", "time_synced", "not_banned", "lease_held")


class Readiness:
    """Named checks, each a callable returning whether it passes (a raising check fails)."""

    def __init__(self, **checks: Check) -> None:
        self.checks = dict(checks)

    def results(self) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for name, check in self.checks.items():
            try:
                out[name] = bool(check())
            except Exception:
                log.warning("readiness check %s raised", name, exc_info=True)
                out[name] = False
        return out


def build_app(metrics: ExecutorMetrics, readiness: Readiness, on_scrape: Callable[[], None] | None = None) -> Any:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        results = readiness.results()
        ready = all(results.values())
        return web.json_response({"ready": ready, "checks": results}, status=200 if ready else 503)

    async def metrics_handler(_request: web.Request) -> web.Response:
        if on_scrape is not None:
            on_scrape()
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    return app


class HttpServer:
    """The probes and metrics server; `start()` binds, `stop()` closes it."""

    def __init__(self, app: Any, host: str = "0.0.0.0", port: int = 8000) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self.host, self.port = host, port

    async def start(self) -> int:
        """Bind and serve; returns the bound port (port 0 picks a free one)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = addresses[0][1]
        log.info("http: /healthz /readyz /metrics on %s:%d", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        await self._runner.cleanup()
