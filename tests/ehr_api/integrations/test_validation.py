"""Every field of every vendor is checked, and errors name the field the API spells.

These run the validation alone (no database): `validate(vendor, config, secrets)`.
"""

from __future__ import annotations

from typing import Any

import pytest
from ehr_api.errors import InvalidError
from ehr_api.integrations.schemas import FhirR4Config, Hl7V2xConfig
from ehr_api.integrations.validation import spec_for, validate

from tests.ehr_api.integrations.conftest import Pem

OUTBOUND = {"mllp_host": "ris.example.org", "mllp_port": 2575}
FHIR = {"fhir_server_url": "https://fhir.example.org/r4"}
OAUTH = {
    "type": "oauth2_client_credentials",
    "token_url": "https://auth.example.org/token",
    "client_id": "ehr",
}


def field_of(vendor: str, config: dict[str, Any], secrets: dict[str, str] | None = None) -> str:
    secrets = secrets or {}
    with pytest.raises(InvalidError) as caught:
        validate(vendor, config, secrets, provided=secrets)
    assert caught.value.field is not None
    return caught.value.field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mllp_port": 0}, "config.mllp_port"),
        ({"mllp_port": 65536}, "config.mllp_port"),
        ({"mllp_port": "many"}, "config.mllp_port"),
        ({"mllp_host": "bad host!"}, "config.mllp_host"),
        ({"mllp_host": "-lead.example.org"}, "config.mllp_host"),
        ({"mllp_host": "a" * 64 + ".org"}, "config.mllp_host"),
        ({"hl7_version": "2.9"}, "config.hl7_version"),
        ({"hl7_version": "2.5.2"}, "config.hl7_version"),
        ({"supported_message_types": ["oru^r01"]}, "config.supported_message_types.0"),
        ({"supported_message_types": ["ORU^R01", "ORUR01"]}, "config.supported_message_types.1"),
        ({"supported_message_types": ["ORU^R01^TOOLONGNAME"]}, "config.supported_message_types.0"),
        ({"inbound_port": 80}, "config.inbound_port"),
        ({"inbound_port": 70000}, "config.inbound_port"),
        ({"allowed_source_ips": ["10.0.0.5/24"]}, "config.allowed_source_ips.0"),
        ({"allowed_source_ips": ["10.0.0.0/8", "hospital"]}, "config.allowed_source_ips.1"),
        ({"ack_mode": "sometimes"}, "config.ack_mode"),
        ({"tls_enabled": "perhaps"}, "config.tls_enabled"),
        ({"mllp_prot": 1}, "config.mllp_prot"),
        ({"mllp_host": None, "mllp_port": 2575}, "config.mllp_host"),
        ({"mllp_host": "ris", "mllp_port": None}, "config.mllp_port"),
        ({"mllp_host": None, "mllp_port": None}, "config.mllp_host"),
    ],
)
def test_hl7_config_errors_name_the_field(change: dict[str, Any], field: str) -> None:
    config = {key: value for key, value in {**OUTBOUND, **change}.items() if value is not None}
    assert field_of("hl7-v2x", config) == field


def test_hl7_config_accepts_and_normalises() -> None:
    config, _ = validate(
        "hl7-v2x",
        {
            "mllp_host": "RIS.Example.org.",
            "mllp_port": 2575,
            "hl7_version": "2.8.2",
            "supported_message_types": ["ORU^R01", "ADT^A08^ADT_A01", "SIU^S12"],
            "inbound_port": 2576,
            "allowed_source_ips": ["10.0.0.0/8", " 192.168.1.7 ", "2001:db8::/32", "::1"],
            "ack_mode": "enhanced",
        },
        {},
    )
    assert isinstance(config, Hl7V2xConfig)
    assert config.mllp_host == "ris.example.org"
    assert config.allowed_source_ips == ["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1"]
    assert validate("hl7-v2x", {"inbound_port": 2575}, {})[0].mllp_host is None  # inbound only
    defaults = validate("hl7-v2x", {"mllp_host": "10.1.2.3", "mllp_port": 1}, {})[0]
    assert (defaults.hl7_version, defaults.ack_mode, defaults.tls_enabled) == (
        "2.5.1",
        "original",
        False,
    )


def test_hl7_tls_material(pem: Pem) -> None:
    mutual = {"tls_cert": pem.client_cert, "tls_key": pem.client_key, "ca_cert": pem.ca}
    _, secrets = validate("hl7-v2x", {**OUTBOUND, "tls_enabled": True}, mutual, provided=mutual)
    assert secrets == mutual
    chain = pem.client_cert + pem.ca  # leaf first, then the issuer
    validate("hl7-v2x", OUTBOUND, {"tls_cert": chain, "tls_key": pem.client_key})


