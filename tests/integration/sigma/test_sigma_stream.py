"""Streamed Sigma evaluation equals the pure Cypher run, rule by rule, on the real server.

The events go through the real ingest pipeline with the stream as its observer (as `provgraph
ingest` wires it); then, for every streamed rule, the identities it matched while the events
passed, and the rows read back for them, equal what the rule's compiled Cypher finds over the
graph. Data: the SigmaHQ regression recordings (the shared snapshot) and the Sysmon recordings
of tests/data, against the whole compiled SigmaHQ rule set; and the inline rules of the
semantics story (every modifier), where the story's events go through the same pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.tx import Graph
from provgraph.queries.engine import evaluate
from provgraph.queries.rule import Rule
from provgraph.queries.sigma import compile_path
from provgraph.queries.sigma.stream import SigmaStream, catalog_stream, row_key, stream_plan
from sigma_common import DATA, SIGMAHQ, WIPE_ALL, records, sysmon_records


def _keys(rows: list[dict[str, Any]], category: str) -> set[tuple[str, str]]:
    return {row_key(category, r) for r in rows}


def _stream_ingest(
    graph: Graph, stream: SigmaStream, recs: list[dict[str, Any]], tmp: Path
) -> None:
    path = tmp / "records.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    ingest_sources(graph, [str(path)], observer=stream.observe, parallel=False)


def _story() -> list[Any]:
    """The semantics story's events, each file / network event naming its process's image as
    Sysmon's records do (the story's specs leave it to the process's start)."""
    import dataclasses

    from provgraph.ingest.model import Kind
    from provgraph.queries.examples import events_from_specs
    from test_sigma_semantics import STORY

    events = events_from_specs(STORY)
    starts = {e.process.uid: e.process for e in events if e.kind is Kind.PROCESS_START}
    out = []
    for e in events:
        if e.kind is not Kind.PROCESS_START and e.process.image is None:
            proc = dataclasses.replace(e.process, image=starts[e.process.uid].image)
            e = dataclasses.replace(e, process=proc)
        if e.parent is not None and e.parent.uid in starts:
            e = dataclasses.replace(e, parent=starts[e.parent.uid])
        out.append(e)
    return out


def _differences(graph: Graph, stream: SigmaStream) -> tuple[int, dict[str, Any]]:
    """(rules that matched, rule id -> (streamed only, Cypher only)) for every streamed rule."""
    fetched = stream.matches(graph)  # first: it decides the undecided identities (recheck)
    streamed = stream.matched()
    fired, diff = 0, {}
    for sr in stream.rules:
        if stream.deferred(sr):
            continue  # an event lacked a fact the rule reads: it runs as Cypher
        cypher = _keys([m.row for m in evaluate(graph, sr.rule)], sr.category)
        ours = streamed[sr.rule.id]
        rows = _keys([m.row for m in fetched[sr.rule.id]], sr.category)
        fired += bool(cypher)
        # the raw hits are before the product test (it reads Host.os when rows are read
        # back): they cover Cypher's matches; the rows the stream gives equal them exactly
        if not ours >= cypher or rows != cypher:
            diff[sr.rule.id] = (sorted(ours - cypher), sorted(cypher - ours), sorted(rows ^ cypher))
    return fired, diff


@pytest.mark.slow
@pytest.mark.skipif(not SIGMAHQ.is_dir(), reason=f"no SigmaHQ snapshot at {SIGMAHQ}")
def test_streamed_matches_equal_cypher_over_sigmahq_recordings(
    graph: Graph, tmp_path: Path
) -> None:
    report = compile_path([SIGMAHQ / "rules"])
    plan = stream_plan(report.rules)
    assert len(plan.streamed) >= 850  # nearly every compiled rule streams
    recs = [
        rec
        for json_file in sorted((SIGMAHQ / "regression_data").rglob("*.json"))
        for rec in records(json_file)
    ]
    recs += sysmon_records(sorted(DATA.glob("*.ndjson")))
    graph.write_autocommit(WIPE_ALL)
    stream = SigmaStream(plan.streamed, plan.cypher, plan.gates)
    _stream_ingest(graph, stream, recs, tmp_path)
    assert stream.events >= 200
    fired, diff = _differences(graph, stream)
    print(f"\nstreamed rules: {len(stream.rules)}, fired: {fired}, differing: {len(diff)}")
    assert fired >= 40  # the regression suite makes many rules fire
    assert diff == {}
    # a gated Cypher rule whose gate no event opened finds nothing as Cypher either
    shut = [g.rule for i, g in enumerate(stream.gates) if i not in stream.opened]
    assert len(stream.gates) >= 20 and shut and len(shut) < len(stream.gates)
    assert {r.id for r in shut if evaluate(graph, r)} == set()
    # the index did its job: far fewer matcher calls than rules x events
    assert stream.confirmed < len(stream.rules) * stream.events / 10


