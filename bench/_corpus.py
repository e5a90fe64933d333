"""The benchmark workload: every parseable HL7 v2 message of the shared corpus."""

from __future__ import annotations

from pathlib import Path

from hl7_fhir import v2

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def corpus_messages() -> list[bytes]:
    """Raw bytes of each message (batches split), CR-terminated as on the wire."""
    if not CORPUS.is_dir():
        raise SystemExit(f"the shared corpus is not at {CORPUS}")
    messages: list[bytes] = []
    for path in sorted(CORPUS.glob("**/*.hl7")):
        try:
            messages.extend(v2.split_messages(path.read_bytes()))
        except Exception:  # deliberately broken upstream files are not a workload
            continue
    return [m for m in messages if len(m) > 16]
