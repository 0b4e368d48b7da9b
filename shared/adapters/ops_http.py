"""Operations endpoints for the AKS services: `/healthz`, `/readyz` and Prometheus `/metrics`.

A small asyncio HTTP/1.1 server (GET only, one response per connection) and the Prometheus text
format 0.0.4, so a service needs no web framework and no metrics library for three endpoints.
Liveness answers 200 while the event loop runs; readiness and the metrics text come from
callables the service passes in, evaluated on each request, so nothing is cached or grows.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    parts = []
    for k, v in labels.items():
        v = v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        parts.append(f'{k}="{v}"')
    return "{" + ",".join(parts) + "}"


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass(slots=True)
class Family:
    """One metric family: name, type (counter, gauge), help and its samples (labels, value)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        lines += [f"{self.name}{_labels(lb)} {_num(v)}" for lb, v in self.samples]
        return "\n".join(lines)


class Histogram:
    """A fixed-bucket histogram (cumulative on output), in seconds; constant memory."""

    def __init__(self, name: str, help: str, buckets: Sequence[float]) -> None:
        self.name, self.help = name, help
        self.buckets = tuple(sorted(buckets))
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        acc = 0
        for bound, n in zip((*self.buckets, math.inf), self.counts, strict=True):
            acc += n
            lines.append(f'{self.name}_bucket{{le="{_num(bound)}"}} {acc}')
        lines += [f"{self.name}_sum {_num(self.sum)}", f"{self.name}_count {self.count}"]
        return "\n".join(lines)


def render(parts: Iterable[Family | Histogram]) -> str:
    return "\n".join(p.render() for p in parts) + "\n"


class OpsServer:
    """Serves the three endpoints on `host:port` (port 0 picks a free one, see `.port`)."""

    def __init__(self, *, ready: Callable[[], tuple[bool, str]], metrics: Callable[[], str],
                 host: str = "0.0.0.0", port: int = 8080) -> None:
        self._ready, self._metrics = ready, metrics
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("ops endpoints on %s:%d (/healthz /readyz /metrics)", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            status, ctype, body = self._respond(method, path)
            head = (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                    f"Connection: close\r\n\r\n")
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def _respond(self, method: str, path: str) -> tuple[str, str, bytes]:
        text = "text/plain; charset=utf-8"
        if method != "GET":
            return "405 Method Not Allowed", text, b"GET only\n"
        if path == "/healthz":
            return "200 OK", text, b"ok\n"
        if path == "/readyz":
            ok, why = self._ready()
            return ("200 OK" if ok else "503 Service Unavailable"), text, (why + "\n").encode()
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_METRICS, self._metrics().encode()
        return "404 Not Found", text, b"not found\n"
