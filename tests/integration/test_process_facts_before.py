"""A process's facts_before bounds the times of every timed edge from it (its latest fact
rounded up to the next hour): kept by the writer across batches, late records and identity
resolution, so the host timeline can leave out a process whose facts all came before a window
even when no end of it was ever recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from provgraph.graph.loader import write_events
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.schema import INDEX_NAMES, ensure_schema
from provgraph.graph.tx import Graph
from provgraph.ingest.model import Event, FileOp, Kind, Origin, ProcessRef
from provgraph.queries.provenance import host_timeline

ROOT = Path(__file__).resolve().parents[2]
EMPIRE = ROOT / "tests" / "data" / "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"
OTHER = ROOT / "tests" / "data" / "evtxattack_visual_studio_prebuild_event.sysmon.ndjson"
T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
DAEMON = ProcessRef(uid="g:daemon", pid=300, image="/usr/sbin/daemon", start_time=T0)
IDLE = ProcessRef(uid="g:idle", pid=301, image="/usr/sbin/idle", start_time=T0)
LATER = ProcessRef(
    uid="g:later", pid=302, image="/usr/bin/later", start_time=T0 + timedelta(days=1)
)

# Every timed edge from a process whose times are not all before its facts_before.
UNBOUNDED = """
MATCH (p:Process)-[r]->()
WHERE r.last_time IS NOT NULL AND (p.facts_before IS NULL OR r.last_time >= p.facts_before)
RETURN p.uid AS uid, type(r) AS rel, r.last_time AS last, p.facts_before AS before
"""
FACTS_BEFORE_INDEX_NAME = "process_host_facts_before_start_time"
FACTS_BEFORE = "MATCH (p:Process {uid: $uid}) RETURN p.facts_before AS before"


def _write(proc: ProcessRef, at: datetime, path: str, line: int) -> Event:
    return Event(
        Kind.FILE_WRITE,
        at,
        "lnx1",
        proc,
        Origin("mde", "tests/facts.ndjson", line),
        file_path=path,
        file_op=FileOp.MODIFY,
    )


def _before(graph: Graph, uid: str) -> datetime | None:
    value = graph.read(FACTS_BEFORE, {"uid": uid})[0]["before"]
    return None if value is None else value.to_native().astimezone(UTC)


def test_facts_before_grows_with_later_facts_and_never_shrinks(graph: Graph) -> None:
    write_events(
        graph,
        [
            Event(Kind.PROCESS_START, T0, "lnx1", DAEMON, Origin("mde", "t", 1)),
            Event(Kind.PROCESS_START, T0, "lnx1", IDLE, Origin("mde", "t", 2)),
            _write(DAEMON, T0 + timedelta(minutes=10), "/var/log/d.log", 3),
        ],
    )
    assert _before(graph, "g:daemon") == T0 + timedelta(hours=1)
    assert _before(graph, "g:idle") is None  # no fact: nothing to bound
    # a fact exactly on the hour is before the next one
    write_events(graph, [_write(DAEMON, T0 + timedelta(hours=3), "/var/log/d.log", 4)])
    assert _before(graph, "g:daemon") == T0 + timedelta(hours=4)
    # a late record of an earlier fact leaves the bound where it is
    write_events(graph, [_write(DAEMON, T0 + timedelta(minutes=20), "/var/lib/d/state", 5)])
    assert _before(graph, "g:daemon") == T0 + timedelta(hours=4)
    assert graph.read(UNBOUNDED) == []


def test_a_process_that_never_ended_is_on_the_timeline_only_while_it_has_facts(
    graph: Graph,
) -> None:
    """The daemon never ends: its facts of the first hour and of two days later both come, in
    order, whole or paged one event at a time (the windows in between lose nothing)."""
    write_events(
        graph,
        [
            Event(Kind.PROCESS_START, T0, "lnx1", DAEMON, Origin("mde", "t", 1)),
            _write(DAEMON, T0 + timedelta(minutes=59, seconds=59), "/var/log/a", 2),
            Event(Kind.PROCESS_START, LATER.start_time, "lnx1", LATER, Origin("mde", "t", 3)),
            _write(DAEMON, T0 + timedelta(days=2), "/var/log/b", 4),
        ],
    )
    whole = host_timeline(graph, host="lnx1", limit=100).events
    assert [(e.kind, e.target) for e in whole] == [
        ("process_start", "/usr/sbin/daemon"),
        ("file_write", "/var/log/a"),
        ("process_start", "/usr/bin/later"),
        ("file_write", "/var/log/b"),
    ]
    paged, cursor = [], None
    while True:
        page = host_timeline(graph, host="lnx1", limit=1, cursor=cursor)
        paged += page.events
        if (cursor := page.next_cursor) is None:
            break
    assert [(e.time, e.kind, e.target) for e in paged] == [
        (e.time, e.kind, e.target) for e in whole
    ]
    # from a day later on: the daemon's first-hour write is not there, its later one is
    late = host_timeline(graph, host="lnx1", since=T0 + timedelta(days=1), limit=100).events
    assert [(e.kind, e.target) for e in late] == [
        ("process_start", "/usr/bin/later"),
        ("file_write", "/var/log/b"),
    ]


@pytest.mark.parametrize("batch_size", [37, 5000])
def test_real_records_bound_every_fact_whatever_the_batches(graph: Graph, batch_size: int) -> None:
    """OTRF's Empire set: placeholders named by pid, resolved and absorbed across batches,
    script blocks, registry, pipes, image loads; every timed edge from a process is before its
    facts_before."""
    ingest_sources(graph, EMPIRE, batch_size=batch_size)
    assert graph.read("MATCH (p:Process)-[r:LOADED]->() RETURN count(r) AS n")[0]["n"] > 0
    assert graph.read(UNBOUNDED) == []


def _as_an_older_writer_left_it(graph: Graph) -> int:
    """No facts_before on any process, and no index on it; returns the unbounded edges."""
    graph.write("MATCH (p:Process) REMOVE p.facts_before")
    graph.write(f"DROP INDEX {FACTS_BEFORE_INDEX_NAME} IF EXISTS")
    unbounded = len(graph.read(UNBOUNDED))
    assert unbounded > 100
    return unbounded


def test_a_graph_written_before_facts_before_gets_it_once_from_its_edges(graph: Graph) -> None:
    """As every start-up does (`ensure_schema`: the API's, `provgraph schema`, an ingest)."""
    ingest_sources(graph, EMPIRE, batch_size=500)
    kept = {
        r["uid"]: r["b"]
        for r in graph.read("MATCH (p:Process) RETURN p.uid AS uid, p.facts_before AS b")
    }
    _as_an_older_writer_left_it(graph)
    ensure_schema(graph)
    assert graph.read(UNBOUNDED) == []
    filled = {
        r["uid"]: r["b"]
        for r in graph.read("MATCH (p:Process) RETURN p.uid AS uid, p.facts_before AS b")
    }
    assert filled == kept  # the same bound the writer keeps
    assert FACTS_BEFORE_INDEX_NAME in graph.read(INDEX_NAMES)[0]["names"]
    # once: with the index made, a start-up no longer looks (a process without it stays so)
    graph.write("MATCH (p:Process) WITH p LIMIT 1 REMOVE p.facts_before")
    ensure_schema(graph)
    assert len(graph.read(UNBOUNDED)) >= 1


def test_an_ingest_into_a_graph_written_before_facts_before_fills_it_first(graph: Graph) -> None:
    """An upgraded graph that only ever gets ingests (no API start, no `provgraph schema`)
    still gets the bound on its older processes: the ingest fills it before it writes."""
    ingest_sources(graph, EMPIRE, batch_size=500)
    older = _as_an_older_writer_left_it(graph)
    # the loader alone (no schema step) leaves them as they are
    write_events(graph, [_write(LATER, T0 + timedelta(days=1, minutes=5), "/tmp/x", 1)])
    assert len(graph.read(UNBOUNDED)) == older
    # the next ingest, of other hosts' events: none of Empire's processes get new facts
    ingest_sources(graph, OTHER, batch_size=500)
    assert graph.read(UNBOUNDED) == []
