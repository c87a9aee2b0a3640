"""Sigma correlation rules on the real server: Sysmon-shaped records go through the real ingest
path, the compiled correlations fire where the events correlate and stay silent where they do
not (below the threshold, outside the timespan, in another group, in the wrong order)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from provgraph.graph.tx import Graph
from provgraph.queries.engine import evaluate, run_rule
from provgraph.queries.rule import Rule
from provgraph.queries.sigma import compile_path
from sigma_common import ingest_records
from sysmon_records import BASE, Recorder

WHOAMI = "C:\\Windows\\System32\\whoami.exe"
NET = "C:\\Windows\\System32\\net.exe"
BASES = [
    {
        "title": "Whoami",
        "id": "8a1d0c00-0000-4000-8000-000000000001",
        "name": "whoami",
        "logsource": {"category": "process_creation", "product": "windows"},
        "detection": {"sel": {"Image|endswith": "\\whoami.exe"}, "condition": "sel"},
    },
    {
        "title": "SMB out",
        "id": "8a1d0c00-0000-4000-8000-000000000002",
        "name": "smb",
        "logsource": {"category": "network_connection", "product": "windows"},
        "detection": {"sel": {"DestinationPort": 445}, "condition": "sel"},
    },
]


def correlation_rule(
    tmp_path: Path, name: str, spec: dict[str, Any], *extra: dict[str, Any]
) -> Rule:
    doc = {
        "title": name,
        "id": "8a1d0c00-0000-4000-8000-0000000000ff",
        "author": "provgraph tests",
        "level": "high",
        "tags": ["attack.discovery", "attack.t1033"],
        "correlation": spec,
    }
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump_all([*BASES, *extra, doc], sort_keys=False))
    results = [r for r in compile_path([path]).results if r.title == name]
    (result,) = results
    assert result.rule is not None, result.reason
    return result.rule


def found(graph: Graph, rule: Rule, **window: Any) -> list[dict[str, Any]]:
    rows = [m.row for m in evaluate(graph, rule, **window)]
    return sorted(rows, key=lambda r: (r["group_key"], r["first_seen"]))


@pytest.fixture
def story(graph: Graph, tmp_path: Path) -> Graph:
    """alice: whoami at 08:30 and 09:30 (apart), then four in six minutes straddling the 09:10
    bucket boundary, then SMB out to three servers; bob: two whoami and one SMB; carol: SMB,
    then whoami (the wrong order for whoami -> SMB)."""
    rec = Recorder()
    alice, bob, carol = "CORP\\alice", "CORP\\bob", "CORP\\carol"
    rec.start(-1800, "a0", WHOAMI, "whoami", user=alice)
    for i, t in enumerate((480, 540, 660, 840)):  # 09:08, 09:09, 09:11, 09:14
        rec.start(t, f"a{i + 1}", WHOAMI, "whoami /all", user=alice)
    rec.start(900, "anet", NET, "net use \\\\fs1", user=alice)
    for j, ip in enumerate(("10.0.0.11", "10.0.0.12", "10.0.0.13")):
        rec.connect(905 + j, "anet", NET, ip, 445)
    rec.start(5400, "a9", WHOAMI, "whoami", user=alice)  # 10:30, alone
    rec.start(600, "b1", WHOAMI, "whoami", user=bob)
    rec.start(610, "b2", WHOAMI, "whoami", user=bob)
    rec.start(620, "bnet", NET, "net view", user=bob)
    rec.connect(625, "bnet", NET, "10.0.0.11", 445)
    rec.start(1000, "cnet", NET, "net view", user=carol)
    rec.connect(1001, "cnet", NET, "10.0.0.12", 445)
    rec.start(1100, "c1", WHOAMI, "whoami", user=carol)
    assert ingest_records(graph, rec.records, tmp_path) > 0
    return graph


def test_event_count_fires_on_a_burst_that_straddles_any_boundary(
    story: Graph, tmp_path: Path
) -> None:
    rule = correlation_rule(
        tmp_path,
        "many_whoami",
        {
            "type": "event_count",
            "rules": ["whoami"],
            "group-by": ["User"],
            "timespan": "10m",
            "condition": {"gte": 3},
        },
    )
    (burst,) = found(story, rule)
    # four whoami of alice's within 6 minutes, two on each side of 09:10: one match
    assert burst["group_key"] == "User=CORP\\alice"
    assert burst["events"] == 4
    assert burst["first_seen"] == BASE + timedelta(seconds=480)
    assert burst["last_seen"] == BASE + timedelta(seconds=840)
    assert len(burst["process_uids"]) == 4 and burst["hosts"] == ["ws1"]
    assert burst["rules_matched"] == ["Whoami"]
    # bob's two and alice's lone ones never reach three in ten minutes
    assert found(story, rule, overrides={"threshold": 5}) == []
    # a shorter timespan splits the burst below the threshold
    assert found(story, rule, overrides={"timespan_s": 120}) == []


def test_the_engine_range_keeps_whole_matches_that_reach_into_it(
    story: Graph, tmp_path: Path
) -> None:
    rule = correlation_rule(
        tmp_path,
        "many_whoami",
        {
            "type": "event_count",
            "rules": ["whoami"],
            "group-by": ["User"],
            "timespan": "10m",
            "condition": {"gte": 3},
        },
    )
    late = found(
        story, rule, since=BASE + timedelta(seconds=800), until=BASE + timedelta(seconds=850)
    )
    assert [b["events"] for b in late] == [4]  # only the last event is in range, the match whole
    assert found(story, rule, since=BASE + timedelta(seconds=3000)) == []


def test_a_small_count_is_counted_in_fixed_buckets(story: Graph, tmp_path: Path) -> None:
    rule = correlation_rule(
        tmp_path,
        "rare_whoami",
        {
            "type": "event_count",
            "rules": ["whoami"],
            "group-by": ["User"],
            "timespan": "10m",
            "condition": {"lte": 1},
        },
    )
    rows = found(story, rule)
    # 10-minute buckets from the epoch: alice's 09:08 and 09:09 share one, her 09:11 and 09:14
    # the next, as do bob's 09:10:00 and 09:10:10; alone in theirs: alice at 08:30 and 10:30,
    # carol at 09:18:20
    singles = {(r["group_key"], r["first_seen"]) for r in rows}
    assert singles == {
        ("User=CORP\\alice", BASE - timedelta(seconds=1800)),
        ("User=CORP\\alice", BASE + timedelta(seconds=5400)),
        ("User=CORP\\carol", BASE + timedelta(seconds=1100)),
    }


def test_value_count_counts_distinct_destinations(story: Graph, tmp_path: Path) -> None:
    rule = correlation_rule(
        tmp_path,
        "smb_fanout",
        {
            "type": "value_count",
            "rules": ["smb"],
            "group-by": ["Image"],
            "timespan": "5m",
            "condition": {"gte": 3, "field": "DestinationIp"},
        },
    )
    (fan,) = found(story, rule)
    # net.exe (any user) reached three servers within 5 minutes: windows from bob's 09:10:25
    # (.11, then alice's .11 .12 .13) and from alice's 09:15:05 (.11 .12 .13, carol's .12)
    # qualify and overlap: one match over all five connections
    assert fan["group_key"] == "Image=" + NET
    assert fan["events"] == 5
    assert fan["first_seen"] == BASE + timedelta(seconds=625)
    assert fan["last_seen"] == BASE + timedelta(seconds=1001)
    assert found(story, rule, overrides={"threshold": 4}) == []


def test_temporal_and_temporal_ordered(story: Graph, tmp_path: Path) -> None:
    spec = {"rules": ["whoami", "smb"], "group-by": ["User"], "timespan": "10m"}
    both = correlation_rule(tmp_path, "recon", {"type": "temporal", **spec})
    keys = [r["group_key"] for r in found(story, both)]
    assert keys == ["User=CORP\\alice", "User=CORP\\bob", "User=CORP\\carol"]
    ordered = correlation_rule(tmp_path, "recon_ordered", {"type": "temporal_ordered", **spec})
    rows = found(story, ordered)
    # carol connected before her whoami: not in order
    assert [r["group_key"] for r in rows] == ["User=CORP\\alice", "User=CORP\\bob"]
    assert all(r["rules_matched"] == ["SMB out", "Whoami"] for r in rows)
    extended = correlation_rule(
        tmp_path, "whoami_no_smb", {"type": "temporal", **spec, "condition": "whoami and not smb"}
    )
    # windows with a whoami and no SMB: alice's lone whoami at 08:30 and 10:30 (her burst's
    # windows all reach her SMB at 09:15)
    assert {
        r["first_seen"] for r in found(story, extended) if r["group_key"].endswith("alice")
    } == {
        BASE - timedelta(seconds=1800),
        BASE + timedelta(seconds=5400),
    }


def test_chained_correlation(story: Graph, tmp_path: Path) -> None:
    many = {
        "title": "Many whoami",
        "id": "8a1d0c00-0000-4000-8000-0000000000aa",
        "name": "many_whoami",
        "correlation": {
            "type": "event_count",
            "rules": ["whoami"],
            "group-by": ["User", "Computer"],
            "timespan": "10m",
            "condition": {"gte": 2},
        },
    }
    rule = correlation_rule(
        tmp_path,
        "burst_then_smb",
        {
            "type": "temporal_ordered",
            "rules": ["many_whoami", "smb"],
            "group-by": ["User"],
            "timespan": "5m",
        },
        many,
    )
    rows = found(story, rule)
    # alice: burst ends 09:14, SMB at 09:15; bob: burst ends 09:10:10, SMB at 09:10:25
    assert [(r["group_key"], r["events"]) for r in rows] == [
        ("User=CORP\\alice", 4),
        ("User=CORP\\bob", 2),
    ]


def test_correlation_alerts_are_idempotent_and_keyed_by_group(story: Graph, tmp_path: Path) -> None:
    rule = correlation_rule(
        tmp_path,
        "recon",
        {"type": "temporal", "rules": ["whoami", "smb"], "group-by": ["User"], "timespan": "10m"},
    )
    first = run_rule(story, rule)
    assert (first.matches, first.created) == (3, 3)
    again = run_rule(story, rule)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    rows = story.read(
        "MATCH (a:Alert {rule_id: $id})-[i:INVOLVES]->(p:Process) "
        "RETURN a.summary AS summary, count(p) AS processes ORDER BY summary",
        {"id": rule.id},
    )
    assert len(rows) == 3
    assert all(r["summary"].startswith("Sigma correlation: recon: ") for r in rows)
    assert any("for User=CORP\\alice on ws1" in r["summary"] for r in rows)
    assert all(r["processes"] >= 2 for r in rows)
