"""Messages/s over the corpus: our parser next to python-hl7 and hl7apy, in one run.

Two workloads, same input text for every parser:
  parse   turn the text into a message object
  access  parse, then read MSH-9, MSH-10, PID-3.1, PID-5.1 and every OBX-5

Usage: uv run python bench/parse.py [--seconds 3] [--hl7apy-seconds 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import hl7
from hl7_fhir import v2
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

try:
    from ._corpus import corpus_messages
except ImportError:  # run as a script
    from _corpus import corpus_messages  # type: ignore[no-redef]


def rate(work: Callable[[str], object], texts: list[str], seconds: float) -> tuple[float, int]:
    """Messages/s of ``work`` cycling over ``texts`` for about ``seconds``, and how many
    of ``texts`` it fails on (counted on the first pass; later passes repeat it)."""
    done = passes = failed = 0
    start = time.perf_counter()
    while passes == 0 or time.perf_counter() - start < seconds:
        for text in texts:
            try:
                work(text)
            except Exception:
                failed += passes == 0
        done += len(texts)
        passes += 1
    return done / (time.perf_counter() - start), failed


def ours_parse(text: str) -> object:
    return v2.parse(text)


def ours_access(text: str) -> object:
    m = v2.parse(text)
    return (m["MSH-9"], m.control_id, m["PID-3.1"], m["PID-5.1"], [o[5] for o in m.segments("OBX")])


def python_hl7_parse(text: str) -> object:
    return hl7.parse(text)


def python_hl7_access(text: str) -> object:
    m = hl7.parse(text)
    pid = m.segments("PID")[0] if any(s[0][0] == "PID" for s in m) else None
    return (
        str(m.segment("MSH")[9]),
        str(m.segment("MSH")[10]),
        m["PID.F3.R1.C1"] if pid else "",
        m["PID.F5.R1.C1"] if pid else "",
        [str(s[5]) for s in m if str(s[0]) == "OBX"],
    )


def hl7apy_parse(text: str) -> object:
    return parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)


def hl7apy_access(text: str) -> object:
    m = hl7apy_parse(text)
    msh = m.msh
    return (
        msh.msh_9.value,
        msh.msh_10.value,
        [obx.obx_5.value for obx in m.children if obx.name == "OBX"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per fast case")
    parser.add_argument("--hl7apy-seconds", type=float, default=5.0, help="time per hl7apy case")
    args = parser.parse_args()

    raw = corpus_messages()
    texts = [v2.parse(m).to_er7() for m in raw]
    size = sum(len(t) for t in texts) / len(texts)
    print(f"corpus: {len(texts)} messages, mean {size:.0f} characters")

    start = time.perf_counter()
    loops = 0
    while time.perf_counter() - start < args.seconds:
        for m in raw:
            v2.parse(m)
        loops += 1
    ours_bytes = loops * len(raw) / (time.perf_counter() - start)

    rows = []
    for workload, ours, phl7, apy in (
        ("parse", ours_parse, python_hl7_parse, hl7apy_parse),
        ("access", ours_access, python_hl7_access, hl7apy_access),
    ):
        r_ours, _ = rate(ours, texts, args.seconds)
        r_phl7, f_phl7 = rate(phl7, texts, args.seconds)
        r_apy, f_apy = rate(apy, texts, args.hl7apy_seconds)
        rows.append((workload, r_ours, r_phl7, r_apy, f_phl7, f_apy))

    print()
    print(
        f"{'workload':<8} {'ours msg/s':>12} {'python-hl7':>12} {'hl7apy':>10} {'x python-hl7':>13} {'x hl7apy':>10}"
    )
    for workload, r_ours, r_phl7, r_apy, f_phl7, f_apy in rows:
        print(
            f"{workload:<8} {r_ours:>12,.0f} {r_phl7:>12,.0f} {r_apy:>10,.0f} "
            f"{r_ours / r_phl7:>13.1f} {r_ours / r_apy:>10.0f}"
        )
        if f_phl7 or f_apy:
            print(f"         (messages that fail: python-hl7 {f_phl7}, hl7apy {f_apy})")
    print(f"\nours from bytes (decode by MSH-18 + parse): {ours_bytes:,.0f} msg/s")
    print("targets: >= 10x python-hl7 and >= 200x hl7apy")


if __name__ == "__main__":
    main()
