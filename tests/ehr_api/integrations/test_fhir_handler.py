"""The fhir-r4 handler against a real HTTP(S) server: /metadata with none, bearer, OAuth2."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ehr_api.errors import InvalidError
from ehr_api.integrations.handlers.fhir_r4 import ClientCredentialsAuth, TokenError
from ehr_api.integrations.orchestrator import Orchestrator, UpstreamError
from ehr_api.integrations.schemas import OAuth2ClientCredentials

from tests.ehr_api.integrations.conftest import Pem, integration
from tests.ehr_api.integrations.peers import BEARER, CLIENT_ID, CLIENT_SECRET, FhirPeer


def oauth(peer: FhirPeer, **extra: Any) -> dict[str, Any]:
    return {
        "type": "oauth2_client_credentials",
        "token_url": f"{peer.base_url}/token",
        "client_id": CLIENT_ID,
        "scope": "system/*.read",
        **extra,
    }


def insecure(peer: FhirPeer, tenant: str, **extra: Any) -> dict[str, Any]:
    return {"fhir_server_url": f"{peer.base_url}/{tenant}", "allow_insecure_http": True, **extra}


async def test_no_auth(fhir_peer: FhirPeer, orchestrator: Orchestrator) -> None:
    result = await orchestrator.test_connection(integration("fhir-r4", insecure(fhir_peer, "open")))
    assert result.ok, result.detail
    assert "CapabilityStatement (FHIR 4.0.1, Peer FHIR)" in result.detail
    assert result.latency_ms > 0
    assert fhir_peer.metadata_auth == [None]


async def test_bearer(fhir_peer: FhirPeer, orchestrator: Orchestrator) -> None:
    good = integration(
        "fhir-r4", insecure(fhir_peer, "t", auth={"type": "bearer"}), {"token": BEARER}
    )
    bad = integration(
        "fhir-r4", insecure(fhir_peer, "t", auth={"type": "bearer"}), {"token": "nope"}
    )
    assert (await orchestrator.test_connection(good)).ok
    refused = await orchestrator.test_connection(bad)
    assert not refused.ok
    assert "HTTP 401 (check the credentials)" in refused.detail
    assert fhir_peer.metadata_auth == [f"Bearer {BEARER}", "Bearer nope"]


@pytest.mark.parametrize("client_auth", ["client_secret_basic", "client_secret_post"])
async def test_oauth2_token_is_fetched_once_and_reused(
    fhir_peer: FhirPeer, orchestrator: Orchestrator, client_auth: str
) -> None:
    target = integration(
        "fhir-r4",
        insecure(fhir_peer, "t", auth=oauth(fhir_peer, client_auth=client_auth)),
        {"client_secret": CLIENT_SECRET},
    )
    for _ in range(3):
        result = await orchestrator.test_connection(target)
        assert result.ok, result.detail
    assert len(fhir_peer.token_requests) == 1
    form = fhir_peer.token_requests[0]
    assert form["grant_type"] == "client_credentials" and form["scope"] == "system/*.read"
    assert ("client_secret" in form) == (client_auth == "client_secret_post")
    assert fhir_peer.metadata_auth == ["Bearer access-1"] * 3


async def test_oauth2_wrong_secret_fails_without_echoing_it(
    fhir_peer: FhirPeer, orchestrator: Orchestrator
) -> None:
    target = integration(
        "fhir-r4",
        insecure(fhir_peer, "t", auth=oauth(fhir_peer)),
        {"client_secret": "WRONG-SECRET-42"},
    )
    result = await orchestrator.test_connection(target)
    assert not result.ok
    assert result.detail == "authentication failed: the token endpoint answered HTTP 401"
    with pytest.raises(TokenError) as caught:
        await orchestrator.execute(target, "metadata", {})
    assert "WRONG-SECRET-42" not in str(caught.value) and caught.value.__cause__ is None


async def test_oauth2_revoked_token_is_replaced_once(
    fhir_peer: FhirPeer, orchestrator: Orchestrator
) -> None:
    target = integration(
        "fhir-r4", insecure(fhir_peer, "t", auth=oauth(fhir_peer)), {"client_secret": CLIENT_SECRET}
    )
    assert (await orchestrator.test_connection(target)).ok
    fhir_peer.revoked.add("access-1")
    assert (await orchestrator.test_connection(target)).ok
    assert fhir_peer.issued == ["access-1", "access-2"]
    assert fhir_peer.metadata_auth == ["Bearer access-1", "Bearer access-1", "Bearer access-2"]


async def test_oauth2_token_expiry(fhir_peer: FhirPeer) -> None:
    now = [1000.0]
    fhir_peer.expires_in = 300
    settings = OAuth2ClientCredentials.model_validate(oauth(fhir_peer))
    auth = ClientCredentialsAuth(settings, CLIENT_SECRET, clock=lambda: now[0])
    async with httpx.AsyncClient(auth=auth) as client:
        await client.get(f"{fhir_peer.base_url}/t/metadata")
        now[0] += 269  # the token is kept until shortly (30 s) before it expires
        await client.get(f"{fhir_peer.base_url}/t/metadata")
        now[0] += 2
        response = await client.get(f"{fhir_peer.base_url}/t/metadata")
    assert response.status_code == 200
    assert auth.fetches == 2 and fhir_peer.issued == ["access-1", "access-2"]


async def test_https_with_a_private_ca(
    fhir_tls_peer: FhirPeer, orchestrator: Orchestrator, pem: Pem
) -> None:
    config = {"fhir_server_url": f"{fhir_tls_peer.base_url}/t", "auth": oauth(fhir_tls_peer)}
    trusted = integration("fhir-r4", config, {"client_secret": CLIENT_SECRET, "ca_cert": pem.ca})
    result = await orchestrator.test_connection(trusted)
    assert result.ok, result.detail
    untrusted = integration("fhir-r4", config, {"client_secret": CLIENT_SECRET})
    refused = await orchestrator.test_connection(untrusted)
    assert not refused.ok and "cannot reach" in refused.detail
    assert len(fhir_tls_peer.token_requests) == 1  # the untrusted one never got that far


async def test_unreachable_and_wrong_version(
    fhir_peer: FhirPeer, orchestrator: Orchestrator
) -> None:
    closed = integration(
        "fhir-r4",
        {"fhir_server_url": "http://127.0.0.1:9/x", "allow_insecure_http": True, "timeout_s": 2},
    )
    result = await orchestrator.test_connection(closed)
    assert not result.ok and result.detail.startswith("cannot reach http://127.0.0.1:9/x/metadata")
    fhir_peer.fhir_version = "5.0.0"
    r5 = await orchestrator.test_connection(integration("fhir-r4", insecure(fhir_peer, "open")))
    assert not r5.ok and "speaks FHIR 5.0.0, not R4" in r5.detail


async def test_operations(fhir_peer: FhirPeer, orchestrator: Orchestrator) -> None:
    target = integration(
        "fhir-r4", insecure(fhir_peer, "t", auth={"type": "bearer"}), {"token": BEARER}
    )
    assert (await orchestrator.execute(target, "metadata", {}))[
        "resourceType"
    ] == "CapabilityStatement"
    patient = await orchestrator.execute(target, "read", {"resource_type": "Patient", "id": "p-1"})
    assert patient == {"resourceType": "Patient", "id": "p-1"}
    bundle = await orchestrator.execute(
        target, "search", {"resource_type": "Patient", "params": {"identifier": "MRN|42"}}
    )
    assert bundle["type"] == "searchset" and "identifier=MRN%7C42" in bundle["link"][0]["url"]
    with pytest.raises(UpstreamError) as missing:
        await orchestrator.execute(target, "read", {"resource_type": "Patient", "id": "missing"})
    assert missing.value.status == 502 and "HTTP 404" in missing.value.detail
    with pytest.raises(InvalidError) as bad:
        await orchestrator.execute(target, "read", {"resource_type": "Patient", "id": "../x"})
    assert bad.value.field == "params.id"
    with pytest.raises(InvalidError) as unknown:
        await orchestrator.execute(target, "delete_everything", {})
    assert unknown.value.field == "operation"
