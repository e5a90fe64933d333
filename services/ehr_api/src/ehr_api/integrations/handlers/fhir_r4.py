"""The `fhir-r4` handler: a FHIR R4 server over HTTPS with none, bearer or OAuth2 auth.

The client is one `httpx.AsyncClient` per integration version (connection pooling, the
private CA if configured). Authentication is an `httpx.Auth` flow, so every request -
the connection test and the operations alike - is signed the same way:

- bearer: the stored token in `Authorization`;
- OAuth2 client credentials: a token from `token_url` (client secret by HTTP Basic or
  form fields), cached until shortly before `expires_in` runs out and fetched again once
  if the server answers 401 (revoked early).

Operations: ``metadata`` (the CapabilityStatement), ``read`` ``{"resource_type", "id"}``,
``search`` ``{"resource_type", "params"}``. Redirects are not followed, so a token is
only ever sent to the configured server.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Generator, Mapping
from typing import Any
from urllib.parse import quote_plus

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ehr_api.errors import InvalidError
from ehr_api.integrations.handlers._common import parse_params, tls_context
from ehr_api.integrations.models import FHIR_R4
from ehr_api.integrations.orchestrator import Integration, TestResult, UpstreamError, config_of
from ehr_api.integrations.schemas import BearerAuth, FhirR4Config, OAuth2ClientCredentials

__all__ = [
    "BearerTokenAuth",
    "ClientCredentialsAuth",
    "FhirR4Client",
    "FhirR4Handler",
    "TokenError",
]

FHIR_JSON = "application/fhir+json"
_EXPIRY_MARGIN_S = 30.0


class TokenError(UpstreamError):
    """The OAuth2 token endpoint refused or answered something unusable."""


class _ReadParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resource_type: str = Field(pattern=r"^[A-Z][A-Za-z]{1,63}$")
    id: str = Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")


class _SearchParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resource_type: str = Field(pattern=r"^[A-Z][A-Za-z]{1,63}$")
    params: dict[str, str] = Field(default_factory=dict)


class BearerTokenAuth(httpx.Auth):
    """A fixed bearer token."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class ClientCredentialsAuth(httpx.Auth):
    """OAuth 2.0 client credentials (RFC 6749 section 4.4) with a cached access token."""

    requires_response_body = True

    def __init__(
        self, settings: OAuth2ClientCredentials, client_secret: str, *, clock: Any = time.monotonic
    ) -> None:
        self._settings = settings
        self._secret = client_secret
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetches = 0  # tokens obtained so far (observability and tests)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        fresh = False
        if self._token is None or self._clock() >= self._expires_at:
            self._store((yield self._token_request()))
            fresh = True
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401 and not fresh:
            # Revoked or expired early: one new token, one retry.
            self._store((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request

    def _token_request(self) -> httpx.Request:
        settings = self._settings
        form = {"grant_type": "client_credentials"}
        if settings.scope:
            form["scope"] = settings.scope
        headers = {"Accept": "application/json"}
        if settings.client_auth == "client_secret_basic":
            # RFC 6749 2.3.1: both parts form-encoded before the Basic encoding.
            pair = f"{quote_plus(settings.client_id)}:{quote_plus(self._secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form |= {"client_id": settings.client_id, "client_secret": self._secret}
        return httpx.Request("POST", settings.token_url, data=form, headers=headers)

    def _store(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            # The body may echo what was sent; only the status is reported.
            raise TokenError(f"the token endpoint answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenError("the token endpoint answered without an access_token")
        lifetime = body.get("expires_in") if isinstance(body, dict) else None
        self._token = token
        self.fetches += 1
        if isinstance(lifetime, int | float) and lifetime > 0:
            margin = min(_EXPIRY_MARGIN_S, lifetime / 10)
            self._expires_at = self._clock() + lifetime - margin
        else:
            self._expires_at = float("inf")  # no expiry given: until the server says 401


class FhirR4Handler:
    """Builds `FhirR4Client`s; registered under `fhir-r4`."""

    vendor = FHIR_R4
    operations = frozenset({"metadata", "read", "search"})

    async def initialize(self, integration: Integration) -> FhirR4Client:
        config: FhirR4Config = config_of(integration, FhirR4Config)
        auth: httpx.Auth | None = None
        if isinstance(config.auth, BearerAuth):
            auth = BearerTokenAuth(integration.secret("token") or "")
        elif isinstance(config.auth, OAuth2ClientCredentials):
            auth = ClientCredentialsAuth(config.auth, integration.secret("client_secret") or "")
        ca_cert = integration.secret("ca_cert")
        http = httpx.AsyncClient(
            base_url=config.fhir_server_url + "/",
            auth=auth,
            headers={"Accept": FHIR_JSON},
            timeout=config.timeout_s,
            verify=tls_context(ca_cert=ca_cert) if ca_cert else True,
            follow_redirects=False,
        )
        return FhirR4Client(config, http)


class FhirR4Client:
    """One integration version's HTTP client."""

    def __init__(self, config: FhirR4Config, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http

    async def test_connection(self) -> TestResult:
        """GET /metadata and check it is an R4 CapabilityStatement."""
        url = f"{self.config.fhir_server_url}/metadata"
        started = time.perf_counter()
        try:
            response = await self.http.get("metadata")
        except TokenError as exc:
            return TestResult(False, f"authentication failed: {exc.detail}", _ms(started))
        except httpx.HTTPError as exc:
            return TestResult(False, f"cannot reach {url}: {_reason(exc)}", _ms(started))
        elapsed = _ms(started)
        if response.status_code != 200:
            hint = " (check the credentials)" if response.status_code in (401, 403) else ""
            return TestResult(False, f"{url} answered HTTP {response.status_code}{hint}", elapsed)
        statement = _json(response)
        if statement.get("resourceType") != "CapabilityStatement":
            return TestResult(False, f"{url} did not return a CapabilityStatement", elapsed)
        version = str(statement.get("fhirVersion", ""))
        if version and not version.startswith("4.0"):
            return TestResult(False, f"{url} speaks FHIR {version}, not R4 (4.0.x)", elapsed)
        software = (statement.get("software") or {}).get("name")
        about = ", ".join(filter(None, [f"FHIR {version}" if version else "", software]))
        return TestResult(True, f"{url}: CapabilityStatement ({about or 'no details'})", elapsed)

    async def execute(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if operation == "metadata":
            return await self._get("metadata")
        if operation == "read":
            read = parse_params(_ReadParams, params)
            return await self._get(f"{read.resource_type}/{read.id}")
        if operation == "search":
            search = parse_params(_SearchParams, params)
            return await self._get(search.resource_type, params=search.params)
        raise InvalidError(f"unknown operation {operation!r}", field="operation")

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _get(self, path: str, *, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        try:
            response = await self.http.get(path, params=params)
        except TokenError:
            raise
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"cannot reach {self.config.fhir_server_url}: {_reason(exc)}"
            ) from None
        if response.status_code >= 400:
            raise UpstreamError(
                f"GET {path} answered HTTP {response.status_code}", status_code=response.status_code
            )
        return _json(response)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
