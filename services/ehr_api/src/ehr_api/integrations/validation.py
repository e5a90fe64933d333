"""Per-vendor checks of a whole integration, and pydantic errors as `InvalidError`.

The models in `schemas.py` check each field; `validate` here runs them on the merged
config and secrets of an integration and adds the rules that span fields. Every failure
becomes one `InvalidError` whose `field` names the first offending field the way the API
spells it (`config.mllp_port`, `secrets.tls_key`, `config.auth.token_url`) and whose
detail lists them all. Secret values are never quoted: errors are built from pydantic's
messages without their inputs, and raised outside the `except` block so the original
`ValidationError` (which holds the input) is not chained onto them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel, SecretStr, ValidationError

from ehr_api.errors import InvalidError
from ehr_api.integrations.models import FHIR_R4, HL7_V2X
from ehr_api.integrations.schemas import (
    BearerAuth,
    FhirR4Config,
    FhirR4Read,
    FhirR4Secrets,
    Hl7V2xConfig,
    Hl7V2xRead,
    Hl7V2xSecrets,
    OAuth2ClientCredentials,
)

__all__ = ["VENDORS", "Issue", "VendorSpec", "invalid", "spec_for", "validate"]

Issue = tuple[str, str]  # (field as the API names it, message)
_AUTH_TAGS = frozenset({"none", "bearer", "oauth2_client_credentials"})


@dataclass(frozen=True, slots=True)
class VendorSpec:
    """What the platform knows about one vendor's configuration."""

    slug: str
    config_model: type[BaseModel]
    secrets_model: type[BaseModel]
    read_model: type[BaseModel]
    #: Rules spanning fields: (validated config, plaintext secrets) -> issues.
    check: Callable[[Any, Mapping[str, str]], Iterable[Issue]]
    #: The secrets this config uses; stored ones outside it are dropped on update.
    secrets_used: Callable[[Any], frozenset[str]]

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return tuple(self.secrets_model.model_fields)


def invalid(issues: list[Issue]) -> InvalidError:
    """One `InvalidError` naming the first field and listing every issue."""
    field = issues[0][0]
    detail = "; ".join(f"{name}: {message}" for name, message in issues)
    return InvalidError(detail, field=field, errors=[{"field": f, "message": m} for f, m in issues])


def validate(
    vendor: str,
    config: Mapping[str, Any],
    secrets: Mapping[str, str | SecretStr],
    *,
    provided: Iterable[str] = (),
) -> tuple[BaseModel, dict[str, str]]:
    """The vendor's validated config and the plaintext secrets it keeps.

    `secrets` are the merged plaintexts (stored ones plus this request's); `provided`
    names those this request set, which must be used by the config (a bearer token sent
    with `auth.type = none` is a mistake worth reporting), while stored ones the config no
    longer uses are silently dropped.

    Raises:
        InvalidError: any field or cross-field rule fails (field named).
    """
    spec = spec_for(vendor)
    issues: list[Issue] = []
    config_model = _parse(spec.config_model, config, "config", issues)
    secrets_model = _parse(spec.secrets_model, secrets, "secrets", issues)
    if config_model is None or secrets_model is None:
        raise invalid(issues)
    plain = {
        name: value.get_secret_value()
        for name, value in secrets_model
        if isinstance(value, SecretStr)
    }
    used = spec.secrets_used(config_model)
    issues.extend(
        (f"secrets.{name}", f"not used by this configuration (uses: {sorted(used) or 'none'})")
        for name in provided
        if name in plain and name not in used
    )
    plain = {name: value for name, value in plain.items() if name in used}
    issues.extend(spec.check(config_model, plain))
    if issues:
        raise invalid(issues)
    return config_model, plain


def spec_for(vendor: str) -> VendorSpec:
    """The spec of `vendor`.

    Raises:
        InvalidError: no such vendor (field ``vendor``).
    """
    spec = VENDORS.get(vendor)
    if spec is None:
        raise InvalidError(
            f"unknown vendor {vendor!r}; expected one of {sorted(VENDORS)}", field="vendor"
        )
    return spec


