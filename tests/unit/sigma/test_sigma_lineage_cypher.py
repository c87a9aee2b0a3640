"""provgraph's lineage extension: Ancestor*/Descendant* fields become EXISTS over a
variable-length SPAWNED path, and what standard Sigma tooling does with the same rule."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import yaml
from provgraph.queries.sigma import CypherBackend, Unsupported
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule

ANCESTOR = "EXISTS { MATCH (anc:Process)-[:SPAWNED*1..]->(p) WHERE "
DESCENDANT = "EXISTS { MATCH (p)-[:SPAWNED*1..]->(desc:Process) WHERE "


def rule(detection: dict[str, Any], category: str = "process_creation") -> SigmaRule:
    doc = {
        "title": "lineage",
        "id": "9d1c0e2a-0000-4000-8000-000000000001",
        "logsource": {"category": category, "product": "windows"},
        "detection": detection,
    }
    (parsed,) = SigmaCollection.from_yaml(yaml.safe_dump(doc, sort_keys=False)).rules
    assert isinstance(parsed, SigmaRule)
    return parsed


def compiled(detection: dict[str, Any], category: str = "process_creation") -> tuple[str, Any]:
    result = CypherBackend().compile(rule(detection, category))
    return result.condition, result


def test_an_ancestor_condition_walks_spawned_at_any_depth() -> None:
    text, result = compiled(
        {"sel": {"AncestorImage|endswith": ["\\wscript.exe", "\\mshta.exe"]}, "condition": "sel"}
    )
    assert text == ANCESTOR + "any(v IN $p0 WHERE toLower(anc.image) ENDS WITH v) }"
    assert result.params == {"p0": ["\\wscript.exe", "\\mshta.exe"]}
    assert result.lineage == ("anc",)
    assert result.fields == ("AncestorImage",)


def test_anded_ancestor_conditions_hold_for_one_and_the_same_ancestor() -> None:
    # in one selection, and across selections joined by `and`
    for detection in (
        {
            "sel": {
                "AncestorImage|endswith": "\\python.exe",
                "AncestorCommandLine|contains": "pip",
            },
            "condition": "sel",
        },
        {
            "a": {"AncestorImage|endswith": "\\python.exe"},
            "b": {"AncestorCommandLine|contains": "pip"},
            "condition": "a and b",
        },
    ):
        text, _ = compiled(detection)
        assert text.count("EXISTS") == 1, text
        assert "toLower(anc.image) ENDS WITH $p0" in text
        assert "toLower(anc.command_line) CONTAINS $p1" in text


def test_pattern_conditions_stay_outside_the_walk() -> None:
    text, result = compiled(
        {
            "sel": {"Image|endswith": "\\msbuild.exe", "AncestorImage|endswith": "\\wscript.exe"},
            "condition": "sel",
        }
    )
    assert text == "toLower(p.image) ENDS WITH $p0 AND " + ANCESTOR + (
        "toLower(anc.image) ENDS WITH $p1 }"
    )
    assert result.params == {"p0": "\\msbuild.exe", "p1": "\\wscript.exe"}


def test_not_means_no_ancestor_matches_and_or_means_any() -> None:
    text, _ = compiled(
        {
            "sel": {"Image|endswith": "\\cmd.exe"},
            "ide": {"AncestorImage|endswith": "\\devenv.exe"},
            "condition": "sel and not ide",
        }
    )
    assert text == (
        "toLower(p.image) ENDS WITH $p0 AND NOT coalesce("
        + ANCESTOR
        + "toLower(anc.image) ENDS WITH $p1 }, false)"
    )
    text, _ = compiled(
        {
            "a": {"AncestorImage|endswith": "\\node.exe"},
            "b": {"ParentImage|endswith": "\\node.exe"},
            "condition": "a or b",
        }
    )
    assert (
        text
        == ANCESTOR + "toLower(anc.image) ENDS WITH $p0 } OR toLower(parent.image) ENDS WITH $p1"
    )


def test_descendants_and_ancestors_are_separate_walks() -> None:
    text, result = compiled(
        {
            "sel": {
                "AncestorImage|endswith": "\\npm.cmd",
                "DescendantCommandLine|contains": "Invoke-Expression",
                "DescendantImage|endswith": "\\powershell.exe",
            },
            "condition": "sel",
        }
    )
    assert text.count(ANCESTOR) == 1 and text.count(DESCENDANT) == 1
    assert "toLower(desc.command_line) CONTAINS $p1 AND toLower(desc.image) ENDS WITH $p2" in text
    assert result.lineage == ("anc", "desc")


def test_lineage_applies_on_every_logsource_and_numbers_compare_as_numbers() -> None:
    text, _ = compiled(
        {"sel": {"AncestorProcessId": 4, "TargetFilename|endswith": ".ps1"}, "condition": "sel"},
        "file_event",
    )
    assert "anc.pid = $p0" in text and "toLower(f.path) ENDS WITH $p1" in text


def test_values_never_enter_the_query_text() -> None:
    result = CypherBackend().compile(
        rule({"sel": {"AncestorCommandLine|contains": "' OR 1=1 //"}, "condition": "sel"})
    )
    assert "OR 1=1" not in result.query
    assert result.params == {"p0": "' or 1=1 //"}


def test_unknown_lineage_fields_are_reported() -> None:
    with pytest.raises(Unsupported, match="AncestorHashes"):
        CypherBackend().compile(rule({"sel": {"AncestorHashes": "x"}, "condition": "sel"}))


def test_standard_sigma_tooling_treats_a_lineage_field_as_an_ordinary_unknown_field() -> None:
    """pySigma parses the rule (field names are free text to it) and its SQLite backend emits
    a plain column test, which SQLite rejects on an event table without that column (the
    Zircolite layout: one column per EventData field): the rule cannot run there at all. On a
    table that had such a column it would test that event's own field, never an ancestor."""
    detection = {
        "sel": {"Image|endswith": "\\cmd.exe", "AncestorImage|endswith": "\\node.exe"},
        "condition": "sel",
    }
    (sql,) = sqliteBackend().convert_rule(rule(detection))
    assert "AncestorImage LIKE '%\\\\node.exe' ESCAPE '\\'" in sql, sql
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE logs (Image TEXT COLLATE NOCASE, ParentImage TEXT)")
    con.execute("INSERT INTO logs VALUES ('C:\\Windows\\System32\\cmd.exe', 'C:\\node.exe')")
    with pytest.raises(sqlite3.OperationalError, match="no such column: AncestorImage"):
        con.execute(sql)
