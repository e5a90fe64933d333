"""Search-index extraction cost per resource (`fhir_store.indexing.index`).

Runs on every create and update, so it is on the write path. Baseline, same process:
`json.dumps` of the same resource (what storing it costs at least). Corpus: every
resource of the fhir-server examples, plus a typical Patient and Observation.

    uv run python bench/fhir_index.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ehr_api.fhir_store.indexing import index

EXAMPLES = Path(__file__).resolve().parents[2] / (
    "shared/corpus/fhir-server-examples/src/Microsoft.Health.Fhir.Tests.Common/TestFiles/R4"
)
PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:mrn", "value": "123"}],
    "name": [{"family": "Doe", "given": ["Jane"]}],
    "gender": "female",
    "birthDate": "1974-12-25",
    "address": [{"city": "Springfield", "postalCode": "12345"}],
}
OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2026-11-23T09:30:00Z",
    "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org"},
}


def _per_call(work: Callable[[], Any], rounds: int) -> float:
    work()  # compile / warm caches
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            work()
        best = min(best, (time.perf_counter() - started) / rounds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    corpus = []
    for path in sorted(EXAMPLES.glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8-sig"))
        if isinstance(body, dict) and "resourceType" in body:
            corpus.append(body)
    for name, content in (("Patient", PATIENT), ("Observation", OBSERVATION)):
        kind = content["resourceType"]
        rows = index(kind, content)
        count = sum(
            len(getattr(rows, t)) for t in ("tokens", "strings", "dates", "numbers", "references")
        )
        took = _per_call(lambda c=content, k=kind: index(k, c), args.rounds)
        base = _per_call(lambda c=content: json.dumps(c), args.rounds)
        print(f"{name:12} index {took * 1e6:7.1f} us ({count} rows)  json.dumps {base * 1e6:6.1f} us"
              f"  ratio {took / base:5.1f}")  # fmt: skip
    started = time.perf_counter()
    for content in corpus:
        index(content["resourceType"], content)
    first = time.perf_counter() - started
    started = time.perf_counter()
    for content in corpus:
        index(content["resourceType"], content)
    warm = time.perf_counter() - started
    print(f"corpus       {len(corpus)} resources: first pass {first * 1e3:.0f} ms (compiling),"
          f" then {warm / len(corpus) * 1e6:.0f} us per resource")  # fmt: skip


if __name__ == "__main__":
    main()
