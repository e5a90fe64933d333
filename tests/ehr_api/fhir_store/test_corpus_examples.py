"""Every R4 example of the Microsoft FHIR server's test files, through the real store.

A valid example is created (its id stripped) and read back: the content must be what
was sent, apart from `id` and `meta`; of `meta` the store replaces only `versionId` and
`lastUpdated` and keeps what the client sent (tag, security, profile, source). An
invalid example (per `hl7_fhir.fhir.validate_resource`) gets a 422 OperationOutcome with
every issue located by a FHIRPath expression, and `$validate` lists the same issues; a
valid one gets "All OK" from `$validate`. Files that are no resource are skipped, with the
reason in the test id.

One app (and one migrated database) per backend serves every case of this module.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from ehr_api.fhir_store.service import supported_types
from ehr_api.migrate import upgrade_to_head
from hl7_fhir.fhir import R4_ONLY_TYPES, validate_resource
from sqlalchemy.engine import make_url

from tests.ehr_api.conftest import APP_ROLE
from tests.ehr_api.fhir_store.conftest import BASE
from tests.ehr_api.support import running
from tests.hl7_fhir.mapping.fhir_samples import FHIR_EXAMPLES

#: The async tests share the module-scoped app, so they share its event loop too.
on_module_loop = pytest.mark.asyncio(loop_scope="module")

Json = dict[str, Any]

#: Examples that are genuinely invalid R4 (not validator false positives), by file name,
#: with the FHIRPath expressions the validator must report (a suffix when there are many).
EXPECTED_INVALID: dict[str, tuple[str, frozenset[str] | str, int]] = {
    # Appointment.participant.status is 1..1 in R4; ImagingStudy.series.modality and
    # series.instance.sopClass are 1..1 too: the SMART test bundle leaves all three out.
    "SmartPatientA.json": (
        "Bundle",
        frozenset(
            {
                "Bundle.entry[10].resource.participant[0].status",
                "Bundle.entry[11].resource.series[0].modality",
                "Bundle.entry[11].resource.series[0].instance[0].sopClass",
            }
        ),
        3,
    ),
    # Questionnaire.item.linkId is 1..1 in R4: these generated questionnaires give their
    # nested "display" items none (one issue per item without a linkId).
    "medicinalproductcontraindication-questionnaire.json": ("Questionnaire", ".linkId", 21),
    "practitionerrole-questionnaire.json": ("Questionnaire", ".linkId", 36),
    "specimendefinition-questionnaire.json": ("Questionnaire", ".linkId", 48),
}

#: Valid R4 types the store does not accept today, and why (service.supported_types()).
NOT_STORED: dict[str, str] = {
    "AuditEvent": "the read-only view of the audit log, not a stored type (405 on create)",
}


@dataclass(frozen=True)
class Example:
    name: str
    content: Json

    @property
    def type(self) -> str:
        return str(self.content["resourceType"])

    @property
    def body(self) -> Json:
        return {key: value for key, value in self.content.items() if key != "id"}


def _load(path: Path) -> tuple[Json | None, str]:
    """(resource, "") or (None, why it is not a resource)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None, "skip-not-json"
    if not isinstance(data, dict):
        return None, f"skip-not-a-resource-but-a-{type(data).__name__}"
    if "resourceType" not in data:
        return None, "skip-no-resourceType"
    return data, ""


def _cases(*, valid: bool) -> list[Any]:
    cases = []
    for path in sorted(FHIR_EXAMPLES.glob("*.json")):
        data, reason = _load(path)
        if data is None:
            cases.append(pytest.param(None, id=f"{path.name}[{reason}]", marks=pytest.mark.skip(
                reason=f"{path.name} is not a FHIR resource ({reason})")))  # fmt: skip
        elif (path.name not in EXPECTED_INVALID) == valid:
            cases.append(pytest.param(Example(path.name, data), id=path.name))
    return cases


VALID = _cases(valid=True)
INVALID = _cases(valid=False)


@dataclass
class Store:
    client: httpx.AsyncClient
    auth: dict[str, str]


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def corpus_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('corpus')}/ehr.sqlite3"
    url: str = request.getfixturevalue("database_url")
    return url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def store(
    corpus_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Store]:
    """One migrated database (a fresh schema on PostgreSQL) and one app for the module."""
    url, drop = corpus_db_url, None
    if not url.startswith("sqlite"):
        schema = f"test_{uuid.uuid4().hex[:16]}"
        server = make_url(url)
        drop = server.set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(drop)
        try:
            await connection.execute(f"CREATE SCHEMA {schema}")
        finally:
            await connection.close()
        url = server.update_query_dict({"options": f"-c search_path={schema}"}).render_as_string(
            hide_password=False
        )
    try:
        await upgrade_to_head(url, app_role=APP_ROLE)
        async with running(url, tmp_path_factory.mktemp("corpus-data")) as harness:
            await harness.org("org-a")
            yield Store(harness.client, harness.auth("org-a", "org_admin"))
    finally:
        if drop is not None:
            connection = await asyncpg.connect(drop)
            try:
                await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            finally:
                await connection.close()


