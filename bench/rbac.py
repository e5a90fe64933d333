"""RBAC checks/s at 200 organisations: the platform's Authorizer next to naive casbin.

Population: N organisations x 5 principals (org_admin, integration_engineer, clinician,
partner, auditor, assigned in the database) plus 2 global platform admins. Requests are
drawn at random: 80% in the principal's own organisation, 20% in another one (which must
be denied), over every object/action the policy names plus FHIR types in and out of the
groups, so the mix holds both allows and denies.

Rows:
  naive casbin      one casbin.Enforcer holding every assignment (g rows for every org);
                    a bounded number of checks, since it runs at a few hundred per second
  authorizer cold   first pass over fresh requests: index lookups + casbin per new
                    (role, object, action) answer, memoised
  authorizer        Authorizer.check(principal, obj, act, org_id=...) steady state
  authorizer/token  the same with roles from token claims instead of the database

Every naive decision is compared with the Authorizer's; a mismatch is printed and fails
the run, so a fast wrong answer cannot pass as a speed-up.

Usage: uv run python bench/rbac.py [--orgs 200] [--seconds 2] [--naive-checks 1500]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ehr_api.auth.principal import Principal, Role
from ehr_api.auth.rbac import Authorizer, Policy

ORG_ROLES = (
    Role.ORG_ADMIN,
    Role.INTEGRATION_ENGINEER,
    Role.CLINICIAN,
    Role.PARTNER,
    Role.AUDITOR,
)
FHIR_TYPES = ("Patient", "Observation", "DiagnosticReport", "AuditEvent", "ValueSet", "Bundle")
EXTRA_ACTIONS = ("read", "write", "delete")

Request = tuple[Principal, uuid.UUID, str, str]


@dataclass(frozen=True)
class Assignment:
    subject: str
    role: str


def catalog(policy: Policy) -> list[tuple[str, str]]:
    """Every (object, action) named in the policy, plus FHIR types, minus wildcards."""
    pairs = {(obj, act) for _, obj, act in policy.rules if "*" not in obj + act}
    pairs = {(obj, act) for obj, act in pairs if obj not in policy.group_names}
    pairs |= {(f"fhir:{t}", act) for t in FHIR_TYPES for act in EXTRA_ACTIONS}
    return sorted(pairs)


def population(orgs: int) -> tuple[list[uuid.UUID], dict[uuid.UUID, list[Assignment]]]:
    ids = [uuid.UUID(int=n + 1) for n in range(orgs)]
    rows = {
        org: [Assignment(f"{role.value}-{n}", role.value) for role in ORG_ROLES]
        for n, org in enumerate(ids)
    }
    return ids, rows


def requests(
    ids: Sequence[uuid.UUID],
    pairs: Sequence[tuple[str, str]],
    count: int,
    rng: random.Random,
    *,
    token_roles: bool,
) -> list[Request]:
    out: list[Request] = []
    for _ in range(count):
        n = rng.randrange(len(ids))
        if rng.random() < 0.02:
            roles = frozenset([Role.PLATFORM_ADMIN.value]) if token_roles else frozenset()
            principal = Principal(f"root-{n % 2}", None, None, roles)
        else:
            role = rng.choice(ORG_ROLES).value
            roles = frozenset([role]) if token_roles else frozenset()
            principal = Principal(f"{role}-{n}", ids[n], f"org-{n}", roles)
        target = ids[n] if rng.random() < 0.8 else ids[rng.randrange(len(ids))]
        obj, act = rng.choice(pairs)
        out.append((principal, target, obj, act))
    return out


def rate(check: Callable[[Request], bool], reqs: Sequence[Request], seconds: float) -> float:
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for request in reqs:
            check(request)
        done += len(reqs)
        if time.perf_counter() >= deadline:
            break
    return done / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--naive-checks", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    policy = Policy.default()
    pairs = catalog(policy)
    ids, rows = population(args.orgs)
    global_rows = [
        Assignment("root-0", Role.PLATFORM_ADMIN.value),
        Assignment("root-1", "platform_admin"),
    ]

    grouping = [(a.subject, a.role, str(org)) for org, assigned in rows.items() for a in assigned]
    grouping += [(a.subject, a.role, "*") for a in global_rows]
    start = time.perf_counter()
    naive = policy.enforcer(grouping)
    naive_build = time.perf_counter() - start

    authorizer = Authorizer(policy, max_orgs=max(1024, args.orgs))
    start = time.perf_counter()
    for org, assigned in rows.items():
        authorizer.load(org, assigned)
    authorizer.load_global(global_rows)
    fast_build = time.perf_counter() - start

    db_reqs = requests(ids, pairs, 50_000, rng, token_roles=False)
    token_reqs = requests(ids, pairs, 50_000, rng, token_roles=True)

    def fast(request: Request) -> bool:
        principal, org, obj, act = request
        return authorizer.check(principal, obj, act, org_id=org)

    start = time.perf_counter()
    for request in db_reqs:
        fast(request)
    cold = len(db_reqs) / (time.perf_counter() - start)

    sample = db_reqs[: args.naive_checks]
    start = time.perf_counter()
    naive_answers = [naive.enforce(p.subject, str(org), obj, act) for p, org, obj, act in sample]
    naive_rate = len(sample) / (time.perf_counter() - start)
    mismatches = [
        (request, expected)
        for request, expected in zip(sample, naive_answers, strict=True)
        if fast(request) != expected
    ]

    steady = rate(fast, db_reqs, args.seconds)
    token = rate(fast, token_reqs, args.seconds)
    allowed = sum(fast(r) for r in db_reqs) / len(db_reqs)

    print(f"RBAC checks/s: {args.orgs} organisations x {len(ORG_ROLES)} principals + 2 global")
    print(f"  policy: {len(policy.rules)} rules, {len(policy.object_groups)} object groupings;")
    print(f"  {len(pairs)} object/action pairs; {allowed:.0%} of requests allowed")
    print(
        f"  build: naive enforcer {naive_build * 1e3:.1f} ms, authorizer index "
        f"{fast_build * 1e3:.1f} ms"
    )
    print(f"  {'naive casbin':<18}{naive_rate:>14,.0f} checks/s  ({len(sample)} checks)")
    print(f"  {'authorizer cold':<18}{cold:>14,.0f} checks/s  ({cold / naive_rate:,.0f}x naive)")
    print(f"  {'authorizer':<18}{steady:>14,.0f} checks/s  ({steady / naive_rate:,.0f}x naive)")
    print(f"  {'authorizer/token':<18}{token:>14,.0f} checks/s  ({token / naive_rate:,.0f}x naive)")
    print(f"  target >= 50,000 checks/s: {'met' if min(steady, token) >= 50_000 else 'MISSED'}")
    print(
        f"  agreement with naive casbin on {len(sample)} requests: "
        f"{len(sample) - len(mismatches)}/{len(sample)}"
    )
    for (principal, org, obj, act), expected in mismatches[:10]:
        print(f"    MISMATCH {principal.subject} {org} {obj} {act}: casbin says {expected}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
