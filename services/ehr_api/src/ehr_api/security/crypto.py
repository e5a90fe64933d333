"""Secrets at rest: AES-256-GCM under a keyring from the environment, with key ids.

Integration credentials (TLS keys, client secrets, bearer tokens) and webhook secrets are
stored as small JSON envelopes::

    {"v": 1, "kid": "k2", "nonce": "<base64 12 bytes>", "ct": "<base64 ciphertext+tag>"}

- `kid` names the key that sealed the value, so keys can rotate: the keyring holds the
  current key (used to encrypt) and older ones (still able to decrypt) until
  `ehr-platform keys rotate` has re-sealed every value under the current key.
- The associated data (AAD) binds a value to where it lives: the caller passes
  `aad_for(table, org_id, row_id, field)`. A ciphertext copied into another organisation,
  row or field then fails authentication instead of decrypting to a valid secret there.
  The envelope version and `kid` are bound as well, so they cannot be edited either.
- Nonces are 96 random bits per value. Far fewer than the 2**32 encryptions per key at
  which random GCM nonces become a concern will ever happen here, and rotation resets it.

The keyring comes from `EHR_ENCRYPTION_KEYS="k2:<base64 32 bytes>,k1:<base64 32 bytes>"`;
the first entry is current unless another is named. `generate_key()` makes a key.

Errors::

    CryptoError
     +-- KeyringError      the key configuration is unusable (named in the message)
     +-- UnknownKeyError   the value was sealed under a kid this keyring does not hold
     +-- DecryptionError   tampered, wrong AAD (moved), or not an envelope at all
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "ENVELOPE_VERSION",
    "ENV_VARIABLE",
    "CryptoError",
    "DecryptionError",
    "Keyring",
    "KeyringError",
    "UnknownKeyError",
    "aad_for",
    "generate_key",
]

ENVELOPE_VERSION = 1
ENV_VARIABLE = "EHR_ENCRYPTION_KEYS"
KEY_BYTES = 32
NONCE_BYTES = 12
_KID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class CryptoError(Exception):
    """Base of every error this module raises; messages never contain key material."""


class KeyringError(CryptoError):
    pass


class UnknownKeyError(CryptoError):
    pass


class DecryptionError(CryptoError):
    pass


def generate_key() -> str:
    """A new random AES-256 key, base64-encoded, ready for `EHR_ENCRYPTION_KEYS`."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def aad_for(table: str, org_id: uuid.UUID | str, row_id: uuid.UUID | str, field: str) -> bytes:
    """The associated data that pins a secret to one field of one row of one organisation.

    JSON-encoded so no choice of values can make two different places collide.

    >>> aad_for("integration_credentials", "org-1", "row-9", "tls_key")
    b'["integration_credentials","org-1","row-9","tls_key"]'
    """
    return json.dumps([table, str(org_id), str(row_id), field], separators=(",", ":")).encode()