@pytest.mark.slow
@pytest.mark.skipif(not SIGMAHQ.is_dir(), reason=f"no SigmaHQ snapshot at {SIGMAHQ}")
def test_stream_in_the_parser_process_observes_what_it_would_in_process(
    graph: Graph, tmp_path: Path
) -> None:
    """Files ingested in parallel run the stream's twin in the parser process (made from the
    same specs); what it saw, absorbed back, is what the stream sees in-process: the same
    hits, the same identities left to the graph's facts, the same events counted."""
    windows = SIGMAHQ / "rules" / "windows"
    report = compile_path([windows / "process_creation", windows / "file" / "file_event"])
    plan = stream_plan(report.rules, cache=False)
    recs = [
        rec
        for json_file in sorted((SIGMAHQ / "regression_data").rglob("*.json"))
        for rec in records(json_file)
    ]
    recs += sysmon_records(sorted(DATA.glob("*.ndjson")))
    path = tmp_path / "records.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    seen = []
    for parallel in (False, True):
        graph.write_autocommit(WIPE_ALL)
        stream = SigmaStream(plan.streamed, plan.cypher, plan.gates)
        assert stream.remote() is not None
        ingest_sources(graph, [str(path)], observer=stream.observe, parallel=parallel)
        seen.append(stream)
    here, there = seen
    assert there.events == here.events >= 200
    assert there.matched() == here.matched()
    assert sum(map(bool, here.matched().values())) >= 10
    assert there.undecided == here.undecided and there.incomplete == here.incomplete
    assert there.host_of == here.host_of and there.confirmed == here.confirmed
    assert there.opened == here.opened and len(here.gates) >= 3  # the file rules' gates
    _, diff = _differences(graph, there)  # and its matches are still Cypher's
    assert diff == {}


SEMANTIC_RULES = """
title: case, wildcards, lists, all
id: 5e1a0000-0000-4000-8000-000000000001
logsource: {category: process_creation, product: windows}
detection:
  sel:
    Image|endswith: ['\\\\CMD.exe', '\\\\powershell.exe']
    CommandLine|contains|all: ['reg', 'add']
  condition: sel
---
title: wildcard in the middle, single char
id: 5e1a0000-0000-4000-8000-000000000002
logsource: {category: process_creation, product: windows}
detection:
  sel:
    CommandLine: 'powershell -N?P *SQBF*'
  condition: sel
---
title: null and empty, not
id: 5e1a0000-0000-4000-8000-000000000003
logsource: {category: process_creation, product: windows}
detection:
  sel:
    User|endswith: 'alice'
  empty:
    CommandLine: ''
  nocmd:
    CommandLine: null
  condition: sel and (empty or nocmd) or (sel and not empty)
---
title: re with flags, windash, base64offset
id: 5e1a0000-0000-4000-8000-000000000004
logsource: {category: process_creation, product: windows}
detection:
  a:
    CommandLine|re|i: 'POWERSHELL\\s+-nop'
  b:
    CommandLine|windash|contains: ' -enc '
  c:
    CommandLine|base64offset|contains: 'IEX'
  condition: a and b or c
---
title: cidr, numbers, comparisons, exists
id: 5e1a0000-0000-4000-8000-000000000005
logsource: {category: network_connection, product: windows}
detection:
  net:
    DestinationIp|cidr: ['10.0.0.0/8', '2001:db8::/32']
  port:
    DestinationPort: 445
  high:
    DestinationPort|gte: 8
  ex:
    Image|exists: true
  condition: (net and port) or (high and ex and not net)
---
title: fieldref
id: 5e1a0000-0000-4000-8000-000000000006
logsource: {category: process_creation, product: windows}
detection:
  sel:
    ParentUser|fieldref: User
  condition: sel
---
title: file created, cased
id: 5e1a0000-0000-4000-8000-000000000007
logsource: {category: file_event, product: windows}
detection:
  sel:
    TargetFilename|endswith: '.ps1'
  cased:
    TargetFilename|cased|contains: 'Temp'
  condition: sel or cased
"""


def test_streamed_matches_equal_cypher_for_every_modifier(graph: Graph, tmp_path: Path) -> None:
    from provgraph.graph.loader import write_events

    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "rules.yml").write_text(SEMANTIC_RULES, encoding="utf-8")
    report = compile_path([folder])
    assert len(report.compiled) == 7, report.format()
    stream = catalog_stream(report.rules)
    assert stream is not None and len(stream.rules) == 7
    graph.write_autocommit(WIPE_ALL)
    events = _story()
    for event in events:
        stream.observe(event)
    write_events(graph, events)
    assert [sr.rule.id for sr in stream.rules if stream.deferred(sr)] == []
    fired, diff = _differences(graph, stream)
    assert diff == {}
    assert fired >= 5


