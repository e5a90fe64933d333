"""The Authorizer's assignment cache: loading, invalidation, eviction and staleness.

Role assignments change in the database while the process keeps them indexed; these tests
pin how a change becomes visible (invalidate, max_age) and that nothing stale or foreign is
served when it must not be.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ehr_api.auth.principal import Principal
from ehr_api.auth.rbac import Authorizer

ORG_A = uuid.UUID(int=1)


@dataclass(frozen=True)
class Assignment:
    subject: str
    role: str


def test_loader_runs_once_per_organisation_until_invalidated() -> None:
    calls: list[uuid.UUID] = []
    table = {ORG_A: [Assignment("erin", "clinician")]}

    def loader(org_id: uuid.UUID) -> list[Assignment]:
        calls.append(org_id)
        return list(table.get(org_id, []))

    authorizer = Authorizer(loader=loader)
    erin = Principal("erin", ORG_A, "a", frozenset())
    assert authorizer.check(erin, "fhir:Patient", "write")
    assert authorizer.check(erin, "fhir:Patient", "read")
    assert calls == [ORG_A]

    table[ORG_A] = [Assignment("erin", "auditor")]  # the role changes in the database
    assert authorizer.check(erin, "fhir:Patient", "write")  # still cached
    authorizer.invalidate(ORG_A)
    assert not authorizer.check(erin, "fhir:Patient", "write")
    assert authorizer.check(erin, "audit", "read")
    assert calls == [ORG_A, ORG_A]


def test_load_replaces_and_invalidate_forgets() -> None:
    authorizer = Authorizer()
    frank = Principal("frank", ORG_A, "a", frozenset())
    authorizer.load(ORG_A, [Assignment("frank", "org_admin")])
    assert authorizer.check(frank, "apikeys", "write")
    authorizer.load(ORG_A, [])
    assert not authorizer.check(frank, "apikeys", "write")
    authorizer.load(ORG_A, [Assignment("frank", "org_admin")])
    authorizer.invalidate(ORG_A)
    assert not authorizer.is_loaded(ORG_A)
    assert not authorizer.check(frank, "apikeys", "write")  # fail closed when not loaded


def test_global_assignments_invalidate_separately() -> None:
    authorizer = Authorizer()
    authorizer.load_global([Assignment("ops", "platform_admin")])
    ops = Principal("ops", None, None, frozenset())
    assert authorizer.check(ops, "orgs", "write")
    authorizer.invalidate(None)
    assert not authorizer.check(ops, "orgs", "write")


def test_least_recently_used_organisations_are_evicted() -> None:
    authorizer = Authorizer(max_orgs=2)
    orgs = [uuid.uuid4() for _ in range(3)]
    authorizer.load(orgs[0], [])
    authorizer.load(orgs[1], [])
    authorizer.check(Principal("x", orgs[0], "a", frozenset()), "events", "read")  # touch org 0
    authorizer.load(orgs[2], [])
    assert [authorizer.is_loaded(org) for org in orgs] == [True, False, True]


async def test_max_age_reloads_what_other_processes_changed() -> None:
    now = [0.0]
    fetched: list[str] = []

    async def fetch() -> list[Assignment]:
        fetched.append("x")
        return [Assignment("ivy", "clinician" if len(fetched) == 1 else "auditor")]

    authorizer = Authorizer(max_age=60, clock=lambda: now[0])
    ivy = Principal("ivy", ORG_A, "a", frozenset())
    await authorizer.ensure_loaded(ORG_A, fetch)
    now[0] = 59
    await authorizer.ensure_loaded(ORG_A, fetch)
    assert authorizer.roles_in(ivy) == {"clinician"} and len(fetched) == 1
    now[0] = 61  # another replica changed ivy's role; nobody told this process
    assert not authorizer.is_loaded(ORG_A)
    assert authorizer.roles_in(ivy) == {"clinician"}  # stale but usable until reloaded
    await authorizer.ensure_loaded(ORG_A, fetch)
    assert authorizer.roles_in(ivy) == {"auditor"}


def test_max_age_with_a_sync_loader() -> None:
    now = [0.0]
    calls: list[uuid.UUID] = []

    def loader(org_id: uuid.UUID) -> list[Assignment]:
        calls.append(org_id)
        return []

    authorizer = Authorizer(loader=loader, max_age=10, clock=lambda: now[0])
    jo = Principal("jo", ORG_A, "a", frozenset())
    authorizer.check(jo, "events", "read")
    now[0] = 5
    authorizer.check(jo, "events", "read")
    now[0] = 11
    authorizer.check(jo, "events", "read")
    assert calls == [ORG_A, ORG_A]


async def test_ensure_loaded_fetches_once() -> None:
    fetched = 0

    async def fetch() -> list[Assignment]:
        nonlocal fetched
        fetched += 1
        return [Assignment("gina", "partner")]

    authorizer = Authorizer()
    await authorizer.ensure_loaded(ORG_A, fetch)
    await authorizer.ensure_loaded(ORG_A, fetch)
    assert fetched == 1
    assert authorizer.check(Principal("gina", ORG_A, "a", frozenset()), "hl7", "ingest")


async def test_ensure_loaded_refetches_when_invalidated_mid_flight() -> None:
    authorizer = Authorizer()
    answers = [[Assignment("hal", "clinician")], [Assignment("hal", "auditor")]]

    async def fetch() -> list[Assignment]:
        rows = answers.pop(0)
        if answers:  # the first fetch is overtaken by a change of assignments
            authorizer.invalidate(ORG_A)
        return rows

    await authorizer.ensure_loaded(ORG_A, fetch)
    assert authorizer.roles_in(Principal("hal", ORG_A, "a", frozenset())) == {"auditor"}


async def test_ensure_global_loaded_fetches_once_even_when_empty() -> None:
    fetched = 0

    async def fetch() -> list[Assignment]:
        nonlocal fetched
        fetched += 1
        return []

    authorizer = Authorizer()
    await authorizer.ensure_global_loaded(fetch)
    await authorizer.ensure_global_loaded(fetch)
    assert fetched == 1
