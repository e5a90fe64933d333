"""What the integrations admin API accepts and returns, per vendor.

An integration is `config` (plain settings, stored as JSON and shown back) plus `secrets`
(TLS material, tokens, client secrets: encrypted at rest, accepted on write, never
returned). Read models say only *whether* a secret is set (`has_tls_key`), so a
response, a log line or an audit detail can never carry one.

Field-level rules live on the models below (types, ranges, formats, PEM parsing); rules
that span fields (the key matches the certificate, the auth type has its secret, http
only when allowed) live in `validation.py`, so that a partial update is checked against
the merged result rather than the patch alone. Messages never quote secret input.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    SecretStr,
    StringConstraints,
    TypeAdapter,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

__all__ = [
    "HL7_VERSIONS",
    "MESSAGE_TYPE_PATTERN",
    "BearerAuth",
    "FhirR4Config",
    "FhirR4Read",
    "FhirR4Secrets",
    "Hl7V2xConfig",
    "Hl7V2xRead",
    "Hl7V2xSecrets",
    "IntegrationCreate",
    "IntegrationList",
    "IntegrationRead",
    "IntegrationUpdate",
    "NoAuth",
    "OAuth2ClientCredentials",
    "OperationRequest",
    "OperationResult",
    "TestResultRead",
    "VendorSlug",
]

HL7_VERSIONS = (
    "2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1",
    "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2",
)  # fmt: skip
MESSAGE_TYPE_PATTERN = re.compile(r"[A-Z0-9]{3}\^[A-Z0-9]{3}(\^[A-Z0-9_]{3,7})?")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")

VendorSlug = Literal["hl7-v2x", "fhir-r4"]


class _Strict(BaseModel):
    # Unknown keys are refused rather than stored: a typo ("mllp_prot") must not be
    # accepted silently, and a secret pasted into config must not be stored in clear.
    model_config = ConfigDict(extra="forbid")


# -- field checks (messages never echo the value: it may be a secret) ------------------


def check_host(value: str) -> str:
    """An IP address or an RFC 1123 host name, normalised to lower case.

    Raises:
        ValueError: neither.
    """
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    host = value.lower().removesuffix(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise ValueError("expected a host name or an IP address")
    return host


def check_source(value: str) -> str:
    """An IP address or a CIDR network (host bits zero), in canonical form.

    Raises:
        ValueError: neither, or a network with host bits set.
    """
    try:
        if "/" in value:
            return str(ipaddress.ip_network(value.strip(), strict=True))
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(
            "expected an IP address or a CIDR network with zero host bits (10.0.0.0/24)"
        ) from None


def check_message_type(value: str) -> str:
    """`ORU^R01` or `ORU^R01^ORU_R01`.

    Raises:
        ValueError: anything else.
    """
    if not MESSAGE_TYPE_PATTERN.fullmatch(value):
        raise ValueError("expected a message type like ORU^R01 or ORU^R01^ORU_R01")
    return value


def check_url(value: str) -> str:
    """An absolute http(s) URL with a host, no user info and no fragment.

    Whether plain http is acceptable depends on another field, so that is decided in
    `validation.py`. Credentials in a URL would be stored and shown in clear: refused.

    Raises:
        ValueError: not such a URL.
    """
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError("expected an absolute https URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an absolute https URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials do not belong in the URL: use the auth settings")
    if parts.fragment:
        raise ValueError("a URL fragment (#...) is not allowed here")
    return value.rstrip("/")


def check_certificates(value: SecretStr) -> SecretStr:
    """One or more PEM certificates (a chain, leaf first).

    Raises:
        ValueError: no certificate could be read.
    """
    try:
        x509.load_pem_x509_certificates(value.get_secret_value().encode())
    except ValueError:
        raise ValueError(
            "expected one or more PEM certificates (-----BEGIN CERTIFICATE-----)"
        ) from None
    return value


def check_private_key(value: SecretStr) -> SecretStr:
    """An unencrypted PEM private key (RSA, EC or Ed25519).

    Raises:
        ValueError: not a readable key, or a passphrase-protected one.
    """
    try:
        serialization.load_pem_private_key(value.get_secret_value().encode(), password=None)
    except TypeError:
        raise ValueError(
            "encrypted private keys are not supported: remove the passphrase"
        ) from None
    except Exception:
        raise ValueError(
            "expected an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)"
        ) from None
    return value


Host = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(check_host)]
Port = Annotated[int, Field(ge=1, le=65535)]
ListenerPort = Annotated[int, Field(ge=1024, le=65535)]
MessageType = Annotated[str, AfterValidator(check_message_type)]
SourceAddress = Annotated[str, AfterValidator(check_source)]
Url = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(check_url)]
CertificatePem = Annotated[SecretStr, AfterValidator(check_certificates)]
PrivateKeyPem = Annotated[SecretStr, AfterValidator(check_private_key)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1024)]


# -- hl7-v2x ---------------------------------------------------------------------------


class Hl7V2xConfig(_Strict):
    """HL7 v2 over MLLP: where to send (outbound) and what to accept (inbound listener).

    `connection_test` decides what `POST .../test` does: `connect` only opens and closes
    the connection (safe against production systems); `adt_a08` also sends a generated
    ADT^A08 marked as a test message (MSH-11 = T) and checks the ACK.
    """

    mllp_host: Host | None = None
    mllp_port: Port | None = None
    tls_enabled: bool = False
    hl7_version: Literal[HL7_VERSIONS] = "2.5.1"  # type: ignore[valid-type]
    supported_message_types: list[MessageType] = Field(default_factory=list, max_length=200)
    inbound_port: ListenerPort | None = None
    allowed_source_ips: list[SourceAddress] = Field(default_factory=list, max_length=200)
    ack_mode: Literal["original", "enhanced"] = "original"
    connect_timeout_s: float = Field(default=10.0, gt=0, le=120)
    ack_timeout_s: float = Field(default=30.0, gt=0, le=600)
    connection_test: Literal["connect", "adt_a08"] = "connect"


class Hl7V2xSecrets(_Strict):
    """TLS material: our client certificate chain and key (mutual TLS) and the CA to trust."""

    tls_cert: CertificatePem | None = None
    tls_key: PrivateKeyPem | None = None
    ca_cert: CertificatePem | None = None


# -- fhir-r4 ---------------------------------------------------------------------------


class NoAuth(_Strict):
    type: Literal["none"] = "none"


class BearerAuth(_Strict):
    """A static bearer token; the token itself is `secrets.token`."""

    type: Literal["bearer"]


class OAuth2ClientCredentials(_Strict):
    """OAuth 2.0 client credentials grant; the client secret is `secrets.client_secret`.

    `client_auth` is how the secret is presented to the token endpoint: HTTP Basic
    (`client_secret_basic`, which RFC 6749 requires servers to support) or form fields.
    """

    type: Literal["oauth2_client_credentials"]
    token_url: Url
    client_id: Name
    scope: Text | None = None
    client_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"


FhirAuth = Annotated[NoAuth | BearerAuth | OAuth2ClientCredentials, Field(discriminator="type")]


class FhirR4Config(_Strict):
    """A FHIR R4 server reached over HTTPS (plain http only with `allow_insecure_http`)."""

    fhir_server_url: Url
    allow_insecure_http: bool = False
    auth: FhirAuth = Field(default_factory=NoAuth)
    timeout_s: float = Field(default=30.0, gt=0, le=300)


class FhirR4Secrets(_Strict):
    """`token` (bearer), `client_secret` (OAuth2), `ca_cert` (a private CA to trust)."""

    token: Annotated[SecretStr, StringConstraints(min_length=1, max_length=8192)] | None = None
    client_secret: Annotated[SecretStr, StringConstraints(min_length=1, max_length=4096)] | None = (
        None
    )
    ca_cert: CertificatePem | None = None


# -- API envelopes ---------------------------------------------------------------------


class _DocumentedAs:
    """Document a loosely typed field with a precise schema.

    `config` and `secrets` are checked against the vendor's models by the service (which
    names the offending field, and sees stored values on update); OpenAPI should still
    show what each vendor accepts.
    """

    def __init__(self, documented: Any) -> None:
        self._adapter: TypeAdapter[Any] = TypeAdapter(documented)

    def __get_pydantic_json_schema__(
        self, _core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(self._adapter.core_schema)


ConfigInput = Annotated[dict[str, Any], _DocumentedAs(Hl7V2xConfig | FhirR4Config)]
SecretsInput = Annotated[dict[str, SecretStr | None], _DocumentedAs(Hl7V2xSecrets | FhirR4Secrets)]


class IntegrationCreate(_Strict):
    """A new integration: `config` and `secrets` follow the vendor's models."""

    vendor: VendorSlug
    name: Name
    enabled: bool = True
    config: ConfigInput = Field(default_factory=dict)
    secrets: SecretsInput = Field(default_factory=dict)


