"""The rules CLI without a database: list, offline validation, examples through pandas."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert result.exit_code == 1
    line = text.splitlines().index("risk_score: 47") + 1
    assert f"msbuild_network.yml:{line}:1: 'risk_score' must be int, not str" in result.output


def test_examples_pass_through_the_reference() -> None:
    result = runner.invoke(rules_app, ["test"])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok  ") >= 10 and "FAIL" not in result.output
