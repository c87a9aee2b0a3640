"""Sigma correlation rules compiled to Cypher: the query's shape per correlation type, its
parameters, the provgraph rule around it, and what is reported unsupported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from provgraph.queries.sigma import compile_path
from provgraph.queries.sigma.compile import RuleResult
from provgraph.queries.sigma.mapping import LOGSOURCES

WHOAMI = {
    "title": "Whoami",
    "id": "3c0e4a51-0000-4000-8000-000000000001",
    "name": "whoami",
    "logsource": {"category": "process_creation", "product": "windows"},
    "detection": {"sel": {"Image|endswith": "\\whoami.exe"}, "condition": "sel"},
}
NET = {
    "title": "Net",
    "id": "3c0e4a51-0000-4000-8000-000000000002",
    "name": "net",
    "logsource": {"category": "network_connection", "product": "windows"},
    "detection": {"sel": {"DestinationPort": 445}, "condition": "sel"},
}


def correlation(kind: str, rules: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "title": f"{kind} correlation",
        "id": "3c0e4a51-0000-4000-8000-0000000000ff",
        "author": "Jane Analyst",
        "level": "high",
        "status": "experimental",
        "tags": ["attack.discovery", "attack.t1033"],
        "falsepositives": ["admins"],
        "correlation": {"type": kind, "rules": rules, "timespan": "10m", **spec},
    }


def compile_docs(tmp_path: Path, *docs: dict[str, Any]) -> list[RuleResult]:
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump_all(list(docs), sort_keys=False))
    return compile_path([path]).results


def the_correlation(results: list[RuleResult]) -> RuleResult:
    (found,) = [r for r in results if r.logsource == "correlation"]
    return found


def test_event_count_slides_a_window_from_every_event(tmp_path: Path) -> None:
    spec = correlation("event_count", ["whoami"], **{"group-by": ["User"], "condition": {"gte": 5}})
    results = compile_docs(tmp_path, WHOAMI, spec)
    assert [r.status for r in results] == ["part", "compiled"]
    result = the_correlation(results)
    rule = result.rule
    assert rule is not None
    query = rule.query
    # the window's start and end: widened by the timespan, so edge windows are whole
    assert query.startswith(
        "WITH $since - duration({seconds: $timespan_s}) AS since_0, "
        "$until + duration({seconds: $timespan_s}) AS until_0\nCALL (since_0, until_0) {"
    )
    # the base rule as rows, its parameters renamed; the group-by through the field table
    assert "toLower(p.image) ENDS WITH $r0_p0" in query
    assert "[p.user] AS g" in query and "p.start_time AS t" in query
    assert "reduce(b = [i, size(ts) - 1]" in query  # binary search for each window's end
    assert "[w IN spans WHERE (w[1] - w[0] + 1) >= $threshold]" in query
    assert "WHERE ts[z] >= $since AND ts[a] <= $until" in query
    assert rule.parameters == {
        "timespan_s": 600,
        "r0_p0": "\\whoami.exe",
        "r0_sigma_product": "windows",
        "threshold": 5,
        "group_by": ["User"],
        "rule_titles": ["Whoami"],
    }
    # values only as parameters: neither titles nor field names nor thresholds in the text
    assert "Whoami" not in query and "'User'" not in query and ">= 5" not in query


def test_a_small_count_uses_fixed_buckets(tmp_path: Path) -> None:
    spec = correlation("event_count", ["whoami"], condition={"lt": 3})
    rule = the_correlation(compile_docs(tmp_path, WHOAMI, spec)).rule
    assert rule is not None
    assert "t.epochSeconds / $timespan_s AS bucket" in rule.query
    assert "WHERE (z - a + 1) < $threshold" in rule.query
    assert "spans" not in rule.query


def test_value_count_counts_distinct_values_of_the_field(tmp_path: Path) -> None:
    spec = correlation(
        "value_count",
        ["net"],
        **{"group-by": ["Image"], "condition": {"gte": 10, "field": "DestinationIp"}},
    )
    rule = the_correlation(compile_docs(tmp_path, NET, spec)).rule
    assert rule is not None
    ip = LOGSOURCES["network_connection"].field("DestinationIp")
    assert ip is not None
    assert f"[p.image] AS g, {ip.expr} AS v" in rule.query
    assert "UNWIND hits AS t" in rule.query  # an aggregated edge: one row per event time
    assert (
        "COUNT { UNWIND vs[w[0]..w[1] + 1] AS x WITH DISTINCT x WHERE x IS NOT NULL RETURN x }"
        " >= $threshold" in rule.query
    )


def test_temporal_needs_every_rule_in_one_window(tmp_path: Path) -> None:
    spec = correlation("temporal", ["whoami", "net"], **{"group-by": ["Computer"]})
    results = compile_docs(tmp_path, WHOAMI, NET, spec)
    rule = the_correlation(results).rule
    assert rule is not None
    assert "UNION ALL" in rule.query
    assert "RETURN 0 AS rule" in rule.query and "RETURN 1 AS rule" in rule.query
    assert "COUNT { UNWIND rs[w[0]..w[1] + 1] AS x" in rule.query
    assert rule.parameters["threshold"] == 2
    assert rule.parameters["group_by"] == ["Computer"]


def test_temporal_ordered_walks_the_rules_in_order(tmp_path: Path) -> None:
    spec = correlation("temporal_ordered", ["whoami", "net"], **{"group-by": ["User"]})
    rule = the_correlation(compile_docs(tmp_path, WHOAMI, NET, spec)).rule
    assert rule is not None
    assert (
        "rs[w[0]] = 0 AND reduce(k = 0, x IN rs[w[0]..w[1] + 1] | "
        "CASE WHEN k < 2 AND x = k THEN k + 1 ELSE k END) = 2" in rule.query
    )
    assert "threshold" not in rule.parameters


def test_an_extended_temporal_condition_tests_which_rules_are_present(tmp_path: Path) -> None:
    spec = correlation("temporal", ["whoami", "net"], condition="whoami and not net")
    rule = the_correlation(compile_docs(tmp_path, WHOAMI, NET, spec)).rule
    assert rule is not None
    assert "[w IN spans WHERE (0 IN rs[w[0]..w[1] + 1] AND NOT (1 IN rs[w[0]..w[1] + 1]))]" in (
        rule.query
    )


def test_chained_correlations_nest_with_their_own_window(tmp_path: Path) -> None:
    inner = {
        **correlation(
            "event_count", ["whoami"], **{"group-by": ["User", "Computer"], "condition": {"gte": 3}}
        ),
        "id": "3c0e4a51-0000-4000-8000-0000000000aa",
        "name": "many_whoami",
        "title": "Many whoami",
    }
    outer = correlation("temporal", ["many_whoami", "net"], **{"group-by": ["User"]})
    results = compile_docs(tmp_path, WHOAMI, NET, inner, outer)
    status = {r.title: r.status for r in results}
    assert status == {
        "Whoami": "part",
        "Net": "part",
        "Many whoami": "part",
        "temporal correlation": "compiled",
    }
    rule = results[-1].rule
    assert rule is not None
    assert (
        "since_0 - duration({seconds: $c1_timespan_s}) AS since_1" in rule.query
        and "CALL (since_1, until_1) {" in rule.query
    )
    assert "$c1_threshold" in rule.query and "$c1_r0_p0" in rule.query
    # the inner match carries the outer group-by value from its own (User is its first)
    assert "RETURN 0 AS rule, hs[z] AS host, ts[z] AS t, us[z] AS uid, [g[0]] AS g" in rule.query
    assert rule.parameters["c1_threshold"] == 3


def test_aliases_name_each_rules_field(tmp_path: Path) -> None:
    spec = correlation(
        "temporal",
        ["whoami", "net"],
        **{
            "group-by": ["actor"],
            "aliases": {"actor": {"whoami": "ParentImage", "net": "Image"}},
        },
    )
    rule = the_correlation(compile_docs(tmp_path, WHOAMI, NET, spec)).rule
    assert rule is not None
    assert "[parent.image] AS g" in rule.query and "[p.image] AS g" in rule.query
    assert "OPTIONAL MATCH (parent:Process)-[:SPAWNED]->(p)" in rule.query


def test_the_provgraph_rule_around_a_correlation(tmp_path: Path) -> None:
    spec = correlation("event_count", ["whoami"], **{"group-by": ["User"], "condition": {"gte": 5}})
    rule = the_correlation(compile_docs(tmp_path, WHOAMI, spec)).rule
    assert rule is not None
    assert rule.id == "sigma_3c0e4a51_0000_4000_8000_0000000000ff"
    assert rule.severity == "high" and rule.techniques == ("T1033",)
    assert {(e.role, e.type, e.identity) for e in rule.entities} == {
        ("group", "value", True),
        ("window", "value", True),
        ("host", "host", False),
        ("process", "process", False),
    }
    assert rule.suppression.fields == ("group_key",)
    assert rule.suppression.duration.total_seconds() == 600
    sigma = rule.metadata["sigma"]
    assert sigma["author"] == "Jane Analyst" and sigma["status"] == "experimental"
    assert sigma["correlation"] == {
        "type": "event_count",
        "rules": ["3c0e4a51-0000-4000-8000-000000000001"],
        "group_by": ["User"],
        "timespan": "10m",
        "condition": {"gte": 5},
    }
    assert "Jane Analyst" in rule.description


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (
            correlation("value_sum", ["net"], condition={"gte": 5, "field": "DestinationPort"}),
            "value_sum correlations are not supported",
        ),
        (
            correlation(
                "event_count",
                ["net"],
                **{"group-by": ["DestinationPortName"], "condition": {"gte": 2}},
            ),
            "field 'DestinationPortName' is not in the graph",
        ),
        (
            correlation(
                "event_count", ["net"], **{"group-by": ["AncestorImage"], "condition": {"gte": 2}}
            ),
            "a lineage field (AncestorImage) cannot be a correlation's group-by",
        ),
        (
            correlation(
                "temporal",
                ["whoami", "net"],
                **{"group-by": ["actor"], "aliases": {"actor": {"whoami": "User"}}},
            ),
            "alias 'actor' names no field for rule net",
        ),
        (
            correlation("temporal_ordered", ["whoami", "net"], condition="whoami or net"),
            "extended condition on a temporal_ordered correlation",
        ),
    ],
)
def test_what_cannot_compile_says_why(tmp_path: Path, spec: dict[str, Any], reason: str) -> None:
    result = the_correlation(compile_docs(tmp_path, WHOAMI, NET, spec))
    assert result.status == "failed"
    assert reason in str(result.reason)


def test_a_named_rule_that_does_not_compile_fails_the_correlation(tmp_path: Path) -> None:
    registry = {
        **WHOAMI,
        "name": "reg",
        "id": "3c0e4a51-0000-4000-8000-000000000003",
        "logsource": {"category": "ps_module", "product": "windows"},
    }
    spec = correlation("event_count", ["reg"], condition={"gte": 2})
    results = compile_docs(tmp_path, registry, spec)
    result = the_correlation(results)
    assert (result.status, result.kind) == ("failed", "logsource")
    assert "rule reg named by the correlation does not compile" in str(result.reason)


def test_rules_named_across_files(tmp_path: Path) -> None:
    (tmp_path / "base.yml").write_text(yaml.safe_dump(WHOAMI))
    (tmp_path / "zz_corr.yml").write_text(
        yaml.safe_dump(correlation("event_count", ["whoami"], condition={"gte": 2}))
    )
    report = compile_path([tmp_path])
    assert [(Path(r.path).name, r.status) for r in report.results] == [
        ("base.yml", "part"),
        ("zz_corr.yml", "compiled"),
    ]


def test_generate_true_keeps_the_named_rules_as_rules_of_their_own(tmp_path: Path) -> None:
    spec = correlation("event_count", ["whoami"], condition={"gte": 2})
    spec["correlation"]["generate"] = True
    results = compile_docs(tmp_path, WHOAMI, spec)
    assert [r.status for r in results] == ["compiled", "compiled"]
    base, corr = (r.rule for r in results)
    assert base is not None and corr is not None
    assert base.id == "sigma_3c0e4a51_0000_4000_8000_000000000001" and base.id != corr.id
