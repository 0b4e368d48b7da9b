"""HTTP-triggered functions served on loopback at /api/<route>, as `func start` serves them, and
GET /admin/host/status (the host's state and each trigger's counts).

Requests become `azure.functions.HttpRequest`s and the function's `HttpResponse` is sent back.
Like Core Tools, the local host does not check function keys: `authLevel` is reported, not enforced,
so bind it to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import azure.functions as func
from aiohttp import web

from .bindings import HttpFunction

log = logging.getLogger("devhost")


def _match(route: str, path: str) -> dict[str, str] | None:
    """Route params when `path` (below /api/) matches `route` ("state/{symbol}"), else None."""
    want, got = route.split("/"), path.strip("/").split("/")
    if len(want) != len(got):
        return None
    params: dict[str, str] = {}
    for w, g in zip(want, got, strict=True):
        if w.startswith("{") and w.endswith("}"):
            params[w[1:-1].split(":", 1)[0]] = g
        elif w.lower() != g.lower():
            return None
    return params


def build_app(functions: Sequence[HttpFunction], status: Callable[[], dict[str, Any]] | None = None) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        for fn in functions:
            params = _match(fn.route, path)
            if params is None:
                continue
            if fn.methods and request.method not in fn.methods:
                return web.Response(status=405, text=f"{request.method} not allowed for {fn.function}\n")
            req = func.HttpRequest(method=request.method, url=str(request.url), headers=dict(request.headers),
                                   params=dict(request.query), route_params=params, body=await request.read())
            try:
                resp: Any = await asyncio.to_thread(fn.call, **{fn.arg_name: req})
            except Exception:
                log.exception("function %s raised", fn.function)
                return web.Response(status=500, text="function raised; see the host log\n")
            if isinstance(resp, str):
                return web.Response(text=resp)
            headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-type"}
            return web.Response(status=resp.status_code, body=resp.get_body(), headers=headers,
                                content_type=resp.mimetype or "text/plain", charset=resp.charset or None)
        return web.Response(status=404, text="no function at this route\n")

    async def host_status(request: web.Request) -> web.StreamResponse:
        # Like the Functions host's admin API: is it running, and what has each trigger done.
        return web.json_response({"state": "Running", **(status() if status is not None else {})})

    app = web.Application()
    app.router.add_route("*", "/api/{path:.*}", handle)
    app.router.add_get("/admin/host/status", host_status)
    return app


async def serve(functions: Sequence[HttpFunction], host: str, port: int,
                status: Callable[[], dict[str, Any]] | None = None) -> web.AppRunner:
    """Start serving (the functions, and GET /admin/host/status); the caller cleans the runner up."""
    runner = web.AppRunner(build_app(functions, status))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    for fn in functions:
        log.info("http: %s %s at http://%s:%d/api/%s", fn.function, ",".join(fn.methods) or "*", host, port,
                 fn.route)
    return runner
