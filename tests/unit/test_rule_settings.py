"""Site settings tune rules without editing their YAML, and typos fail loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
from provgraph.core.config import rule_settings
from provgraph.core.errors import ProvgraphError
from provgraph.queries.catalog import tune
from provgraph.queries.rule import load_rules


def _write(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "provgraph.yaml"
    path.write_text(text)
    monkeypatch.setenv("PROVGRAPH_CONFIG", str(path))


def test_settings_override_shipped_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(
        tmp_path,
        "rules:\n  dependency_compromise_network:\n"
        "    registry_allow_list: [registry.corp.example]\n",
        monkeypatch,
    )
    rules = tune(load_rules().rules, rule_settings())
    tuned = {r.id: r for r in rules}["dependency_compromise_network"]
    assert tuned.parameters["registry_allow_list"] == ["registry.corp.example"]
    assert tuned.parameters["package_managers"]  # the rest stays as shipped
    assert len(rules) == len(load_rules().rules)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  no_such_rule: {x: 1}\n", "no rule 'no_such_rule'"),
        ("rules:\n  msbuild_network: {exluded_ips: []}\n", "has no parameter 'exluded_ips'"),
        ("rules:\n  msbuild_network: {excluded_ips: 10.0.0.1}\n", "must be a list, got str"),
    ],
)
def test_bad_settings_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    _write(tmp_path, text, monkeypatch)
    with pytest.raises(ProvgraphError, match=message):
        tune(load_rules().rules, rule_settings())
