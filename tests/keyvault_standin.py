"""A strict local stand-in for Azure Key Vault's secrets API over HTTPS (no Key Vault emulator
exists): TLS with a self-signed certificate for 127.0.0.1, and the bearer challenge as Key Vault
answers it. A request without a token gets 401 and
`WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>", resource="https://vault.azure.net"`;
one with a token other than the one issued gets 401 `Unauthorized`; no `api-version` gets 400;
an unknown secret 404 `SecretNotFound`, in Key Vault's error shape. A secret is returned as Key
Vault's JSON (`value`, `id` with its version, `attributes`). Facts from the Key Vault REST and
authentication docs; the code is ours.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
RESOURCE = "https://vault.azure.net"
TOKEN = "standin-access-token"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (IP SAN) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "vault.pem", folder / "vault.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class StandinVault:
    """`with StandinVault(tmp_path, {"binance-api-key": "..."}) as vault:` serves on `vault.url`."""

    def __init__(self, folder: Path, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.cert, key = self_signed(folder)
        self.requests: list[dict[str, Any]] = []
        vault = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                auth = self.headers.get("Authorization")
                vault.requests.append({"path": url.path, "auth": auth})
                if "api-version" not in parse_qs(url.query):
                    self._send(400, {"error": {"code": "BadParameter", "message": "api-version is required"}})
                    return
                if auth is None:
                    challenge = (f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
                                 f'resource="{RESOURCE}"')
                    self._send(401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a "
                                               "Bearer or PoP token."}}, {"WWW-Authenticate": challenge})
                    return
                if auth != f"Bearer {TOKEN}":
                    self._send(401, {"error": {"code": "Unauthorized", "message": "AKV10032: Invalid issuer."}})
                    return
                parts = url.path.strip("/").split("/")
                if len(parts) < 2 or parts[0] != "secrets":
                    self._send(404, {"error": {"code": "NotFound", "message": "unknown path"}})
                    return
                name = parts[1]
                if name not in vault.secrets:
                    self._send(404, {"error": {"code": "SecretNotFound", "message":
                                               f"A secret with (name/id) {name} was not found in this key vault."}})
                    return
                version = "0123456789abcdef0123456789abcdef"
                self._send(200, {"value": vault.secrets[name], "id": f"{vault.url}/secrets/{name}/{version}",
                                 "attributes": {"enabled": True, "created": 1700000000, "updated": 1700000000,
                                                "recoveryLevel": "Recoverable+Purgeable"}})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> StandinVault:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


class StandinCredential:
    """A `TokenCredential` standing in for Entra ID (which cannot run here): it issues the one
    token the vault accepts, and records the scopes and tenant the SDK asked for after the
    challenge (the part under test)."""

    def __init__(self) -> None:
        self.asked: list[tuple[tuple[str, ...], str | None]] = []

    def get_token(self, *scopes: str, tenant_id: str | None = None, **_: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.asked.append((scopes, tenant_id))
        return AccessToken(TOKEN, 4_102_444_800)
