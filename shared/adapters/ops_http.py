"""`/healthz`, `/readyz` and `/metrics` for the AKS services (executor and ingestor), on aiohttp.

- `/healthz`: 200 while the event loop answers (the liveness probe; a wedged loop fails it).
- `/readyz`: 200 only when every named readiness check passes, else 503; the JSON body names each
  check's result (and, for the executor, its role). A standby executor is alive but not active,
  so plain `/readyz` is 503 there: it answers "is this the replica trading?" (the deploy smoke
  check wants exactly that of one replica).
- `/readyz?standby=ok`: also 200 for a standby (no lease, so no consumer yet) whose other checks
  pass: "can this replica trade, now or when it takes the lease over?". The executor pods'
  readiness probe uses it, so both replicas are Ready: a rolling update (maxUnavailable 0) can
  replace the standby, and the PodDisruptionBudget (minAvailable 1) lets a node drain evict one.
- `/metrics`: the Prometheus text exposition of the service's own `prometheus_client` registry.

One server for both services, which share one image: aiohttp is already python-binance's and the
async Azure SDKs' transport, and prometheus_client writes the exposition format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

Check = Callable[[], bool]
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Readiness:
    """Named checks, each a callable returning whether it passes (a raising check fails).

    `active_only` names the checks a standby cannot pass until it holds the lease (the executor:
    `consumer_connected`, `lease_held`); with it the replica reports a role, `active` while
    `lease_held` passes, else `standby`."""

    def __init__(self, *, active_only: tuple[str, ...] = (), **checks: Check) -> None:
        self.checks = dict(checks)
        self.active_only = active_only

    def results(self) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for name, check in self.checks.items():
            try:
                out[name] = bool(check())
            except Exception:
                log.warning("readiness check %s raised", name, exc_info=True)
                out[name] = False
        return out


def build_app(registry: CollectorRegistry, readiness: Readiness,
              on_scrape: Callable[[], None] | None = None) -> web.Application:
    """The three routes; `on_scrape` runs before each `/metrics` render (to refresh gauges)."""

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        results = readiness.results()
        ready = all(results.values())
        body: dict[str, object] = {"ready": ready, "checks": results}
        if readiness.active_only:
            role = "active" if results.get("lease_held") else "standby"
            if not ready and role == "standby" and request.query.get("standby") == "ok":
                ready = all(v for k, v in results.items() if k not in readiness.active_only)
            body = {"ready": ready, "role": role, "checks": results}
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(_request: web.Request) -> web.Response:
        if on_scrape is not None:
            on_scrape()
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
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
