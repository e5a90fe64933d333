"""Integration credentials: stored encrypted, read without secrets, updated partially.

Every test runs on SQLite and PostgreSQL (`database`).
"""

from __future__ import annotations

import base64
import uuid

import pytest
from ehr_api.db import Database
from ehr_api.errors import ConflictError, InvalidError, NotFoundError
from ehr_api.integrations import secrets as sealed
from ehr_api.integrations import service as integrations
from ehr_api.integrations.models import IntegrationCredential
from ehr_api.integrations.schemas import FhirR4Read, Hl7V2xRead, IntegrationUpdate
from ehr_api.security.crypto import DecryptionError, Keyring
from pydantic import SecretStr
from sqlalchemy import select, update

from tests.ehr_api.integrations.conftest import Orgs, Pem, fhir, hl7


async def raw_row(database: Database, integration_id: uuid.UUID) -> IntegrationCredential:
    async with database.platform_session(read_only=True) as db:
        result = await db.execute(
            select(IntegrationCredential).where(IntegrationCredential.id == integration_id)
        )
        return result.scalar_one()


def patch(version: int, **fields: object) -> IntegrationUpdate:
    return IntegrationUpdate.model_validate({"version": version, **fields})


async def test_create_hl7_with_tls(
    database: Database, orgs: Orgs, keyring: Keyring, pem: Pem
) -> None:
    tls = {"tls_cert": pem.client_cert, "tls_key": pem.client_key, "ca_cert": pem.ca}
    async with database.org_session(orgs.a) as db:
        read = await integrations.create(
            db, data=hl7(tls_enabled=True, inbound_port=2600, secrets=tls), keyring=keyring
        )
    assert isinstance(read, Hl7V2xRead)
    assert read.has_tls_cert and read.has_tls_key and read.has_ca_cert
    assert read.version == 1 and read.config.inbound_port == 2600
    assert "PRIVATE KEY" not in read.model_dump_json()

    row = await raw_row(database, read.id)
    assert row.org_id == orgs.a
    assert set(row.secrets) == set(tls)
    for field, envelope in row.secrets.items():
        assert set(envelope) == {"v", "kid", "nonce", "ct"}
        assert envelope["kid"] == keyring.current_kid
        assert tls[field].encode() not in base64.b64decode(envelope["ct"])
    assert sealed.open_all(keyring, row) == tls


async def test_a_sealed_secret_does_not_open_in_another_row(
    database: Database, orgs: Orgs, keyring: Keyring
) -> None:
    secret = {"token": "bearer-abc"}
    async with database.org_session(orgs.a) as db:
        one = await integrations.create(
            db, data=fhir("one", auth={"type": "bearer"}, secrets=secret), keyring=keyring
        )
        two = await integrations.create(
            db,
            data=fhir("two", auth={"type": "bearer"}, secrets={"token": "other"}),
            keyring=keyring,
        )
    copied = (await raw_row(database, one.id)).secrets["token"]
    async with database.platform_session() as db:
        await db.execute(
            update(IntegrationCredential)
            .where(IntegrationCredential.id == two.id)
            .values(secrets={"token": copied})
        )
    async with database.org_session(orgs.a) as db:
        with pytest.raises(DecryptionError):
            await integrations.load(db, integration_id=two.id, keyring=keyring)


async def test_names_are_unique_per_organisation(
    database: Database, orgs: Orgs, keyring: Keyring
) -> None:
    async with database.org_session(orgs.a) as db:
        await integrations.create(db, data=hl7("ris"), keyring=keyring)
    async with database.org_session(orgs.a) as db:
        with pytest.raises(ConflictError) as caught:
            await integrations.create(db, data=fhir("ris"), keyring=keyring)
    assert caught.value.field == "name"
    async with database.org_session(orgs.b) as db:
        await integrations.create(db, data=hl7("ris"), keyring=keyring)  # another tenant: fine


async def test_inbound_ports_are_unique_per_organisation(
    database: Database, orgs: Orgs, keyring: Keyring
) -> None:
    async with database.org_session(orgs.a) as db:
        first = await integrations.create(db, data=hl7("ris", inbound_port=2700), keyring=keyring)
        with pytest.raises(ConflictError) as caught:
            await integrations.create(db, data=hl7("lab", inbound_port=2700), keyring=keyring)
        assert caught.value.field == "config.inbound_port"
        lab = await integrations.create(db, data=hl7("lab", inbound_port=2701), keyring=keyring)
        with pytest.raises(ConflictError):
            await integrations.update(
                db,
                integration_id=lab.id,
                data=patch(1, config={"inbound_port": 2700}),
                keyring=keyring,
            )
        # Re-saving an integration with its own port is not a clash.
        await integrations.update(
            db, integration_id=first.id, data=patch(1, name="ris-main"), keyring=keyring
        )