def _parse(
    model: type[BaseModel], raw: Mapping[str, Any], prefix: str, issues: list[Issue]
) -> BaseModel | None:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        secret_names = set(_all_secret_fields())
        for error in exc.errors(include_url=False, include_input=False, include_context=False):
            path = [str(part) for part in error["loc"] if part not in _AUTH_TAGS]
            field = ".".join([prefix, *path])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden" and path and path[-1] in secret_names:
                message = f"secrets go in secrets.{path[-1]}, never in {prefix}"
            issues.append((field, message))
    return None


def _all_secret_fields() -> Iterable[str]:
    for spec in VENDORS.values():
        yield from spec.secret_fields


# -- hl7-v2x ---------------------------------------------------------------------------


def _check_hl7(config: Hl7V2xConfig, secrets: Mapping[str, str]) -> Iterable[Issue]:
    if config.mllp_host is not None and config.mllp_port is None:
        yield "config.mllp_port", "required when mllp_host is set"
    if config.mllp_port is not None and config.mllp_host is None:
        yield "config.mllp_host", "required when mllp_port is set"
    if config.mllp_host is None and config.mllp_port is None and config.inbound_port is None:
        yield (
            "config.mllp_host",
            "set mllp_host and mllp_port (outbound), inbound_port (listener), or both",
        )
    cert, key = secrets.get("tls_cert"), secrets.get("tls_key")
    if key is not None and cert is None:
        yield "secrets.tls_cert", "required with tls_key (the client certificate chain)"
    elif cert is not None and key is None:
        yield "secrets.tls_key", "required with tls_cert (the certificate's private key)"
    elif cert is not None and key is not None and not _key_matches(cert, key):
        yield (
            "secrets.tls_key",
            "does not match the public key of the first certificate in tls_cert",
        )


def _key_matches(cert_pem: str, key_pem: str) -> bool:
    certificate = x509.load_pem_x509_certificates(cert_pem.encode())[0]
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return certificate.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


# -- fhir-r4 ---------------------------------------------------------------------------


def _check_fhir(config: FhirR4Config, secrets: Mapping[str, str]) -> Iterable[Issue]:
    urls = [("config.fhir_server_url", config.fhir_server_url)]
    if isinstance(config.auth, OAuth2ClientCredentials):
        urls.append(("config.auth.token_url", config.auth.token_url))
    for field, url in urls:
        if urlsplit(url).scheme != "https" and not config.allow_insecure_http:
            yield field, "must be https (set allow_insecure_http: true to allow http)"
    if isinstance(config.auth, BearerAuth) and "token" not in secrets:
        yield "secrets.token", "required with auth type bearer"
    if isinstance(config.auth, OAuth2ClientCredentials) and "client_secret" not in secrets:
        yield "secrets.client_secret", "required with auth type oauth2_client_credentials"


def _fhir_secrets_used(config: FhirR4Config) -> frozenset[str]:
    if isinstance(config.auth, BearerAuth):
        return frozenset({"token", "ca_cert"})
    if isinstance(config.auth, OAuth2ClientCredentials):
        return frozenset({"client_secret", "ca_cert"})
    return frozenset({"ca_cert"})


VENDORS: dict[str, VendorSpec] = {
    HL7_V2X: VendorSpec(
        slug=HL7_V2X,
        config_model=Hl7V2xConfig,
        secrets_model=Hl7V2xSecrets,
        read_model=Hl7V2xRead,
        check=_check_hl7,
        secrets_used=lambda _config: frozenset(Hl7V2xSecrets.model_fields),
    ),
    FHIR_R4: VendorSpec(
        slug=FHIR_R4,
        config_model=FhirR4Config,
        secrets_model=FhirR4Secrets,
        read_model=FhirR4Read,
        check=_check_fhir,
        secrets_used=_fhir_secrets_used,
    ),
}
