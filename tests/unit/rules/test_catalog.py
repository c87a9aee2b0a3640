"""The rule catalog without a database: sources, site settings, time limits, caching."""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable
from datetime import timedelta
from pathlib import Path

import pytest
from provgraph.queries.catalog import (
    DEFAULT_TIME_LIMIT,
    Catalog,
    FolderSource,
    RuleSettingsError,
    SiteSettings,
    UnknownRules,
    default_catalog,
)
from provgraph.queries.rule import RULES_DIR, RuleSet, load_rules

GOOD = (RULES_DIR / "msbuild_network.yml").read_text()
SHIPPED = {r.id for r in load_rules().rules}


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "provgraph.yaml"
    path.write_text(text)
    monkeypatch.setenv("PROVGRAPH_CONFIG", str(path))
    return path


def _site_rule(folder: Path, rule_id: str, extra: str = "") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{rule_id}.yml"
    path.write_text(GOOD.replace("id: msbuild_network", f"id: {rule_id}") + extra)
    return path


def _touch(path: Path, text: str) -> None:
    """Rewrite a file and move its modification time on, as a later edit would."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_no_settings_file_gives_the_shipped_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGRAPH_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no provgraph.yaml here
    view = Catalog().snapshot()
    assert {r.id for r in view.rules} == SHIPPED and view.errors == ()
    assert all(e.source == "shipped" and e.site == {} for e in view.entries)
    assert all(r.time_limit == DEFAULT_TIME_LIMIT for r in view.rules)


def test_site_values_apply_and_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _settings(tmp_path, monkeypatch, "rules:\n  msbuild_network:\n    excluded_ips: [10.0.0.1]\n")
    view = Catalog().snapshot()
    entry = view.get("msbuild_network")
    assert entry.rule.parameters["excluded_ips"] == ["10.0.0.1"]
    assert entry.rule.parameters["msbuild_names"] == ["msbuild.exe"]  # shipped
    assert entry.site == {"excluded_ips": ["10.0.0.1"]}
    assert view.get("msbuild_script_parent").site == {}


def test_settings_naming_no_rule_fail_loudly_with_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _settings(tmp_path, monkeypatch, "rules:\n  msbuild_netwrok: {excluded_ips: []}\n")
    with pytest.raises(RuleSettingsError, match=f"{path}: no rule 'msbuild_netwrok'"):
        Catalog().snapshot()


def test_a_folder_catalog_passes_over_settings_for_other_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "rules"
    _site_rule(folder, "site_msbuild_network")
    _settings(
        tmp_path,
        monkeypatch,
        "rules:\n  msbuild_network: {excluded_ips: [10.0.0.1]}\n"
        "  site_msbuild_network: {excluded_ips: [10.0.0.2]}\n",
    )
    (rule,) = Catalog.of_folders(folder).rules()
    assert rule.parameters["excluded_ips"] == ["10.0.0.2"]
    # a typo in a parameter of a rule that is in the folder still fails
    _settings(tmp_path, monkeypatch, "rules:\n  site_msbuild_network: {exluded_ips: []}\n")
    with pytest.raises(RuleSettingsError, match="has no parameter 'exluded_ips'"):
        Catalog.of_folders(folder).rules()


def test_rule_dirs_join_the_shipped_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _site_rule(tmp_path / "site-rules", "site_msbuild_network")
    _site_rule(tmp_path / "site-rules", "msbuild_network")  # same id as a shipped rule
    _settings(
        tmp_path,
        monkeypatch,
        "rule_dirs: [site-rules, missing-rules]\n"  # relative to the settings file
        "rules:\n  site_msbuild_network: {excluded_ips: [10.0.0.2]}\n",
    )
    view = Catalog().snapshot()
    assert {r.id for r in view.rules} == SHIPPED | {"site_msbuild_network"}
    entry = view.get("site_msbuild_network")
    assert entry.source == f"site {tmp_path / 'site-rules'}"
    assert entry.rule.parameters["excluded_ips"] == ["10.0.0.2"]
    assert view.get("msbuild_network").source == "shipped"  # the first source keeps its id
    reasons = sorted(e.reason for e in view.errors)
    assert reasons[0].startswith("id 'msbuild_network' is already used by ")
    assert reasons[1] == "rule folder does not exist"
    assert Path(view.errors[1].path).name == "missing-rules"


def test_settings_for_a_rule_whose_file_is_broken_are_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "site-rules"
    path = _site_rule(folder, "site_msbuild_network")
    path.write_text(path.read_text().replace("risk_score: 47", "risk_score: x"))
    _settings(
        tmp_path,
        monkeypatch,
        "rule_dirs: [site-rules]\nrules:\n  site_msbuild_network: {excluded_ips: []}\n",
    )
    view = Catalog().snapshot()  # the loader reports the file; the others still run
    assert [Path(e.path).name for e in view.errors] == ["site_msbuild_network.yml"]
    assert {r.id for r in view.rules} == SHIPPED


def test_time_limits_rule_over_site_over_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _site_rule(tmp_path / "site-rules", "site_limited", "time_limit: 5m\n")
    _settings(tmp_path, monkeypatch, "rule_dirs: [site-rules]\nrule_time_limit: 30s\n")
    view = Catalog().snapshot()
    assert view.get("site_limited").rule.time_limit == timedelta(minutes=5)
    assert view.get("msbuild_network").rule.time_limit == timedelta(seconds=30)
    assert view.settings.time_limit == timedelta(seconds=30)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "'rule_time_limit': not a duration"),
        ("0s", "'rule_time_limit' must be longer than 0s"),
    ],
)
def test_a_bad_site_time_limit_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    path = _settings(tmp_path, monkeypatch, f"rule_time_limit: {value}\n")
    with pytest.raises(RuleSettingsError, match=f"{path}: {message}"):
        SiteSettings.read()


def test_bad_rule_dirs_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _settings(tmp_path, monkeypatch, "rule_dirs: {a: 1}\n")
    with pytest.raises(RuleSettingsError, match=f"{path}: 'rule_dirs' must be a list"):
        Catalog().snapshot()


def test_select_names_the_missing_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROVGRAPH_CONFIG", raising=False)
    view = Catalog().snapshot()
    assert [r.id for r in view.select(["msbuild_network"])] == ["msbuild_network"]
    with pytest.raises(UnknownRules, match="no such rule: nope, other") as raised:
        view.select(["msbuild_network", "other", "nope"])
    assert raised.value.missing == ("nope", "other")


def test_cached_until_the_settings_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _settings(tmp_path, monkeypatch, "rules:\n  msbuild_network: {excluded_ips: [a]}\n")
    catalog = Catalog()
    first = catalog.snapshot()
    assert catalog.snapshot() is first  # nothing changed: no re-read
    _touch(path, "rules:\n  msbuild_network: {excluded_ips: [b]}\n")  # same size
    second = catalog.snapshot()
    assert second is not first
    assert second.get("msbuild_network").rule.parameters["excluded_ips"] == ["b"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _settings(elsewhere, monkeypatch, "{}\n")  # PROVGRAPH_CONFIG names another file
    assert catalog.snapshot().get("msbuild_network").site == {}


def test_cached_until_a_rule_file_changes(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    path = _site_rule(folder, "site_msbuild_network")
    catalog = Catalog.of_folders(folder)
    first = catalog.snapshot()
    assert catalog.snapshot() is first
    _touch(path, path.read_text().replace("risk_score: 47", "risk_score: 48"))
    assert catalog.snapshot().get("site_msbuild_network").rule.risk_score == 48
    _site_rule(folder, "another_rule")  # a new file
    assert {r.id for r in catalog.rules()} == {"site_msbuild_network", "another_rule"}
    path.unlink()
    assert [r.id for r in catalog.rules()] == ["another_rule"]


class _CountingSource:
    """A source that counts its loads, to see the cache and the lock at work."""

    name = "counting"

    def __init__(self) -> None:
        self.loads = 0
        self.inner = FolderSource(RULES_DIR, "shipped")

    def stamp(self) -> Hashable:
        return self.inner.stamp()

    def load(self) -> RuleSet:
        self.loads += 1
        return self.inner.load()


def test_concurrent_readers_share_one_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROVGRAPH_CONFIG", raising=False)
    source = _CountingSource()
    catalog = Catalog(lambda _settings: [source])
    start = threading.Barrier(8)
    seen: list[object] = []

    def read() -> None:
        start.wait()
        seen.append(catalog.snapshot())

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert source.loads == 1
    assert len({id(view) for view in seen}) == 1


def test_the_default_catalog_is_one_per_process() -> None:
    assert default_catalog() is default_catalog()
