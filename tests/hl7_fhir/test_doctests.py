"""The examples in the library's docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import hl7_fhir
import pytest

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(hl7_fhir.__path__, prefix="hl7_fhir.")
    if not info.name.endswith(("__main__", "cli"))
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
