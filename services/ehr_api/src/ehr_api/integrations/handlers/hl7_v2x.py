"""The `hl7-v2x` handler: HL7 v2 over MLLP, with hl7_fhir doing the protocol work.

Operations:

- ``parse`` ``{"message": er7}`` -> the header facts (type, control id, version, segments);
- ``generate`` ``{"kind": "adt_a08", "seed": 1}`` -> a realistic fake message (ER7) in the
  integration's HL7 version, for trying a partner's interface;
- ``send`` ``{"message": er7}`` -> sent over the integration's MLLP connection; returns
  the ACK (a negative ACK is a result, not an error: the caller decides).

The client keeps one pooled `MLLPClient` per integration version (TLS context built once);
the connection test opens a connection of its own so it never disturbs traffic in flight.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from typing import Any

from hl7_fhir import v2
from hl7_fhir.errors import HL7FhirError, ParseError
from hl7_fhir.mllp import MLLPClient, open_connection
from pydantic import BaseModel, ConfigDict, Field

from ehr_api.errors import InvalidError
from ehr_api.integrations.handlers._common import parse_params, tls_context
from ehr_api.integrations.models import HL7_V2X
from ehr_api.integrations.orchestrator import Integration, TestResult, UpstreamError, config_of
from ehr_api.integrations.schemas import Hl7V2xConfig

__all__ = ["Hl7V2xClient", "Hl7V2xHandler"]

_POSITIVE = frozenset({"AA", "CA"})
_GENERATOR_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")


class _MessageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=8, max_length=10_000_000)


class _GenerateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = "adt_a08"
    seed: int | None = None
    version: str | None = None


class Hl7V2xHandler:
    """Builds `Hl7V2xClient`s; registered under `hl7-v2x`."""

    vendor = HL7_V2X
    operations = frozenset({"parse", "generate", "send"})

    async def initialize(self, integration: Integration) -> Hl7V2xClient:
        config: Hl7V2xConfig = config_of(integration, Hl7V2xConfig)
        context = None
        if config.tls_enabled:
            context = tls_context(
                ca_cert=integration.secret("ca_cert"),
                cert_chain=integration.secret("tls_cert"),
                private_key=integration.secret("tls_key"),
            )
        return Hl7V2xClient(config, context)


class Hl7V2xClient:
    """One integration version's MLLP endpoint and TLS context."""

    def __init__(self, config: Hl7V2xConfig, context: ssl.SSLContext | None) -> None:
        self.config = config
        self.ssl = context
        self._pool: MLLPClient | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.config.mllp_host}:{self.config.mllp_port}"

    async def test_connection(self) -> TestResult:
        """Open (and close) a connection; with `connection_test: adt_a08`, also send one."""
        host, port = self.config.mllp_host, self.config.mllp_port
        if host is None or port is None:
            return TestResult(False, "no outbound endpoint (mllp_host, mllp_port) configured", 0.0)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.connect_timeout_s):
                connection = await open_connection(
                    host, port, ssl=self.ssl, server_hostname=host if self.ssl else None
                )
        except (OSError, TimeoutError) as exc:
            return TestResult(
                False, f"cannot connect to {self.endpoint}: {_reason(exc)}", _ms(started)
            )
        try:
            transport = (
                "TLS " + str(connection.get_extra_info("ssl_object").version())
                if self.ssl
                else "plain TCP"
            )
            if self.config.connection_test == "connect":
                return TestResult(True, f"connected to {self.endpoint} ({transport})", _ms(started))
            message = self._generate(_GenerateParams(kind="adt_a08"), processing_id="T")
            try:
                ack = await connection.request(
                    message.encode(), message.control_id, ack_timeout=self.config.ack_timeout_s
                )
            except HL7FhirError as exc:
                return TestResult(False, f"test message to {self.endpoint}: {exc}", _ms(started))
            code = ack["MSA-1"]
            return TestResult(
                code in _POSITIVE,
                f"test ADT^A08 to {self.endpoint} ({transport}) answered {code}",
                _ms(started),
            )
        finally:
            await connection.close()

    async def execute(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if operation == "parse":
            return _describe(_parse(parse_params(_MessageParams, params).message))
        if operation == "generate":
            message = self._generate(parse_params(_GenerateParams, params))
            return {**_describe(message), "message": message.to_er7()}
        if operation == "send":
            return await self._send(_parse(parse_params(_MessageParams, params).message))
        raise InvalidError(f"unknown operation {operation!r}", field="operation")

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def _generate(self, params: _GenerateParams, *, processing_id: str = "P") -> v2.Message:
        version = params.version or self.config.hl7_version
        if version not in _GENERATOR_VERSIONS:
            version = "2.5.1"  # the generator's newest; receivers read older fields anyway
        try:
            return v2.generate(
                params.kind, version=version, seed=params.seed, processing_id=processing_id
            )
        except ValueError as exc:
            raise InvalidError(str(exc), field="params.kind") from None

    async def _send(self, message: v2.Message) -> dict[str, Any]:
        host, port = self.config.mllp_host, self.config.mllp_port
        if host is None or port is None:
            raise InvalidError("no outbound endpoint configured", field="config.mllp_host")
        kind = f"{message.message_type}^{message.trigger_event}"
        allowed = {"^".join(entry.split("^")[:2]) for entry in self.config.supported_message_types}
        if allowed and kind not in allowed:
            raise InvalidError(
                f"{kind} is not among this integration's supported_message_types",
                field="params.message",
            )
        try:
            ack = await self._client(host, port).send(message)
        except HL7FhirError as exc:
            raise UpstreamError(f"sending to {self.endpoint} failed: {exc}") from None
        return {
            "control_id": message.control_id,
            "ack_code": ack["MSA-1"],
            "accepted": ack["MSA-1"] in _POSITIVE,
            "ack": ack.to_er7(),
        }

    def _client(self, host: str, port: int) -> MLLPClient:
        if self._pool is None:
            self._pool = MLLPClient(
                host,
                port,
                ssl=self.ssl,
                server_hostname=host if self.ssl else None,
                timeout=self.config.ack_timeout_s,
                connect_timeout=self.config.connect_timeout_s,
                retries=1,
            )
        return self._pool


def _parse(text: str) -> v2.Message:
    try:
        return v2.parse(text)
    except ParseError as exc:
        raise InvalidError(f"not an HL7 v2 message: {exc}", field="params.message") from None


def _describe(message: v2.Message) -> dict[str, Any]:
    return {
        "message_type": f"{message.message_type}^{message.trigger_event}",
        "structure": message.structure,
        "control_id": message.control_id,
        "version": message.version,
        "segments": [segment.name for segment in message],
    }


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verification failed ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or type(exc).__name__})"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
