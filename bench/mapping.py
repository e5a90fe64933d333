"""Parse + map + validate messages/s over the corpus, by message type (one core).

Each supported corpus message is parsed from its bytes, mapped to a transaction Bundle
and every resource validated (fhir.resources R4B + required bindings), exactly what the
ingestion pipeline does per message. Next to it, in the same run: parse alone and
parse + map without validation, so the cost of each stage shows as a ratio.

Usage: uv run python bench/mapping.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable

from hl7_fhir import mapping, v2
from hl7_fhir.errors import HL7FhirError

try:
    from ._corpus import corpus_messages
except ImportError:  # run as a script
    from _corpus import corpus_messages  # type: ignore[no-redef]


def rate(work: Callable[[bytes], object], messages: list[bytes], seconds: float) -> float:
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for message in messages:
            work(message)
        done += len(messages)
    return done / (time.perf_counter() - start)


def full(raw: bytes) -> object:
    return mapping.to_fhir(v2.parse(raw))


def no_validation(raw: bytes) -> object:
    return mapping.to_fhir(v2.parse(raw), validate=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per case and type")
    args = parser.parse_args()
    supported = set(mapping.supported_events())
    by_type: dict[str, list[bytes]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    for raw in corpus_messages():
        message = v2.parse(raw)
        event = f"{message.message_type}^{message.trigger_event}"
        if event not in supported:
            continue
        family = message.message_type if message.message_type != "ADT" else event
        try:
            full(raw)
        except HL7FhirError:
            failures[family] += 1
            continue
        by_type[family].append(raw)
    for kind in ("adt_a01", "adt_a08", "orm", "oru_rad", "oru_lab", "siu_s12"):
        by_type[f"generated {kind}"] = [
            v2.generate(kind, seed=seed).encode() for seed in range(100)
        ]
    radiology = [r for r in corpus_messages() if b"VOYAGER" in r[:80] or b"PACS" in r[:80]]
    for kind in ("adt_a01", "adt_a08", "orm", "oru_rad", "oru_lab", "siu_s12"):
        by_type[f"generated {kind}"] = [
            v2.generate(kind, seed=seed).encode() for seed in range(100)
        ]
    radiology = [r for r in radiology if v2.parse(r).message_type in ("ORM", "ORU")]
    if radiology:
        by_type["radiology ORM/ORU"] = radiology

    print(
        f"{'type':<20}{'msgs':>6}{'parse/s':>10}{'map/s':>10}{'map+valid/s':>13}{'valid cost':>12}"
    )
    for family in sorted(by_type):
        messages = by_type[family]
        parse_rate = rate(v2.parse, messages, args.seconds)
        map_rate = rate(no_validation, messages, args.seconds)
        full_rate = rate(full, messages, args.seconds)
        print(
            f"{family:<20}{len(messages):>6}{parse_rate:>10,.0f}{map_rate:>10,.0f}"
            f"{full_rate:>13,.0f}{map_rate / full_rate:>11.1f}x"
        )
    if failures:
        print("not mappable (MappingError), excluded:", dict(failures))
    print("target: >= 1,000 msg/s parse+map+validate for ADT and radiology ORU/ORM")


if __name__ == "__main__":
    main()
