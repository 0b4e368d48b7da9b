"""The shared state documents' Blob client retries a transient error within seconds.

The storage SDK's default retry waits 15 s before the first retry (then 18 s and 24 s): a risk
batch reading the account snapshot through one 503 would hold its partition for that long. The
documents' client (shared/adapters/azure/settings.py `blob_client_options`) retries a second later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.adapters.azure.blob_documents import BlobDocumentStore

KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")


class _FirstRequestBusy(BaseHTTPRequestHandler):
    """Blob storage as seen through one ServerBusy: the first request is a 503, then HEAD answers
    with the blob's properties."""

    requests = 0

    def do_HEAD(self) -> None:
        type(self).requests += 1
        if type(self).requests == 1:
            self.send_response(503)
            self.send_header("x-ms-error-code", "ServerBusy")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        for name, value in (("x-ms-blob-type", "BlockBlob"), ("Content-Length", "2"), ("ETag", '"0x8D1"'),
                            ("Last-Modified", "Thu, 03 Dec 2026 08:00:00 GMT")):
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def busy_once() -> Iterator[int]:
    _FirstRequestBusy.requests = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FirstRequestBusy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_document_read_through_one_503_retries_a_second_later(busy_once: int) -> None:
    conn = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{busy_once}/devstoreaccount1;")
    store = BlobDocumentStore.from_settings(environ={"STATE_STORAGE": conn})
    started = time.monotonic()
    assert store.etag("account/BTCUSDT") == '"0x8D1"'
    took = time.monotonic() - started
    assert _FirstRequestBusy.requests == 2
    assert took < 3.0, f"read took {took:.1f} s"
