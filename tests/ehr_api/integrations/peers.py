"""Real peers for the handler tests: a FHIR server and an OAuth2 token endpoint over HTTP(S).

A small Starlette app served by uvicorn on 127.0.0.1 (port 0) in a background thread, so
the handlers talk to a real socket, TLS stack and HTTP server - the only fake is the
server's behaviour, which the test controls through `FhirPeer`.
"""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CLIENT_ID = "ehr-platform"
CLIENT_SECRET = "cs-9f1c$&+secret"
BEARER = "static-bearer-7d2e"


@dataclass
class FhirPeer:
    """What the fake servers accept and what they saw."""

    base_url: str = ""
    fhir_version: str = "4.0.1"
    expires_in: int | None = 3600
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    presented: list[tuple[str | None, str | None]] = field(default_factory=list)
    metadata_auth: list[str | None] = field(default_factory=list)

    def valid_tokens(self) -> set[str]:
        return ({BEARER} | set(self.issued)) - self.revoked

    def app(self) -> Starlette:
        async def token(request: Request) -> JSONResponse:
            form = dict(parse_qsl((await request.body()).decode()))
            self.token_requests.append(form)
            client_id, secret = form.get("client_id"), form.get("client_secret")
            header = request.headers.get("authorization", "")
            if header.startswith("Basic "):
                pair = base64.b64decode(header[6:]).decode()
                user, _, password = pair.partition(":")
                client_id, secret = unquote_plus(user), unquote_plus(password)
            self.presented.append((client_id, secret))
            if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
                # Echo the secret back, as careless servers do: it must not reach our errors.
                return JSONResponse({"error": "invalid_client", "got": secret}, status_code=401)
            if form.get("grant_type") != "client_credentials":
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            issued = f"access-{len(self.issued) + 1}"
            self.issued.append(issued)
            body: dict[str, Any] = {"access_token": issued, "token_type": "Bearer"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            return JSONResponse(body)

        async def metadata(request: Request) -> JSONResponse:
            header = request.headers.get("authorization")
            self.metadata_auth.append(header)
            protected = request.path_params["tenant"] != "open"
            if protected and (
                header is None or header.removeprefix("Bearer ") not in self.valid_tokens()
            ):
                return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
            return JSONResponse(
                {
                    "resourceType": "CapabilityStatement",
                    "status": "active",
                    "fhirVersion": self.fhir_version,
                    "software": {"name": "Peer FHIR"},
                    "kind": "instance",
                    "format": ["json"],
                },
                media_type="application/fhir+json",
            )

        async def read(request: Request) -> JSONResponse:
            kind, ident = request.path_params["kind"], request.path_params["ident"]
            if ident == "missing":
                return JSONResponse({"resourceType": "OperationOutcome"}, status_code=404)
            return JSONResponse({"resourceType": kind, "id": ident})

        async def search(request: Request) -> JSONResponse:
            return JSONResponse(
                {"resourceType": "Bundle", "type": "searchset", "total": 0,
                 "link": [{"relation": "self", "url": str(request.url)}]}
            )  # fmt: skip

        return Starlette(
            routes=[
                Route("/token", token, methods=["POST"]),
                Route("/{tenant}/metadata", metadata),
                Route("/{tenant}/{kind}/{ident}", read),
                Route("/{tenant}/{kind}", search),
            ]
        )


@contextmanager
def serve(
    app: Starlette, *, certfile: str | None = None, keyfile: str | None = None
) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 in a thread; yields its base URL (https with a cert)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        lifespan="off",
        ws="none",
        http="h11",
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        ssl_cert_reqs=ssl.CERT_NONE,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test HTTP server did not start")
        time.sleep(0.01)
    try:
        yield f"{'https' if certfile else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
