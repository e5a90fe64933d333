"""API keys for partners and machines: `ehr_<prefix>_<secret>`, shown once, stored as a hash.

The key is the credential, so the organisation is not known until the key is looked up.
`prefix` is the lookup handle (unique, not secret, safe to log and show in audit rows);
`secret` is 256 random bits, so a single SHA-256 is enough (no password stretching:
there is nothing to brute-force). The hash covers the whole key, prefix included, so a
stored hash cannot be moved to another row. With a `pepper` (a server-side secret kept out
of the database) the hash becomes an HMAC, and a stolen table alone is not enough to test
guesses offline.

Stored form: `sha256$<hex>` or `hmac-sha256$<hex>`, so the scheme can change later
without guessing what an old row holds.

Typical use, with the repository supplying rows::

    new = generate_api_key()                 # new.key goes to the caller, once
    row = ApiKey(prefix=new.prefix, hash=new.hash, roles=roles, ...)
    ...
    prefix = parse_api_key(presented).prefix
    row = await repository.get_by_prefix(db, prefix=prefix)
    verify_api_key(presented, row)           # raises ApiKeyError subclasses
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from ehr_api.auth.principal import GLOBAL_ROLES, ORG_ROLES
from ehr_api.errors import AuthenticationError

__all__ = [
    "KEY_PREFIX",
    "ApiKeyError",
    "ApiKeyExpiredError",
    "ApiKeyInvalidError",
    "ApiKeyLike",
    "ApiKeyRevokedError",
    "NewApiKey",
    "ParsedApiKey",
    "check_key_roles",
    "generate_api_key",
    "hash_api_key",
    "parse_api_key",
    "verify_api_key",
]

KEY_PREFIX = "ehr"
_PREFIX_BYTES = 6  # 12 hex characters: a handle, unique by constraint, not a secret
_SECRET_BYTES = 32  # 256 bits
_HEX = frozenset("0123456789abcdef")
_SHA256 = "sha256"
_HMAC = "hmac-sha256"


class ApiKeyError(AuthenticationError):
    """An API key was refused (401); `code` is a stable machine-readable reason.

    The message never contains the key.
    """

    code = "invalid_api_key"


class ApiKeyInvalidError(ApiKeyError):
    """Malformed, unknown, or the secret does not match."""


class ApiKeyExpiredError(ApiKeyError):
    code = "api_key_expired"


class ApiKeyRevokedError(ApiKeyError):
    code = "api_key_revoked"


class ApiKeyLike(Protocol):
    """What verification needs from a stored key (the `api_keys` row fits)."""

    @property
    def prefix(self) -> str: ...
    @property
    def hash(self) -> str: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def revoked_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly generated key: `key` is shown to the caller once, the rest is stored."""

    key: str = field(repr=False)
    prefix: str
    hash: str


class ParsedApiKey(NamedTuple):
    prefix: str
    secret: str


def generate_api_key(*, pepper: bytes | None = None) -> NewApiKey:
    """A new random key and the values to store for it.

    >>> new = generate_api_key()
    >>> new.key.startswith(f"ehr_{new.prefix}_") and new.hash.startswith("sha256$")
    True
    """
    prefix = secrets.token_hex(_PREFIX_BYTES)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return NewApiKey(key=key, prefix=prefix, hash=hash_api_key(key, pepper=pepper))


def parse_api_key(key: str) -> ParsedApiKey:
    """Split a presented key into its lookup prefix and secret.

    The secret is URL-safe base64 and may itself contain `_`, so only the first two
    separators count.

    Raises:
        ApiKeyInvalidError: not shaped like `ehr_<12 hex>_<secret>`.
    """
    parts = key.split("_", 2)
    if (
        len(parts) != 3
        or parts[0] != KEY_PREFIX
        or len(parts[1]) != 2 * _PREFIX_BYTES
        or not _HEX.issuperset(parts[1])
        or len(parts[2]) < 32
    ):
        raise ApiKeyInvalidError("malformed API key")
    return ParsedApiKey(prefix=parts[1], secret=parts[2])


def hash_api_key(key: str, *, pepper: bytes | None = None) -> str:
    """The stored form of `key` (see the module docstring for the format)."""
    data = key.encode()
    if pepper:
        return f"{_HMAC}${hmac.new(pepper, data, hashlib.sha256).hexdigest()}"
    return f"{_SHA256}${hashlib.sha256(data).hexdigest()}"


def verify_api_key(
    key: str,
    row: ApiKeyLike | None,
    *,
    now: datetime | None = None,
    pepper: bytes | None = None,
) -> None:
    """Accept `key` for `row` (looked up by its prefix), or raise why not.

    `row` may be None (no such prefix) so callers have one call and one error for
    "unknown" and "wrong secret", which tells an attacker nothing. The secret is compared
    in constant time. `revoked_at` in the future is a scheduled revocation: the key keeps
    working until then, which gives a partner a grace period to switch keys.

    Raises:
        ApiKeyInvalidError: malformed, unknown prefix, or wrong secret.
        ApiKeyRevokedError: revoked at or before `now`.
        ApiKeyExpiredError: expired at or before `now`.
    """
    parsed = parse_api_key(key)
    if row is None or not hmac.compare_digest(row.prefix, parsed.prefix):
        raise ApiKeyInvalidError("unknown API key")
    scheme, _, _ = row.hash.partition("$")
    if scheme == _HMAC and not pepper:
        raise ApiKeyInvalidError("API key hash needs the pepper, which is not configured")
    expected = hash_api_key(key, pepper=pepper if scheme == _HMAC else None)
    if not hmac.compare_digest(expected.encode(), row.hash.encode()):
        raise ApiKeyInvalidError("unknown API key")
    moment = now or datetime.now(UTC)
    if row.revoked_at is not None and _aware(row.revoked_at) <= moment:
        raise ApiKeyRevokedError(f"API key {row.prefix} has been revoked")
    if row.expires_at is not None and _aware(row.expires_at) <= moment:
        raise ApiKeyExpiredError(f"API key {row.prefix} has expired")


def check_key_roles(roles: Iterable[str]) -> list[str]:
    """The roles a new key may carry, deduplicated in order; refuses the rest.

    Keys are organisation credentials: a global role on a key would let whoever finds it
    act on every tenant, so `platform_admin` is refused outright.

    Raises:
        ValueError: no role, a global role, or an unknown role (the message names it).
    """
    result: list[str] = []
    for role in roles:
        if role in GLOBAL_ROLES:
            raise ValueError(f"role {role!r} is global and cannot be granted to an API key")
        if role not in ORG_ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {sorted(ORG_ROLES)}")
        if role not in result:
            result.append(role)
    if not result:
        raise ValueError("an API key needs at least one role")
    return result


def _aware(moment: datetime) -> datetime:
    # The UTCDateTime column never yields naive values, but plain rows in tests or
    # scripts might; treat naive as UTC rather than crash on comparison.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
