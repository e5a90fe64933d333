"""The public surface of hl7_fhir.mllp, pinned."""

from __future__ import annotations

import hl7_fhir.mllp as mllp


def test_exported_names() -> None:
    assert sorted(mllp.__all__) == [
        "CARRIAGE_RETURN",
        "ConnectionInfo",
        "DEFAULT_MAX_MESSAGE_SIZE",
        "END_BLOCK",
        "FrameDecoder",
        "Handler",
        "MLLPClient",
        "MLLPConnection",
        "MLLPServer",
        "Overflow",
        "START_BLOCK",
        "ServerSettings",
        "frame",
        "open_connection",
        "start_server",
    ]
    for name in mllp.__all__:
        assert getattr(mllp, name) is not None


def test_modules_behind_the_surface_are_private() -> None:
    public_modules = [
        name
        for name in vars(mllp)
        if not name.startswith("_") and type(getattr(mllp, name)).__name__ == "module"
    ]
    assert public_modules == []
