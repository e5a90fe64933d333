"""The hl7-v2x handler against a real MLLP listener (plain, TLS and mutual TLS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from ehr_api.errors import InvalidError
from ehr_api.integrations.orchestrator import Orchestrator, UpstreamError
from hl7_fhir import v2
from hl7_fhir.mllp import ConnectionInfo, MLLPServer

from tests.ehr_api.integrations.conftest import Pem, integration
from tests.pki import Pki


class Listener:
    """A real MLLPServer that records what it receives (and who sent it)."""

    def __init__(self) -> None:
        self.messages: list[v2.Message] = []
        self.peers: list[ConnectionInfo] = []
        self.answer: str | None = None  # None: the server's own AA

    async def handle(self, message: bytes, info: ConnectionInfo) -> v2.Message | None:
        parsed = v2.parse(message)
        self.messages.append(parsed)
        self.peers.append(info)
        if self.answer is None:
            return None
        return v2.build_ack(parsed, code=self.answer)


@pytest.fixture
async def plain() -> AsyncIterator[tuple[Listener, int]]:
    listener = Listener()
    async with MLLPServer(listener.handle, port=0) as server:
        yield listener, server.port


@pytest.fixture
async def tls(pki: Pki) -> AsyncIterator[tuple[Listener, int]]:
    listener = Listener()
    async with MLLPServer(
        listener.handle, port=0, ssl=pki.server_context(require_client_cert=True)
    ) as server:
        yield listener, server.port


def outbound(port: int, **extra: Any) -> dict[str, Any]:
    return {"mllp_host": "127.0.0.1", "mllp_port": port, "ack_timeout_s": 5, **extra}


async def test_connect_only_sends_nothing(
    plain: tuple[Listener, int], orchestrator: Orchestrator
) -> None:
    listener, port = plain
    result = await orchestrator.test_connection(integration("hl7-v2x", outbound(port)))
    assert result.ok, result.detail
    assert result.detail == f"connected to 127.0.0.1:{port} (plain TCP)"
    assert listener.messages == []


async def test_adt_a08_test_message(
    plain: tuple[Listener, int], orchestrator: Orchestrator
) -> None:
    listener, port = plain
    target = integration("hl7-v2x", outbound(port, connection_test="adt_a08", hl7_version="2.4"))
    result = await orchestrator.test_connection(target)
    assert result.ok, result.detail
    assert "test ADT^A08" in result.detail and result.detail.endswith("answered AA")
    [message] = listener.messages
    assert (message.message_type, message.trigger_event) == ("ADT", "A08")
    assert message.processing_id == "T" and message.version == "2.4"
    listener.answer = "AR"
    refused = await orchestrator.test_connection(target)
    assert not refused.ok and refused.detail.endswith("answered AR")


async def test_nothing_listening(orchestrator: Orchestrator) -> None:
    result = await orchestrator.test_connection(integration("hl7-v2x", outbound(9)))
    assert not result.ok
    assert result.detail.startswith("cannot connect to 127.0.0.1:9")
    inbound_only = await orchestrator.test_connection(
        integration("hl7-v2x", {"inbound_port": 2575})
    )
    assert not inbound_only.ok and "no outbound endpoint" in inbound_only.detail


async def test_mutual_tls(tls: tuple[Listener, int], orchestrator: Orchestrator, pem: Pem) -> None:
    listener, port = tls
    mutual = {"ca_cert": pem.ca, "tls_cert": pem.client_cert, "tls_key": pem.client_key}
    target = integration("hl7-v2x", outbound(port, tls_enabled=True), mutual)
    result = await orchestrator.test_connection(target)
    assert result.ok, result.detail
    assert "(TLS TLSv1." in result.detail
    reply = await orchestrator.execute(
        target, "send", {"message": v2.generate("oru_rad", seed=3).to_er7()}
    )
    assert reply["accepted"] and reply["ack_code"] == "AA"
    assert (
        listener.peers[0].tls
        and listener.peers[0].peer_cert_subject == "CN=ris-client,O=Test Hospital"
    )


async def test_tls_failures_are_reported(
    tls: tuple[Listener, int], orchestrator: Orchestrator, pem: Pem
) -> None:
    _, port = tls
    system_roots = integration("hl7-v2x", outbound(port, tls_enabled=True))
    result = await orchestrator.test_connection(system_roots)
    assert not result.ok and "certificate verification failed" in result.detail
    no_client_cert = integration("hl7-v2x", outbound(port, tls_enabled=True), {"ca_cert": pem.ca})
    # The server asks for a client certificate: TLS 1.3 reports it after the handshake, so
    # connecting may succeed; sending cannot.
    with pytest.raises(UpstreamError):
        await orchestrator.execute(
            no_client_cert, "send", {"message": v2.generate("orm", seed=1).to_er7()}
        )


async def test_send_parse_generate(plain: tuple[Listener, int], orchestrator: Orchestrator) -> None:
    listener, port = plain
    target = integration(
        "hl7-v2x", outbound(port, supported_message_types=["ORM^O01", "ORU^R01^ORU_R01"])
    )
    order = v2.generate("orm", seed=7)
    reply = await orchestrator.execute(target, "send", {"message": order.to_er7()})
    assert reply == {**reply, "control_id": order.control_id, "ack_code": "AA", "accepted": True}
    assert listener.messages[0].control_id == order.control_id
    listener.answer = "AE"
    negative = await orchestrator.execute(
        target, "send", {"message": v2.generate("oru_lab", seed=2).to_er7()}
    )
    assert (negative["ack_code"], negative["accepted"]) == ("AE", False)

    with pytest.raises(InvalidError) as unsupported:
        await orchestrator.execute(
            target, "send", {"message": v2.generate("adt_a08", seed=1).to_er7()}
        )
    assert unsupported.value.field == "params.message"
    with pytest.raises(InvalidError) as garbage:
        await orchestrator.execute(target, "parse", {"message": "this is not HL7 at all"})
    assert garbage.value.field == "params.message"

    parsed = await orchestrator.execute(target, "parse", {"message": order.to_er7()})
    assert parsed["message_type"] == "ORM^O01" and parsed["segments"][0] == "MSH"
    generated = await orchestrator.execute(target, "generate", {"kind": "siu_s12", "seed": 5})
    assert generated["message_type"] == "SIU^S12" and generated["version"] == "2.5.1"
    assert v2.parse(generated["message"]).control_id == generated["control_id"]
    with pytest.raises(InvalidError) as kind:
        await orchestrator.execute(target, "generate", {"kind": "nonsense"})
    assert kind.value.field == "params.kind"


async def test_send_to_a_dead_endpoint(orchestrator: Orchestrator) -> None:
    target = integration("hl7-v2x", outbound(9, connect_timeout_s=2))
    with pytest.raises(UpstreamError) as caught:
        await orchestrator.execute(target, "send", {"message": v2.generate("orm", seed=1).to_er7()})
    assert caught.value.status == 502 and "127.0.0.1:9" in caught.value.detail
