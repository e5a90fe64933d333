"""Fixtures for the integration tests: a keyring, two organisations, TLS material, builders."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from ehr_api.db import Database
from ehr_api.integrations.orchestrator import Integration, Orchestrator
from ehr_api.integrations.schemas import IntegrationCreate
from ehr_api.integrations.validation import validate
from ehr_api.security.crypto import Keyring
from ehr_api.tenants.models import Organization
from pydantic import SecretStr

from tests.ehr_api.integrations.api import api  # noqa: F401 - the app fixture, for every test here
from tests.ehr_api.integrations.peers import FhirPeer, serve
from tests.pki import Pki


@dataclass(frozen=True)
class Orgs:
    a: uuid.UUID
    b: uuid.UUID


@dataclass(frozen=True)
class Pem:
    """The test PKI as text, the way an administrator pastes it into the API."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
async def orgs(database: Database) -> Orgs:
    async with database.platform_session() as db:
        a = Organization(slug="org-a", name="A")
        b = Organization(slug="org-b", name="B")
        db.add_all([a, b])
        await db.flush()
        return Orgs(a.id, b.id)


@pytest.fixture(scope="session")
def pem(pki: Pki) -> Pem:
    return Pem(
        ca=pki.ca.read_text(),
        server_cert=pki.server_cert.read_text(),
        server_key=pki.server_key.read_text(),
        client_cert=pki.client_cert.read_text(),
        client_key=pki.client_key.read_text(),
    )


def hl7(
    name: str = "ris", *, secrets: dict[str, Any] | None = None, **config: Any
) -> IntegrationCreate:
    """An hl7-v2x create request; `config` overrides a plain outbound endpoint."""
    return IntegrationCreate.model_validate(
        {
            "vendor": "hl7-v2x",
            "name": name,
            "config": {"mllp_host": "127.0.0.1", "mllp_port": 2575, **config},
            "secrets": secrets or {},
        }
    )


def fhir(
    name: str = "fhir", *, secrets: dict[str, Any] | None = None, **config: Any
) -> IntegrationCreate:
    """A fhir-r4 create request; `config` overrides an https server with no auth."""
    return IntegrationCreate.model_validate(
        {
            "vendor": "fhir-r4",
            "name": name,
            "config": {"fhir_server_url": "https://fhir.example.org/r4", **config},
            "secrets": secrets or {},
        }
    )


def integration(
    vendor: str,
    config: dict[str, Any],
    secrets: dict[str, str] | None = None,
    *,
    version: int = 1,
    integration_id: uuid.UUID | None = None,
    enabled: bool = True,
) -> Integration:
    """A validated, decrypted integration as the service would hand it to a handler."""
    model, plain = validate(vendor, config, secrets or {})
    return Integration(
        id=integration_id or uuid.uuid4(),
        org_id=uuid.UUID(int=1),
        vendor=vendor,
        name="test",
        version=version,
        enabled=enabled,
        config=model,
        secrets={name: SecretStr(value) for name, value in plain.items()},
    )


@pytest.fixture
async def orchestrator() -> AsyncIterator[Orchestrator]:
    orchestrator = Orchestrator.default()
    try:
        yield orchestrator
    finally:
        await orchestrator.aclose()


@pytest.fixture
def fhir_peer() -> Iterator[FhirPeer]:
    peer = FhirPeer()
    with serve(peer.app()) as url:
        peer.base_url = url
        yield peer


@pytest.fixture
def fhir_tls_peer(pki: Pki) -> Iterator[FhirPeer]:
    peer = FhirPeer()
    with serve(peer.app(), certfile=str(pki.server_cert), keyfile=str(pki.server_key)) as url:
        peer.base_url = url
        yield peer
