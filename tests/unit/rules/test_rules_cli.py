"""The rules CLI without a database: list, offline validation, examples through pandas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from provgraph.queries.rule import RULES_DIR
from typer.testing import CliRunner

from provgraph.cli.rules import rules_app

runner = CliRunner()


def test_list_shows_every_rule_with_attack_ids() -> None:
    result = runner.invoke(rules_app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    rules = {r["id"]: r for r in json.loads(result.output)}
    assert len(rules) == 10
    assert rules["msbuild_script_parent"]["techniques"][:2] == ["T1127", "T1127.001"]


def test_validate_offline_reports_file_and_line(tmp_path: Path) -> None:
    text = (RULES_DIR / "msbuild_network.yml").read_text()
    (tmp_path / "msbuild_network.yml").write_text(text.replace("risk_score: 47", "risk_score: x"))
    result = runner.invoke(rules_app, ["validate", "--offline", "--rules-dir", str(tmp_path)])
    assert result.exit_code == 3  # a rule file does not load
    line = text.splitlines().index("risk_score: 47") + 1
    assert f"msbuild_network.yml:{line}:1: 'risk_score' must be int, not str" in result.output


def test_examples_pass_through_the_reference() -> None:
    result = runner.invoke(rules_app, ["test"])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok  ") >= 10 and "FAIL" not in result.output


def test_a_site_rule_without_a_reference_is_reported_not_a_crash(tmp_path: Path) -> None:
    text = (RULES_DIR / "msbuild_network.yml").read_text()
    (tmp_path / "site_msbuild_network.yml").write_text(
        text.replace("id: msbuild_network", "id: site_msbuild_network")
    )
    (tmp_path / "msbuild_network.yml").write_text(text)
    result = runner.invoke(rules_app, ["test", "--rules-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    unchecked = [line for line in lines if line.startswith("--   site_msbuild_network: ")]
    assert unchecked and all("no reference" in line for line in unchecked)
    assert any(line.startswith("ok   msbuild_network: ") for line in lines)  # still checked
    assert f"{len(unchecked)} example(s) not checked" in lines


def test_list_shows_site_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = tmp_path / "provgraph.yaml"
    settings.write_text("rules:\n  msbuild_network:\n    excluded_ips: [10.0.0.1]\n")
    monkeypatch.setenv("PROVGRAPH_CONFIG", str(settings))
    result = runner.invoke(rules_app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    rules = {r["id"]: r for r in json.loads(result.output)}
    assert rules["msbuild_network"]["parameters"]["excluded_ips"] == ["10.0.0.1"]
    assert rules["msbuild_network"]["site_parameters"] == {"excluded_ips": ["10.0.0.1"]}
    assert rules["msbuild_script_parent"]["site_parameters"] == {}
    text = runner.invoke(rules_app, ["list"]).output
    assert "(site settings: excluded_ips)" in text


def test_run_names_unknown_rules() -> None:
    # refused before any connection is made
    result = runner.invoke(rules_app, ["run", "--rule", "nope"])
    assert result.exit_code != 0
    assert "no such rule: nope" in str(result.exception)
