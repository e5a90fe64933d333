"""No secret ever leaves: not in return values, exceptions, log lines or stored config.

Credentials are created with distinctive secrets (a PEM private key, an OAuth2 client
secret, a bearer token); then every service function and every operation is called,
including failing ones, and everything they produced - results, errors with their
tracebacks, and every log record at DEBUG - is searched for those strings. The second
test does the same through every route of the real app, and reads the audit rows too.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from ehr_api.audit.models import AuditLog
from ehr_api.db import Database
from ehr_api.errors import DomainError
from ehr_api.integrations import service as integrations
from ehr_api.integrations.models import IntegrationCredential
from ehr_api.integrations.orchestrator import Orchestrator
from ehr_api.integrations.schemas import IntegrationUpdate
from ehr_api.security.crypto import Keyring
from pydantic import BaseModel
from sqlalchemy import select

from tests.ehr_api.integrations.api import Api
from tests.ehr_api.integrations.conftest import Orgs, Pem, fhir, hl7
from tests.ehr_api.integrations.peers import BEARER, CLIENT_SECRET, FhirPeer

WRONG_SECRET = "WRONG-client-secret-0c4e1b"
NEW_BEARER = "rotated-bearer-5a7f3d"


def key_lines(pem_text: str) -> list[str]:
    """The base64 body lines of a PEM block: any one of them in output is a leak."""
    return [line for line in pem_text.splitlines() if line and not line.startswith("-----")]


class Collector:
    """Everything the code under test handed back, as text."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def keep(self, value: Any) -> Any:
        if isinstance(value, BaseModel):
            self.texts.append(value.model_dump_json())
        self.texts.append(repr(value))
        self.texts.append(str(value))
        return value

    async def call(self, action: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return self.keep(await action())
        except (DomainError, ValueError) as exc:
            self.texts.append("".join(traceback.format_exception(exc)))
            self.texts.append(repr(exc) + repr(getattr(exc, "extra", None)))
            return None


async def test_secrets_never_leave(
    database: Database,
    orgs: Orgs,
    keyring: Keyring,
    orchestrator: Orchestrator,
    pem: Pem,
    fhir_peer: FhirPeer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [CLIENT_SECRET, BEARER, WRONG_SECRET, NEW_BEARER, *key_lines(pem.client_key)]
    out = Collector()
    tls = {"tls_cert": pem.client_cert, "tls_key": pem.client_key, "ca_cert": pem.ca}
    oauth = {
        "type": "oauth2_client_credentials",
        "token_url": f"{fhir_peer.base_url}/token",
        "client_id": "ehr-platform",
    }
    base = {"fhir_server_url": f"{fhir_peer.base_url}/t", "allow_insecure_http": True}

    async with database.org_session(orgs.a) as db:
        ris = await out.call(
            lambda: integrations.create(
                db, data=hl7(tls_enabled=True, secrets=tls), keyring=keyring
            )
        )
        partner = await out.call(
            lambda: integrations.create(
                db,
                data=fhir("partner", **base, auth=oauth, secrets={"client_secret": CLIENT_SECRET}),
                keyring=keyring,
            )
        )
        bearer = await out.call(
            lambda: integrations.create(
                db,
                data=fhir("bearer", **base, auth={"type": "bearer"}, secrets={"token": BEARER}),
                keyring=keyring,
            )
        )
        # Failing writes: a key that is not a key, a secret where config belongs.
        await out.call(
            lambda: integrations.create(
                db, data=hl7("bad", secrets={"tls_key": CLIENT_SECRET}), keyring=keyring
            )
        )
        await out.call(
            lambda: integrations.create(
                db, data=fhir("bad2", auth={"type": "bearer", "token": BEARER}), keyring=keyring
            )
        )
        await out.call(
            lambda: integrations.create(
                db,
                data=fhir("bad3", auth={"type": "none"}, secrets={"token": BEARER}),
                keyring=keyring,
            )
        )

    async with database.org_session(orgs.a) as db:
        for item in (ris, partner, bearer):
            await out.call(lambda item=item: integrations.get(db, integration_id=item.id))
            await out.call(
                lambda item=item: integrations.load(db, integration_id=item.id, keyring=keyring)
            )
            await out.call(
                lambda item=item: integrations.test(
                    db, integration_id=item.id, keyring=keyring, orchestrator=orchestrator
                )
            )
        await out.call(lambda: integrations.list(db))
        for operation, params in (("metadata", {}), ("read", {"resource_type": "Patient", "id": "p"}),
                                  ("search", {"resource_type": "Patient"}), ("read", {"id": BEARER})):  # fmt: skip
            for item in (partner, bearer):
                await out.call(
                    lambda item=item, operation=operation, params=params: integrations.execute(
                        db, integration_id=item.id, operation=operation, params=params,
                        keyring=keyring, orchestrator=orchestrator,
                    )
                )  # fmt: skip
        await out.call(
            lambda: integrations.execute(
                db, integration_id=ris.id, operation="send", params={"message": "not hl7"},
                keyring=keyring, orchestrator=orchestrator,
            )
        )  # fmt: skip

    async with database.org_session(orgs.a) as db:
        updates = [
            (bearer, {"version": 1, "secrets": {"token": NEW_BEARER}}),
            (partner, {"version": 1, "secrets": {"client_secret": WRONG_SECRET}}),
            (ris, {"version": 1, "secrets": {"tls_key": pem.server_key}}),  # mismatched key
            (ris, {"version": 9, "secrets": {"tls_key": pem.client_key}}),  # stale
        ]
        for item, body in updates:
            await out.call(
                lambda item=item, body=body: integrations.update(
                    db, integration_id=item.id, data=IntegrationUpdate.model_validate(body),
                    keyring=keyring, orchestrator=orchestrator,
                )
            )  # fmt: skip
        # The wrong client secret is now in use: the token endpoint refuses and echoes it.
        await out.call(
            lambda: integrations.test(
                db, integration_id=partner.id, keyring=keyring, orchestrator=orchestrator
            )
        )
        await out.call(
            lambda: integrations.execute(
                db, integration_id=partner.id, operation="metadata", params={},
                keyring=keyring, orchestrator=orchestrator,
            )
        )  # fmt: skip
        await out.call(
            lambda: integrations.delete(db, integration_id=bearer.id, orchestrator=orchestrator)
        )

    async with database.platform_session(read_only=True) as db:
        rows = (await db.execute(select(IntegrationCredential))).scalars().all()
        out.texts.extend(repr(row.config) + repr(row.secrets) + repr(row) for row in rows)

    assert len(out.texts) > 50 and fhir_peer.token_requests  # the calls really happened
    assert ("ehr-platform", WRONG_SECRET) in fhir_peer.presented  # sent, yet not leaked
    everything = "\n".join(
        [*out.texts, caplog.text, *(repr(record.args) for record in caplog.records)]
    )
    leaked = [secret for secret in secrets if secret in everything]
    for secret in leaked:  # pragma: no cover - shows where, when it fails
        at = everything.index(secret)
        print("LEAK:", everything[max(0, at - 300) : at + 100])
    assert leaked == []


async def test_secrets_never_leave_through_the_api(
    api: Api, pem: Pem, fhir_peer: FhirPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [CLIENT_SECRET, BEARER, WRONG_SECRET, *key_lines(pem.client_key)]
    await api.create_org("org-a")
    admin = api.as_("org_admin", "org-a")
    base = "/api/admin/integrations"
    texts: list[str] = []

    async def call(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await api.client.request(method, url, json=body, headers=admin)
        texts.append(f"{response.status_code} {response.headers} {response.text}")
        return response.json() if response.content else {}

    fhir_config = {"fhir_server_url": f"{fhir_peer.base_url}/t", "allow_insecure_http": True}
    oauth = {
        "type": "oauth2_client_credentials",
        "token_url": f"{fhir_peer.base_url}/token",
        "client_id": "ehr-platform",
    }
    tls = {"tls_cert": pem.client_cert, "tls_key": pem.client_key, "ca_cert": pem.ca}
    created = [
        await call("POST", base, {"vendor": "hl7-v2x", "name": "ris", "secrets": tls,
                                  "config": {"mllp_host": "127.0.0.1", "mllp_port": 9, "tls_enabled": True}}),
        await call("POST", base, {"vendor": "fhir-r4", "name": "oauth", "secrets": {"client_secret": CLIENT_SECRET},
                                  "config": {**fhir_config, "auth": oauth}}),
        await call("POST", base, {"vendor": "fhir-r4", "name": "bearer", "secrets": {"token": BEARER},
                                  "config": {**fhir_config, "auth": {"type": "bearer"}}}),
    ]  # fmt: skip
    assert all("id" in item for item in created), texts
    await call("POST", base, {"vendor": "hl7-v2x", "name": "bad", "secrets": {"tls_key": BEARER},
                              "config": {"inbound_port": 2575}})  # fmt: skip
    await call("POST", base, {"vendor": "fhir-r4", "name": "bad2",
                              "config": {**fhir_config, "auth": {"type": "bearer", "token": BEARER}}})  # fmt: skip
    await call("GET", base)
    for item in created:
        url = f"{base}/{item['id']}"
        await call("GET", url)
        await call("POST", f"{url}/test")
        await call("POST", f"{url}/execute", {"operation": "metadata", "params": {}})
    oauth_url = f"{base}/{created[1]['id']}"
    await call("PATCH", oauth_url, {"version": 1, "secrets": {"client_secret": WRONG_SECRET}})
    await call("POST", f"{oauth_url}/test")  # refused by the token endpoint, which echoes it
    await call("POST", f"{oauth_url}/execute", {"operation": "metadata", "params": {}})
    await call("PATCH", oauth_url, {"version": 1, "secrets": {"client_secret": CLIENT_SECRET}})
    await call("DELETE", f"{base}/{created[2]['id']}")

    async with api.app.state.database.platform_session(read_only=True) as db:
        audit_rows = (await db.execute(select(AuditLog))).scalars().all()
    assert len(audit_rows) >= len(texts)
    texts.extend(repr(row.details) + repr(row.resource_ids) for row in audit_rows)
    assert ("ehr-platform", WRONG_SECRET) in fhir_peer.presented
    everything = "\n".join([*texts, caplog.text, *(repr(record.args) for record in caplog.records)])
    assert [secret for secret in secrets if secret in everything] == []
