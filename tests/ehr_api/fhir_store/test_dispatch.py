"""The FHIR API's own URL table (`fhir_store.dispatch`): what it finds, and what it refuses."""

from __future__ import annotations

import pytest
from ehr_api.fhir_store.dispatch import FhirRouter
from starlette.exceptions import HTTPException

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient


async def _noop(_call: object) -> object:
    raise AssertionError("not called")


def test_literal_segments_win_over_parameters_whatever_the_declaration_order() -> None:
    routes = FhirRouter()
    routes.add("GET", "/{resource_type}/{resource_id}", _noop)
    routes.add("GET", "/{resource_type}/_history", _noop)
    routes.add("GET", "/AuditEvent/{event_id}", _noop)
    assert routes.find("GET", "/Patient/_history")[0].path == "/{resource_type}/_history"
    assert routes.find("GET", "/AuditEvent/_history")[0].path == "/AuditEvent/{event_id}"
    route, params = routes.find("GET", "/Patient/p1/")
    assert route.path == "/{resource_type}/{resource_id}"
    assert params == {"resource_type": "Patient", "resource_id": "p1"}


def test_a_known_url_with_another_method_is_405_with_allow() -> None:
    routes = FhirRouter()
    routes.add("GET", "/{resource_type}", _noop)
    routes.add("POST", "/{resource_type}", _noop)
    with pytest.raises(HTTPException) as refused:
        routes.find("DELETE", "/Patient")
    assert refused.value.status_code == 405
    assert refused.value.headers == {"Allow": "GET, POST"}


def test_declaring_one_method_twice_is_refused() -> None:
    routes = FhirRouter()
    routes.add("GET", "/{resource_type}", _noop)
    with pytest.raises(ValueError, match="declared twice"):
        routes.add("GET", "/{resource_type}", _noop)


async def test_unknown_urls_and_methods_answer_with_operation_outcomes(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    deep = await client.get(f"{BASE}/Patient/1/_history/1/extra", headers=a)
    assert deep.status_code == 404
    assert deep.json()["issue"][0]["code"] == "not-found"
    assert "no FHIR endpoint at /fhir/R4/Patient/1/_history/1/extra" in deep.text
    on_base = await client.put(BASE, json={}, headers=a)
    assert on_base.status_code == 405 and on_base.headers["Allow"] == "GET, POST"
    assert on_base.json()["issue"][0]["code"] == "not-supported"
    on_history = await client.post(f"{BASE}/Patient/_history", json={}, headers=a)
    assert on_history.status_code == 405
    assert on_history.headers["Allow"] == "GET"
    # Not under the FHIR base at all: the app's own 404, not the FHIR table's.
    beside = await client.get("/fhir/R4x/Patient", headers=a)
    assert beside.status_code == 404 and "no FHIR endpoint" not in beside.text


async def test_a_trailing_slash_names_the_same_resource(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    created = await client.post(f"{BASE}/Patient/", json=patient(), headers=a)
    assert created.status_code == 201
    pid = created.json()["id"]
    read = await client.get(f"{BASE}/Patient/{pid}/", headers=a)
    assert read.status_code == 200 and read.json()["id"] == pid
    assert created.headers["Location"].endswith(f"{BASE}/Patient/{pid}/_history/1")


async def test_checks_run_in_order_credential_type_permission(fhir: Fhir) -> None:
    client = fhir.client
    auditor = fhir.harness.auth("org-a", "auditor")
    # No credential: 401 even for a type that does not exist.
    assert (await client.get(f"{BASE}/NotAType/1")).status_code == 401
    # A credential: the unknown type is a 404 before any permission is asked.
    assert (await client.get(f"{BASE}/NotAType/1", headers=auditor)).status_code == 404
    # A known type the role may not read: 403.
    assert (await client.get(f"{BASE}/Patient/1", headers=auditor)).status_code == 403
    # XML is refused before anything else is looked at.
    xml = await client.get(f"{BASE}/Patient/1", headers={"Accept": "application/fhir+xml"})
    assert xml.status_code == 406
