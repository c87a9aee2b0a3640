from __future__ import annotations

from pathlib import Path

import pytest
from provgraph.ingest.model import Origin

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
def origin() -> Origin:
    return Origin("test", "<test>", 1)
