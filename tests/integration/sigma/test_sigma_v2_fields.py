"""Sigma fields on the v2 graph's facts, on the real server: an image's PE facts (Sysmon 1
`OriginalFileName`, `Hashes`, `Company`, `Signed`…) and a connection's direction (`Initiated`,
`SourceIp`, an inbound connection's `DestinationPort`). Each rule is run as Cypher and through
the stream (the records through the real ingest pipeline), and both must match the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.tx import Graph
from provgraph.queries.engine import evaluate
from provgraph.queries.sigma import compile_path
from provgraph.queries.sigma.stream import SigmaStream, row_key, stream_plan
from sigma_common import WIPE_ALL
from sysmon_records import Recorder, guid

MSBUILD = "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\MSBuild.exe"
RENAMED = "C:\\Users\\Public\\notes.exe"  # a renamed copy of MSBuild
IMPHASH = "F34D5F2D4577ED6D9CEEC516C1F5A744"
SVCHOST = "C:\\Windows\\System32\\svchost.exe"


def _records() -> list[dict[str, Any]]:
    rec = Recorder("ws1")
    rec.start(
        0,
        "msbuild",
        MSBUILD,
        "MSBuild.exe x.proj",
        extra={
            "OriginalFileName": "MSBuild.exe",
            "Company": "Microsoft Corporation",
            "Product": "Microsoft® .NET Framework",
            "Description": "MSBuild.exe",
            "FileVersion": "4.8.3761.0",
            "Hashes": f"SHA1=2E5B1B2E8E4C1D1B6D1C5F1A7E0F3B9C1D2E3F40,IMPHASH={IMPHASH}",
        },
    )
    rec.start(
        1,
        "renamed",
        RENAMED,
        "notes.exe evil.proj",
        extra={
            "OriginalFileName": "MSBuild.exe",
            "Company": "Microsoft Corporation",
            "Hashes": f"MD5=0123456789ABCDEF0123456789ABCDEF,IMPHASH={IMPHASH}",
        },
    )
    rec.start(
        2,
        "svchost",
        SVCHOST,
        "svchost.exe -k termsvc",
        extra={"OriginalFileName": "svchost.exe", "Company": "Contoso Ltd"},
    )
    rec.connect(3, "svchost", SVCHOST, "198.51.100.7", 3389, inbound=True)
    rec.connect(4, "svchost", SVCHOST, "198.51.100.7", 5985, inbound=True)
    rec.connect(5, "svchost", SVCHOST, "203.0.113.9", 3389)
    return rec.records


def _rule(n: int, category: str, detection: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": f"v2 field rule {n}",
        "id": f"00000000-0000-4000-9000-{n:012d}",
        "status": "test",
        "level": "high",
        "logsource": {"category": category, "product": "windows"},
        "detection": detection,
    }


def _sel(fields: dict[str, Any]) -> dict[str, Any]:
    return {"sel": fields, "condition": "sel"}


PC, NC = "process_creation", "network_connection"
# rule number -> (category, detection, the processes (process_creation) or (process, peer,
# port) it must match)
CASES: dict[int, tuple[str, dict[str, Any], set[Any]]] = {
    1: (PC, _sel({"OriginalFileName": "msbuild.exe"}), {"msbuild", "renamed"}),
    2: (
        PC,
        {
            "pe": {"OriginalFileName": "MSBuild.exe"},
            "path": {"Image|endswith": "\\MSBuild.exe"},
            "condition": "pe and not path",
        },
        {"renamed"},
    ),
    3: (PC, _sel({"Hashes|contains": f"IMPHASH={IMPHASH.lower()}"}), {"msbuild", "renamed"}),
    4: (PC, _sel({"Hashes|contains": "MD5=0123456789ABCDEF0123456789ABCDEF"}), {"renamed"}),
    5: (PC, _sel({"Imphash": IMPHASH}), {"msbuild", "renamed"}),
    6: (
        PC,
        _sel({"Company|startswith": "microsoft", "FileVersion|startswith": "4.8"}),
        {"msbuild"},
    ),
    7: (
        PC,
        _sel({"Product|contains": ".NET Framework", "Description": "msbuild.exe"}),
        {"msbuild"},
    ),
    8: (
        PC,
        {
            "a": {"Image|endswith": ".exe"},
            "b": {"Company": "Microsoft Corporation"},
            "condition": "a and not b",
        },
        {"svchost"},
    ),  # fmt: skip
    9: (NC, _sel({"Initiated": "false", "DestinationPort": 3389}), {("198.51.100.7", 3389)}),
    10: (NC, _sel({"Initiated": "true", "DestinationPort": 3389}), {("203.0.113.9", 3389)}),
    11: (
        NC,
        _sel({"SourceIp|cidr": "198.51.100.0/24"}),
        {("198.51.100.7", 3389), ("198.51.100.7", 5985)},
    ),
    12: (NC, _sel({"DestinationIp|startswith": "198.51."}), set()),  # inbound: the peer is a source
    13: (
        NC,
        _sel({"DestinationPort": [3389, 5985]}),
        {("198.51.100.7", 3389), ("198.51.100.7", 5985), ("203.0.113.9", 3389)},
    ),  # fmt: skip
}


@pytest.fixture
def rules(tmp_path: Path) -> Any:
    folder = tmp_path / "rules"
    folder.mkdir()
    docs = [_rule(n, category, det) for n, (category, det, _) in CASES.items()]
    (folder / "rules.yml").write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    report = compile_path([folder])
    assert len(report.compiled) == len(CASES), report.format()
    return {r.name.rsplit(" ", 1)[-1]: r for r in report.rules}


def _uid(name: str) -> str:
    return "g:" + guid(name).lower()


def _expected(n: int) -> set[Any]:
    category, _, want = CASES[n]
    if category == PC:
        return {_uid(name) for name in want}
    return {(_uid("svchost"), ip, port) for ip, port in want}


def _found(rows: list[dict[str, Any]], category: str) -> set[Any]:
    if category == PC:
        return {r["process_uid"] for r in rows}
    return {(r["process_uid"], r["remote_ip"], r["remote_port"]) for r in rows}


def test_v2_fields_match_as_sigma_means_them_in_cypher_and_in_the_stream(
    graph: Graph, rules: Any, tmp_path: Path
) -> None:
    graph.write_autocommit(WIPE_ALL)
    plan = stream_plan(rules.values())
    assert plan.why == {}, plan.why  # every case streams
    stream = SigmaStream(plan.streamed)
    path = tmp_path / "records.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records()), encoding="utf-8")
    ingest_sources(graph, [str(path)], observer=stream.observe, parallel=False)
    streamed = stream.matched()
    fetched = stream.matches(graph)
    for n, (category, _, _) in CASES.items():
        rule = rules[str(n)]
        rows = [m.row for m in evaluate(graph, rule)]
        assert _found(rows, category) == _expected(n), (n, rows)
        assert not stream.deferred(next(sr for sr in stream.rules if sr.rule is rule)), n
        assert streamed[rule.id] == {row_key(category, r) for r in rows}, n
        assert _found([m.row for m in fetched[rule.id]], category) == _expected(n), n


def test_image_facts_missing_from_a_start_are_decided_on_the_graphs_facts(
    graph: Graph, rules: Any, tmp_path: Path
) -> None:
    """A start record without PE facts (a Security 4688, a Sysmon config without Hashes) cannot
    say what the image File holds from other records: after the ingest, the rules reading them
    decide that start on the facts the graph holds (the values their Cypher reads), and no
    rule is sent to Cypher for the whole ingest."""
    graph.write_autocommit(WIPE_ALL)
    stream = SigmaStream(stream_plan(rules.values()).streamed)
    rec = Recorder("ws1")
    rec.start(0, "bare", MSBUILD, "MSBuild.exe y.proj")
    path = tmp_path / "records.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records() + rec.records))
    ingest_sources(graph, [str(path)], observer=stream.observe, parallel=False)
    assert not [sr.rule.name for sr in stream.rules if stream.deferred(sr)]
    assert set(stream.undecided["process_creation"]) == {(_uid("bare"), "")}
    # the Cypher run knows the image of the bare start from the other one's record
    rows = [m.row for m in evaluate(graph, rules["1"])]
    assert _uid("bare") in {r["process_uid"] for r in rows}
    fetched = stream.matches(graph)

    def by_id(matches: list[Any]) -> list[Any]:
        return sorted(matches, key=lambda m: m.id)

    assert by_id(fetched[rules["1"].id]) == by_id(evaluate(graph, rules["1"]))
    for n, (category, _, _) in CASES.items():
        rule = rules[str(n)]
        cypher = _found([m.row for m in evaluate(graph, rule)], category)
        assert _found([m.row for m in fetched[rule.id]], category) == cypher, n
    # rule 8 (`not Company: Microsoft…`) would match the bare start on its own record alone
    assert _uid("bare") not in _found([m.row for m in fetched[rules["8"].id]], PC)
    assert stream.undecided == {}
