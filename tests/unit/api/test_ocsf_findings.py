"""OCSF Detection Findings: ATT&CK names from the offline table (the id itself when the table
does not know it), and the activity a SOAR sees: Create for an alert nobody touched, whatever
its hit count; Update once triaged or changed by a later run; Close once closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from provgraph.api.alerts import attack
from provgraph.api.alerts.ocsf import activity_id, to_detection_finding
from provgraph.queries.alerts.models import AlertRead
from provgraph.queries.catalog import Catalog

T = datetime(2024, 5, 1, tzinfo=UTC)


def _alert(**changes: Any) -> AlertRead:
    fields: dict[str, Any] = {
        "id": "a1",
        "seq": 3,
        "rule_id": "r",
        "rule_name": "Rule",
        "severity": "high",
        "status": "open",
        "tactics": ["TA0005", "TA0002"],
        "techniques": ["T1127.001", "T9999"],
        "first_seen": T,
        "last_seen": T,
        "created_at": T,
        "updated_at": T,
        "hit_count": 1,
    }
    fields.update(changes)
    return AlertRead(**fields)


def test_every_shipped_rule_id_has_its_name() -> None:
    rules = Catalog(log_problems=False).snapshot().rules
    assert len(rules) >= 10
    for rule in rules:
        for uid in (*rule.tactics, *rule.techniques):
            assert attack.known(uid), f"{rule.id}: add the ATT&CK name of {uid} to attack.py"


def test_names_and_the_fallback() -> None:
    finding = to_detection_finding(_alert(), [])
    first, unknown = finding["finding_info"]["attacks"]
    assert first["technique"] == {
        "uid": "T1127",
        "name": "Trusted Developer Utilities Proxy Execution",
        "src_url": "https://attack.mitre.org/techniques/T1127/",
    }
    assert first["sub_technique"] == {
        "uid": "T1127.001",
        "name": "MSBuild",
        "src_url": "https://attack.mitre.org/techniques/T1127/001/",
    }
    assert [t["name"] for t in first["tactics"]] == ["Defense Evasion", "Execution"]
    assert first["tactic"]["name"] == "Defense Evasion"
    assert first["version"] == attack.ATTACK_VERSION
    # an id the table does not know keeps the id as its name: never a made-up one
    assert unknown["technique"]["uid"] == unknown["technique"]["name"] == "T9999"
    assert finding["attacks"] == finding["finding_info"]["attacks"]  # pre-1.3 place too
    assert attack.tactic_name("TA0099") == "TA0099"


def test_tactics_alone_still_map() -> None:
    finding = to_detection_finding(_alert(techniques=[], tactics=["TA0011"]), [])
    assert finding["finding_info"]["attacks"] == [
        {
            "tactic": {
                "uid": "TA0011",
                "name": "Command and Control",
                "src_url": "https://attack.mitre.org/tactics/TA0011/",
            },
            "version": attack.ATTACK_VERSION,
        }
    ]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"hit_count": 1}, 1),
        ({"hit_count": 7}, 1),  # folded hits in its first run: still new
        ({"hit_count": 7, "updated_at": T + timedelta(minutes=5)}, 2),  # a later run changed it
        ({"status": "acknowledged"}, 2),  # triaged
        ({"status": "open", "updated_at": T + timedelta(hours=1)}, 2),  # reopened
        ({"status": "closed"}, 3),
        ({"updated_at": None}, 1),
    ],
)
def test_activity(changes: dict[str, Any], expected: int) -> None:
    alert = _alert(**changes)
    assert activity_id(alert) == expected
    finding = to_detection_finding(alert, [])
    assert finding["activity_id"] == expected and finding["type_uid"] == 200400 + expected
    assert finding["activity_name"] == {1: "Create", 2: "Update", 3: "Close"}[expected]
