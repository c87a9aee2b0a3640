"""Alerts on the real server: ids from entities, reruns change nothing, suppression folds,
seq grows strictly in commit order, entities are linked."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.queries.alerts import alert_ids_for, next_seq, service
from provgraph.queries.alerts.models import AlertRead
from provgraph.queries.engine import run_rules
from provgraph.queries.examples import events_from_specs
from provgraph.queries.rule import Suppression, load_rules

RULES = {r.id: r for r in load_rules().rules}
SPAWN = RULES["msbuild_script_parent"]


def _spawn(uid: str, t: float, host: str = "h1") -> list[dict[str, object]]:
    return [
        {
            "kind": "process_start",
            "t": t,
            "host": host,
            "uid": uid,
            "image": "C:\\MSBuild.exe",
            "command_line": f"msbuild {uid}.xml",
            "user": "CORP\\eve",
            "parent": {"uid": f"cmd-{uid}", "image": "C:\\cmd.exe"},
        }
    ]


def _alerts(graph: Graph) -> list[dict[str, object]]:
    return graph.read("MATCH (a:Alert) RETURN a {.*} AS a ORDER BY a.seq")


def list_alerts(graph: Graph, *, after_seq: int = 0) -> list[AlertRead]:
    """Alerts as their readers (the API, the CLI) page them."""
    return service.list_alerts(graph, after=after_seq, limit=1000).alerts


def _entities(graph: Graph, alert: AlertRead) -> list[tuple[str | None, str, str]]:
    found = service.entities_of(graph, alert_ids=[alert.id])[alert.id]
    return sorted((e.role, e.kind, e.id) for e in found)


def test_alert_properties_and_entities(graph: Graph) -> None:
    write_events(graph, events_from_specs(_spawn("m1", 0)))
    (run,) = run_rules(graph, rules=[SPAWN])
    assert run.created == 1
    (alert,) = list_alerts(graph)
    assert alert.id == alert_ids_for(
        SPAWN.id, [("host", "h1"), ("msbuild", "g:m1"), ("script_parent", "g:cmd-m1")]
    )
    assert len(alert.id) == 32
    assert alert.rule_id == SPAWN.id and alert.rule_name == SPAWN.name
    assert (alert.severity, alert.risk_score) == ("low", 21)
    # list properties are stored in one canonical (sorted) order
    assert alert.techniques == sorted(SPAWN.techniques)
    assert alert.tactics == ["TA0002", "TA0005"]
    assert alert.host == "h1" and alert.status == "open" and alert.hit_count == 1
    assert alert.first_seen == alert.last_seen
    (stored,) = _alerts(graph)
    assert alert.seq == 1 and "assignee" not in stored["a"]
    assert alert.created_at == alert.updated_at
    assert "cmd.exe started MSBuild on h1" in (alert.summary or "")
    assert '"command_line": "msbuild m1.xml"' in stored["a"]["details"]
    assert alert.details["command_line"] == "msbuild m1.xml"
    # the account as the row spells it ("CORP\\eve") is the Account node it names
    assert _entities(graph, alert) == [
        ("account", "Account", "Account:corp\\eve"),
        ("host", "Host", "Host:h1"),
        ("msbuild", "Process", "Process:g:m1"),
        ("script_parent", "Process", "Process:g:cmd-m1"),
    ]


def test_rerunning_over_the_same_data_changes_nothing(graph: Graph) -> None:
    write_events(graph, events_from_specs(_spawn("m1", 0) + _spawn("m2", 10, host="h2")))
    rules = list(RULES.values())
    run_rules(graph, rules=rules)
    before = _alerts(graph)
    edges = graph.read("MATCH (:Alert)-[r:INVOLVES]->() RETURN count(r) AS n")
    assert len(before) == 2
    again = {r.rule_id: r for r in run_rules(graph, rules=rules)}
    assert again[SPAWN.id].unchanged == 2
    assert sum(r.created + r.updated for r in again.values()) == 0
    assert _alerts(graph) == before
    assert graph.read("MATCH (:Alert)-[r:INVOLVES]->() RETURN count(r) AS n") == edges
    assert graph.read("MATCH (c:Counter) RETURN c.name AS name, c.value AS value") == [
        {"name": "alert_seq", "value": 2}
    ]


def test_suppression_folds_matches_within_the_duration(graph: Graph) -> None:
    # new_terms on the user, so both spawns on h1 match; suppression on host for 1 hour
    rule = replace(SPAWN, parameters={**SPAWN.parameters, "new_terms_fields": ["command_line"]})
    write_events(graph, events_from_specs(_spawn("m1", 0) + _spawn("m2", 1800)))
    (run,) = run_rules(graph, rules=[rule])
    assert (run.matches, run.created, run.updated) == (2, 1, 0)
    (alert,) = list_alerts(graph)
    assert alert.hit_count == 2
    assert alert.first_seen and alert.last_seen
    assert alert.last_seen - alert.first_seen == timedelta(seconds=1800)
    roles = [(role, key) for role, _, key in _entities(graph, alert) if role == "msbuild"]
    assert roles == [("msbuild", "Process:g:m1"), ("msbuild", "Process:g:m2")]
    # a third spawn two hours later is outside the duration: a new alert
    write_events(graph, events_from_specs(_spawn("m3", 1800 + 7200)))
    (run,) = run_rules(graph, rules=[rule])
    assert (run.created, run.unchanged) == (1, 1)
    assert [a.hit_count for a in list_alerts(graph)] == [2, 1]
    # and rerunning keeps the fold exactly as it is
    snapshot = _alerts(graph)
    run_rules(graph, rules=[rule])
    assert _alerts(graph) == snapshot


def test_a_refire_updates_the_alert_and_bumps_seq(graph: Graph) -> None:
    rule = replace(
        SPAWN,
        parameters={**SPAWN.parameters, "new_terms_fields": ["command_line"]},
        suppression=Suppression(("host",), timedelta(hours=1)),
    )
    write_events(graph, events_from_specs(_spawn("m1", 0)))
    run_rules(graph, rules=[rule])
    (first,) = list_alerts(graph)
    write_events(graph, events_from_specs(_spawn("m2", 60)))
    (run,) = run_rules(graph, rules=[rule])
    assert (run.created, run.updated) == (0, 1)
    (second,) = list_alerts(graph)
    assert second.seq > first.seq and second.hit_count == 2
    assert second.created_at == first.created_at
    # the triage fields are the API's: a refire never resets them
    graph.write("MATCH (a:Alert) SET a.status = 'acknowledged', a.assignee = 'ana'")
    write_events(graph, events_from_specs(_spawn("m3", 120)))
    run_rules(graph, rules=[rule])
    (third,) = list_alerts(graph)
    assert (third.status, third.assignee, third.hit_count) == ("acknowledged", "ana", 3)


def test_without_suppression_each_match_is_its_own_alert(graph: Graph) -> None:
    rule = replace(
        SPAWN,
        parameters={**SPAWN.parameters, "new_terms_fields": ["command_line"]},
        suppression=Suppression((), timedelta(0)),
    )
    write_events(graph, events_from_specs(_spawn("m1", 0) + _spawn("m2", 60)))
    (run,) = run_rules(graph, rules=[rule])
    assert run.created == 2
    assert [a.seq for a in list_alerts(graph)] == [1, 2]
    assert len(list_alerts(graph, after_seq=1)) == 1


def test_next_seq_is_strictly_increasing_under_concurrent_writers(graph: Graph) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            value = graph.write_tx(lambda tx: next_seq(tx))
            with lock:
                seen.append(value)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == list(range(1, 81))
    assert graph.write_tx(lambda tx: next_seq(tx, 5)) == 81
    assert graph.read("MATCH (c:Counter {name: 'alert_seq'}) RETURN c.value AS v") == [{"v": 85}]
