"""`--json` on every read command, in the documented shapes (the API's, where the API has
the same answer), with times as ISO 8601 UTC."""

from __future__ import annotations

import json
import re
from typing import Any

from provgraph.graph.target import Neo4jTarget

from tests.integration.cli.conftest import CMD_UID, MSBUILD_UID, SOURCE_FILE, Cli

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _json(cli: Cli, *args: str, code: int = 0) -> Any:
    done = cli(*args, "--json")
    assert done.code == code, done
    return json.loads(done.out)


def test_trace_process(cli: Cli) -> None:
    doc = _json(cli, "trace", "process", MSBUILD_UID)
    assert set(doc) == {
        "process",
        "ancestry",
        "descendants",
        "truncated",
        "facts",
        "wrote",
        "accepted",
        "connected",
        "executed",
    }
    assert doc["process"]["uid"] == MSBUILD_UID and doc["process"]["pid"] == 5460
    assert [p["name"] for p in doc["ancestry"]] == ["svchost.exe", "wmiprvse.exe", "cmd.exe"]
    assert doc["ancestry"][-1]["uid"] == CMD_UID  # root first, the direct parent last
    child = doc["descendants"][0]
    assert set(child) == {"process", "facts", "children"} and child["process"]["name"] == "csc.exe"
    assert {w["path"] for w in doc["wrote"]} >= {SOURCE_FILE}
    assert ISO.match(doc["process"]["start_time"])


def test_trace_file(cli: Cli) -> None:
    doc = _json(cli, "trace", "file", SOURCE_FILE.lower())  # any case: a Windows path
    [found] = doc["files"]
    assert set(found) == {"file", "writers", "executions", "written_then_executed"}
    assert found["file"]["path"] == SOURCE_FILE and found["file"]["host"] == "workstation6"
    [writer] = found["writers"]
    assert writer["process"]["uid"] == MSBUILD_UID and writer["ops"] == ["create", "delete"]
    assert [p["name"] for p in writer["lineage"]][-1] == "msbuild.exe"
    assert ISO.match(writer["first_time"]) and found["executions"] == []


def test_trace_host_pages_with_a_cursor(cli: Cli) -> None:
    doc = _json(cli, "trace", "host", "WORKSTATION6", "--limit", "5")
    assert set(doc) == {"host", "events", "next_cursor"}
    assert doc["host"] == "workstation6" and len(doc["events"]) == 5 and doc["next_cursor"]
    first = doc["events"][0]
    assert set(first) == {"time", "kind", "process", "target", "details"}
    # the earliest facts on WORKSTATION6: svchost opening other processes (Sysmon 10)
    assert first["kind"] == "process_access" and ISO.match(first["time"])
    assert first["process"]["name"] == "svchost.exe" and first["details"]["granted_access"]
    times = [e["time"] for e in doc["events"]]
    assert times == sorted(times)


def test_trace_ip_and_an_empty_answer_still_printed(cli: Cli) -> None:
    doc = _json(cli, "trace", "ip", "172.18.39.5")
    assert set(doc) == {"query", "connections", "domains"} and doc["query"] == "172.18.39.5"
    conn = doc["connections"][0]
    assert set(conn) == {"connection", "contacts"} and conn["connection"]["ip"] == "172.18.39.5"
    # 172.18.39.5 is a client of WORKSTATION6's services: its contacts are inbound
    contact = conn["contacts"][0]
    assert set(contact) == {
        "process",
        "direction",
        "first_time",
        "last_time",
        "count",
        "local_port",
        "local_ports",
    }
    assert contact["direction"] == "inbound" and contact["local_ports"]
    empty = _json(cli, "trace", "ip", "203.0.113.7", code=5)
    assert empty == {"query": "203.0.113.7", "connections": [], "domains": []}
    nothing = _json(cli, "trace", "host", "nosuchhost", code=5)
    assert nothing == {"host": "nosuchhost", "events": [], "next_cursor": None}


