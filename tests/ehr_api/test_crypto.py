"""Secrets at rest: AES-GCM envelopes, place binding (AAD), tampering, key rotation."""

from __future__ import annotations

import base64
import uuid

import pytest
from ehr_api.security.crypto import (
    DecryptionError,
    Keyring,
    KeyringError,
    UnknownKeyError,
    aad_for,
    generate_key,
)

ORG_A, ORG_B = uuid.UUID(int=1), uuid.UUID(int=2)
CRED = uuid.UUID(int=10)
TABLE = "integration_credentials"
AAD = aad_for(TABLE, ORG_A, CRED, "client_secret")
SECRET = "s3cret-value-ü"


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.parse(f"k1:{generate_key()}")


def test_round_trip(keyring: Keyring) -> None:
    blob = keyring.encrypt(SECRET, aad=AAD)
    assert keyring.decrypt(blob, aad=AAD) == SECRET


def test_envelope_shape(keyring: Keyring) -> None:
    blob = keyring.encrypt(SECRET, aad=AAD)
    assert set(blob) == {"v", "kid", "nonce", "ct"}
    assert blob["v"] == 1 and blob["kid"] == "k1"
    assert len(base64.b64decode(blob["nonce"])) == 12
    assert SECRET.encode() not in base64.b64decode(blob["ct"])
    assert keyring.encrypt(SECRET, aad=AAD)["nonce"] != blob["nonce"]


@pytest.mark.parametrize(
    "elsewhere",
    [
        aad_for(TABLE, ORG_B, CRED, "client_secret"),
        aad_for(TABLE, ORG_A, uuid.UUID(int=11), "client_secret"),
        aad_for(TABLE, ORG_A, CRED, "tls_key"),
        aad_for("webhook_subscriptions", ORG_A, CRED, "client_secret"),
        b"",
    ],
    ids=["other-org", "other-row", "other-field", "other-table", "no-aad"],
)
def test_a_value_moved_elsewhere_does_not_decrypt(keyring: Keyring, elsewhere: bytes) -> None:
    blob = keyring.encrypt(SECRET, aad=AAD)
    with pytest.raises(DecryptionError, match="not stored at this place"):
        keyring.decrypt(blob, aad=elsewhere)


def _flip(text: str, index: int = 0) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("field", ["ct", "nonce"])
@pytest.mark.parametrize("index", [0, -1])
def test_tampering_is_detected(keyring: Keyring, field: str, index: int) -> None:
    blob = keyring.encrypt(SECRET, aad=AAD)
    blob[field] = _flip(blob[field], index)
    with pytest.raises(DecryptionError):
        keyring.decrypt(blob, aad=AAD)


def test_relabelled_kid_is_detected() -> None:
    keyring = Keyring.parse(f"k1:{generate_key()},k2:{generate_key()}")
    blob = keyring.encrypt(SECRET, aad=AAD)
    with pytest.raises(DecryptionError):
        keyring.decrypt({**blob, "kid": "k2"}, aad=AAD)


@pytest.mark.parametrize(
    "blob",
    [
        "not a dict",
        {},
        {"v": 2, "kid": "k1", "nonce": "AAAAAAAAAAAAAAAA", "ct": "AA=="},
        {"v": 1, "kid": "k1", "nonce": "!!", "ct": "AA=="},
        {"v": 1, "kid": "k1", "nonce": "AAAA", "ct": "AA=="},
        {"v": 1, "kid": "k1", "nonce": "AAAAAAAAAAAAAAAA"},
    ],
    ids=["string", "empty", "version", "bad-base64", "short-nonce", "no-ct"],
)
def test_malformed_envelopes(keyring: Keyring, blob: object) -> None:
    with pytest.raises(DecryptionError):
        keyring.decrypt(blob, aad=AAD)  # type: ignore[arg-type]


def test_rotation_re_encrypts_under_the_new_key_and_old_values_still_decrypt(
    keyring: Keyring,
) -> None:
    old_blob = keyring.encrypt(SECRET, aad=AAD)
    rotated_ring = keyring.with_new_key()
    assert rotated_ring.current_kid == "k2" and rotated_ring.kids == ("k2", "k1")
    assert rotated_ring.decrypt(old_blob, aad=AAD) == SECRET
    assert rotated_ring.needs_rotation(old_blob)

    new_blob = rotated_ring.rotate(old_blob, aad=AAD)
    assert new_blob["kid"] == "k2" and not rotated_ring.needs_rotation(new_blob)
    assert rotated_ring.decrypt(new_blob, aad=AAD) == SECRET
    assert rotated_ring.rotate(new_blob, aad=AAD) == new_blob  # idempotent

    only_new = Keyring.parse(rotated_ring.to_spec().split(",")[0])
    assert only_new.decrypt(new_blob, aad=AAD) == SECRET
    with pytest.raises(UnknownKeyError):
        only_new.decrypt(old_blob, aad=AAD)


def test_rotate_refuses_a_value_that_was_moved(keyring: Keyring) -> None:
    blob = keyring.encrypt(SECRET, aad=AAD)
    with pytest.raises(DecryptionError):
        keyring.with_new_key().rotate(blob, aad=aad_for(TABLE, ORG_B, CRED, "client_secret"))


def test_unknown_kid_names_it(keyring: Keyring) -> None:
    other = Keyring.parse(f"k9:{generate_key()}")
    blob = other.encrypt(SECRET, aad=AAD)
    with pytest.raises(UnknownKeyError, match=r"'k9'.*not configured.*\['k1'\]"):
        keyring.decrypt(blob, aad=AAD)


def test_keyring_from_environment() -> None:
    k1, k2 = generate_key(), generate_key()
    urlsafe = base64.urlsafe_b64encode(base64.b64decode(k2)).decode().rstrip("=")
    ring = Keyring.from_env({"EHR_ENCRYPTION_KEYS": f" new:{urlsafe} , old:{k1} "})
    assert ring.kids == ("new", "old") and ring.current_kid == "new"
    assert Keyring.parse(f"new:{k2},old:{k1}", current="old").current_kid == "old"
    assert Keyring.parse(ring.to_spec()).kids == ring.kids


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "entry 1"),
        ("k1", "entry 1"),
        ("k1:", "entry 1"),
        (f"k1:{generate_key()},k1:{generate_key()}", "twice"),
        ("k1:" + base64.b64encode(b"x" * 16).decode(), "16 bytes; expected 32"),
        ("k1:@@@@", "expected 32|base64"),
        (f"bad kid:{generate_key()}", "key id"),
    ],
)
def test_bad_key_configuration(spec: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message):
        Keyring.parse(spec)


def test_unset_environment_and_unknown_current() -> None:
    with pytest.raises(KeyringError, match="EHR_ENCRYPTION_KEYS is not set"):
        Keyring.from_env({})
    with pytest.raises(KeyringError, match="'k3' is not in the keyring"):
        Keyring.parse(f"k1:{generate_key()}", current="k3")


def test_keys_never_show_in_repr_or_errors() -> None:
    key = generate_key()
    ring = Keyring.parse(f"k1:{key}")
    assert key not in repr(ring) and "k1" in repr(ring)
    with pytest.raises(KeyringError) as caught:
        Keyring.parse(f"k1:{key},k1:{key}")
    assert key not in str(caught.value)


def test_generate_key_is_256_bits() -> None:
    assert len(base64.b64decode(generate_key())) == 32
    assert generate_key() != generate_key()
    assert Keyring.generate().kids == ("k1",)