class Keyring:
    """Named AES-256-GCM keys: one current (encrypts), all usable to decrypt.

    Usage::

        keyring = Keyring.from_env()
        aad = aad_for("integration_credentials", org.id, cred.id, "client_secret")
        blob = keyring.encrypt("s3cret", aad=aad)
        keyring.decrypt(blob, aad=aad)  # "s3cret"
    """

    def __init__(self, keys: Mapping[str, bytes], *, current: str | None = None) -> None:
        """`keys` in order of preference; the first is current unless `current` says.

        Raises:
            KeyringError: no keys, a bad kid, a key that is not 32 bytes, unknown current.
        """
        if not keys:
            raise KeyringError("the keyring holds no key")
        for kid, key in keys.items():
            if not _KID.fullmatch(kid):
                raise KeyringError(f"key id {kid!r}: use 1-64 of A-Z a-z 0-9 . _ -")
            if len(key) != KEY_BYTES:
                raise KeyringError(f"key {kid!r} is {len(key)} bytes; expected {KEY_BYTES}")
        current = next(iter(keys)) if current is None else current
        if current not in keys:
            raise KeyringError(f"current key id {current!r} is not in the keyring")
        self._keys = dict(keys)
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        self._current = current

    @classmethod
    def parse(cls, spec: str, *, current: str | None = None) -> Keyring:
        """A keyring from `"kid:base64key,kid:base64key"` (the environment variable form).

        Raises:
            KeyringError: malformed entry, duplicate kid, or a bad key (entry named).
        """
        keys: dict[str, bytes] = {}
        for position, entry in enumerate(spec.split(","), start=1):
            kid, sep, encoded = entry.strip().partition(":")
            kid = kid.strip()
            if not sep or not kid or not encoded.strip():
                raise KeyringError(f"{ENV_VARIABLE} entry {position}: expected 'kid:base64key'")
            if kid in keys:
                raise KeyringError(f"{ENV_VARIABLE}: key id {kid!r} appears twice")
            try:
                keys[kid] = base64.b64decode(_padded(encoded.strip()), altchars=b"-_")
            except (binascii.Error, ValueError) as exc:
                raise KeyringError(f"{ENV_VARIABLE}: key {kid!r} is not valid base64") from exc
        return cls(keys, current=current)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Keyring:
        """The keyring configured in `EHR_ENCRYPTION_KEYS`.

        Raises:
            KeyringError: the variable is unset or unusable.
        """
        spec = (os.environ if environ is None else environ).get(ENV_VARIABLE, "").strip()
        if not spec:
            raise KeyringError(f"{ENV_VARIABLE} is not set")
        return cls.parse(spec)

    @classmethod
    def generate(cls, kid: str = "k1") -> Keyring:
        """A one-key keyring with a fresh random key (first run of the embedded install)."""
        return cls({kid: base64.b64decode(generate_key())})

    @property
    def current_kid(self) -> str:
        return self._current

    @property
    def kids(self) -> tuple[str, ...]:
        """Every key id, current first."""
        return (self._current, *(kid for kid in self._keys if kid != self._current))

    def with_new_key(self, kid: str | None = None) -> Keyring:
        """This keyring plus a fresh key that becomes current (the first half of rotation).

        The old keys stay so existing values still decrypt; call `rotate` on every stored
        value, then drop the old keys from the environment.
        """
        kid = kid or _next_kid(self._keys)
        if kid in self._keys:
            raise KeyringError(f"key id {kid!r} is already in the keyring")
        new_key = base64.b64decode(generate_key())
        return Keyring({kid: new_key, **{k: self._keys[k] for k in self.kids}})

    def to_spec(self) -> str:
        """The `EHR_ENCRYPTION_KEYS` form, current first. Contains the keys: handle as such."""
        return ",".join(f"{kid}:{base64.b64encode(self._keys[kid]).decode()}" for kid in self.kids)

    def encrypt(self, value: str, *, aad: bytes) -> dict[str, Any]:
        """Seal `value` under the current key, bound to `aad`."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(
            nonce, value.encode(), _bound(self._current, aad)
        )
        return {
            "v": ENVELOPE_VERSION,
            "kid": self._current,
            "nonce": base64.b64encode(nonce).decode(),
            "ct": base64.b64encode(sealed).decode(),
        }

    def decrypt(self, blob: Mapping[str, Any], *, aad: bytes) -> str:
        """Open an envelope sealed by any key of this keyring, given the same `aad`.

        Raises:
            UnknownKeyError: the envelope names a kid this keyring does not hold.
            DecryptionError: tampered, moved (different `aad`), or not an envelope.
        """
        kid, nonce, sealed = _unpack(blob)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise UnknownKeyError(
                f"value was encrypted with key {kid!r}, which is not configured "
                f"(configured: {list(self.kids)})"
            )
        try:
            plain = cipher.decrypt(nonce, sealed, _bound(kid, aad))
        except InvalidTag as exc:
            raise DecryptionError(
                "value failed authentication: tampered, or not stored at this place"
            ) from exc
        try:
            return plain.decode()
        except UnicodeDecodeError as exc:  # pragma: no cover - only if encrypted elsewhere
            raise DecryptionError("decrypted value is not UTF-8 text") from exc

    def needs_rotation(self, blob: Mapping[str, Any]) -> bool:
        """Whether `blob` is sealed under a key other than the current one."""
        return _unpack(blob)[0] != self._current

    def rotate(self, blob: Mapping[str, Any], *, aad: bytes) -> dict[str, Any]:
        """`blob` re-sealed under the current key; unchanged if it already is.

        Returning the same envelope for current values keeps `keys rotate` idempotent and
        avoids rewriting rows that need nothing.

        Raises:
            UnknownKeyError, DecryptionError: as `decrypt`.
        """
        if not self.needs_rotation(blob):
            self.decrypt(blob, aad=aad)  # still prove the value is intact and in place
            return dict(blob)
        return self.encrypt(self.decrypt(blob, aad=aad), aad=aad)

    def __repr__(self) -> str:
        return f"Keyring(kids={list(self.kids)!r}, current={self._current!r})"


def _bound(kid: str, aad: bytes) -> bytes:
    # Version and kid are authenticated too; kids never contain NUL, so this is unambiguous.
    return b"ehr-secret:v%d:%s\x00" % (ENVELOPE_VERSION, kid.encode()) + aad


def _unpack(blob: Mapping[str, Any]) -> tuple[str, bytes, bytes]:
    if not isinstance(blob, Mapping):
        raise DecryptionError("not an encrypted value (expected an envelope object)")
    version, kid = blob.get("v"), blob.get("kid")
    if version != ENVELOPE_VERSION:
        raise DecryptionError(f"unsupported envelope version {version!r}")
    if not isinstance(kid, str) or not isinstance(blob.get("nonce"), str):
        raise DecryptionError("envelope needs string 'kid', 'nonce' and 'ct'")
    try:
        nonce = base64.b64decode(blob["nonce"], validate=True)
        sealed = base64.b64decode(blob["ct"], validate=True)
    except (binascii.Error, TypeError, ValueError, KeyError) as exc:
        raise DecryptionError("envelope fields are not valid base64") from exc
    if len(nonce) != NONCE_BYTES:
        raise DecryptionError(f"nonce must be {NONCE_BYTES} bytes")
    return kid, nonce, sealed


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)


def _next_kid(existing: Mapping[str, bytes]) -> str:
    """`k<n+1>` after the highest `k<n>` present, so generated ids sort by age."""
    numbers = [int(kid[1:]) for kid in existing if re.fullmatch(r"k\d+", kid)]
    return f"k{max(numbers, default=0) + 1}"
