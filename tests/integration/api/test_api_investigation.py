"""What the console's investigation tools stand on, over the real Neo4j: closing with a
resolution, rule exceptions made from an alert (and what they drop from a rule's matches),
shortest paths, saved hunts, incidents."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from provgraph.graph.tx import Graph
from provgraph.queries.alerts.writer import EntityRef, Match
from provgraph.queries.catalog import default_catalog
from provgraph.queries.exceptions import drop_excepted

from tests.integration.api import scenario

Keys = Callable[..., dict[str, str]]


def test_close_with_a_resolution_and_reopen_clears_it(
    client: TestClient, loaded: Graph, key: Keys
) -> None:
    triager = key("read", "triage")
    alert = scenario.create_alert(loaded)
    url = f"/api/v1/alerts/{alert['id']}"
    # A resolution goes with closing: not with another status, not on an open alert.
    bad = client.patch(
        url, json={"status": "open", "resolution": "false_positive"}, headers=triager
    )
    assert bad.status_code == 422, bad.text
    early = client.patch(url, json={"resolution": "false_positive"}, headers=triager)
    assert early.status_code == 409 and "closed" in early.json()["detail"]
    unknown = client.patch(url, json={"status": "closed", "resolution": "maybe"}, headers=triager)
    assert unknown.status_code == 422
    closed = client.patch(
        url,
        json={"status": "closed", "resolution": "true_positive", "comment": "payload confirmed"},
        headers=triager,
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["resolution"] == "true_positive"
    # Corrected while closed, then reopened: each step is in the trail.
    fixed = client.patch(url, json={"resolution": "benign_true_positive"}, headers=triager)
    assert fixed.json()["resolution"] == "benign_true_positive"
    reopened = client.patch(url, json={"status": "open"}, headers=triager)
    assert reopened.json()["resolution"] is None
    trail = client.get(f"{url}/audit", headers=triager).json()
    assert [e["changes"].get("resolution") for e in trail] == [
        {"from": None, "to": "true_positive"},
        {"from": "true_positive", "to": "benign_true_positive"},
        {"from": "benign_true_positive", "to": None},
    ]
    assert trail[0]["comment"] == "payload confirmed"
    listed = client.get("/api/v1/alerts", params={"status": "open"}, headers=triager).json()
    assert [a["resolution"] for a in listed["items"] if a["id"] == alert["id"]] == [None]


def _match(rule_id: str, host: str, *entities: EntityRef) -> Match:
    rule = default_catalog().snapshot().get(rule_id).rule
    return Match(
        rule=rule,
        row={"host": host},
        entities=[EntityRef("host", "host", host), *entities],
        id="m-" + "-".join(e.key for e in entities),
        suppression_key="s",
        first_seen=scenario.T0,
        last_seen=scenario.T0 + timedelta(seconds=1),
    )


def test_an_exception_from_an_alert_drops_what_it_names(
    client: TestClient, loaded: Graph, key: Keys
) -> None:
    rule_id = "msbuild_script_parent"
    alert = scenario.create_alert(
        loaded,
        rule_id=rule_id,
        entities=[
            {"label": "Process", "key": scenario.PWSH.uid, "role": "msbuild"},
            {"label": "File", "key": scenario.PAYLOAD_KEY, "role": "payload"},
            {"label": "Host", "key": "ws1", "role": "host"},
        ],
    )
    url = f"/api/v1/alerts/{alert['id']}/exceptions"
    reader, triager = key("read"), key("triage")
    options = client.get(f"{url}/options", headers=reader).json()
    offered = {(o["kind"], o["role"], o["value"].lower()) for o in options}
    assert ("host", None, "ws1") in offered
    assert ("parent", "msbuild", "cmd.exe") in offered
    assert ("path", "payload", scenario.PAYLOAD.lower()) in offered
    # Only the alert's own values, and only with the triage scope.
    foreign = client.post(url, json={"kind": "parent", "value": "explorer.exe"}, headers=triager)
    assert foreign.status_code == 409 and "offers" in foreign.json()["detail"]
    body = {"kind": "parent", "role": "msbuild", "value": "cmd.exe", "comment": "build agents"}
    assert client.post(url, json=body, headers=reader).status_code == 403
    made = client.post(url, json=body, headers=triager)
    assert made.status_code == 201, made.text
    listed = client.get("/api/v1/exceptions", params={"rule": rule_id}, headers=reader).json()
    assert [(x["kind"], x["role"], x["value"], x["alert_id"]) for x in listed] == [
        ("parent", "msbuild", "cmd.exe", alert["id"])
    ]
    trail = client.get(f"/api/v1/alerts/{alert['id']}/audit", headers=reader).json()
    assert trail[-1]["changes"] == {
        "exception": {"from": None, "to": "the msbuild's parent is cmd.exe"}
    }
    assert trail[-1]["comment"] == "build agents"

    # The engine's filter: powershell's parent is cmd.exe (dropped); payload's is powershell.
    rule = default_catalog().snapshot().get(rule_id).rule
    by_cmd = _match(rule_id, "ws1", EntityRef("msbuild", "process", scenario.PWSH.uid))
    by_pwsh = _match(rule_id, "ws1", EntityRef("msbuild", "process", scenario.PAYLOAD_P.uid))
    other_role = _match(rule_id, "ws1", EntityRef("script_parent", "process", scenario.PWSH.uid))
    kept = drop_excepted(loaded, rule, [by_cmd, by_pwsh, other_role])
    assert [m.id for m in kept] == [by_pwsh.id, other_role.id]
    # Another rule is not touched by this rule's exceptions.
    other = default_catalog().snapshot().get("msbuild_network").rule
    assert len(drop_excepted(loaded, other, [by_cmd])) == 1

    # A host exception drops every match on that host; removing it brings them back.
    host = client.post(url, json={"kind": "host", "value": "WS1"}, headers=triager).json()
    assert drop_excepted(loaded, rule, [by_pwsh, other_role]) == []
    gone = client.delete(f"/api/v1/exceptions/{host['id']}", headers=triager)
    assert gone.status_code == 200 and gone.json()["kind"] == "host"
    assert len(drop_excepted(loaded, rule, [by_pwsh, other_role])) == 2
    assert client.delete(f"/api/v1/exceptions/{host['id']}", headers=triager).status_code == 404
    trail = client.get(f"/api/v1/alerts/{alert['id']}/audit", headers=reader).json()
    assert trail[-1]["changes"] == {"exception": {"from": "host is WS1", "to": None}}


def test_shortest_path_between_two_nodes(client: TestClient, loaded: Graph, key: Keys) -> None:
    reader = key("read")
    start, end = "Process:g:explorer", "Connection:203.0.113.7|443|tcp"
    found = client.get("/api/v1/graph/path", params={"from": start, "to": end}, headers=reader)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["found"] and body["path"][0] == start and body["path"][-1] == end
    # explorer -> cmd -> powershell -> the connection: three hops, the shortest there is.
    assert body["path"] == [start, "Process:g:cmd", "Process:g:pwsh", end]
    ids = {n["data"]["id"] for n in body["elements"]["nodes"]}
    assert ids == set(body["path"])
    assert len(body["elements"]["edges"]) == 3
    short = client.get(
        "/api/v1/graph/path", params={"from": start, "to": end, "max_hops": 2}, headers=reader
    ).json()
    assert short["found"] is False and short["path"] == []
    # Never through a host: ws2's notepad has no provenance tie to ws1's tree.
    apart = client.get(
        "/api/v1/graph/path", params={"from": start, "to": "Process:g:notepad"}, headers=reader
    ).json()
    assert apart["found"] is False
    missing = client.get(
        "/api/v1/graph/path", params={"from": start, "to": "Process:g:nope"}, headers=reader
    )
    assert missing.status_code == 404
    too_far = client.get(
        "/api/v1/graph/path", params={"from": start, "to": end, "max_hops": 99}, headers=reader
    )
    assert too_far.status_code == 422


def test_saved_hunts_run_through_the_cypher_endpoint(
    client: TestClient, loaded: Graph, key: Keys
) -> None:
    reader, hunter = key("read"), key("hunt")
    # Hunts are the hunt scope's: a read key neither lists nor runs them.
    assert client.get("/api/v1/hunts", headers=reader).status_code == 403
    hunts = client.get("/api/v1/hunts", headers=hunter).json()
    shipped = {h["id"]: h for h in hunts if h["shipped"]}
    assert {"temp_process_connected_out", "processes_from_hash", "account_activity"} <= set(shipped)
    # Each shipped hunt runs with its defaults (and a value for what it requires).
    values = {"account": "alice", "hash": "ab"}
    for hunt in shipped.values():
        params = {p["name"]: values.get(p["name"], p["default"]) for p in hunt["parameters"]}
        ran = client.post(
            "/api/v1/query/cypher",
            json={"query": hunt["query"], "parameters": params},
            headers=hunter,
        )
        assert ran.status_code == 200, (hunt["id"], ran.text)
    account = shipped["account_activity"]
    rows = client.post(
        "/api/v1/query/cypher",
        json={"query": account["query"], "parameters": {"account": "ALICE", "limit": 50}},
        headers=hunter,
    ).json()["rows"]
    assert rows and {r["process"]["properties"]["user"] for r in rows} == {"CORP\\alice"}
    temp = shipped["temp_process_connected_out"]
    rows = client.post(
        "/api/v1/query/cypher",
        json={
            "query": temp["query"],
            "parameters": {p["name"]: p["default"] for p in temp["parameters"]},
        },
        headers=hunter,
    ).json()["rows"]
    assert {r["process"]["id"] for r in rows} == {"Process:g:payload"}

    mine = {
        "name": "alice's tree",
        "query": "MATCH (p:Process {user: $user}) RETURN p",
        "parameters": [{"name": "user", "type": "string", "default": "CORP\\alice"}],
    }
    assert client.post("/api/v1/hunts", json=mine, headers=reader).status_code == 403
    bad = {**mine, "parameters": [{"name": "no spaces", "type": "string"}]}
    assert client.post("/api/v1/hunts", json=bad, headers=hunter).status_code == 422
    saved = client.post("/api/v1/hunts", json=mine, headers=hunter)
    assert saved.status_code == 201, saved.text
    again = [h for h in client.get("/api/v1/hunts", headers=hunter).json() if not h["shipped"]]
    assert [(h["name"], h["parameters"][0]["default"]) for h in again] == [
        ("alice's tree", "CORP\\alice")
    ]
    assert client.delete("/api/v1/hunts/account_activity", headers=hunter).status_code == 409
    assert client.delete(f"/api/v1/hunts/{again[0]['id']}", headers=hunter).status_code == 204
    assert client.delete(f"/api/v1/hunts/{again[0]['id']}", headers=hunter).status_code == 404


def test_incidents_group_alerts_sharing_a_host_tree_or_account(
    client: TestClient, loaded: Graph, key: Keys
) -> None:
    reader = key("read")
    first = scenario.create_alert(loaded)
    second = scenario.create_alert(
        loaded,
        rule_id="other",
        entities=[{"label": "Process", "key": scenario.WHOAMI.uid, "role": "recon"}],
    )
    alone = scenario.create_alert(
        loaded, host="ws2", entities=[{"label": "Host", "key": "ws2", "role": "host"}]
    )
    found = client.get("/api/v1/alerts/incidents", headers=reader).json()
    assert len(found["incidents"]) == 1, found
    incident = found["incidents"][0]
    assert set(incident["alert_ids"]) == {first["id"], second["id"]}
    assert alone["id"] not in incident["alert_ids"]
    assert "host ws1" in incident["shared"]
    assert "account corp\\alice" in incident["shared"]
    assert any(s.startswith("process tree explorer.exe") for s in incident["shared"])
    # Filters narrow what is grouped: ws2 alone has nothing to group.
    narrowed = client.get("/api/v1/alerts/incidents", params={"host": "ws2"}, headers=reader).json()
    assert narrowed["incidents"] == []
