"""Alerts for SOAR: filters, the incremental cursor, detail with evidence, triage, OCSF."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient
from provgraph.graph.tx import Graph, GraphUnavailable
from provgraph.queries.alerts import PUBLISH_SEQ

from tests.integration.api import scenario

BASE = "/api/v1/alerts"


def test_list_filters_and_detail_with_evidence(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    reader = key("read")
    first = scenario.create_alert(loaded, severity="high")
    scenario.create_alert(
        loaded,
        severity="low",
        rule_id="other_rule",
        host="ws2",
        entities=[{"label": "Process", "key": "g:notepad", "role": "p"}],
    )

    page = client.get(BASE, headers=reader).json()
    assert [a["seq"] for a in page["items"]] == [1, 2]
    assert (
        client.get(BASE, params={"severity": "high"}, headers=reader).json()["items"][0]["id"]
        == first["id"]
    )
    assert [
        a["host"] for a in client.get(BASE, params={"host": "ws2"}, headers=reader).json()["items"]
    ] == ["ws2"]
    assert client.get(BASE, params={"rule": "nope"}, headers=reader).json()["items"] == []
    window = {"since": "2024-05-01T11:00:00Z"}
    assert client.get(BASE, params=window, headers=reader).json()["items"] == []

    detail = client.get(f"{BASE}/{first['id']}", headers=reader).json()
    assert detail["mitre"] == {
        "tactics": ["TA0002", "TA0011"],
        "techniques": ["T1059.001", "T1105"],
    }
    roles = {e["role"]: e["id"] for e in detail["entities"]}
    assert roles["payload"] == "File:" + scenario.PAYLOAD_KEY
    assert roles["downloader"] == "Process:g:pwsh"
    evidence = {(e["relationship"], e["source"], e["target"]): e for e in detail["evidence"]}
    wrote = evidence[("WROTE", "Process:g:pwsh", "File:" + scenario.PAYLOAD_KEY)]
    assert wrote["sources"] == ["sysmon:tests/scenario.ndjson:5"]
    assert wrote["raw"]["TargetFilename"] == scenario.PAYLOAD
    spawned = evidence[("SPAWNED", "Process:g:pwsh", "Process:g:payload")]
    assert spawned["raw"]["EventID"] == 1 and spawned["sources"]
    assert ("CONNECTED_TO", "Process:g:payload", "Connection:203.0.113.7|443|tcp") in evidence


def test_triage_records_an_audit_trail_and_bumps_seq(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    alert = scenario.create_alert(loaded)
    triager = key("triage")
    response = client.patch(
        f"{BASE}/{alert['id']}",
        headers=triager,
        json={"status": "acknowledged", "assignee": "carol", "comment": "looking"},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["status"] == "acknowledged" and updated["assignee"] == "carol"
    assert updated["seq"] > alert["seq"]

    client.patch(f"{BASE}/{alert['id']}", headers=triager, json={"status": "closed"})
    # Nothing changes and no comment: nothing recorded, seq kept.
    same = client.patch(f"{BASE}/{alert['id']}", headers=triager, json={"status": "closed"})
    assert same.status_code == 200

    audit = client.get(f"{BASE}/{alert['id']}/audit", headers=key("read")).json()
    assert [e["changes"] for e in audit] == [
        {
            "status": {"from": "open", "to": "acknowledged"},
            "assignee": {"from": None, "to": "carol"},
        },
        {"status": {"from": "acknowledged", "to": "closed"}},
    ]
    assert audit[0]["comment"] == "looking"
    assert audit[0]["actor"] and audit[0]["actor_name"] == "test-triage"
    assert audit[0]["at"] <= audit[1]["at"]
    assert same.json()["seq"] == audit[1]["seq"]

    missing = client.patch(f"{BASE}/nope", headers=triager, json={"status": "closed"})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    empty = client.patch(f"{BASE}/{alert['id']}", headers=triager, json={})
    assert empty.status_code == 422 and empty.json()["status"] == 422


def test_pages_stop_at_the_published_change_number(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    """A committed alert is paged only once its writer has published: a reader can observe a
    commit still being applied, so the raw counter may run ahead of what the index shows."""
    reader = key("read")
    first = scenario.create_alert(loaded)
    page = client.get(BASE, headers=reader).json()
    assert [a["id"] for a in page["items"]] == [first["id"]] and page["high_seq"] == 1
    held = scenario.create_alert(loaded, publish=False)
    later = client.get(BASE, params={"cursor": page["next_cursor"]}, headers=reader).json()
    assert later["items"] == [] and later["high_seq"] == 1
    assert later["next_cursor"] == page["next_cursor"]  # the cursor did not move past it
    scenario.publish_seq(loaded)
    after = client.get(BASE, params={"cursor": later["next_cursor"]}, headers=reader).json()
    assert [(a["id"], a["seq"]) for a in after["items"]] == [(held["id"], 2)]


def test_update_succeeds_when_only_the_publish_fails(
    client: TestClient,
    loaded: Graph,
    key: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The triage change is committed before the publish: a publish that fails must not turn
    into an error the caller would retry (a second audit entry); the next publish shows it."""
    alert = scenario.create_alert(loaded)
    reader, triager = key("read"), key("triage")
    before = client.get(BASE, headers=reader).json()["high_seq"]
    real_write = loaded.write

    def failing_publish(query: str, params: Mapping[str, Any] | None = None) -> object:
        if query == PUBLISH_SEQ:
            raise GraphUnavailable("Neo4j went away after the commit")
        return real_write(query, params)

    monkeypatch.setattr(loaded, "write", failing_publish)
    response = client.patch(f"{BASE}/{alert['id']}", headers=triager, json={"comment": "once"})
    assert response.status_code == 200
    assert client.get(BASE, headers=reader).json()["high_seq"] == before  # not yet visible
    monkeypatch.undo()
    assert scenario.publish_seq(loaded) is True
    page = client.get(BASE, headers=reader).json()
    assert page["high_seq"] == response.json()["seq"]
    audit = client.get(f"{BASE}/{alert['id']}/audit", headers=reader).json()
    assert [e["comment"] for e in audit] == ["once"]


