"""Each source's integrity level and working directory of a started process, in Sigma's terms
(`IntegrityLevel` in Sysmon's words, `CurrentDirectory` as logged)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from provgraph.ingest.ecs import parse_ecs
from provgraph.ingest.mde import parse_mde
from provgraph.ingest.model import Origin, integrity_level
from provgraph.ingest.security import parse_security
from provgraph.ingest.sysmon import parse_sysmon
from test_image_facts_and_direction import ECS_START, MDE_START
from test_windows_shapes import SECURITY_EVENT_4688

ORIGIN = Origin("test", "<test>", 1)
DATA = Path(__file__).resolve().parents[2] / "data"
EMPIRE = DATA / "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"


@pytest.mark.parametrize(
    ("logged", "word"),
    [
        ("S-1-16-4096", "Low"),
        ("S-1-16-8192", "Medium"),
        ("S-1-16-12288", "High"),
        ("s-1-16-16384", "System"),
        ("Mandatory Label\\High Mandatory Level", "High"),
        ("high", "High"),
        ("SYSTEM", "System"),
        ("AppContainer", "AppContainer"),
        ("Something Else", "Something Else"),  # unknown: kept as logged
        ("-", None),
        ("", None),
        (None, None),
    ],
)
def test_integrity_levels_become_sysmons_words(logged: str | None, word: str | None) -> None:
    assert integrity_level(logged) == word


def test_sysmon_1_gives_both() -> None:
    with EMPIRE.open() as lines:
        record = next(
            r
            for r in map(json.loads, lines)
            if r.get("EventID") == 1 and r.get("CurrentDirectory") == "C:\\windows\\system32\\"
        )
    [event] = parse_sysmon(record, ORIGIN)
    assert event.process.integrity_level == record["IntegrityLevel"]
    assert event.process.current_directory == "C:\\windows\\system32\\"
    assert event.parent is not None and event.parent.integrity_level is None


def test_security_4688_maps_the_mandatory_label_and_has_no_directory() -> None:
    [event] = parse_security({**SECURITY_EVENT_4688, "MandatoryLabel": "S-1-16-16384"}, ORIGIN)
    assert (event.process.integrity_level, event.process.current_directory) == ("System", None)
    [unlabelled] = parse_security({**SECURITY_EVENT_4688, "MandatoryLabel": "-"}, ORIGIN)
    assert unlabelled.process.integrity_level is None


def test_defender_process_integrity_level() -> None:
    [event] = parse_mde({**MDE_START, "ProcessIntegrityLevel": "High"}, ORIGIN)
    assert event.process.integrity_level == "High"
    assert event.parent is not None and event.parent.integrity_level is None
    [initiated] = parse_mde({**MDE_START, "InitiatingProcessIntegrityLevel": "system"}, ORIGIN)
    assert initiated.parent is not None and initiated.parent.integrity_level == "System"


def test_elastic_token_integrity_and_working_directory() -> None:
    process = {
        **ECS_START["process"],
        "working_directory": "C:\\Users\\Public\\",
        "Ext": {"token": {"integrity_level_name": "high"}},
    }
    [event] = parse_ecs({**ECS_START, "process": process}, ORIGIN)
    assert event.process.integrity_level == "High"
    assert event.process.current_directory == "C:\\Users\\Public\\"
    assert event.parent is not None and event.parent.current_directory is None
