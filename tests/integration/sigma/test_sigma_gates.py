"""Gated Cypher rules: a Sigma rule reading a fact the graph learns from another event (a file
event's process command line, its creator, a connection's host name) runs as Cypher, but only
when some event of the ingest may match it on the facts the event tells itself (its gate,
`stream.compile_gate`, in three-valued logic). A gate no event opened must mean the rule's
Cypher query finds nothing; that is what these tests check, through the real ingest, on the
real server, in-process and in the parser process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.tx import Graph
from provgraph.queries.engine import evaluate, run_rules
from provgraph.queries.rule import Rule
from provgraph.queries.sigma import compile_path
from provgraph.queries.sigma.stream import SigmaStream, stream_plan
from sigma_common import WIPE_ALL
from sysmon_records import BASE, Recorder

RULES = """
title: office writes a macro file, unless safe mode
id: 6a7e0000-0000-4000-8000-000000000001
logsource: {category: file_event, product: windows}
detection:
  sel:
    Image|endswith: '\\\\winword.exe'
    TargetFilename|endswith: '.docm'
  safe:
    CommandLine|contains: '/safe'
  condition: sel and not safe
---
title: a directory database written from an explorer child
id: 6a7e0000-0000-4000-8000-000000000002
logsource: {category: file_event, product: windows}
detection:
  sel:
    ParentImage|endswith: '\\\\explorer.exe'
    TargetFilename|endswith: '\\\\ntds.dit'
  condition: sel
---
title: python serving http
id: 6a7e0000-0000-4000-8000-000000000003
logsource: {category: network_connection, product: windows}
detection:
  sel:
    Image|endswith: '\\\\python.exe'
    CommandLine|contains: 'http.server'
  condition: sel
---
title: outbound to a dead drop
id: 6a7e0000-0000-4000-8000-000000000004
logsource: {category: network_connection, product: windows}
detection:
  sel:
    Initiated: 'true'
    DestinationHostname|endswith: '.drop.test'
  condition: sel
"""
WORD = "C:\\Program Files\\Office\\WINWORD.EXE"
PYTHON = "C:\\Python311\\python.exe"
CMD = "C:\\Windows\\System32\\cmd.exe"


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Rule]:
    folder = tmp_path_factory.mktemp("gated")
    (folder / "rules.yml").write_text(RULES, encoding="utf-8")
    report = compile_path([folder])
    assert len(report.compiled) == 4, report.format()
    return {int(r.id.rsplit("_", 1)[-1]): r for r in report.rules}


def _matching() -> list[dict[str, Any]]:
    """Events on which every gate opens (1-3 then match as Cypher, 4 does not: no event has
    the host name)."""
    rec = Recorder("ws1")
    rec.start(0, "word", WORD, "winword.exe report.docm")
    rec.start(1, "copier", CMD, "cmd.exe /c copy", parent_image="C:\\Windows\\explorer.exe")
    rec.start(2, "py", PYTHON, "python.exe -m http.server 8080")
    rec.create_file(10, "word", WORD, "C:\\Users\\alice\\report.docm")
    rec.create_file(11, "copier", CMD, "C:\\Temp\\ntds.dit")
    rec.connect(12, "py", PYTHON, "203.0.113.7", 443)
    return rec.records


def _shut() -> list[dict[str, Any]]:
    """Events none of whose own facts can match a rule: every gate stays shut."""
    rec = Recorder("ws1")
    rec.start(0, "word", WORD, "winword.exe report.docm")
    rec.start(1, "shell", CMD, "cmd.exe /c http.server", parent_image="C:\\Windows\\explorer.exe")
    rec.create_file(10, "word", WORD, "C:\\Users\\alice\\notes.txt")
    rec.create_file(11, "shell", CMD, "C:\\Temp\\ntds.bak")
    rec.connect(12, "shell", CMD, "203.0.113.7", 8080, inbound=True)
    return rec.records


def _ingest(
    graph: Graph, stream: SigmaStream, recs: list[dict[str, Any]], tmp: Path, parallel: bool
) -> None:
    path = tmp / "records.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    ingest_sources(graph, [str(path)], observer=stream.observe, parallel=parallel)


def _gated(rules: dict[int, Rule]) -> SigmaStream:
    plan = stream_plan(rules.values(), cache=False)
    assert plan.streamed == [] and len(plan.cypher) == 4
    assert sorted(int(g.rule.id.rsplit("_", 1)[-1]) for g in plan.gates) == [1, 2, 3, 4]
    return SigmaStream(plan.streamed, plan.cypher, plan.gates)


def _opened(stream: SigmaStream) -> set[int]:
    return {int(stream.gates[i].rule.id.rsplit("_", 1)[-1]) for i in stream.opened}


@pytest.mark.parametrize("parallel", [False, True])
def test_a_shut_gate_means_the_cypher_rule_finds_nothing(
    graph: Graph, rules: dict[int, Rule], tmp_path: Path, parallel: bool
) -> None:
    for recs, opened, fired in ((_matching(), {1, 2, 3, 4}, {1, 2, 3}), (_shut(), set(), set())):
        graph.write_autocommit(WIPE_ALL)
        stream = _gated(rules)
        if parallel:
            assert stream.remote() is not None  # the parser process runs the gates too
        _ingest(graph, stream, recs, tmp_path, parallel)
        assert _opened(stream) == opened
        found = {n for n, rule in rules.items() if evaluate(graph, rule)}
        assert found == fired
        # the invariant itself: every rule Cypher matches had its gate opened
        assert found <= _opened(stream)


def test_the_hook_skips_shut_gates_and_runs_open_ones_as_the_engine(
    graph: Graph, rules: dict[int, Rule], tmp_path: Path
) -> None:
    """Through `hook`: an open gate's rule runs as `run_rules` would (the same matches), a
    shut one gets a run without matches and without its query; the gates are then forgotten,
    so the next ingest opens its own."""
    since, until = BASE, BASE.replace(minute=BASE.minute + 1)
    graph.write_autocommit(WIPE_ALL)
    stream = _gated(rules)
    _ingest(graph, stream, _matching(), tmp_path, parallel=False)
    runs = {r.rule_id: r.matches for r in stream.hook(graph, since, until)}
    engine = {r.rule_id: r.matches for r in run_rules(graph, since, until, list(rules.values()))}
    assert runs == engine and sum(runs.values()) >= 3
    assert stream.opened == set()
    graph.write_autocommit(WIPE_ALL)
    _ingest(graph, stream, _shut(), tmp_path, parallel=False)
    assert stream.opened == set()
    runs = {r.rule_id: r.matches for r in stream.hook(graph, since, until)}
    assert set(runs) == {r.id for r in rules.values()} and sum(runs.values()) == 0
