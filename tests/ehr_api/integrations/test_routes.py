"""`/api/admin/integrations` through the real app: status codes, problem JSON, isolation.

Runs on SQLite and PostgreSQL; the MLLP peer for `/test` and `/execute` is a real listener.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from ehr_api.app import create_app
from ehr_api.integrations.routes import router
from ehr_api.settings import Settings
from hl7_fhir import v2
from hl7_fhir.mllp import ConnectionInfo, MLLPServer

from tests.ehr_api.integrations.api import Api
from tests.ehr_api.integrations.conftest import Pem
from tests.ehr_api.support import declared_permissions

BASE = "/api/admin/integrations"


@pytest.fixture
async def listener_port() -> AsyncIterator[int]:
    async def accept(message: bytes, info: ConnectionInfo) -> None:
        return None

    async with MLLPServer(accept, port=0) as server:
        yield server.port


def ris(port: int, **config: Any) -> dict[str, Any]:
    return {
        "vendor": "hl7-v2x",
        "name": "ris",
        "config": {"mllp_host": "127.0.0.1", "mllp_port": port, **config},
    }


def test_every_route_declares_its_permission() -> None:
    assert set(create_app(Settings()).openapi()["paths"]) >= {BASE, f"{BASE}/{{integration_id}}"}
    declared = declared_permissions(router)
    assert declared == {
        ("POST", BASE): ("integrations", "write"),
        ("GET", BASE): ("integrations", "read"),
        ("GET", f"{BASE}/{{integration_id}}"): ("integrations", "read"),
        ("PATCH", f"{BASE}/{{integration_id}}"): ("integrations", "write"),
        ("DELETE", f"{BASE}/{{integration_id}}"): ("integrations", "delete"),
        ("POST", f"{BASE}/{{integration_id}}/test"): ("integrations", "test"),
        ("POST", f"{BASE}/{{integration_id}}/execute"): ("integrations", "execute"),
    }


async def test_lifecycle(api: Api, listener_port: int, pem: Pem) -> None:
    await api.create_org("org-a")
    admin = api.as_("org_admin", "org-a")
    body = ris(listener_port, inbound_port=2575)
    body["secrets"] = {"ca_cert": pem.ca}
    created = await api.client.post(BASE, json=body, headers=admin)
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["has_ca_cert"] is True and item["has_tls_key"] is False
    assert "secrets" not in item and "BEGIN CERTIFICATE" not in created.text
    url = f"{BASE}/{item['id']}"

    listed = await api.client.get(BASE, headers=admin)
    assert listed.json()["total"] == 1 and listed.json()["items"][0]["name"] == "ris"
    assert (await api.client.get(url, headers=admin)).json()["config"]["inbound_port"] == 2575

    tested = await api.client.post(f"{url}/test", headers=admin)
    assert tested.status_code == 200 and tested.json()["ok"] is True, tested.text
    sent = await api.client.post(
        f"{url}/execute",
        json={"operation": "send", "params": {"message": v2.generate("orm", seed=1).to_er7()}},
        headers=admin,
    )
    assert sent.status_code == 200 and sent.json()["result"]["ack_code"] == "AA", sent.text

    patched = await api.client.patch(
        url, json={"version": 1, "config": {"ack_mode": "enhanced"}}, headers=admin
    )
    assert patched.status_code == 200 and patched.json()["version"] == 2
    stale = await api.client.patch(url, json={"version": 1, "enabled": False}, headers=admin)
    assert stale.status_code == 409 and stale.json()["field"] == "version"
    assert stale.headers["content-type"] == "application/problem+json"

    assert (await api.client.delete(f"{url}?version=1", headers=admin)).status_code == 409
    assert (await api.client.delete(url, headers=admin)).status_code == 204
    assert (await api.client.get(url, headers=admin)).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"config": {"mllp_host": "ris", "mllp_port": 70000}}, "config.mllp_port"),
        (
            {"config": {"mllp_host": "ris", "mllp_port": 1, "hl7_version": "3"}},
            "config.hl7_version",
        ),
        ({"secrets": {"tls_key": "nope"}}, "secrets.tls_key"),
        ({"vendor": "dicom"}, "vendor"),
        ({"name": ""}, "name"),
    ],
)
async def test_invalid_input_names_the_field(api: Api, change: dict[str, Any], field: str) -> None:
    await api.create_org("org-a")
    response = await api.client.post(
        BASE, json={**ris(2575), **change}, headers=api.as_("integration_engineer", "org-a")
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == field and problem["status"] == 422


async def test_org_a_cannot_reach_org_b(api: Api, listener_port: int) -> None:
    await api.create_org("org-a")
    await api.create_org("org-b")
    created = await api.client.post(
        BASE, json=ris(listener_port), headers=api.as_("org_admin", "org-b")
    )
    url = f"{BASE}/{created.json()['id']}"
    intruder = api.as_("org_admin", "org-a")
    attempts = [
        await api.client.get(url, headers=intruder),
        await api.client.patch(url, json={"version": 1, "name": "mine"}, headers=intruder),
        await api.client.delete(url, headers=intruder),
        await api.client.post(f"{url}/test", headers=intruder),
        await api.client.post(
            f"{url}/execute", json={"operation": "parse", "params": {}}, headers=intruder
        ),
    ]
    assert [response.status_code for response in attempts] == [404] * 5
    assert (await api.client.get(BASE, headers=intruder)).json()["total"] == 0
    theirs = await api.client.get(url, headers=api.as_("org_admin", "org-b"))
    assert theirs.json()["name"] == "ris" and theirs.json()["version"] == 1


@pytest.mark.parametrize("role", ["clinician", "partner", "auditor"])
async def test_other_roles_are_refused(api: Api, role: str) -> None:
    await api.create_org("org-a")
    response = await api.client.get(BASE, headers=api.as_(role, "org-a"))
    assert response.status_code == 403


async def test_a_platform_token_without_organisation_is_refused(api: Api) -> None:
    response = await api.client.get(BASE, headers=api.root)
    assert response.status_code == 403