async def test_get_and_list(database: Database, orgs: Orgs, keyring: Keyring) -> None:
    async with database.org_session(orgs.a) as db:
        ris = await integrations.create(db, data=hl7("ris"), keyring=keyring)
        await integrations.create(db, data=hl7("lab"), keyring=keyring)
        await integrations.create(db, data=fhir("partner"), keyring=keyring)
    async with database.org_session(orgs.a, read_only=True) as db:
        assert (await integrations.get(db, integration_id=ris.id)).name == "ris"
        page = await integrations.list(db, limit=2)
        rest = await integrations.list(db, limit=2, offset=2)
        only_fhir = await integrations.list(db, vendor="fhir-r4")
        with pytest.raises(NotFoundError):
            await integrations.get(db, integration_id=uuid.uuid4())
        with pytest.raises(InvalidError):
            await integrations.list(db, limit=0)
    assert [item.name for item in page.items + rest.items] == ["lab", "partner", "ris"]
    assert page.total == 3
    assert [item.name for item in only_fhir.items] == ["partner"] and only_fhir.total == 1
    assert isinstance(only_fhir.items[0], FhirR4Read)


async def test_partial_update_and_optimistic_locking(
    database: Database, orgs: Orgs, keyring: Keyring
) -> None:
    async with database.org_session(orgs.a) as db:
        created = await integrations.create(
            db, data=hl7(supported_message_types=["ORU^R01"], ack_mode="enhanced"), keyring=keyring
        )
    async with database.org_session(orgs.a) as db:
        updated = await integrations.update(
            db,
            integration_id=created.id,
            data=patch(1, config={"mllp_port": 3000}),
            keyring=keyring,
        )
    assert updated.version == 2
    assert updated.config.mllp_port == 3000
    assert updated.config.supported_message_types == ["ORU^R01"]  # untouched keys stay
    assert updated.config.ack_mode == "enhanced"
    async with database.org_session(orgs.a) as db:
        with pytest.raises(ConflictError) as stale:
            await integrations.update(
                db, integration_id=created.id, data=patch(1, enabled=False), keyring=keyring
            )
    assert stale.value.field == "version"
    async with database.org_session(orgs.a) as db:
        reset = await integrations.update(
            db,
            integration_id=created.id,
            data=patch(2, enabled=False, config={"ack_mode": None}),
            keyring=keyring,
        )
    assert (reset.version, reset.enabled, reset.config.ack_mode) == (3, False, "original")
    async with database.org_session(orgs.a) as db:
        with pytest.raises(InvalidError) as invalid:
            await integrations.update(
                db,
                integration_id=created.id,
                data=patch(3, config={"mllp_port": 0}),
                keyring=keyring,
            )
        assert invalid.value.field == "config.mllp_port"
        unchanged = await integrations.get(db, integration_id=created.id)
    assert unchanged.version == 3 and unchanged.config.mllp_port == 3000


async def test_one_update_is_one_version(database: Database, orgs: Orgs, keyring: Keyring) -> None:
    async with database.org_session(orgs.a) as db:
        created = await integrations.create(db, data=hl7(inbound_port=2900), keyring=keyring)
    async with database.org_session(orgs.a) as db:
        changed = await integrations.update(
            db,
            integration_id=created.id,
            data=patch(1, name="renamed", enabled=False, config={"mllp_port": 2601}),
            keyring=keyring,
        )
    assert (changed.version, changed.name, changed.enabled) == (2, "renamed", False)
    async with database.org_session(orgs.a) as db:
        same = await integrations.update(
            db, integration_id=created.id, data=patch(2, name="renamed"), keyring=keyring
        )
    assert same.version == 2  # nothing changed, nothing written


async def test_a_concurrent_update_loses(database: Database, orgs: Orgs, keyring: Keyring) -> None:
    async with database.org_session(orgs.a) as db:
        created = await integrations.create(db, data=hl7(), keyring=keyring)
    async with database.org_session(orgs.a) as db:
        await integrations.get(db, integration_id=created.id)  # this session holds version 1
        # Another writer commits version 2 behind this session's back.
        await db.execute(
            update(IntegrationCredential)
            .where(IntegrationCredential.id == created.id)
            .values(version=IntegrationCredential.version + 1)
            .execution_options(synchronize_session=False)
        )
        with pytest.raises(ConflictError) as caught:
            await integrations.update(
                db, integration_id=created.id, data=patch(1, name="second"), keyring=keyring
            )
    assert caught.value.field == "version"