@pytest.mark.parametrize(
    ("secrets", "field"),
    [
        ({"tls_cert": "not a certificate"}, "secrets.tls_cert"),
        (
            {"ca_cert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
            "secrets.ca_cert",
        ),
        ({"tls_key": "SUPERSECRET not a key"}, "secrets.tls_key"),
        ({"tls_key": "client_key"}, "secrets.tls_cert"),  # a key without its certificate
        ({"tls_cert": "client_cert"}, "secrets.tls_key"),  # a certificate without its key
        ({"tls_cert": "server_cert", "tls_key": "client_key"}, "secrets.tls_key"),  # mismatch
        ({"tls_cert": "client_key", "tls_key": "client_key"}, "secrets.tls_cert"),  # key as cert
        ({"client_secret": "x"}, "secrets.client_secret"),  # another vendor's field
    ],
)
def test_hl7_secret_errors(pem: Pem, secrets: dict[str, str], field: str) -> None:
    resolved = {name: getattr(pem, value, value) for name, value in secrets.items()}
    assert field_of("hl7-v2x", OUTBOUND, resolved) == field


def test_encrypted_private_keys_are_refused(pem: Pem) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem.client_key.encode(), password=None)
    locked = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()
    with pytest.raises(InvalidError) as caught:
        validate("hl7-v2x", OUTBOUND, {"tls_cert": pem.client_cert, "tls_key": locked})
    assert caught.value.field == "secrets.tls_key"
    assert "passphrase" in caught.value.detail


def test_error_messages_never_quote_secret_input() -> None:
    secret = "SUPERSECRET-3f9a-not-a-key"
    with pytest.raises(InvalidError) as caught:
        validate("hl7-v2x", OUTBOUND, {"tls_key": secret, "tls_cert": secret})
    error = caught.value
    assert secret not in str(error) and secret not in repr(error.extra)
    assert error.__cause__ is None and error.__context__ is None


def test_a_secret_pasted_into_config_is_refused_with_a_hint() -> None:
    config = {**FHIR, "auth": {"type": "bearer", "token": "SUPERSECRET"}}
    with pytest.raises(InvalidError) as caught:
        validate("fhir-r4", config, {})
    assert caught.value.field == "config.auth.token"
    assert "secrets.token" in caught.value.detail
    assert "SUPERSECRET" not in caught.value.detail


@pytest.mark.parametrize(
    ("config", "secrets", "field"),
    [
        ({"fhir_server_url": "http://fhir.example.org"}, {}, "config.fhir_server_url"),
        ({"fhir_server_url": "fhir.example.org/r4"}, {}, "config.fhir_server_url"),
        ({"fhir_server_url": "/r4"}, {}, "config.fhir_server_url"),
        ({"fhir_server_url": "ftp://fhir.example.org"}, {}, "config.fhir_server_url"),
        ({"fhir_server_url": "https://user:pw@fhir.example.org"}, {}, "config.fhir_server_url"),
        ({"fhir_server_url": "https://fhir.example.org:99999"}, {}, "config.fhir_server_url"),
        ({"fhir_server_url": "https://fhir.example.org/r4#x"}, {}, "config.fhir_server_url"),
        ({**FHIR, "auth": {"type": "kerberos"}}, {}, "config.auth"),
        ({**FHIR, "auth": {"type": "bearer"}}, {}, "secrets.token"),
        ({**FHIR, "auth": OAUTH}, {}, "secrets.client_secret"),
        (
            {**FHIR, "auth": {**OAUTH, "token_url": "http://auth.example.org/t"}},
            {"client_secret": "s"},
            "config.auth.token_url",
        ),
        (
            {**FHIR, "auth": {**OAUTH, "client_id": ""}},
            {"client_secret": "s"},
            "config.auth.client_id",
        ),
        (
            {**FHIR, "auth": {k: v for k, v in OAUTH.items() if k != "token_url"}},
            {"client_secret": "s"},
            "config.auth.token_url",
        ),
        ({**FHIR, "auth": {"type": "none"}}, {"token": "t"}, "secrets.token"),
        (
            {**FHIR, "auth": {"type": "bearer"}},
            {"token": "t", "client_secret": "s"},
            "secrets.client_secret",
        ),
        ({**FHIR, "timeout_s": 0}, {}, "config.timeout_s"),
        ({**FHIR}, {"tls_key": "x"}, "secrets.tls_key"),
    ],
)
def test_fhir_errors_name_the_field(
    config: dict[str, Any], secrets: dict[str, str], field: str
) -> None:
    assert field_of("fhir-r4", config, secrets) == field


def test_fhir_accepts_and_normalises(pem: Pem) -> None:
    config, secrets = validate(
        "fhir-r4",
        {"fhir_server_url": "https://fhir.example.org/r4/", "auth": OAUTH},
        {"client_secret": "s3cret", "ca_cert": pem.ca},
    )
    assert isinstance(config, FhirR4Config)
    assert config.fhir_server_url == "https://fhir.example.org/r4"
    assert set(secrets) == {"client_secret", "ca_cert"}
    insecure = {"fhir_server_url": "http://127.0.0.1:8080/fhir", "allow_insecure_http": True}
    assert validate("fhir-r4", insecure, {})[0].auth.type == "none"


def test_stored_secrets_the_config_no_longer_uses_are_dropped() -> None:
    _, secrets = validate("fhir-r4", FHIR, {"token": "old"}, provided=())
    assert secrets == {}


def test_unknown_vendor() -> None:
    with pytest.raises(InvalidError) as caught:
        spec_for("dicom")
    assert caught.value.field == "vendor"


def test_every_error_is_listed() -> None:
    with pytest.raises(InvalidError) as caught:
        validate("hl7-v2x", {"mllp_host": "ris", "mllp_port": 0, "hl7_version": "9"}, {})
    fields = [error["field"] for error in caught.value.extra["errors"]]
    assert fields == ["config.mllp_port", "config.hl7_version"]