def _without_id_and_meta(resource: Json) -> Json:
    return {key: value for key, value in resource.items() if key not in ("id", "meta")}


def _assert_error_issues(issues: list[Json], example: Example) -> None:
    resource_type, expected, count = EXPECTED_INVALID[example.name]
    assert len(issues) == count, issues
    for issue in issues:
        assert issue["severity"] == "error"
        assert issue["code"] in ("structure", "required", "value", "code-invalid")
        [expression] = issue["expression"]
        assert expression.startswith(f"{resource_type}."), expression
        assert issue["diagnostics"].strip()
    found = {issue["expression"][0] for issue in issues}
    if isinstance(expected, frozenset):
        assert found == expected
    else:
        assert all(expression.endswith(expected) for expression in found), found


def test_every_example_is_classified() -> None:
    """The validator's verdict on each file is the one pinned here (no silent change)."""
    invalid = set()
    for path in FHIR_EXAMPLES.glob("*.json"):
        data, _ = _load(path)
        if data is not None and validate_resource(data):
            invalid.add(path.name)
    assert invalid == set(EXPECTED_INVALID)
    resources = [case for case in VALID if case.values[0] is not None]
    assert (len(resources), len(VALID) - len(resources), len(INVALID) - 4) == (152, 4, 4)


def test_corpus_types_the_store_does_not_accept() -> None:
    corpus_types = {case.values[0].type for case in VALID + INVALID if case.values[0]}
    assert corpus_types - supported_types() == set(NOT_STORED) & corpus_types
    assert {"Evidence", "EvidenceVariable", "Bundle", "Binary"} <= supported_types()
    assert supported_types() >= R4_ONLY_TYPES  # R4 types R4B dropped are stored too


@pytest.mark.parametrize("example", VALID)
@on_module_loop
async def test_valid_example_round_trips(store: Store, example: Example) -> None:
    url = f"{BASE}/{example.type}"
    created = await store.client.post(url, json=example.body, headers=store.auth)
    if example.type in NOT_STORED:
        expected = 405 if example.type == "AuditEvent" else 404
        assert created.status_code == expected, created.text
        assert created.json()["resourceType"] == "OperationOutcome"
        return
    assert created.status_code == 201, created.text
    new_id = created.json()["id"]
    assert new_id != example.content.get("id")
    read = await store.client.get(f"{url}/{new_id}", headers=store.auth)
    assert read.status_code == 200, read.text
    stored = read.json()
    assert stored["resourceType"] == example.type and stored["id"] == new_id
    assert _without_id_and_meta(stored) == _without_id_and_meta(example.body)
    sent_meta = dict(example.body.get("meta") or {})
    meta = stored["meta"]
    assert meta["versionId"] == "1" and meta["lastUpdated"]
    kept = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
    assert kept == {k: v for k, v in sent_meta.items() if k not in ("versionId", "lastUpdated")}


@pytest.mark.parametrize("example", VALID)
@on_module_loop
async def test_valid_example_validates_all_ok(store: Store, example: Example) -> None:
    answer = await store.client.post(
        f"{BASE}/{example.type}/$validate", json=example.body, headers=store.auth
    )
    if example.type in NOT_STORED:
        assert answer.status_code in (404, 405), answer.text
        return
    assert answer.status_code == 200, answer.text
    assert answer.json()["issue"] == [
        {"severity": "information", "code": "informational", "diagnostics": "All OK"}
    ]


@pytest.mark.parametrize("example", INVALID)
@on_module_loop
async def test_invalid_example_is_refused_with_every_issue(store: Store, example: Example) -> None:
    url = f"{BASE}/{example.type}"
    before = (await store.client.get(url, headers=store.auth)).json()["total"]
    refused = await store.client.post(url, json=example.body, headers=store.auth)
    assert refused.status_code == 422, refused.text
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    _assert_error_issues(outcome["issue"], example)
    assert outcome["issue"] == [issue.to_dict() for issue in validate_resource(example.body)]
    validated = await store.client.post(f"{url}/$validate", json=example.body, headers=store.auth)
    assert validated.status_code == 200
    assert validated.json()["issue"] == outcome["issue"]
    after = await store.client.get(url, headers=store.auth)
    assert after.json()["total"] == before  # nothing was stored
