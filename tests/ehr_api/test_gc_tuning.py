"""A serving process freezes its start-up heap and raises the collector's thresholds
(`ehr_api.gc_tuning`), unless `EHR_GC_TUNING=0`. Each case runs a fresh interpreter that
starts the real app (embedded SQLite) through its lifespan, since the tuning is once per
process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ehr_api.gc_tuning import SERVING_THRESHOLDS

_PROBE = """
import asyncio, gc, json, os
from ehr_api.app import create_app
from ehr_api.settings import Settings

async def main():
    app = create_app(Settings.from_env(os.environ))
    before = gc.get_threshold()
    async with app.router.lifespan_context(app):
        print(json.dumps({"before": before, "after": gc.get_threshold(),
                          "frozen": gc.get_freeze_count()}))

asyncio.run(main())
"""


def _probe(tmp_path: Path, **env: str) -> dict[str, object]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("EHR_", "DATABASE"))
    }
    environment.update(EHR_DATA_DIR=str(tmp_path), EHR_JWT_SECRET="g" * 40, **env)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("setting", [None, "1"])
def test_the_app_freezes_its_heap_and_raises_the_thresholds(
    tmp_path: Path, setting: str | None
) -> None:
    found = _probe(tmp_path, **({"EHR_GC_TUNING": setting} if setting else {}))
    assert found["before"] == [700, 10, 10]
    assert found["after"] == list(SERVING_THRESHOLDS)
    assert isinstance(found["frozen"], int) and found["frozen"] > 10_000


def test_ehr_gc_tuning_0_leaves_the_collector_alone(tmp_path: Path) -> None:
    found = _probe(tmp_path, EHR_GC_TUNING="0")
    assert found["after"] == found["before"] == [700, 10, 10]
    assert found["frozen"] == 0
