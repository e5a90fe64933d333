"""`ehr-platform` end to end: real processes, a real server on a free port, real HTTP.

Every command runs as `python -m ehr_api.cli` in a subprocess pointed at one temporary
data directory (and, for the PostgreSQL run, `DATABASE_URL`), the way an operator runs it;
the API runs as `ehr-platform api` in its own process and is called with httpx.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from ehr_api.cli import main
from ehr_api.db import Database, create_engine
from ehr_api.integrations import secrets as integration_secrets
from ehr_api.integrations.models import IntegrationCredential
from ehr_api.security.crypto import Keyring
from sqlalchemy import select

from tests.ehr_api.conftest import APP_ROLE
from tests.ehr_api.support import bearer, tamper

pytestmark = pytest.mark.slow

JWT = re.compile(r"^[\w-]+\.[\w-]+\.[\w-]+$")
FHIR_SERVER = {
    "vendor": "fhir-r4",
    "name": "partner-fhir",
    "config": {"fhir_server_url": "https://fhir.example.org/r4", "auth": {"type": "bearer"}},
    "secrets": {"token": "s3cret-bearer-token"},
}


def environment(data_dir: Path, url: str | None) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("EHR_") and name != "DATABASE_URL"
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["EHR_DATA_DIR"] = str(data_dir)
    env["EHR_DB_APP_ROLE"] = APP_ROLE
    if url and not url.startswith("sqlite"):
        env["DATABASE_URL"] = url
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ehr_api.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(env: dict[str, str], *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ehr_api.cli", *args, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise AssertionError(f"server exited with {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not become ready")
            time.sleep(0.1)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def wait_for_audit(base: str, headers: dict[str, str], count: int) -> list[dict[str, object]]:
    """Rows are appended just after each response: poll until `count` are there."""
    deadline = time.monotonic() + 10
    while True:
        items: list[dict[str, object]] = httpx.get(
            f"{base}/api/audit", params={"limit": 500}, headers=headers
        ).json()["items"]
        if len(items) >= count or time.monotonic() > deadline:
            return items
        time.sleep(0.05)


def test_admin_commands_and_the_served_api(db_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = environment(data_dir, db_url)
    if db_url.startswith("sqlite"):
        env.pop("EHR_DATA_DIR")  # the flag form this time (the env form elsewhere)
        flag = ["--data-dir", str(data_dir)]
        db_url = f"sqlite:///{data_dir / 'ehr.sqlite3'}"
    else:
        flag = []

    migrated = cli(env, "migrate", *flag)
    assert migrated.returncode == 0, migrated.stderr
    assert cli(env, "org", "create", "acme", "--name", "Acme", *flag).returncode == 0

    token = cli(env, "token", "--org", "acme", "--role", "org_admin", "--sub", "ops", *flag)
    assert token.returncode == 0 and JWT.match(token.stdout.strip()), token.stderr
    root = cli(env, "token", "--role", "platform_admin", *flag)
    assert root.returncode == 0 and JWT.match(root.stdout.strip())
    created = cli(env, "apikey", "create", "--org", "acme", "--role", "partner", "--role",
                  "auditor", "--name", "gateway", "--expires", "30d", *flag)  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("ehr_") and created.stdout.count("\n") == 1

    admin = bearer(token.stdout.strip())
    with serving(env, "api", *flag) as (base, _server):
        me = httpx.get(f"{base}/api/me", headers=bearer(key))
        assert me.status_code == 200, me.text
        assert me.json()["org_slug"] == "acme" and me.json()["roles"] == ["auditor", "partner"]
        orgs = httpx.get(f"{base}/api/admin/orgs", headers=bearer(root.stdout.strip()))
        assert [org["slug"] for org in orgs.json()["items"]] == ["acme"]
        integration = httpx.post(f"{base}/api/admin/integrations", json=FHIR_SERVER, headers=admin)
        assert integration.status_code == 201, integration.text
        assert "s3cret-bearer-token" not in integration.text
        rows = wait_for_audit(base, bearer(key), 3)
        assert {row["actor"] for row in rows} >= {"ops", f"apikey:{key.split('_')[1]}"}

    verified = cli(env, "audit", "verify", "--org", "acme", *flag)
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stderr
    assert cli(env, "audit", "verify", "--platform", *flag).returncode == 0

    rotated = cli(env, "keys", "rotate", *flag)
    assert rotated.returncode == 0, rotated.stderr
    assert "current key k2; re-encrypted 1 of 1" in rotated.stdout
    spec = (data_dir / "encryption-keys").read_text().strip()
    assert [entry.split(":")[0] for entry in spec.split(",")] == ["k2", "k1"]
    assert _secrets_under(db_url, Keyring.parse(spec)) == ({"k2"}, {"token": "s3cret-bearer-token"})

    first_row = int(rows[-1]["id"])  # type: ignore[call-overload]
    asyncio.run(
        tamper(db_url, "UPDATE audit_logs SET actor = 'mallory' WHERE id = :id", id=first_row)
    )
    broken = cli(env, "audit", "verify", "--org", "acme", *flag)
    assert broken.returncode == 1
    assert f"BROKEN at row {first_row}" in broken.stdout


def _secrets_under(url: str, keyring: Keyring) -> tuple[set[str], dict[str, str]]:
    async def read() -> tuple[set[str], dict[str, str]]:
        database = Database(create_engine(url), app_role=APP_ROLE)
        try:
            async with database.platform_session(read_only=True) as db:
                (row,) = (await db.execute(select(IntegrationCredential))).scalars()
                kids = {blob["kid"] for blob in row.secrets.values()}
                return kids, integration_secrets.open_all(keyring, row)
        finally:
            await database.dispose()

    return asyncio.run(read())


def test_up_seeds_a_demo_organisation_and_prints_a_working_token(tmp_path: Path) -> None:
    env = environment(tmp_path / "var", None)
    for run in range(2):
        with serving(env, "up") as (base, server):
            assert server.stdout is not None
            lines: list[str] = []
            while not any(JWT.match(line.strip()) for line in lines):
                lines.append(server.stdout.readline())
                assert len(lines) < 50, lines
            token = next(line.strip() for line in lines if JWT.match(line.strip()))
            assert any(f"{base}/docs" in line for line in lines)
            me = httpx.get(f"{base}/api/me", headers=bearer(token))
            assert me.status_code == 200, me.text
            assert me.json()["org_slug"] == "demo" and "org_admin" in me.json()["roles"]
            orgs = httpx.get(f"{base}/api/admin/orgs", headers=bearer(token))
            assert orgs.status_code == 403, run  # an org admin is not a platform admin
    # The second run reused the data directory: same organisation, same secrets.
    root = cli(env, "token", "--role", "platform_admin")
    with serving(env, "api") as (base, _server):
        listed = httpx.get(f"{base}/api/admin/orgs", headers=bearer(root.stdout.strip()))
        assert [org["slug"] for org in listed.json()["items"]] == ["demo"]


def test_errors_are_one_line_with_the_right_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The failure paths, in-process (same `main`, minus a second of start-up each)."""
    flag = ["--data-dir", str(tmp_path)]

    def run(*args: str) -> tuple[int, str]:
        status = main([*args, *flag])
        captured = capsys.readouterr()
        assert status == 0 or captured.err.count("\n") == 1, captured.err
        return status, captured.err

    status, err = run("org", "create", "acme", "--name", "Acme")
    assert status == 1 and "not migrated: run `ehr-platform migrate`" in err
    assert run("migrate")[0] == 0
    assert run("org", "create", "acme", "--name", "Acme")[0] == 0
    cases = [
        (("org", "create", "acme", "--name", "Acme"), 1, "exists"),
        (("org", "create", "Not_A_Slug", "--name", "x"), 2, "slug"),
        (("token", "--role", "org_admin"), 2, "--org is required"),
        (("token", "--org", "acme", "--role", "wizard"), 2, "unknown role"),
        (("token", "--org", "nope", "--role", "org_admin"), 1, "no organisation 'nope'"),
        (("token", "--org", "acme", "--role", "org_admin", "--ttl", "soon"), 2, "--ttl"),
        (("apikey", "create", "--org", "acme", "--role", "platform_admin"), 2, "global"),
        (("apikey", "create", "--org", "acme", "--role", "partner", "--expires", "0d"), 2, ""),
        (("audit", "verify", "--org", "nope"), 1, "no organisation"),
        (("fhir", "reindex", "--org", "nope"), 1, "no organisation"),
        (("fhir", "reindex", "--type", "NotAType"), 1, "not a resource type"),
    ]
    for args, expected, text in cases:
        status, err = run(*args)
        assert (status, text in err) == (expected, True), (args, err)
    assert main(["fhir", "reindex", "--type", "Patient", *flag]) == 0
    assert "acme: 0 resources indexed again" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:
        main(["audit", "verify", *flag])  # --org or --platform is required
    assert usage.value.code == 2
