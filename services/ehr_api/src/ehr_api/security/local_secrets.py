"""Secrets of the embedded install: generated once into the data directory, then reused.

`ehr-platform up` must work with no configuration, yet every command pointed at the same
data directory (`token`, `apikey create`, `keys rotate`, the server itself) has to agree
on the JWT secret and the encryption keys. So when `EHR_JWT_SECRET` /
`EHR_ENCRYPTION_KEYS` are not set, they are read from files in the data directory, and
created there on first use:

    <data_dir>/jwt-secret         base64url of 48 random bytes
    <data_dir>/encryption-keys    the EHR_ENCRYPTION_KEYS form ("k1:<base64>", current first)

Files are created 0600 and written atomically (a temporary file linked into place), so a
reader never sees half a secret and two first runs racing each other end up sharing
whichever file landed first. Environment values always win and are never written to disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from ehr_api.security.crypto import Keyring
from ehr_api.settings import Settings

__all__ = [
    "ENCRYPTION_KEYS_FILE",
    "JWT_SECRET_FILE",
    "keyring_from_settings",
    "replace_key_file",
    "with_local_secrets",
]

JWT_SECRET_FILE = "jwt-secret"
ENCRYPTION_KEYS_FILE = "encryption-keys"


def with_local_secrets(settings: Settings) -> Settings:
    """`settings` with `jwt_secret` and `encryption_keys` filled from the data directory.

    Values already set (from the environment) are kept; missing ones are read from, or
    generated into, files under `settings.data_dir`. No JWT secret is generated when an
    external identity provider is configured (`EHR_JWT_JWKS_URL`): locally signed tokens
    are then accepted only if `EHR_JWT_SECRET` says so.

    Raises:
        OSError: the data directory cannot be created or read.
    """
    jwt_secret = settings.jwt_secret
    if not jwt_secret and not settings.jwt_jwks_url:
        # With an identity provider configured, HS256 stays off unless asked for.
        jwt_secret = _read_or_create(
            settings.data_dir / JWT_SECRET_FILE, lambda: secrets.token_urlsafe(48)
        )
    encryption_keys = settings.encryption_keys or _read_or_create(
        settings.data_dir / ENCRYPTION_KEYS_FILE, lambda: Keyring.generate().to_spec()
    )
    if (jwt_secret, encryption_keys) == (settings.jwt_secret, settings.encryption_keys):
        return settings
    return dataclasses.replace(settings, jwt_secret=jwt_secret, encryption_keys=encryption_keys)


def keyring_from_settings(settings: Settings) -> Keyring:
    """The keyring `settings` configure (call `with_local_secrets` first).

    Raises:
        KeyringError: the configured keys are unusable (the message names the problem).
    """
    return Keyring.parse(with_local_secrets(settings).encryption_keys or "")


def replace_key_file(settings: Settings, keyring: Keyring) -> Path:
    """Atomically replace the data directory's key file with `keyring` (key rotation).

    Only for the generated-keys mode: keys from the environment cannot be rewritten from
    here, the operator changes the variable instead.
    """
    path = settings.data_dir / ENCRYPTION_KEYS_FILE
    temporary = _write_private(path.parent, keyring.to_spec())
    os.replace(temporary, path)
    return path


def _read_or_create(path: Path, generate: Callable[[], str]) -> str:
    if path.exists():
        return _read(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = _write_private(path.parent, generate())
    try:
        os.link(temporary, path)  # fails if another process got there first
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return _read(path)


def _read(path: Path) -> str:
    value = path.read_text(encoding="ascii").strip()
    if not value:
        raise OSError(f"{path} is empty: delete it to have a new secret generated")
    return value


def _write_private(directory: Path, value: str) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = directory / f".tmp-{secrets.token_hex(8)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return temporary