def test_pipeline_hook_turns_streamed_hits_into_the_same_alerts(
    graph: Graph, tmp_path: Path
) -> None:
    """Through `hook` (what `provgraph ingest` runs): the streamed rules' alerts are those the
    Cypher run would write: running the rules as Cypher afterwards finds every alert already
    there (nothing created, nothing updated), and a second stream changes nothing either."""
    from provgraph.graph.loader import write_events
    from provgraph.queries.engine import run_rules

    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "rules.yml").write_text(SEMANTIC_RULES, encoding="utf-8")
    rules: list[Rule] = compile_path([folder]).rules
    graph.write_autocommit(WIPE_ALL)
    events = _story()
    since, until = min(e.ts for e in events), max(e.ts for e in events)
    stream = catalog_stream(rules)
    assert stream is not None
    for event in events:
        stream.observe(event)
    write_events(graph, events)
    runs = stream.hook(graph, since, until)
    assert sum(r.created for r in runs) >= 5
    assert all(r.error is None for r in runs)
    cypher = run_rules(graph, since, until, rules)
    assert [(r.rule_id, r.created, r.updated) for r in cypher if r.created or r.updated] == []
    assert {r.rule_id: r.matches for r in cypher} == {r.rule_id: r.matches for r in runs}
    again = catalog_stream(rules)
    assert again is not None
    for event in events:
        again.observe(event)
    assert sum(r.created + r.updated for r in again.hook(graph, since, until)) == 0


def test_matchers_from_the_kept_specs_equal_fresh_ones(
    graph: Graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """The specs kept on disk (`SpecCache`, what `sigma import` leaves) give the same plan and
    the same matches as rules put through pySigma afresh; a later process reads them all and
    makes none; a changed mapping (the code hash) is a new cache; a damaged file is rebuilt."""
    from provgraph.graph.loader import write_events
    from provgraph.queries.sigma import stream as stream_module
    from provgraph.queries.sigma.stream import SpecCache

    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "rules.yml").write_text(SEMANTIC_RULES, encoding="utf-8")
    rules = compile_path([folder]).rules
    kept = tmp_path / "specs"
    fresh = stream_plan(rules, cache=False)
    first = SpecCache(kept)
    stream_plan(rules, cache=first)
    assert first.path.is_file() and first.added == 0  # written
    later = SpecCache(kept)
    assert len(later.specs) == 7
    cached = stream_plan(rules, cache=later)
    assert later.added == 0  # every rule's spec read, none made
    assert cached.why == fresh.why
    assert [(s.rule.id, s.category, s.literals, s.reads, s.platform) for s in cached.streamed] == [
        (s.rule.id, s.category, s.literals, s.reads, s.platform) for s in fresh.streamed
    ]
    events = _story()
    streams = [SigmaStream(fresh.streamed), SigmaStream(cached.streamed)]
    for event in events:
        for s in streams:
            s.observe(event)
    assert streams[0].matched() == streams[1].matched()
    assert sum(map(len, streams[1].matched().values())) >= 5
    graph.write_autocommit(WIPE_ALL)
    write_events(graph, events)
    _, diff = _differences(graph, streams[1])
    assert diff == {}

    monkeypatch.setattr(stream_module, "_code_hash", lambda: "another-mapping")
    changed = SpecCache(kept)
    assert changed.path != later.path and changed.specs == {}
    monkeypatch.undo()
    later.path.write_bytes(b"not a pickle")
    damaged = SpecCache(kept)
    assert damaged.specs == {} and "unreadable" in caplog.text
    assert stream_plan(rules, cache=damaged).why == fresh.why
    assert len(SpecCache(kept).specs) == 7  # rewritten whole


PLATFORM_RULES = """
title: bash on windows
id: 5e1a0000-0000-4000-8000-000000000011
logsource: {category: process_creation, product: windows}
detection:
  sel:
    Image|contains: bash
  condition: sel
---
title: bash on linux
id: 5e1a0000-0000-4000-8000-000000000012
logsource: {category: process_creation, product: linux}
detection:
  sel:
    Image|contains: bash
  condition: sel
"""


def test_streamed_rules_judge_only_hosts_of_their_product(graph: Graph, tmp_path: Path) -> None:
    """The stream leaves out hosts known to run another product, as the Cypher query does."""
    from provgraph.graph.loader import write_events
    from provgraph.queries.examples import events_from_specs

    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "rules.yml").write_text(PLATFORM_RULES, encoding="utf-8")
    stream = catalog_stream(compile_path([folder]).rules)
    assert stream is not None and len(stream.rules) == 2
    graph.write_autocommit(WIPE_ALL)
    specs = [
        {"kind": "process_start", "t": 0, "host": "win1", "uid": "w", "pid": 1,
         "image": "C:\\Tools\\bash.exe"},
        {"kind": "process_start", "t": 1, "host": "lin1", "uid": "l", "pid": 2,
         "image": "/usr/bin/bash"},
        {"kind": "process_start", "t": 2, "host": "odd1", "uid": "u", "pid": 3, "image": "bash"},
    ]  # fmt: skip
    events = events_from_specs(specs)
    for event in events:
        stream.observe(event)
    write_events(graph, events)
    fetched = stream.matches(graph)
    by_title = {sr.rule.name: sr.rule for sr in stream.rules}
    for title, expected in (("bash on windows", {"w", "u"}), ("bash on linux", {"l", "u"})):
        rule = by_title[title]
        cypher = {m.row["process_uid"].removeprefix("g:") for m in evaluate(graph, rule)}
        streamed = {m.row["process_uid"].removeprefix("g:") for m in fetched[rule.id]}
        assert streamed == cypher == expected, title
