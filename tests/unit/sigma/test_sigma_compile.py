"""Sigma files to provgraph rules: metadata carried over, the report, the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from provgraph.queries.sigma import compile_path

DATA = Path(__file__).resolve().parents[2] / "data" / "sigma"
RULES = DATA / "rules"


def test_every_shipped_sample_rule_compiles_with_its_metadata() -> None:
    report = compile_path([RULES])
    assert [r.path for r in report.failed] == []
    assert len(report.compiled) == 8
    by_file = {Path(r.path).name: r for r in report.results}
    result = by_file["proc_creation_win_discovery_via_reg_queries.yml"]
    source = yaml.safe_load((RULES / "proc_creation_win_discovery_via_reg_queries.yml").read_text())
    rule = result.rule
    assert rule is not None
    assert rule.id == "sigma_" + source["id"].replace("-", "_")
    assert rule.name == source["title"]
    assert rule.severity == source["level"]
    assert rule.references == tuple(source["references"])
    assert rule.false_positives == tuple(source["falsepositives"])
    techniques = [t.split(".", 1)[1].upper() for t in source["tags"] if t.startswith("attack.t")]
    assert list(rule.techniques) == techniques
    assert rule.tactics == ("TA0007",)  # attack.discovery
    assert source["author"] in rule.description
    assert "Detection Rule License (DRL) 1.1" in rule.description
    assert rule.columns[:3] == ("host", "first_seen", "last_seen")
    assert {e.type for e in rule.entities} >= {"process"}
    # the condition's values, and the product the host's platform is held to
    values = set(rule.parameters) - {"sigma_product"}
    assert values == {f"p{i}" for i in range(len(values))}
    assert rule.parameters.get("sigma_product") in (None, "windows", "linux", "macos")


def _write(folder: Path, name: str, doc: dict | str) -> Path:
    path = folder / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def _rule(category: str, detection: dict, rid: str) -> dict:
    return {
        "title": f"rule {rid}",
        "id": rid,
        "logsource": {"category": category, "product": "windows"},
        "detection": detection,
        "level": "high",
    }


def test_report_says_why_each_rule_did_not_compile(tmp_path: Path) -> None:
    ok = "00000000-0000-4000-8000-000000000001"
    _write(
        tmp_path, "ok.yml", _rule("process_creation", {"s": {"Image": "x"}, "condition": "s"}, ok)
    )
    _write(
        tmp_path,
        "pe.yml",
        _rule(
            "process_creation",
            {"s": {"LogonGuid": "x", "TerminalSessionId": "y"}, "condition": "s"},
            "00000000-0000-4000-8000-000000000002",
        ),
    )
    _write(
        tmp_path,
        "reg.yml",
        _rule(
            "ps_module",
            {"s": {"Payload": "x"}, "condition": "s"},
            "00000000-0000-4000-8000-000000000003",
        ),
    )
    base = _rule("process_creation", {"s": {"Image": "y"}, "condition": "s"}, ok.replace("1", "5"))
    correlation = {
        "title": "many",
        "id": "00000000-0000-4000-8000-000000000004",
        "correlation": {
            "type": "event_count",
            "rules": [base["id"]],
            "group-by": ["Image"],
            "timespan": "5m",
            "condition": {"gte": 3},
        },
    }
    _write(tmp_path, "corr.yml", yaml.safe_dump_all([base, correlation]))
    unknown = {**correlation, "id": "00000000-0000-4000-8000-000000000006", "title": "dangling"}
    unknown["correlation"] = {**correlation["correlation"], "rules": ["no_such_rule"]}
    _write(tmp_path, "dangling.yml", yaml.safe_dump(unknown))
    _write(tmp_path, "broken.yml", "title: [unclosed\n")
    report = compile_path([tmp_path])
    outcome = {Path(r.path).name: (r.status, r.kind, r.details) for r in report.results}
    assert outcome["ok.yml"] == ("compiled", None, ())
    assert outcome["pe.yml"] == ("failed", "field", ("LogonGuid", "TerminalSessionId"))
    assert outcome["reg.yml"] == ("failed", "logsource", ("category ps_module",))
    assert outcome["broken.yml"][:2] == ("failed", "parse")
    (dangling,) = [r for r in report.results if r.title == "dangling"]
    assert (dangling.status, dangling.kind) == ("failed", "correlation")
    assert "no_such_rule" in str(dangling.reason)
    assert report.reasons()["field: LogonGuid"] == 1
    # the correlation compiles; its base rule runs only inside it (Sigma's generate: false)
    corr = [(r.status, r.part_of) for r in report.results if r.path.endswith("corr.yml")]
    assert corr == [("part", ("many",)), ("compiled", ())]
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["total"] == 7 and as_json["compiled"] == 2 and as_json["failed"] == 4
    assert as_json["part_of_correlations"] == 1
    assert "2 of 6 rules compiled (33.3%), 4 failed, 1 only inside correlations" in report.format()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provgraph.queries.sigma", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_command_line_prints_the_report_and_exit_status_tells(tmp_path: Path) -> None:
    done = _cli(str(RULES))
    assert done.returncode == 0, done.stderr
    assert "8 of 8 rules compiled (100.0%), 0 failed" in done.stdout
    _write(
        tmp_path,
        "pe.yml",
        _rule(
            "process_creation",
            {"s": {"TerminalSessionId": "x"}, "condition": "s"},
            "00000000-0000-4000-8000-000000000009",
        ),
    )
    done = _cli(str(tmp_path), "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["failed"] == 1
    assert report["rules"][0]["details"] == ["TerminalSessionId"]
    assert _cli(str(tmp_path / "missing")).returncode == 2
