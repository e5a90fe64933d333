"""Helpers to enumerate the shared corpus from tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

# Files that are broken on purpose upstream (trusted-intermediary's negative tests).
DELIBERATELY_BROKEN = frozenset(
    {
        "trusted-intermediary/examples/Test/Message/empty.hl7",
        "trusted-intermediary/examples/Test/Message/msh_present_but_missing_all_fields.hl7",
    }
)


def hl7_files() -> list[Path]:
    """Every HL7 v2 file of the corpus, sorted, broken-on-purpose ones included."""
    files = sorted(CORPUS.glob("**/*.hl7"))
    files += sorted(CORPUS.glob("v2-to-fhir-ig/samples/messages/*.txt"))
    return files


def relative(path: Path) -> str:
    return path.relative_to(CORPUS).as_posix()
