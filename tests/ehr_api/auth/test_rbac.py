"""RBAC: the role x object x action matrix, tenant boundaries, and the assignment cache.

The expectation table below is written by hand, independently of policy.csv, so a change
to the policy that is not also made here fails loudly. Every role is checked against every
object and action (allowed where the table says, denied everywhere else), through every way
a role can reach a principal: token claims, database assignments and API keys.
"""

from __future__ import annotations

import importlib
import itertools
import pkgutil
import uuid
from dataclasses import dataclass

import pytest
from ehr_api.auth.principal import Principal, Role
from ehr_api.auth.rbac import Authorizer, Policy, fhir_action, fhir_object

ACTIONS = ("read", "write", "delete", "test", "execute", "ingest", "replay", "verify")
CLINICAL = ("fhir:Patient", "fhir:Observation", "fhir:DiagnosticReport", "fhir:Bundle")
CONFORMANCE = ("fhir:ValueSet", "fhir:Subscription")
OBJECTS = (
    "orgs",
    "organization",
    "members",
    "apikeys",
    "integrations",
    "audit",
    "hl7",
    "events",
    "webhooks",
    *CLINICAL,
    *CONFORMANCE,
    "fhir:AuditEvent",
    "fhir:NotARealType",
)
RWD = {"read", "write", "delete"}
INTEGRATIONS = {"read", "write", "delete", "test", "execute"}
WEBHOOKS = {"read", "write", "delete", "test", "replay"}

EXPECTED: dict[str, dict[str, set[str]]] = {
    "platform_admin": {obj: set(ACTIONS) for obj in OBJECTS},
    "org_admin": {
        "organization": {"read", "write"},
        "members": RWD,
        "apikeys": RWD,
        "integrations": INTEGRATIONS,
        "audit": {"read", "verify"},
        "hl7": {"read", "ingest", "replay"},
        "events": {"read"},
        "webhooks": WEBHOOKS,
        **{obj: RWD for obj in CLINICAL + CONFORMANCE},
        "fhir:AuditEvent": {"read"},
    },
    "integration_engineer": {
        "organization": {"read"},
        "integrations": INTEGRATIONS,
        "hl7": {"read", "ingest", "replay"},
        "events": {"read"},
        "webhooks": WEBHOOKS,
        **{obj: {"read"} for obj in CLINICAL},
        **{obj: RWD for obj in CONFORMANCE},
    },
    "clinician": {
        "organization": {"read"},
        "events": {"read"},
        **{obj: {"read", "write"} for obj in CLINICAL},
        **{obj: {"read"} for obj in CONFORMANCE},
    },
    "partner": {
        "organization": {"read"},
        "hl7": {"read", "ingest"},
        "events": {"read"},
        "webhooks": WEBHOOKS - {"replay"},
        **{obj: {"read"} for obj in CLINICAL + CONFORMANCE},
    },
    "auditor": {
        "organization": {"read"},
        "members": {"read"},
        "apikeys": {"read"},
        "audit": {"read", "verify"},
        "fhir:AuditEvent": {"read"},
    },
}
ORG_A = uuid.UUID(int=1)
ORG_B = uuid.UUID(int=2)


@dataclass(frozen=True)
class Assignment:
    subject: str
    role: str


def _principal(role: str, source: str, org: uuid.UUID = ORG_A) -> Principal:
    if source == "token":
        return Principal(f"{role}-user", org, "a", frozenset([role]))
    if source == "api_key":
        return Principal(
            "apikey:0123456789ab", org, "a", frozenset([role]), "api_key", "0123456789ab"
        )
    return Principal(f"{role}-user", org, "a", frozenset())  # roles from the database


def _authorizer() -> Authorizer:
    authorizer = Authorizer()
    authorizer.load(ORG_A, [Assignment(f"{role}-user", role) for role in EXPECTED])
    authorizer.load(ORG_B, [Assignment("someone", "clinician")])
    return authorizer


def _mismatches(
    authorizer: Authorizer, principal: Principal, org: uuid.UUID, role: str
) -> list[tuple[str, str, bool]]:
    allowed = EXPECTED[role]
    return [
        (obj, act, expected)
        for obj, act in itertools.product(OBJECTS, ACTIONS)
        if authorizer.check(principal, obj, act, org_id=org)
        != (expected := act in allowed.get(obj, set()))
    ]


def test_table_covers_every_role_of_the_policy() -> None:
    assert set(EXPECTED) == Policy.default().roles == {role.value for role in Role}


@pytest.mark.parametrize(
    ("role", "source"),
    [
        (role, source)
        for role in sorted(EXPECTED)
        for source in ("token", "database", "api_key")
        # API keys never carry global roles: test_api_key_drops_global_roles
        if (role, source) != ("platform_admin", "api_key")
    ],
)
def test_matrix(role: str, source: str) -> None:
    principal = _principal(role, source)
    assert _mismatches(_authorizer(), principal, ORG_A, role) == []


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_matrix_agrees_with_plain_casbin(role: str) -> None:
    policy = Policy.default()
    naive = policy.enforcer([(f"{role}-user", role, str(ORG_A))])
    authorizer = Authorizer(policy)
    authorizer.load(ORG_A, [Assignment(f"{role}-user", role)])
    for obj, act in itertools.product(OBJECTS, ACTIONS):
        for org in (ORG_A, ORG_B):
            assert authorizer.enforce(f"{role}-user", org, obj, act) == naive.enforce(
                f"{role}-user", str(org), obj, act
            ), (role, org, obj, act)