async def test_secrets_keep_replace_remove(
    database: Database, orgs: Orgs, keyring: Keyring, pem: Pem
) -> None:
    tls = {"tls_cert": pem.client_cert, "tls_key": pem.client_key, "ca_cert": pem.ca}
    async with database.org_session(orgs.a) as db:
        created = await integrations.create(
            db, data=hl7(tls_enabled=True, secrets=tls), keyring=keyring
        )
    before = (await raw_row(database, created.id)).secrets

    async with database.org_session(orgs.a) as db:  # config only: secrets untouched
        await integrations.update(
            db,
            integration_id=created.id,
            data=patch(1, config={"mllp_port": 2600}),
            keyring=keyring,
        )
    assert (await raw_row(database, created.id)).secrets == before

    async with database.org_session(orgs.a) as db:  # replace one: only it is re-sealed
        replaced = await integrations.update(
            db,
            integration_id=created.id,
            data=patch(2, secrets={"ca_cert": pem.server_cert}),
            keyring=keyring,
        )
    after = (await raw_row(database, created.id)).secrets
    assert replaced.version == 3
    assert after["tls_key"] == before["tls_key"] and after["ca_cert"] != before["ca_cert"]
    assert (
        sealed.open_all(keyring, await raw_row(database, created.id))["ca_cert"] == pem.server_cert
    )

    async with database.org_session(orgs.a) as db:  # remove the pair; the CA stays
        removed = await integrations.update(
            db,
            integration_id=created.id,
            data=patch(3, secrets={"tls_cert": None, "tls_key": None}),
            keyring=keyring,
        )
    assert (removed.has_tls_cert, removed.has_tls_key, removed.has_ca_cert) == (False, False, True)
    assert set((await raw_row(database, created.id)).secrets) == {"ca_cert"}

    async with database.org_session(orgs.a) as db:  # removing half a pair is refused
        await integrations.update(
            db,
            integration_id=created.id,
            data=patch(4, secrets={"tls_cert": pem.client_cert, "tls_key": pem.client_key}),
            keyring=keyring,
        )
        with pytest.raises(InvalidError) as half:
            await integrations.update(
                db,
                integration_id=created.id,
                data=patch(5, secrets={"tls_key": None}),
                keyring=keyring,
            )
    assert half.value.field == "secrets.tls_key"


async def test_switching_fhir_auth_drops_the_old_secret(
    database: Database, orgs: Orgs, keyring: Keyring
) -> None:
    async with database.org_session(orgs.a) as db:
        created = await integrations.create(
            db, data=fhir(auth={"type": "bearer"}, secrets={"token": "tok"}), keyring=keyring
        )
        oauth = {
            "type": "oauth2_client_credentials",
            "token_url": "https://auth.example.org/token",
            "client_id": "ehr",
        }
        with pytest.raises(InvalidError) as missing:
            await integrations.update(
                db,
                integration_id=created.id,
                data=patch(1, config={"auth": oauth}),
                keyring=keyring,
            )
        assert missing.value.field == "secrets.client_secret"
        switched = await integrations.update(
            db,
            integration_id=created.id,
            data=patch(1, config={"auth": oauth}, secrets={"client_secret": SecretStr("cs")}),
            keyring=keyring,
        )
    assert isinstance(switched, FhirR4Read)
    assert (switched.has_token, switched.has_client_secret) == (False, True)
    assert set((await raw_row(database, created.id)).secrets) == {"client_secret"}


def test_vendor_cannot_change() -> None:
    with pytest.raises(ValueError, match="vendor"):
        patch(1, vendor="fhir-r4")


async def test_delete(database: Database, orgs: Orgs, keyring: Keyring) -> None:
    async with database.org_session(orgs.a) as db:
        created = await integrations.create(db, data=hl7(), keyring=keyring)
    async with database.org_session(orgs.a) as db:
        with pytest.raises(ConflictError):
            await integrations.delete(db, integration_id=created.id, version=7)
        await integrations.delete(db, integration_id=created.id, version=1)
    async with database.org_session(orgs.a) as db:
        with pytest.raises(NotFoundError):
            await integrations.get(db, integration_id=created.id)
        with pytest.raises(NotFoundError):
            await integrations.delete(db, integration_id=created.id)


async def test_load_decrypts_for_handlers(database: Database, orgs: Orgs, keyring: Keyring) -> None:
    async with database.org_session(orgs.a) as db:
        created = await integrations.create(
            db, data=fhir(auth={"type": "bearer"}, secrets={"token": "tok-123"}), keyring=keyring
        )
        loaded = await integrations.load(db, integration_id=created.id, keyring=keyring)
    assert loaded.secret("token") == "tok-123"
    assert loaded.secret("client_secret") is None
    assert "tok-123" not in repr(loaded) and "tok-123" not in str(dict(loaded.secrets))
    assert (loaded.org_id, loaded.version, loaded.vendor) == (orgs.a, 1, "fhir-r4")


async def test_rotation_reseals_under_the_new_key(
    database: Database, orgs: Orgs, keyring: Keyring
) -> None:
    async with database.org_session(orgs.a) as db:
        created = await integrations.create(
            db, data=fhir(auth={"type": "bearer"}, secrets={"token": "tok"}), keyring=keyring
        )
    rotated_keyring = keyring.with_new_key()
    async with database.org_session(orgs.a) as db:
        row = await db.get(IntegrationCredential, created.id)
        assert row is not None
        assert sealed.rotate(rotated_keyring, row) is True
        await db.flush()
        assert sealed.rotate(rotated_keyring, row) is False  # idempotent
    row = await raw_row(database, created.id)
    assert row.secrets["token"]["kid"] == rotated_keyring.current_kid
    assert sealed.open_all(rotated_keyring, row) == {"token": "tok"}


async def test_organisation_sessions_only(database: Database, keyring: Keyring) -> None:
    from ehr_api.db import CrossTenantError

    async with database.platform_session() as db:
        with pytest.raises(CrossTenantError):
            await integrations.create(db, data=hl7(), keyring=keyring)
