"""Print the fact-comparison table with the converter at the end of the run."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from .test_converter_facts import RESULTS

    if not RESULTS:
        return
    events = sorted({event for event, _ in RESULTS})
    categories = sorted({category for _, category in RESULTS if RESULTS[(_, category)][1]})
    terminalreporter.section("facts matching Microsoft FHIR-Converter's expected bundles")
    terminalreporter.write_line(f"{'event':<10}" + "".join(f"{c:>16}" for c in categories))
    for event in events:
        cells = []
        for category in categories:
            matched, expected = RESULTS.get((event, category), [0, 0])
            cells.append(f"{matched}/{expected}" if expected else "-")
        terminalreporter.write_line(f"{event:<10}" + "".join(f"{c:>16}" for c in cells))