@pytest.mark.parametrize("source", ["token", "database", "api_key"])
@pytest.mark.parametrize("role", sorted(set(EXPECTED) - {"platform_admin"}))
def test_nothing_is_allowed_in_another_organisation(role: str, source: str) -> None:
    authorizer = _authorizer()
    principal = _principal(role, source)
    assert not [
        (obj, act)
        for obj, act in itertools.product(OBJECTS, ACTIONS)
        if authorizer.check(principal, obj, act, org_id=ORG_B)
    ]


@pytest.mark.parametrize("org", [ORG_A, ORG_B, uuid.uuid4(), None])
def test_platform_admin_holds_in_every_organisation(org: uuid.UUID | None) -> None:
    authorizer = Authorizer()
    authorizer.load_global([Assignment("ops", "platform_admin")])
    by_token = Principal("root", None, None, frozenset(["platform_admin"]))
    by_assignment = Principal("ops", ORG_A, "a", frozenset())
    org_token = Principal("ops2", ORG_A, "a", frozenset(["platform_admin"]))
    for principal in (by_token, by_assignment, org_token):
        assert all(
            authorizer.check(principal, obj, act, org_id=org)
            for obj, act in itertools.product(OBJECTS, ACTIONS)
        ), principal


def test_org_less_token_with_organisation_roles_holds_nothing() -> None:
    principal = Principal("drifter", None, None, frozenset(["org_admin", "clinician"]))
    authorizer = _authorizer()
    assert not authorizer.check(principal, "fhir:Patient", "read", org_id=ORG_A)
    assert not authorizer.check(principal, "orgs", "read")


def test_token_roles_count_only_in_the_token_organisation() -> None:
    """A user who is org_admin of A (token) and auditor of B (database)."""
    authorizer = Authorizer()
    authorizer.load(ORG_B, [Assignment("carol", "auditor")])
    carol = Principal("carol", ORG_A, "a", frozenset(["org_admin"]))
    assert authorizer.roles_in(carol, ORG_A) == {"org_admin"}
    assert authorizer.roles_in(carol, ORG_B) == {"auditor"}
    assert authorizer.check(carol, "integrations", "write", org_id=ORG_A)
    assert not authorizer.check(carol, "integrations", "write", org_id=ORG_B)
    assert authorizer.check(carol, "audit", "read", org_id=ORG_B)


def test_token_and_database_roles_add_up() -> None:
    authorizer = Authorizer()
    authorizer.load(ORG_A, [Assignment("dave", "auditor")])
    dave = Principal("dave", ORG_A, "a", frozenset(["clinician"]))
    assert authorizer.roles_in(dave) == {"clinician", "auditor"}
    assert authorizer.check(dave, "fhir:Patient", "write")
    assert authorizer.check(dave, "fhir:AuditEvent", "read")


def test_database_assignments_do_not_apply_to_api_keys() -> None:
    authorizer = Authorizer()
    authorizer.load(ORG_A, [Assignment("apikey:0123456789ab", "org_admin")])
    key = _principal("partner", "api_key")
    assert authorizer.roles_in(key) == {"partner"}


def test_api_key_drops_global_roles() -> None:
    key = Principal(
        "apikey:x", ORG_A, "a", frozenset(["platform_admin"]), "api_key", "0123456789ab"
    )
    assert key.roles == frozenset()
    assert not Authorizer().check(key, "orgs", "read")


def test_system_principal_holds_its_roles_everywhere() -> None:
    worker = Principal.system("ingest-worker")
    authorizer = Authorizer()
    assert worker.actor == "system:ingest-worker"
    assert authorizer.check(worker, "hl7", "ingest", org_id=ORG_B)
    assert not authorizer.check(Principal.system(roles=[]), "hl7", "read", org_id=ORG_A)


def test_group_names_are_not_objects() -> None:
    org_admin = _principal("org_admin", "token")
    authorizer = _authorizer()
    assert not authorizer.check(org_admin, "fhir:clinical", "read")
    assert not authorizer.check(org_admin, "fhir:conformance", "read")
    with pytest.raises(ValueError):
        fhir_object("clinical")


def test_fhir_helpers() -> None:
    assert fhir_object("Patient") == "fhir:Patient"
    assert [fhir_action(i) for i in ("search-type", "vread", "patch", "delete")] == [
        "read",
        "read",
        "write",
        "delete",
    ]
    with pytest.raises(KeyError):
        fhir_action("launch-missiles")


def test_every_r4_resource_type_is_placed_once() -> None:
    """New types cannot fall through the cracks, and typos in policy.csv are caught.

    R4 = the R4B models minus the types R4B added plus the R4 types R4B dropped.
    """
    import fhir.resources.R4B as r4b
    from fhir.resources.R4B.resource import Resource
    from hl7_fhir.fhir import R4_ONLY_TYPES, R4B_ONLY_TYPES

    types = set(R4_ONLY_TYPES)
    for info in pkgutil.iter_modules(r4b.__path__):
        module = importlib.import_module(f"fhir.resources.R4B.{info.name}")
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, Resource)
                and name.lower() == info.name
            ):
                types.add(name)
    types -= {"Resource", "DomainResource"}  # abstract
    types -= R4B_ONLY_TYPES
    assert len(types) == 146  # R4 4.0.1 (fhirpathpy's R4 model lists the same 146)
    groups: dict[str, list[str]] = {}
    for member, group in Policy.default().object_groups:
        groups.setdefault(member.removeprefix("fhir:"), []).append(group)
    assert set(groups) == types - {"AuditEvent"}
    assert all(len(placed) == 1 for placed in groups.values())


def test_policy_refuses_malformed_lines() -> None:
    with pytest.raises(ValueError, match="line 2"):
        Policy.load("# comment\np, role, obj\n")
