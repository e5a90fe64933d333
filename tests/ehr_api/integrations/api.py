"""The real app, in process, for route-level tests: `create_app` + lifespan + httpx.

`api` is a fixture on the migrated database (SQLite and PostgreSQL); `api.as_(...)` gives
the headers of a signed token for a role in an organisation, as `ehr-platform token` would.
The tenants tests import the fixture from here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ehr_api.app import create_app
from ehr_api.auth.tokens import issue_token
from ehr_api.security.crypto import generate_key
from ehr_api.settings import Settings
from fastapi import FastAPI

JWT_SECRET = "route-tests-" + "x" * 40


class Api:
    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    def as_(self, role: str, org: str | None = None, *, subject: str = "tester") -> dict[str, str]:
        token = issue_token(subject, org, [role], JWT_SECRET)
        return {"Authorization": f"Bearer {token}"}

    @property
    def root(self) -> dict[str, str]:
        return self.as_("platform_admin", subject="root")

    async def create_org(self, slug: str) -> dict[str, Any]:
        response = await self.client.post(
            "/api/admin/orgs", json={"slug": slug, "name": slug.upper()}, headers=self.root
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def api(migrated: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=migrated,
        jwt_secret=JWT_SECRET,
        encryption_keys=f"k1:{generate_key()}",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(app, client)
