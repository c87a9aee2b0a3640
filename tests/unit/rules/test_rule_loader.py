"""Rule files: the shipped ones load cleanly; broken ones are rejected with file and line."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from provgraph.queries.rule import (
    RULES_DIR,
    RuleError,
    load_rule,
    load_rules,
    parse_duration,
    parse_rule,
)

RULE_IDS = {
    "build_process_compromise",
    "msbuild_script_parent",
    "msbuild_network",
    "script_msbuild_network_chain",
    "dependency_compromise_shell_child",
    "dependency_compromise_network",
    "dependency_compromise_cicd_write",
    "docker_build_suspicious",
    "dockerfile_temp_write",
    "dockerd_nonregistry_network",
}

GOOD = (RULES_DIR / "msbuild_network.yml").read_text()


def test_shipped_rules_load_without_errors() -> None:
    ruleset = load_rules()
    assert [str(e) for e in ruleset.errors] == []
    assert {r.id for r in ruleset.rules} == RULE_IDS


def test_every_rule_names_its_host_times_and_attack_ids() -> None:
    for rule in load_rules().rules:
        assert {"host", "first_seen", "last_seen"} <= set(rule.columns), rule.id
        assert rule.techniques and rule.tactics, rule.id
        assert any(e.type == "host" for e in rule.entities), rule.id
        assert rule.false_positives and rule.investigation, rule.id
        assert rule.schedule.interval > timedelta(0), rule.id


# structural literals a query may hold; anything else must be a $parameter
_STRUCTURAL = {
    "''",
    "'.'",
    "'\\\\'",
    "'/'",
    "'*.'",
    "'(?s)(.*[^a-z0-9])?'",
    "'([^a-z0-9].*)?'",
    "'(?s).*'",
    "'.*'",
    "' '",  # a space: command lines split into words
    "'\"'",  # a double quote: a quoted program path, quotes dropped from arguments
}


def test_queries_hold_no_values_only_parameters() -> None:
    for rule in load_rules().rules:
        text = re.sub(r"//[^\n]*", "", rule.query)
        literals = set(re.findall(r"'(?:[^'\\]|\\.)*'", text))
        assert literals <= _STRUCTURAL, (rule.id, literals - _STRUCTURAL)
        assert '"' not in text.replace("'\"'", ""), rule.id  # no double-quoted strings


def test_registry_allow_lists_ship_empty() -> None:
    for rule in load_rules().rules:
        if "registry_allow_list" in rule.parameters:
            assert rule.parameters["registry_allow_list"] == [], rule.id


def test_a_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "msbuild_network.yml"
    path.write_text(GOOD.replace("severity: medium", "severity: [medium", 1))
    with pytest.raises(RuleError, match=r"msbuild_network\.yml:\d+:\d+: not valid YAML"):
        load_rule(path)


def test_an_unknown_parameter_is_reported_at_its_query_line(tmp_path: Path) -> None:
    text = GOOD.replace("NOT c.ip IN $excluded_ips", "NOT c.ip IN $excluded_addresses", 1)
    rule, errors = parse_rule(text, tmp_path / "msbuild_network.yml")
    assert rule is None
    expected_line = (
        text.splitlines().index(
            next(line for line in text.splitlines() if "$excluded_addresses" in line)
        )
        + 1
    )
    messages = [str(e) for e in errors]
    assert any(
        f"msbuild_network.yml:{expected_line}: query uses $excluded_addresses" in m
        for m in messages
    ), messages
    assert any("parameter 'excluded_ips' is not used" in m for m in messages), messages


def test_a_write_clause_is_rejected_with_its_line(tmp_path: Path) -> None:
    text = GOOD.replace("  UNWIND times AS t\n", "  SET m.seen = true\n  UNWIND times AS t\n", 1)
    _, errors = parse_rule(text, tmp_path / "msbuild_network.yml")
    line = text.splitlines().index("  SET m.seen = true") + 1
    assert [e.line for e in errors if "read-only" in e.reason] == [line]


def test_missing_keys_and_bad_values_are_all_collected(tmp_path: Path) -> None:
    text = (
        GOOD.replace("severity: medium", "severity: urgent")
        .replace("risk_score: 47", "risk_score: 470")
        .replace("schedule: {interval: 5m, lookback: 9m}\n", "")
    )
    _, errors = parse_rule(text, tmp_path / "msbuild_network.yml")
    reasons = " | ".join(e.reason for e in errors)
    assert "severity 'urgent'" in reasons and "risk_score 470" in reasons
    assert "missing required key 'schedule'" in reasons
    severity_line = text.splitlines().index("severity: urgent") + 1
    assert any(e.line == severity_line for e in errors)


def test_entity_and_suppression_columns_must_be_returned(tmp_path: Path) -> None:
    text = GOOD.replace("column: msbuild_uid}", "column: msbuild_id}").replace(
        "fields: [host]", "fields: [hostname]"
    )
    _, errors = parse_rule(text, tmp_path / "msbuild_network.yml")
    reasons = [e.reason for e in errors]
    assert "entity column 'msbuild_id' is not returned by the query" in reasons
    assert "suppression field 'hostname' is not returned by the query" in reasons


def test_one_broken_file_does_not_hide_the_others(tmp_path: Path) -> None:
    (tmp_path / "msbuild_network.yml").write_text(GOOD)
    (tmp_path / "broken.yml").write_text("id: broken\nname: [unclosed\n")
    (tmp_path / "dup.yml").write_text(GOOD.replace("id: msbuild_network", "id: dup"))
    (tmp_path / "dupkey.yml").write_text(
        GOOD.replace("id: msbuild_network", "id: dupkey\nid: dupkey")
    )
    ruleset = load_rules(tmp_path)
    assert sorted(r.id for r in ruleset.rules) == ["dup", "msbuild_network"]
    where = sorted(Path(e.path).name for e in ruleset.errors)
    assert where == ["broken.yml", "dupkey.yml"]
    assert any("duplicate key 'id'" in str(e) and ":2:" in str(e) for e in ruleset.errors)


def test_id_must_match_file_name(tmp_path: Path) -> None:
    _, errors = parse_rule(GOOD, tmp_path / "other.yml")
    assert any("does not match the file name" in e.reason for e in errors)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("5d", 432000), (90, 90)]
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_bad_duration() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 minutes")


def test_a_rule_may_set_its_own_time_limit(tmp_path: Path) -> None:
    rule, errors = parse_rule(GOOD + "time_limit: 90s\n", tmp_path / "msbuild_network.yml")
    assert errors == [] and rule is not None and rule.time_limit == timedelta(seconds=90)
    assert load_rule(RULES_DIR / "msbuild_network.yml").time_limit is None  # the catalog's


@pytest.mark.parametrize(
    ("value", "reason"),
    [("soon", "'time_limit': not a duration"), ("0s", "'time_limit' must be longer than 0s")],
)
def test_a_bad_time_limit_is_located(tmp_path: Path, value: str, reason: str) -> None:
    text = GOOD + f"time_limit: {value}\n"
    _, errors = parse_rule(text, tmp_path / "msbuild_network.yml")
    (error,) = errors
    assert error.reason.startswith(reason)
    assert error.line == len(text.splitlines())