def test_alerts_list_show_and_ocsf(cli: Cli) -> None:
    page = _json(cli, "alerts", "list")
    assert set(page) == {"alerts", "next_after_seq", "has_more"}
    assert page["has_more"] is False and page["next_after_seq"] == max(
        a["seq"] for a in page["alerts"]
    )
    build = next(a for a in page["alerts"] if a["rule_id"] == "build_process_compromise")
    assert {"id", "seq", "severity", "risk_score", "tactics", "techniques", "host"} <= set(build)
    assert ISO.match(build["first_seen"]) and build["risk_score"] == 47
    entity = next(e for e in build["entities"] if e["key"] == MSBUILD_UID)
    assert entity == {
        "role": "build",
        "type": "Process",
        "key": MSBUILD_UID,
        "name": entity["name"],
    }
    assert entity["name"] == "msbuild.exe (5460)"
    paged = _json(cli, "alerts", "list", "--after-seq", str(page["next_after_seq"]))
    assert paged["alerts"] == [] and paged["next_after_seq"] == page["next_after_seq"]

    detail = _json(cli, "alerts", "show", build["id"])
    assert {"entities", "evidence", "audit", "mitre", "rule"} <= set(detail)
    assert detail["mitre"] == {"tactics": ["TA0003"], "techniques": ["T1554"]}

    done = cli("alerts", "show", build["id"], "--ocsf")
    finding = json.loads(done.out)
    # one build, one hit: MSBuild's Sysmon 1 and Security 4688 records are one process
    assert finding["class_uid"] == 2004 and finding["count"] == 1
    # never triaged: a new finding
    assert (finding["activity_id"], finding["type_uid"]) == (1, 200401)
    [attack] = finding["finding_info"]["attacks"]
    assert attack["technique"]["name"] == "Compromise Host Software Binary"
    assert attack["tactic"] == {
        "uid": "TA0003",
        "name": "Persistence",
        "src_url": "https://attack.mitre.org/tactics/TA0003/",
    }


def test_alerts_set(cli: Cli) -> None:
    alert = _json(cli, "alerts", "list", "--rule", "msbuild_script_parent")["alerts"][0]
    changed = _json(cli, "alerts", "set", alert["id"], "--comment", "looking")
    assert changed["recorded"] is True and changed["alert"]["id"] == alert["id"]
    assert changed["alert"]["seq"] > alert["seq"]
    # touched now: the finding is an update
    assert json.loads(cli("alerts", "show", alert["id"], "--ocsf").out)["activity_id"] == 2


def test_rules_list_validate_test_run(cli: Cli) -> None:
    rules = _json(cli, "rules", "list")
    assert len(rules) == 10 and {"id", "name", "severity", "techniques", "schedule"} <= set(
        rules[0]
    )
    checked = _json(cli, "rules", "validate", "--offline")
    assert checked == {"valid": [r["id"] for r in rules], "problems": []}
    tested = _json(cli, "rules", "test", "--rule", "msbuild_network")
    assert tested["failed"] == 0 and tested["unchecked"] == 0
    example = tested["examples"][0]
    assert set(example) == {"rule", "example", "expect", "counts", "ok"} and example["ok"]
    done = cli(
        "rules", "run", "--rule", "msbuild_network", "--rule", "msbuild_script_parent", "--json"
    )
    assert done.code == 0, done
    runs = [json.loads(line) for line in done.out.splitlines()]  # one object per line
    assert [r["rule_id"] for r in runs] == ["msbuild_network", "msbuild_script_parent"]
    assert ISO.match(runs[0]["since"]) and runs[0]["error"] is None


def test_rules_validate_json_locates_problems(cli: Cli, tmp_path: Any) -> None:
    from provgraph.queries.rule import RULES_DIR

    text = (RULES_DIR / "msbuild_network.yml").read_text()
    (tmp_path / "msbuild_network.yml").write_text(text.replace("risk_score: 47", "risk_score: x"))
    done = cli("rules", "validate", "--offline", "--rules-dir", str(tmp_path), "--json")
    assert done.code == 3, done
    [problem] = json.loads(done.out)["problems"]
    assert problem["path"].endswith("msbuild_network.yml")
    assert problem["line"] == text.splitlines().index("risk_score: 47") + 1
    assert problem["reason"] == "'risk_score' must be int, not str"


def test_keys(cli: Cli) -> None:
    created = _json(cli, "keys", "create", "--name", "soar", "--scope", "read")
    assert created["secret"].startswith("pgk_") and created["scopes"] == ["read"]
    listed = _json(cli, "keys", "list")
    mine = next(k for k in listed if k["id"] == created["id"])
    assert set(mine) == {"id", "name", "scopes", "created_at", "revoked"}
    assert "secret" not in json.dumps(listed) and ISO.match(mine["created_at"])


def test_neo4j_status(cli: Cli, neo4j_target: Neo4jTarget) -> None:
    stopped = _json(cli, "neo4j", "status", "-i", "cli-test-never-started", code=2)
    assert stopped["running"] is False and stopped["answers"] is False
    assert set(stopped) == {
        "instance",
        "home",
        "pid",
        "running",
        "answers",
        "version",
        "bolt",
        "http",
        "user",
        "password_file",
    }
    if neo4j_target.managed_instance:  # the suite's own managed server
        up = _json(cli, "neo4j", "status", "-i", neo4j_target.managed_instance)
        assert up["answers"] is True and up["bolt"] == neo4j_target.uri
        assert "5.26" in up["version"]
