"""Sealing and opening the secret fields of an integration credential.

Each secret is its own AES-GCM envelope (`ehr_api.security.crypto`) in the credential's
`secrets` JSON, keyed by field name. The associated data binds it to the table, the
organisation, the credential and the field, so an envelope copied to another row, field
or tenant fails to open instead of yielding a valid secret there. That is also why a
credential gets its id before its secrets are sealed.

Plaintexts exist only in memory, for validation and for the handlers; nothing here logs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from ehr_api.integrations.models import IntegrationCredential
from ehr_api.security.crypto import Keyring, aad_for

__all__ = ["TABLE", "aad", "open_all", "rotate", "seal", "seal_all"]

TABLE = IntegrationCredential.__tablename__


def aad(org_id: uuid.UUID, credential_id: uuid.UUID, field: str) -> bytes:
    """The associated data of one secret field of one credential."""
    return aad_for(TABLE, org_id, credential_id, field)


def seal(
    keyring: Keyring, *, org_id: uuid.UUID, credential_id: uuid.UUID, field: str, value: str
) -> dict[str, Any]:
    """`value` encrypted under the current key, bound to its place."""
    return keyring.encrypt(value, aad=aad(org_id, credential_id, field))


def seal_all(
    keyring: Keyring,
    *,
    org_id: uuid.UUID,
    credential_id: uuid.UUID,
    values: Mapping[str, str],
) -> dict[str, dict[str, Any]]:
    """Every value of `values` sealed, keyed by field."""
    return {
        field: seal(keyring, org_id=org_id, credential_id=credential_id, field=field, value=value)
        for field, value in values.items()
    }


def open_all(keyring: Keyring, credential: IntegrationCredential) -> dict[str, str]:
    """The plaintext of every secret of `credential`.

    Raises:
        UnknownKeyError: a value was sealed under a key the keyring no longer holds.
        DecryptionError: a value was tampered with or moved from elsewhere.
    """
    return {
        field: keyring.decrypt(blob, aad=aad(credential.org_id, credential.id, field))
        for field, blob in (credential.secrets or {}).items()
    }


def rotate(keyring: Keyring, credential: IntegrationCredential) -> bool:
    """Re-seal `credential`'s secrets under the current key; True if any changed.

    For `ehr-platform keys rotate`: assigning a new dict marks the row dirty, so the
    caller's flush writes it (and bumps its version, which drops cached clients built
    from the old values - harmless, they are rebuilt with the same plaintexts).

    Raises:
        UnknownKeyError, DecryptionError: as `open_all`.
    """
    current = credential.secrets or {}
    rotated = {
        field: keyring.rotate(blob, aad=aad(credential.org_id, credential.id, field))
        for field, blob in current.items()
    }
    if rotated == current:
        return False
    credential.secrets = rotated
    return True
