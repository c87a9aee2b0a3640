"""The real public extracts become a provenance graph; bad input loses nothing else."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.tx import Graph
from provgraph.ingest.evtx_file import FILE_HEADER_SIZE

from tests.unit.ingest.evtx_samples import NETEXEC, build, record_spans

DATA = Path(__file__).resolve().parents[1] / "data"
MORDOR = DATA / "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"


@pytest.fixture
def loaded(graph: Graph) -> Graph:
    report = ingest_sources(graph, sorted(DATA.glob("*.ndjson")))
    assert report.written == report.summary.events > 200
    return graph


def test_known_parent_child_pairs(loaded: Graph) -> None:
    rows = loaded.read(
        "MATCH (p:Process)-[:SPAWNED]->(c:Process {uid: $child}) "
        "RETURN p.uid AS parent, p.name AS name",
        {"child": "g:d273d0f0-cc0c-5f67-0b08-000000000800"},
    )
    assert rows == [{"parent": "g:d273d0f0-cc0c-5f67-0908-000000000800", "name": "cmd.exe"}]
    vs = loaded.read(
        "MATCH (p:Process {name: 'devenv.exe'})-[:SPAWNED]->(c:Process {name: 'msbuild.exe'}) "
        "RETURN c.host AS host"
    )
    assert vs == [{"host": "laptop-ju4m3i0e"}]
    npm = loaded.read(
        "MATCH (p:Process)-[:SPAWNED]->(c:Process {name: 'cmd.exe'}) "
        "WHERE p.command_line CONTAINS 'npm-cli.js' RETURN c.command_line AS cmd"
    )
    assert {"cmd": r"C:\WINDOWS\system32\cmd.exe /d /s /c node setup_bun.js"} in npm
    log4shell = loaded.read(
        "MATCH (:Process {name: 'java', host: 'ubuntu5'})-[:SPAWNED]->(c:Process) "
        "RETURN c.name AS name"
    )
    assert {"name": "bash"} in log4shell


def test_known_file_write_with_exact_times(loaded: Graph) -> None:
    rows = loaded.read(
        "MATCH (p:Process)-[w:WROTE]->(f:File) WHERE f.path ENDS WITH $name "
        "RETURN p.uid AS uid, f.host AS host, f.ext AS ext, size(w.times) AS n, w.sources AS src",
        {"name": r"\tfmbbev2\tfmbbev2.0.cs"},
    )
    assert len(rows) == 1
    row = rows[0]
    assert (row["uid"], row["host"], row["ext"], row["n"]) == (
        "g:d273d0f0-cc0c-5f67-0b08-000000000800",
        "workstation6",
        ".cs",
        2,
    )
    source, path, line = row["src"][0].rsplit(":", 2)
    record = json.loads(MORDOR.read_text().splitlines()[int(line) - 1])
    assert record["TargetFilename"].endswith("tfmbbev2.0.cs")  # traceable to its raw record


def test_known_connection(loaded: Graph) -> None:
    rows = loaded.read(
        "MATCH (p:Process)-[r:CONNECTED_TO]->(c:Connection {ip: '10.10.10.5', port: 80}) "
        "MATCH (m:Process {name: 'msbuild.exe'})-[:SPAWNED*1..3]->(p) "
        "RETURN DISTINCT p.name AS name, c.is_public AS public, r.raw IS NOT NULL AS has_raw"
    )
    assert rows == [{"name": "powershell.exe", "public": False, "has_raw": True}]


def test_reingest_of_real_data_adds_nothing(loaded: Graph) -> None:
    count = "MATCH (n) OPTIONAL MATCH (n)-[r]->() RETURN count(DISTINCT n) AS n, count(r) AS r"
    before = loaded.read(count)
    ingest_sources(loaded, sorted(DATA.glob("*.ndjson")), batch_size=97)
    assert loaded.read(count) == before


def test_bad_records_are_dead_lettered_and_nothing_valid_is_lost(
    graph: Graph, tmp_path: Path
) -> None:
    good = MORDOR.read_text().splitlines()
    mixed = []
    for index, line in enumerate(good):
        mixed.append(line)
        if index % 500 == 0:
            mixed.append('{"EventID": 1, "SourceName": "Microsoft-Windows-Sysmon", "truncated')
    body = ("\n".join(mixed) + "\n").encode() + b"\xff\xfe not utf-8\n"
    source = tmp_path / "mixed.ndjson.gz"
    source.write_bytes(gzip.compress(body))
    dead = tmp_path / "dead.ndjson"
    bad_report = ingest_sources(graph, [source], dead_letters=dead)
    letters = [json.loads(x) for x in dead.read_text().splitlines()]
    assert len(letters) == sum(bad_report.summary.rejected.values()) >= 11
    assert all(
        d["path"].endswith("mixed.ndjson.gz") and d["line"] > 0 and d["reason"] for d in letters
    )
    with_bad = graph.read("MATCH (n) RETURN count(n) AS n")
    graph.write_autocommit("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS")
    clean_report = ingest_sources(graph, [io.BytesIO(MORDOR.read_bytes())])
    assert clean_report.written == bad_report.written
    assert graph.read("MATCH (n) RETURN count(n) AS n") == with_bad


def test_parallel_parser_process_builds_the_same_graph(graph: Graph, tmp_path: Path) -> None:
    """Parsing in a second process (the default for large files) changes nothing in the graph,
    the summary or the dead letters."""
    source = tmp_path / "mordor-with-junk.ndjson"
    source.write_bytes(MORDOR.read_bytes() + b'{"EventID": 1, "broken\n\xff\xfe\n')
    count = "MATCH (n) OPTIONAL MATCH (n)-[r]->() RETURN count(DISTINCT n) AS n, count(r) AS r"
    results = {}
    for parallel in (False, True):
        graph.write_autocommit("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS")
        dead = tmp_path / f"dead-{parallel}.ndjson"
        report = ingest_sources(
            graph, [source], dead_letters=dead, batch_size=700, parallel=parallel
        )
        letters = [(x["line"], x["reason"]) for x in map(json.loads, dead.read_text().splitlines())]
        results[parallel] = (
            report.summary.to_dict(),
            report.written,
            report.first_ts,
            report.last_ts,
            letters,
            graph.read(count),
        )
    assert results[True] == results[False]
    summary, written, *_, letters, counts = results[True]
    # (97 nodes: one per real process since Sysmon and Security records of one are joined)
    assert written > 100 and len(letters) == 2 and counts[0]["n"] > 90


def test_the_parser_process_carries_back_every_fact_of_the_summary(
    graph: Graph, tmp_path: Path
) -> None:
    """Failed inputs, cut-short EVTX and the rejections shown come back from the parser
    process exactly as an in-process run tells them."""
    junk_first = tmp_path / "junk-first.ndjson"
    junk_first.write_bytes(b"\x00garbage\n" + MORDOR.read_bytes())
    sources = [junk_first, tmp_path / "missing.ndjson"]
    if NETEXEC.exists():
        data, _ = build(NETEXEC)
        cut = tmp_path / "cut.evtx"
        cut.write_bytes(data[: FILE_HEADER_SIZE + record_spans(data[FILE_HEADER_SIZE:])[3][0] + 9])
        sources.append(cut)
    results = {}
    for parallel in (False, True):
        graph.write_autocommit("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS")
        report = ingest_sources(
            graph, sources, dead_letters=tmp_path / f"dl-{parallel}.ndjson", parallel=parallel
        )
        results[parallel] = (report.summary.to_dict(), report.problems, report.written)
    assert results[True] == results[False]
    summary, problems, written = results[True]
    assert written > 100 and set(problems) == {str(p) for p in sources[1:]}
    assert summary["rejections"]["shown"][0]["line"] == 1  # the junk first line
    assert summary["rejections"]["total"] == 1 + 1 + (4 if len(sources) == 3 else 0)


@pytest.mark.parametrize("parallel", [False, True])
def test_reference_only_evidence_keeps_sources_not_raw(graph: Graph, parallel: bool) -> None:
    ingest_sources(graph, [MORDOR], evidence="refs", parallel=parallel)
    rows = graph.read(
        "MATCH ()-[r:SPAWNED|WROTE|CONNECTED_TO]->() "
        "RETURN count(r) AS edges, count(r.raw) AS with_raw, "
        "sum(CASE WHEN r.sources IS NOT NULL OR r.source IS NOT NULL THEN 1 END) "
        "AS with_refs"
    )
    assert rows[0]["edges"] > 50 and rows[0]["with_raw"] == 0
    assert rows[0]["with_refs"] == rows[0]["edges"]
    with pytest.raises(ValueError, match="evidence must be one of raw, refs"):
        ingest_sources(graph, [MORDOR], evidence="none")
