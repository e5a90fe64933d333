"""The assembled app: health, readiness, request ids, OpenAPI, errors in the right shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from ehr_api.app import create_app
from ehr_api.db import RowSecurityError

from tests.ehr_api.support import Harness, running, settings_for


@pytest.fixture
async def harness(migrated: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(migrated, tmp_path) as harness:
        yield harness


async def test_healthz_and_readyz_when_migrated(harness: Harness) -> None:
    assert (await harness.client.get("/healthz")).json() == {"status": "ok"}
    ready = await harness.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "row_security": "ok"}


async def test_readyz_is_503_on_a_database_that_is_not_migrated(
    db_url: str, tmp_path: Path
) -> None:
    async with running(db_url, tmp_path) as harness:
        assert (await harness.client.get("/healthz")).status_code == 200
        response = await harness.client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503 and body["title"] == "Not ready"
    assert body["checks"]["database"] == "ok"
    assert "head is" in body["checks"]["migrations"]
    assert "migrations" in body["detail"]


async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    # Nothing listens on port 1; the app still starts (readiness reports it).
    async with running("postgresql://nobody@127.0.0.1:1/none", tmp_path) as harness:
        assert (await harness.client.get("/healthz")).status_code == 200
        response = await harness.client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert list(checks) == ["database"] and checks["database"].startswith("unreachable")


async def test_request_id_is_echoed_or_made_up(harness: Harness) -> None:
    given = await harness.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = await harness.client.get("/healthz")
    assert len(made.headers["X-Request-ID"]) == 32
    hostile = await harness.client.get("/healthz", headers={"X-Request-ID": "a b\r\n<script>"})
    assert hostile.headers["X-Request-ID"] != "a b\r\n<script>"
    assert len(hostile.headers["X-Request-ID"]) == 32


async def test_problem_json_carries_the_request_id(harness: Harness) -> None:
    response = await harness.client.get("/api/me", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["request_id"] == "req-42"


async def test_bad_token_is_401_with_a_reason(harness: Harness) -> None:
    response = await harness.client.get("/api/me", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.json()["code"] == "malformed_token"


async def test_unknown_api_route_is_problem_json(harness: Harness) -> None:
    response = await harness.client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_openapi_documents_the_bearer_scheme(harness: Harness) -> None:
    docs = await harness.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = (await harness.client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT or ehr_ API key",
        "description": schema["components"]["securitySchemes"]["bearer"]["description"],
    }
    # Every /api and /fhir operation asks for it; health checks do not.
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            secured = operation.get("security") == [{"bearer": []}]
            assert secured == path.startswith(("/api/", "/fhir/")), path


def test_building_the_app_touches_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "never-created"
    create_app(settings_for(f"sqlite:///{data_dir}/db.sqlite3", data_dir))
    assert not data_dir.exists()


async def test_generated_secrets_are_private_and_reused(migrated: str, tmp_path: Path) -> None:
    async with running(migrated, tmp_path, jwt_secret=None, encryption_keys=None) as harness:
        first = harness.app.state.settings
    async with running(migrated, tmp_path, jwt_secret=None, encryption_keys=None) as harness:
        second = harness.app.state.settings
    assert first.jwt_secret == second.jwt_secret and first.jwt_secret
    assert first.encryption_keys == second.encryption_keys and first.encryption_keys
    for name in ("jwt-secret", "encryption-keys"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600


@pytest.mark.postgres
async def test_start_up_refuses_a_role_that_bypasses_row_security(
    pg_url: str, tmp_path: Path
) -> None:
    # The test login is a superuser; without the role switch every policy would be void.
    app = create_app(settings_for(pg_url, tmp_path, db_app_role=""))
    with pytest.raises(RowSecurityError):
        async with app.router.lifespan_context(app):
            pass


async def test_unhandled_errors_are_500_problem_json(harness: Harness) -> None:
    @harness.app.get("/api/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail")

    before = await harness.last_audit_id()
    transport = httpx.ASGITransport(app=harness.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/api/boom")
    assert response.status_code == 500
    assert "secret detail" not in response.text
    assert response.json()["title"] == "Internal server error"
    # A crash is audited too.
    (row,) = await harness.audit_rows_after(before)
    assert (row.action, row.status_code, row.outcome) == ("GET /api/boom", 500, "error")
