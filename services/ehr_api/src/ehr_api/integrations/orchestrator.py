"""The integration orchestrator: one handler per vendor, one cached client per integration.

A handler (`IntegrationHandler`) knows a vendor's protocol; `initialize(integration)`
builds a client bound to one version of one integration's settings (TLS context, MLLP
connection pool, HTTP client and OAuth2 token). Building those is the expensive part, so
the orchestrator caches the client per integration id and version:

- the credential's `version` goes up on every update (optimistic locking), so a request
  that loads the credential after a change sees a new version, gets a new client, and
  the old one is closed once no request is still using it. This also works across
  processes: nothing has to be told about the change, the next load just sees it;
- deleting an integration calls `forget(id)` to close its client right away.

Usage::

    orchestrator = Orchestrator.default()           # hl7-v2x and fhir-r4
    result = await orchestrator.test_connection(integration)
    ack = await orchestrator.execute(integration, "send", {"message": er7})
    await orchestrator.aclose()                     # at shutdown

`Integration` is what handlers see: validated config and decrypted secrets (as
`SecretStr`, so printing one shows asterisks); the service builds it from a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, SecretStr

from ehr_api.errors import ConflictError, DomainError, InvalidError

__all__ = [
    "Integration",
    "IntegrationClient",
    "IntegrationHandler",
    "Orchestrator",
    "TestResult",
    "UpstreamError",
]

logger = logging.getLogger(__name__)


class UpstreamError(DomainError):
    """The remote system failed or refused (connection, TLS, negative ACK, HTTP error)."""

    status = 502
    title = "Upstream system error"
    fhir_code = "transient"


@dataclass(frozen=True, slots=True)
class TestResult:
    """The outcome of a connection test; `detail` is for people and carries no secret."""

    __test__ = False  # not a pytest class

    ok: bool
    detail: str
    latency_ms: float


@dataclass(frozen=True, slots=True)
class Integration:
    """One version of an integration, ready for a handler."""

    id: uuid.UUID
    org_id: uuid.UUID
    vendor: str
    name: str
    version: int
    enabled: bool
    config: Any  # the vendor's config model (Hl7V2xConfig, FhirR4Config)
    secrets: Mapping[str, SecretStr] = field(default_factory=dict, repr=False)

    def secret(self, name: str) -> str | None:
        """The plaintext of secret `name`, or None when it is not set."""
        value = self.secrets.get(name)
        return None if value is None else value.get_secret_value()


class IntegrationClient(Protocol):
    """A live connection to one integration's system, for one version of its settings."""

    async def test_connection(self) -> TestResult: ...

    async def execute(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class IntegrationHandler(Protocol):
    """What the orchestrator needs of a vendor's handler."""

    vendor: str
    operations: frozenset[str]

    async def initialize(self, integration: Integration) -> IntegrationClient:
        """A client for `integration` (may load TLS material; should not need the network)."""
        ...


@dataclass(eq=False, slots=True)
class _Entry:
    version: int
    client: IntegrationClient
    users: int = 0
    retired: bool = False


class Orchestrator:
    """The handler registry and the client cache; one per process."""

    def __init__(self, handlers: Iterable[IntegrationHandler] = ()) -> None:
        self._handlers: dict[str, IntegrationHandler] = {}
        self._entries: dict[uuid.UUID, _Entry] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        for handler in handlers:
            self.register(handler)

    @classmethod
    def default(cls) -> Orchestrator:
        """An orchestrator with the built-in handlers (`hl7-v2x`, `fhir-r4`)."""
        from ehr_api.integrations.handlers import default_handlers

        return cls(default_handlers())

    def register(self, handler: IntegrationHandler) -> None:
        """Add (or replace) the handler of `handler.vendor`."""
        self._handlers[handler.vendor] = handler

    @property
    def vendors(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def handler_for(self, vendor: str) -> IntegrationHandler:
        """The handler of `vendor`.

        Raises:
            InvalidError: no handler is registered for it.
        """
        handler = self._handlers.get(vendor)
        if handler is None:
            raise InvalidError(f"no handler for vendor {vendor!r}", field="vendor")
        return handler

    def cached_version(self, integration_id: uuid.UUID) -> int | None:
        """The version whose client is cached for `integration_id`, if any."""
        entry = self._entries.get(integration_id)
        return None if entry is None else entry.version

    async def test_connection(self, integration: Integration) -> TestResult:
        """Try to reach the integration's system; failures are results, not exceptions."""
        started = time.perf_counter()
        try:
            async with self._client(integration) as client:
                result = await client.test_connection()
        except DomainError as exc:
            result = TestResult(False, exc.detail, _ms_since(started))
        logger.info(
            "integration %s (%s) test: %s in %.1f ms",
            integration.id, integration.vendor, "ok" if result.ok else "failed", result.latency_ms,
        )  # fmt: skip
        return result

    async def execute(
        self, integration: Integration, operation: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Run `operation` of the integration's handler with `params`.

        Raises:
            ConflictError: the integration is disabled.
            InvalidError: unknown operation (field ``operation``) or bad params.
            UpstreamError: the remote system failed.
        """
        if not integration.enabled:
            raise ConflictError(f"integration {integration.name!r} is disabled")
        handler = self.handler_for(integration.vendor)
        if operation not in handler.operations:
            raise InvalidError(
                f"unknown operation {operation!r} for {integration.vendor};"
                f" expected one of {sorted(handler.operations)}",
                field="operation",
            )
        async with self._client(integration) as client:
            return await client.execute(operation, params)

    async def forget(self, integration_id: uuid.UUID) -> None:
        """Drop the cached client of a deleted (or disabled) integration."""
        entry = self._entries.pop(integration_id, None)
        self._locks.pop(integration_id, None)
        if entry is not None:
            await self._retire(entry)

    async def aclose(self) -> None:
        """Close every cached client (at shutdown)."""
        for integration_id in list(self._entries):
            await self.forget(integration_id)

    @contextlib.asynccontextmanager
    async def _client(self, integration: Integration) -> AsyncIterator[IntegrationClient]:
        entry, cached = await self._acquire(integration)
        try:
            yield entry.client
        finally:
            entry.users -= 1
            if not cached or (entry.retired and entry.users == 0):
                await _close(entry.client)

    async def _acquire(self, integration: Integration) -> tuple[_Entry, bool]:
        lock = self._locks.setdefault(integration.id, asyncio.Lock())
        async with lock:
            entry = self._entries.get(integration.id)
            if entry is not None and entry.version == integration.version:
                entry.users += 1
                return entry, True
            handler = self.handler_for(integration.vendor)
            client = await handler.initialize(integration)
            fresh = _Entry(integration.version, client, users=1)
            if entry is not None and entry.version > integration.version:
                # A request that loaded the credential before a newer update: serve it
                # once, uncached, rather than evicting the newer client.
                return fresh, False
            self._entries[integration.id] = fresh
            if entry is not None:
                logger.info(
                    "integration %s changed (version %d -> %d): client replaced",
                    integration.id, entry.version, integration.version,
                )  # fmt: skip
                await self._retire(entry)
            return fresh, True

    async def _retire(self, entry: _Entry) -> None:
        entry.retired = True
        if entry.users == 0:
            await _close(entry.client)


async def _close(client: IntegrationClient) -> None:
    try:
        await client.aclose()
    except Exception:  # a client that fails to close must not fail the request
        logger.warning("closing an integration client failed", exc_info=True)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def config_of(integration: Integration, model: type[BaseModel]) -> Any:
    """`integration.config`, checked to be a `model` (a handler given the wrong vendor)."""
    if not isinstance(integration.config, model):
        raise TypeError(
            f"expected {model.__name__} config, got {type(integration.config).__name__}"
        )
    return integration.config
