"""Shared fixtures: where the corpus lives, and real PostgreSQL/Redis when configured."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.pki import Pki, make_pki

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def _require_env(name: str) -> str:
    value = os.environ.get(name)
    if value:
        return value
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not set but CI=true: the CI run must provide it")
    pytest.skip(f"{name} is not set: no real server configured for this test")


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def database_url() -> str:
    """A real PostgreSQL URL from TEST_DATABASE_URL (skips locally, fails under CI)."""
    return _require_env("TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A real Redis URL from TEST_REDIS_URL (skips locally, fails under CI)."""
    return _require_env("TEST_REDIS_URL")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    return make_pki(tmp_path_factory.mktemp("pki"))