def test_cursor_never_skips_or_repeats_under_concurrent_writes(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    reader = key("read")
    total = 120
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(total):
                scenario.create_alert(loaded, alert_id=f"a{i:04d}", entities=[])
        except BaseException as error:  # noqa: BLE001
            errors.append(error)
        finally:
            done.set()

    def updater() -> None:
        # Triage while paging: moved alerts must reappear once, at their new seq.
        triager = key("triage")
        for i in range(0, total, 10):
            while client.get(f"{BASE}/a{i:04d}", headers=reader).status_code == 404:
                if done.is_set():
                    return
                time.sleep(0.005)
            client.patch(f"{BASE}/a{i:04d}", headers=triager, json={"comment": f"n{i}"})

    # Two writers race for the counter while the updater triages.
    creator = threading.Thread(target=writer)
    triage = threading.Thread(target=updater)
    extra = threading.Thread(
        target=lambda: [scenario.create_alert(loaded, entities=[]) for _ in range(40)]
    )
    threads = (creator, triage, extra)
    for thread in threads:
        thread.start()
    seen: list[tuple[str, int]] = []
    cursor = None
    while True:
        params = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = client.get(BASE, params=params, headers=reader).json()
        seen += [(a["id"], a["seq"]) for a in page["items"]]
        cursor = page["next_cursor"]
        if not page["items"] and not any(t.is_alive() for t in threads):
            # One more pull after every writer stopped drains what is left.
            last = client.get(BASE, params={"cursor": cursor}, headers=reader).json()
            seen += [(a["id"], a["seq"]) for a in last["items"]]
            break
    for thread in threads:
        thread.join()
    assert not errors
    seqs = [s for _, s in seen]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), "a seq repeated or went back"
    # Nothing skipped: every alert was seen in its final state (a version changed again
    # before the reader got to it is legitimately replaced by the newer one).
    final = {
        r["id"]: r["seq"] for r in loaded.read("MATCH (a:Alert) RETURN a.id AS id, a.seq AS seq")
    }
    assert len(final) == total + 40
    last_seen: dict[str, int] = {}
    for alert_id, seq in seen:
        last_seen[alert_id] = seq
    assert last_seen == final
    # Every change number handed out is accounted for: seen, or a superseded version.
    high = loaded.read("MATCH (c:Counter {name: 'alert_seq'}) RETURN c.value AS v")[0]["v"]
    triaged = len(range(0, total, 10))
    missing = set(range(1, high + 1)) - set(seqs)
    assert high == total + 40 + triaged and len(missing) <= triaged
    assert len(seen) == high - len(missing)


def test_ocsf_detection_finding(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    alert = scenario.create_alert(loaded, severity="critical")
    reader = key("read")
    finding = client.get(f"{BASE}/{alert['id']}", params={"format": "ocsf"}, headers=reader).json()
    assert finding["class_uid"] == 2004 and finding["category_uid"] == 2
    assert finding["type_uid"] == 200401
    assert finding["severity_id"] == 5 and finding["status_id"] == 1
    info = finding["finding_info"]
    assert info["uid"] == alert["id"]
    assert info["analytic"]["uid"] == "download_exec" and info["analytic"]["type_id"] == 1
    techniques = {a.get("sub_technique", a["technique"])["uid"] for a in info["attacks"]}
    assert techniques == {"T1059.001", "T1105"}
    assert finding["metadata"]["product"]["name"] == "provgraph"
    assert isinstance(finding["time"], int)
    kinds = {next(iter(k for k in e if k != "data"), "data") for e in finding["evidences"]}
    assert {"process", "file", "dst_endpoint"} <= kinds
    assert any(r["type"] == "File" for r in finding["resources"])

    listed = client.get(BASE, params={"format": "ocsf"}, headers=reader).json()
    assert listed["items"][0]["class_uid"] == 2004 and listed["next_cursor"]

    client.patch(f"{BASE}/{alert['id']}", headers=key("triage"), json={"status": "closed"})
    closed = client.get(f"{BASE}/{alert['id']}", params={"format": "ocsf"}, headers=reader).json()
    assert closed["status_id"] == 4 and closed["activity_id"] == 3


def test_bad_cursor_is_a_problem(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    response = client.get(BASE, params={"cursor": "!!not-ours"}, headers=key("read"))
    assert response.status_code == 400
    body = response.json()
    assert body["type"].endswith("/invalid-cursor") and body["instance"] == BASE
