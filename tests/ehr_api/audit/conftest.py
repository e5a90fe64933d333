"""A running app for the audit tests (on SQLite and PostgreSQL, like every `migrated` test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.ehr_api.support import Harness, running


@pytest.fixture
async def harness(migrated: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(migrated, tmp_path) as harness:
        yield harness
