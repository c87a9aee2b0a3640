"""Compiled SigmaHQ rules on the real Neo4j: each fires on its own regression recording (the
copies in tests/data/sigma), the server accepts every query, and the Cypher matches exactly what
pySigma's SQLite backend matches on the same records."""

from __future__ import annotations

from pathlib import Path

import pytest
from provgraph.graph.tx import Graph
from provgraph.queries.catalog import explain_rule
from provgraph.queries.engine import evaluate
from provgraph.queries.sigma import compile_path

# this folder is on sys.path (no __init__: a package named `sigma` would shadow pySigma)
from sigma_common import (
    DATA,
    SIGMA_DATA,
    SqliteReference,
    ingest_records,
    matched_keys,
    records,
    sysmon_records,
)

SAMPLES = sorted((SIGMA_DATA / "samples").glob("*.ndjson"))
COMPILED = {Path(r.path).stem: r for r in compile_path([SIGMA_DATA / "rules"]).results}


def test_every_sample_has_a_compiled_rule() -> None:
    assert len(SAMPLES) == 8
    assert {s.stem for s in SAMPLES} == set(COMPILED)
    assert all(r.compiled for r in COMPILED.values()), [r.reason for r in COMPILED.values()]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_rule_fires_on_its_recording(graph: Graph, sample: Path, tmp_path: Path) -> None:
    result = COMPILED[sample.stem]
    assert result.rule is not None
    assert explain_rule(graph, result.rule) == []
    recs = records(sample)
    assert ingest_records(graph, recs, tmp_path) == len(recs)
    matches = evaluate(graph, result.rule)
    assert len(matches) == 1
    (match,) = matches
    data = recs[0]["Event"]["EventData"]
    assert match.row["process_uid"] == "g:" + data["ProcessGuid"].strip("{}").lower()
    assert match.row["host"] == recs[0]["Event"]["System"]["Computer"].split(".")[0].lower()
    assert {e.type for e in match.entities} >= {"process"}
    # the window is the event's own time: a range that ends before it finds nothing
    first = match.first_seen
    assert evaluate(graph, result.rule, until=first.replace(year=first.year - 1)) == []


def test_rules_stay_silent_on_each_others_recordings(graph: Graph, tmp_path: Path) -> None:
    """All eight recordings in one graph: each rule finds its own event and no other."""
    recs = [rec for sample in SAMPLES for rec in records(sample)]
    ingest_records(graph, recs, tmp_path)
    found = {}
    for name, result in COMPILED.items():
        assert result.rule is not None
        found[name] = len(evaluate(graph, result.rule))
    assert found == dict.fromkeys(COMPILED, 1)


DIFFERENTIAL_RULES = sorted((SIGMA_DATA / "differential").glob("*.yml")) + sorted(
    (SIGMA_DATA / "rules").glob("*.yml")
)
DIFFERENTIAL_DATA = sorted(DATA.glob("*.ndjson")) + SAMPLES


def test_cypher_equals_pysigma_sqlite_on_the_same_records(graph: Graph, tmp_path: Path) -> None:
    """Single-event rules: the set of matched events (process, or process and file) is the same
    in the graph as in pySigma's SQLite backend over the same Sysmon records."""
    recs = sysmon_records(DIFFERENTIAL_DATA)
    ingest_records(graph, recs, tmp_path)
    reference = SqliteReference(recs)
    report = compile_path(DIFFERENTIAL_RULES)
    assert [r.path for r in report.failed] == []
    compared = fired = 0
    for result in report.compiled:
        assert result.rule is not None and result.compiled_query is not None
        category = result.compiled_query.logsource
        want = reference.matches(Path(result.path).read_text(encoding="utf-8"), category)
        got = matched_keys(graph, result.rule, category)
        assert got == want, result.path
        compared += 1
        fired += bool(got)
    assert compared == 15
    assert fired == 15  # each differential rule matches something in these recordings
