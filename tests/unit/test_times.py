"""One definition of the instants that stand for an open end of a time range."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from provgraph.core.times import EPOCH, FAR_FUTURE, span

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("core", "ingest", "graph", "queries", "api", "provgraph", "bench")
# a datetime literal at the Unix epoch or in year 9999: a private copy of EPOCH / FAR_FUTURE
COPY = re.compile(r"datetime\(\s*(1970\s*,\s*1\s*,\s*1|9999)\b")


def test_open_ends_become_the_shared_instants() -> None:
    since = datetime(2024, 1, 1, tzinfo=UTC)
    assert span(None, None) == (EPOCH, FAR_FUTURE)
    assert span(since, None) == (since, FAR_FUTURE)
    assert EPOCH.timestamp() == 0 and FAR_FUTURE.year == 9999


def test_no_module_keeps_its_own_copy() -> None:
    copies = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in PRODUCT
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != ROOT / "core" / "times.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if COPY.search(line)
    ]
    assert copies == []