class IntegrationUpdate(_Strict):
    """A partial update, applied only if `version` is still the stored one.

    `config` keys are merged into the stored config (null resets a key to its default);
    in `secrets`, an omitted key keeps the stored value, a string replaces it and null
    removes it. The vendor cannot change.
    """

    version: int = Field(ge=1)
    name: Name | None = None
    enabled: bool | None = None
    config: ConfigInput | None = None
    secrets: SecretsInput | None = None


class _ReadBase(BaseModel):
    id: uuid.UUID
    name: str
    enabled: bool
    version: int
    created_at: datetime
    updated_at: datetime


class Hl7V2xRead(_ReadBase):
    vendor: Literal["hl7-v2x"] = "hl7-v2x"
    config: Hl7V2xConfig
    has_tls_cert: bool
    has_tls_key: bool
    has_ca_cert: bool


class FhirR4Read(_ReadBase):
    vendor: Literal["fhir-r4"] = "fhir-r4"
    config: FhirR4Config
    has_token: bool
    has_client_secret: bool
    has_ca_cert: bool


IntegrationRead = Annotated[Hl7V2xRead | FhirR4Read, Field(discriminator="vendor")]


class IntegrationList(BaseModel):
    """One page of the organisation's integrations, by name."""

    items: list[IntegrationRead]
    total: int
    limit: int
    offset: int


class TestResultRead(BaseModel):
    """What `POST .../test` found: reachable or not, why, and how long it took."""

    __test__ = False  # not a pytest class

    ok: bool
    detail: str
    latency_ms: float


class OperationRequest(_Strict):
    """`POST .../execute`: one handler operation (`parse`, `generate`, `send`, ...)."""

    operation: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    params: dict[str, Any] = Field(default_factory=dict)


class OperationResult(BaseModel):
    operation: str
    result: dict[str, Any]
