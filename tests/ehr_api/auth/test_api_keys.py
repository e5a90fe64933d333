"""API keys: shape, stored hash only, constant-time verification, expiry and revocation."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from ehr_api.auth.api_keys import (
    ApiKeyExpiredError,
    ApiKeyInvalidError,
    ApiKeyRevokedError,
    check_key_roles,
    generate_api_key,
    hash_api_key,
    parse_api_key,
    verify_api_key,
)
from ehr_api.auth.principal import Principal

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
PEPPER = b"p" * 32


@dataclass
class Row:
    """Stands in for the api_keys table row: verification only reads these fields."""

    prefix: str
    hash: str
    org_id: uuid.UUID = field(default_factory=uuid.uuid4)
    roles: list[str] = field(default_factory=lambda: ["partner"])
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


def _stored(pepper: bytes | None = None, **fields: object) -> tuple[str, Row]:
    new = generate_api_key(pepper=pepper)
    return new.key, Row(prefix=new.prefix, hash=new.hash, **fields)  # type: ignore[arg-type]


def test_key_shape_and_what_is_stored() -> None:
    new = generate_api_key()
    marker, prefix, secret = new.key.split("_", 2)
    assert marker == "ehr" and prefix == new.prefix and len(prefix) == 12
    assert len(secret) >= 43  # 256 bits of URL-safe base64
    assert new.hash == hash_api_key(new.key)
    assert new.hash.startswith("sha256$") and secret not in new.hash
    assert new.key not in repr(new)


def test_keys_are_unique() -> None:
    keys = [generate_api_key() for _ in range(500)]
    assert len({k.key for k in keys}) == len({k.prefix for k in keys}) == 500


def test_parse_round_trip_even_when_the_secret_has_underscores() -> None:
    key = "ehr_0123456789ab_" + "a_b" * 15
    assert parse_api_key(key) == ("0123456789ab", "a_b" * 15)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "ehr_",
        "abc_0123456789ab_" + "x" * 43,
        "ehr_0123456789AB_" + "x" * 43,
        "ehr_0123456789a_" + "x" * 43,
        "ehr_0123456789ab_short",
        "Bearer ehr_0123456789ab_" + "x" * 43,
    ],
)
def test_malformed_keys(key: str) -> None:
    with pytest.raises(ApiKeyInvalidError, match="malformed"):
        parse_api_key(key)


def test_verify_accepts_the_right_key() -> None:
    key, row = _stored()
    assert verify_api_key(key, row, now=NOW) is None  # raises on refusal


def test_wrong_secret_and_unknown_prefix_look_the_same() -> None:
    key, row = _stored()
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    with pytest.raises(ApiKeyInvalidError, match="unknown API key"):
        verify_api_key(wrong, row, now=NOW)
    with pytest.raises(ApiKeyInvalidError, match="unknown API key"):
        verify_api_key(key, None, now=NOW)


def test_hash_binds_the_prefix() -> None:
    """A row's hash copied onto another prefix does not accept that prefix's key."""
    key, row = _stored()
    other_key, other_row = _stored()
    other_row.hash = row.hash
    with pytest.raises(ApiKeyInvalidError):
        verify_api_key(other_key, other_row, now=NOW)
    verify_api_key(key, row, now=NOW)


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    key, row = _stored()
    verify_api_key(key, row, now=NOW)
    assert (row.hash.encode(), row.hash.encode()) in calls


def test_expired_key() -> None:
    key, row = _stored(expires_at=NOW - timedelta(seconds=1))
    with pytest.raises(ApiKeyExpiredError, match=row.prefix) as caught:
        verify_api_key(key, row, now=NOW)
    assert caught.value.code == "api_key_expired"
    assert caught.value.status == 401  # an AuthenticationError: one handler, problem JSON
    row.expires_at = NOW + timedelta(days=1)
    verify_api_key(key, row, now=NOW)


def test_revoked_key() -> None:
    key, row = _stored(revoked_at=NOW - timedelta(minutes=1))
    with pytest.raises(ApiKeyRevokedError) as caught:
        verify_api_key(key, row, now=NOW)
    assert caught.value.code == "api_key_revoked"


def test_revocation_in_the_future_is_a_grace_period() -> None:
    key, row = _stored(revoked_at=NOW + timedelta(hours=24))
    verify_api_key(key, row, now=NOW)
    with pytest.raises(ApiKeyRevokedError):
        verify_api_key(key, row, now=NOW + timedelta(hours=24))


def test_naive_datetimes_are_read_as_utc() -> None:
    key, row = _stored(expires_at=datetime(2029, 12, 31))
    with pytest.raises(ApiKeyExpiredError):
        verify_api_key(key, row, now=NOW)


def test_errors_never_contain_the_key() -> None:
    key, row = _stored(revoked_at=NOW)
    with pytest.raises(ApiKeyRevokedError) as caught:
        verify_api_key(key, row, now=NOW)
    assert parse_api_key(key).secret not in str(caught.value)


def test_pepper_makes_the_hash_an_hmac() -> None:
    key, row = _stored(pepper=PEPPER)
    assert row.hash.startswith("hmac-sha256$")
    verify_api_key(key, row, now=NOW, pepper=PEPPER)
    with pytest.raises(ApiKeyInvalidError):
        verify_api_key(key, row, now=NOW, pepper=b"q" * 32)
    with pytest.raises(ApiKeyInvalidError, match="pepper"):
        verify_api_key(key, row, now=NOW)


def test_plain_hashes_still_verify_once_a_pepper_is_configured() -> None:
    key, row = _stored()
    assert verify_api_key(key, row, now=NOW, pepper=PEPPER) is None  # raises on refusal


def test_key_roles_are_organisation_roles_only() -> None:
    assert check_key_roles(["partner", "clinician", "partner"]) == ["partner", "clinician"]
    with pytest.raises(ValueError, match="global"):
        check_key_roles(["partner", "platform_admin"])
    with pytest.raises(ValueError, match="unknown role 'superuser'"):
        check_key_roles(["superuser"])
    with pytest.raises(ValueError, match="at least one"):
        check_key_roles([])


def test_principal_for_a_key() -> None:
    key, row = _stored(roles=["partner", "platform_admin"])
    principal = Principal.from_api_key(row, org_slug="acme")
    assert principal.kind == "api_key" and principal.org_id == row.org_id
    assert principal.roles == {"partner"}  # a global role never survives on a key
    assert principal.actor == f"apikey:{row.prefix}" == principal.subject
    assert key not in repr(principal)
