"""Who may do what, where: casbin RBAC with the organisation as domain, made fast.

The rules are casbin's: `rbac_model.conf` (RBAC with domains, plus object groups) and
`policy.csv` (role -> object -> action, the same for every organisation) ship in this
package. Role *assignments* are data: database rows (per organisation, or global with
domain "*"), plus the roles a token or API key carries.

Why not one casbin enforcer holding every assignment: casbin evaluates its matcher once
per policy line per check, resolving roles across every domain, which measured 330-416
checks/s at 200 organisations. Two observations make it cheap instead:

1. The policy is static and domain-free, so "does role R allow (obj, act)?" has one
   answer per process. casbin computes it on first use (so its matcher, keyMatch and
   object groups stay the single source of semantics) and the answer is memoised.
2. Assignments only matter per (organisation, subject), so they are indexed that way:
   a dict per organisation, kept in an LRU of organisations and dropped by
   `invalidate(org_id)` when assignments change. Global assignments live beside it.

A check is then two dict lookups and a set union at most. `Authorizer.enforce` answers
exactly what the naive enforcer answers for database assignments (a test compares them on
random requests); `Authorizer.check` adds the credential's roles under this rule:

- roles on a *user* token hold in the token's organisation; global roles
  (`platform_admin`) in every organisation;
- roles on an *API key* hold only in the key's organisation, global ones never;
- a *system* principal (the platform's own work) holds its roles everywhere.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import suppress
from functools import cache
from importlib.resources import files
from typing import Protocol

import casbin  # type: ignore[import-untyped]

from ehr_api.auth.principal import GLOBAL_ROLES, Principal

__all__ = [
    "FHIR_INTERACTIONS",
    "GLOBAL_DOMAIN",
    "AssignmentLike",
    "Authorizer",
    "Policy",
    "fhir_action",
    "fhir_object",
]

#: The casbin domain of assignments that hold in every organisation.
GLOBAL_DOMAIN = "*"
_NO_DOMAIN = "-"  # domain used when asking the policy about a role directly
_EMPTY: frozenset[str] = frozenset()
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")

#: FHIR REST interaction -> policy action, so issue-5 routes need not invent names.
FHIR_INTERACTIONS: Mapping[str, str] = {
    "read": "read",
    "vread": "read",
    "search-type": "read",
    "history-instance": "read",
    "history-type": "read",
    "validate": "read",
    "everything": "read",
    "create": "write",
    "update": "write",
    "patch": "write",
    "delete": "delete",
}


def fhir_object(resource_type: str) -> str:
    """The policy object for a FHIR resource type: `fhir_object("Patient") == "fhir:Patient"`.

    Raises:
        ValueError: not shaped like a resource type (so a group name such as `clinical`
            taken from a URL can never be checked as if it were a type).
    """
    if not _RESOURCE_TYPE.fullmatch(resource_type):
        raise ValueError(f"{resource_type!r} is not a FHIR resource type name")
    return f"fhir:{resource_type}"


def fhir_action(interaction: str) -> str:
    """The policy action for a FHIR interaction (`"search-type"` -> `"read"`).

    Raises:
        KeyError: an interaction the policy does not map.
    """
    return FHIR_INTERACTIONS[interaction]


class AssignmentLike(Protocol):
    """One role assignment (a `role_assignments` row fits)."""

    @property
    def subject(self) -> str: ...
    @property
    def role(self) -> str: ...


class Policy:
    """The casbin model and the policy file, parsed; answers role-level questions."""

    def __init__(
        self,
        model_text: str,
        rules: Iterable[tuple[str, str, str]],
        object_groups: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.model_text = model_text
        self.rules: tuple[tuple[str, str, str], ...] = tuple(rules)
        self.object_groups: tuple[tuple[str, str], ...] = tuple(object_groups)
        self.roles = frozenset(role for role, _, _ in self.rules)
        self.group_names = frozenset(group for _, group in self.object_groups)
        self._memo: dict[tuple[str, str, str], bool] = {}
        self._lock = threading.Lock()
        self._role_enforcer: casbin.Enforcer | None = None

    @classmethod
    def load(cls, policy_text: str | None = None, model_text: str | None = None) -> Policy:
        """Parse a policy (default: the packaged `policy.csv` and `rbac_model.conf`).

        Raises:
            ValueError: a line that is neither a `p` rule nor a `g2` object group.
        """
        package = files("ehr_api.auth")
        if policy_text is None:
            policy_text = package.joinpath("policy.csv").read_text(encoding="utf-8")
        if model_text is None:
            model_text = package.joinpath("rbac_model.conf").read_text(encoding="utf-8")
        rules: list[tuple[str, str, str]] = []
        groups: list[tuple[str, str]] = []
        for number, raw in enumerate(policy_text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            tokens = [token.strip() for token in line.split(",")]
            if tokens[0] == "p" and len(tokens) == 4:
                rules.append((tokens[1], tokens[2], tokens[3]))
            elif tokens[0] == "g2" and len(tokens) == 3:
                groups.append((tokens[1], tokens[2]))
            else:
                raise ValueError(f"policy line {number}: expected 'p, role, obj, act' or 'g2, ...'")
        return cls(model_text, rules, groups)

    @staticmethod
    def default() -> Policy:
        """The packaged policy, parsed once per process."""
        return _default_policy()

    def enforcer(self, assignments: Iterable[tuple[str, str, str]] = ()) -> casbin.Enforcer:
        """A plain casbin enforcer for this policy plus `(subject, role, domain)` rows.

        This is the reference the fast path must agree with, and the naive baseline in
        bench/rbac.py; the `Authorizer` uses it only to answer role-level questions.
        """
        enforcer = casbin.Enforcer(casbin.Enforcer.new_model(text=self.model_text))
        enforcer.add_policies([list(rule) for rule in self.rules])
        enforcer.add_named_grouping_policies("g2", [list(group) for group in self.object_groups])
        grouping = [list(row) for row in assignments]
        if grouping:
            enforcer.add_grouping_policies(grouping)
        return enforcer

    def permits(self, role: str, obj: str, act: str) -> bool:
        """Whether `role` alone allows `act` on `obj`: casbin's answer, memoised.

        Group names (`fhir:clinical`) are not objects: asking about one is denied.
        """
        key = (role, obj, act)
        answer = self._memo.get(key)
        if answer is None:
            with self._lock:
                if self._role_enforcer is None:
                    # Without `g` rows casbin's g(r, p, dom) is true exactly when r == p,
                    # so asking with the role as subject evaluates that role's rules only.
                    self._role_enforcer = self.enforcer()
                answer = obj not in self.group_names and bool(
                    self._role_enforcer.enforce(role, _NO_DOMAIN, obj, act)
                )
                if len(self._memo) >= 65536:  # objects come from callers: bound the memory
                    self._memo.clear()
                self._memo[key] = answer
        return answer

    def __repr__(self) -> str:
        return f"Policy(rules={len(self.rules)}, object_groups={len(self.object_groups)})"


@cache
def _default_policy() -> Policy:
    return Policy.load()


Loader = Callable[[uuid.UUID], Iterable[AssignmentLike]]
AsyncFetch = Callable[[], Awaitable[Iterable[AssignmentLike]]]


class Authorizer:
    """Fast `check(principal, obj, act)` over the policy and per-organisation assignments.

    One per process. Feed it assignments with `load` / `load_global` (or give it a
    synchronous `loader`, or call `ensure_loaded` with an async fetch before checking),
    and call `invalidate(org_id)` whenever an organisation's assignments change
    (`invalidate(None)` for global ones). An organisation that was never loaded has no
    database assignments: checks then rest on credential roles alone (fail closed).

    `max_age` (seconds) bounds how stale a loaded organisation may get: with several API
    processes, `invalidate` only reaches the process that made the change, so the others
    reload after `max_age` (`ensure_loaded` and the sync `loader` honour it; a check on
    a stale entry with neither keeps using it).
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        loader: Loader | None = None,
        max_orgs: int = 1024,
        max_decisions: int = 65536,
        max_age: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or Policy.default()
        self._loader = loader
        self._max_orgs = max_orgs
        self._max_decisions = max_decisions
        self._max_age = max_age
        self._clock = clock
        self._orgs: OrderedDict[uuid.UUID, dict[str, frozenset[str]]] = OrderedDict()
        self._loaded_at: dict[uuid.UUID, float] = {}
        self._global: dict[str, frozenset[str]] = {}
        self._decisions: dict[tuple[frozenset[str], str, str], bool] = {}
        self._global_loaded = False
        self._epoch = 0  # bumped by every invalidation; guards async loads against races

    # --- assignments -----------------------------------------------------------------

    def load(self, org_id: uuid.UUID, assignments: Iterable[AssignmentLike]) -> None:
        """Replace `org_id`'s assignments with `assignments` (all of them, not a delta)."""
        self._orgs[org_id] = _index(assignments)
        self._orgs.move_to_end(org_id)
        self._loaded_at[org_id] = self._clock()
        while len(self._orgs) > self._max_orgs:
            evicted, _ = self._orgs.popitem(last=False)
            self._loaded_at.pop(evicted, None)

    def load_global(self, assignments: Iterable[AssignmentLike]) -> None:
        """Replace the global assignments (rows with no organisation, domain "*")."""
        self._global = _index(assignments)
        self._global_loaded = True

    def is_loaded(self, org_id: uuid.UUID) -> bool:
        """Whether `org_id` is cached and not older than `max_age`."""
        return org_id in self._orgs and not self._stale(org_id)

    def invalidate(self, org_id: uuid.UUID | None) -> None:
        """Forget `org_id`'s assignments (None: the global ones); the next use reloads."""
        self._epoch += 1
        if org_id is None:
            self._global = {}
            self._global_loaded = False
        else:
            self._orgs.pop(org_id, None)
            self._loaded_at.pop(org_id, None)

    def invalidate_all(self) -> None:
        self._epoch += 1
        self._orgs.clear()
        self._loaded_at.clear()
        self._global = {}
        self._global_loaded = False

    async def ensure_loaded(self, org_id: uuid.UUID, fetch: AsyncFetch) -> None:
        """Load `org_id` with `await fetch()` unless it is cached.

        If an invalidation lands while the fetch is in flight, the result may predate the
        change, so it is fetched again (a few times at most, then kept).
        """
        for _attempt in range(3):
            if self.is_loaded(org_id):
                return
            epoch = self._epoch
            rows = list(await fetch())
            if epoch == self._epoch:
                break
        self.load(org_id, rows)

    async def ensure_global_loaded(self, fetch: AsyncFetch) -> None:
        """`ensure_loaded` for the global assignments (loaded at most once until invalidated)."""
        if not self._global_loaded:
            self.load_global(list(await fetch()))

    # --- questions -------------------------------------------------------------------

    def roles_in(self, principal: Principal, org_id: uuid.UUID | None = None) -> frozenset[str]:
        """Every role `principal` holds in `org_id` (default: its own organisation)."""
        org = principal.org_id if org_id is None else org_id
        kind = principal.kind
        if kind == "system":
            return principal.roles
        claims = principal.roles
        if org is not None and org == principal.org_id:
            roles = claims
        elif kind == "api_key":
            return _EMPTY  # a key outside its organisation holds nothing
        else:
            roles = claims & GLOBAL_ROLES if claims else _EMPTY
        if kind == "api_key":
            return roles
        extra = self._global.get(principal.subject)
        if org is not None:
            index = self._org_index(org)
            local = index.get(principal.subject) if index else None
            if local:
                extra = local if extra is None else extra | local
        if extra:
            roles = extra if not roles else roles | extra
        return roles

    def check(
        self, principal: Principal, obj: str, act: str, *, org_id: uuid.UUID | None = None
    ) -> bool:
        """Whether `principal` may `act` on `obj` in `org_id` (default: its own org)."""
        roles = self.roles_in(principal, org_id)
        if not roles:
            return False
        key = (roles, obj, act)
        answer = self._decisions.get(key)
        if answer is None:
            answer = any(self.policy.permits(role, obj, act) for role in roles)
            if len(self._decisions) >= self._max_decisions:
                self._decisions.clear()
            self._decisions[key] = answer
        return answer

    def enforce(self, subject: str, org_id: uuid.UUID, obj: str, act: str) -> bool:
        """casbin's `enforce(sub, dom, obj, act)` over database assignments only."""
        index = self._org_index(org_id)
        roles = (index.get(subject, _EMPTY) if index else _EMPTY) | self._global.get(
            subject, _EMPTY
        )
        return any(self.policy.permits(role, obj, act) for role in roles)

    def _org_index(self, org_id: uuid.UUID) -> dict[str, frozenset[str]] | None:
        index = self._orgs.get(org_id)
        if index is not None and (self._max_age is None or not self._stale(org_id)):
            # KeyError: invalidated by another thread just now; this index is still valid.
            with suppress(KeyError):
                self._orgs.move_to_end(org_id)
            return index
        if self._loader is None:
            return index
        self.load(org_id, self._loader(org_id))
        return self._orgs[org_id]

    def _stale(self, org_id: uuid.UUID) -> bool:
        if self._max_age is None:
            return False
        loaded_at = self._loaded_at.get(org_id)
        return loaded_at is None or self._clock() - loaded_at > self._max_age


def _index(assignments: Iterable[AssignmentLike]) -> dict[str, frozenset[str]]:
    grouped: dict[str, set[str]] = {}
    for row in assignments:
        grouped.setdefault(row.subject, set()).add(row.role)
    return {subject: frozenset(roles) for subject, roles in grouped.items()}
