"""MLLP over TLS and mutual TLS, with certificates made for the test run."""

from __future__ import annotations

import ssl

import pytest
from hl7_fhir.errors import ConnectionClosedError
from hl7_fhir.mllp import ConnectionInfo, MLLPClient, MLLPServer

from tests.pki import Pki


async def test_tls_round_trip(pki: Pki, order: bytes) -> None:
    seen: list[ConnectionInfo] = []

    async def handler(message: bytes, info: ConnectionInfo) -> None:
        seen.append(info)

    async with (
        MLLPServer(handler, port=0, ssl=pki.server_context()) as server,
        MLLPClient("127.0.0.1", server.port, ssl=pki.client_context()) as client,
    ):
        ack = await client.send(order)
    assert ack["MSA-1"] == "AA"
    assert seen[0].tls is True
    assert seen[0].peer_cert_subject is None


async def test_tls_client_checks_the_server_certificate(pki: Pki, order: bytes) -> None:
    untrusting = ssl.create_default_context()  # system roots do not know our test CA
    async with (
        MLLPServer(lambda m, i: _none(), port=0, ssl=pki.server_context()) as server,
        MLLPClient("127.0.0.1", server.port, ssl=untrusting, retries=0) as client,
    ):
        with pytest.raises(ConnectionClosedError) as caught:
            await client.send(order)
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


async def test_mutual_tls_identifies_the_client(pki: Pki, order: bytes) -> None:
    seen: list[ConnectionInfo] = []

    async def handler(message: bytes, info: ConnectionInfo) -> None:
        seen.append(info)

    server_ssl = pki.server_context(require_client_cert=True)
    client_ssl = pki.client_context(with_cert=True)
    async with (
        MLLPServer(handler, port=0, ssl=server_ssl) as server,
        MLLPClient("localhost", server.port, ssl=client_ssl) as client,
    ):
        ack = await client.send(order)
    assert ack["MSA-1"] == "AA"
    assert seen[0].peer_cert_subject == "CN=ris-client,O=Test Hospital"


async def test_mutual_tls_rejects_a_client_without_certificate(pki: Pki, order: bytes) -> None:
    called: list[bytes] = []

    async def handler(message: bytes, info: ConnectionInfo) -> None:
        called.append(message)

    server_ssl = pki.server_context(require_client_cert=True)
    async with (
        MLLPServer(handler, port=0, ssl=server_ssl) as server,
        MLLPClient("127.0.0.1", server.port, ssl=pki.client_context(), retries=0) as client,
    ):
        with pytest.raises(ConnectionClosedError):
            await client.send(order)
        # The listener is unharmed: a client with a certificate still gets through.
        async with MLLPClient(
            "127.0.0.1", server.port, ssl=pki.client_context(with_cert=True)
        ) as good:
            assert (await good.send(order))["MSA-1"] == "AA"
    assert called == [order]


async def _none() -> None:
    return None
