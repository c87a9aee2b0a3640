"""Events become the provenance graph; re-ingest is idempotent; a dead server stops cleanly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from provgraph.graph.loader import IngestInterrupted, Loader, write_events
from provgraph.graph.target import Neo4jTarget
from provgraph.graph.tx import Graph, Retry
from provgraph.ingest.model import Event, FileOp, Kind, Origin, ProcessRef, process_uid
from provgraph.ingest.reader import iter_events

T0 = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)


def _origin(line: int) -> Origin:
    return Origin("test", "synthetic.ndjson", line)


def _events() -> list[Event]:
    shell = ProcessRef(uid="g:shell", pid=10, image=r"C:\Windows\System32\cmd.exe")
    build = ProcessRef(
        uid="g:build",
        pid=11,
        image=r"C:\Windows\Microsoft.NET\MSBuild.exe",
        command_line="MSBuild.exe proj.xml",
        user="CORP\\dev",
        start_time=T0,
    )
    return [
        Event(
            Kind.PROCESS_START,
            T0,
            "ws1",
            build,
            _origin(1),
            parent=shell,
            host_fqdn="ws1.corp.example",
        ),
        Event(
            Kind.FILE_WRITE,
            T0 + timedelta(seconds=5),
            "ws1",
            ProcessRef(uid="g:build"),
            _origin(2),
            file_path=r"C:\src\Program.cs",
            file_op=FileOp.CREATE,
        ),
        Event(
            Kind.FILE_WRITE,
            T0 + timedelta(seconds=9),
            "ws1",
            ProcessRef(uid="g:build"),
            _origin(3),
            file_path=r"C:\SRC\program.CS",
            file_op=FileOp.MODIFY,
            access_mask="0X6",
        ),
        Event(
            Kind.NETWORK_CONNECT,
            T0 + timedelta(seconds=20),
            "ws1",
            ProcessRef(uid="g:build"),
            _origin(4),
            remote_ip="203.0.113.9",
            remote_port=443,
            protocol="tcp",
        ),
        Event(
            Kind.PROCESS_END,
            T0 + timedelta(minutes=1),
            "ws1",
            ProcessRef(uid="g:build"),
            _origin(5),
        ),
    ]


def _counts(graph: Graph) -> dict[str, int]:
    nodes = graph.read("MATCH (n) RETURN count(n) AS c")[0]["c"]
    rels = graph.read("MATCH ()-[r]->() RETURN count(r) AS c")[0]["c"]
    return {"nodes": nodes, "rels": rels}


def test_events_become_nodes_and_timed_edges(graph: Graph) -> None:
    write_events(graph, _events())
    spawned = graph.read(
        "MATCH (p:Process)-[s:SPAWNED]->(c:Process)-[:ON_HOST]->(h:Host) "
        "RETURN p.uid AS parent, p.placeholder AS ph, c.name AS child, c.placeholder AS cph, "
        "c.end_time AS ended, s.time AS t, h.name AS host, h.fqdn AS fqdn"
    )
    assert spawned == [
        {
            "parent": "g:shell",
            "ph": True,
            "child": "msbuild.exe",
            "cph": False,
            "ended": T0 + timedelta(minutes=1),
            "t": T0,
            "host": "ws1",
            "fqdn": "ws1.corp.example",
        }
    ]
    wrote = graph.read(
        "MATCH (:Process {uid: 'g:build'})-[w:WROTE]->(f:File) "
        "RETURN f.ext AS ext, w.count AS n, w.times AS times, w.ops AS ops, "
        "w.access_masks AS masks"
    )
    # Paths differing only in case are one file on Windows.
    assert wrote == [
        {
            "ext": ".cs",
            "n": 2,
            "times": [T0 + timedelta(seconds=5), T0 + timedelta(seconds=9)],
            "ops": ["create", "modify"],
            "masks": ["0x6"],
        }
    ]
    conn = graph.read(
        "MATCH (:Process {uid: 'g:build'})-[r:CONNECTED_TO]->(c:Connection) "
        "RETURN c.ip AS ip, c.is_public AS public, r.sources AS sources"
    )
    assert conn == [{"ip": "203.0.113.9", "public": False, "sources": ["test:synthetic.ndjson:4"]}]


@pytest.mark.parametrize("batch_size", [1, 5000])
def test_process_sources_are_the_records_that_describe_it(graph: Graph, batch_size: int) -> None:
    """Start, end and first mention; the file writes and the connection are on the edges."""
    write_events(graph, _events(), batch_size=batch_size)
    rows = graph.read("MATCH (p:Process) RETURN p.uid AS uid, p.sources AS sources ORDER BY uid")
    assert rows == [
        {"uid": "g:build", "sources": ["test:synthetic.ndjson:1", "test:synthetic.ndjson:5"]},
        {"uid": "g:shell", "sources": ["test:synthetic.ndjson:1"]},
    ]


def test_reingest_creates_nothing_new(graph: Graph) -> None:
    write_events(graph, _events())
    before = _counts(graph)
    write_events(graph, _events(), batch_size=2)  # other batch boundaries, same result
    assert _counts(graph) == before
    # one host edge per process, and the writer's in-statement marker never persists
    assert graph.read("MATCH (p:Process) RETURN count { (p)-[:ON_HOST]->() } AS n") == [
        {"n": 1},
        {"n": 1},
    ]
    assert graph.read("MATCH (p:Process) WHERE p.created_now IS NOT NULL RETURN count(p) AS n") == [
        {"n": 0}
    ]
    assert graph.read("MATCH ()-[w:WROTE]->() RETURN w.count AS n") == [{"n": 2}]


def test_parent_seen_first_as_parent_is_completed_later(graph: Graph) -> None:
    child = ProcessRef(uid="g:child", pid=2, image="/usr/bin/sh", start_time=T0)
    parent = ProcessRef(uid="g:parent", pid=1, image="/usr/bin/npm")
    write_events(graph, [Event(Kind.PROCESS_START, T0, "lin1", child, _origin(1), parent=parent)])
    full_parent = ProcessRef(
        uid="g:parent",
        pid=1,
        image="/usr/bin/npm",
        command_line="npm install",
        start_time=T0 - timedelta(seconds=3),
    )
    write_events(
        graph,
        [Event(Kind.PROCESS_START, T0 - timedelta(seconds=3), "lin1", full_parent, _origin(2))],
    )
    rows = graph.read(
        "MATCH (p:Process {uid: 'g:parent'})-[:SPAWNED]->(:Process {uid: 'g:child'}) "
        "RETURN p.placeholder AS ph, p.command_line AS cmd"
    )
    assert rows == [{"ph": False, "cmd": "npm install"}]


def test_creator_known_by_pid_resolves_to_latest_earlier_process(graph: Graph) -> None:
    host = "ws2"
    old = ProcessRef(
        uid=process_uid(host=host, pid=500, start_time=T0 - timedelta(hours=2)),
        pid=500,
        image=r"C:\old.exe",
        start_time=T0 - timedelta(hours=2),
    )
    new = ProcessRef(
        uid=process_uid(host=host, pid=500, start_time=T0 - timedelta(minutes=1)),
        pid=500,
        image=r"C:\Windows\System32\cmd.exe",
        start_time=T0 - timedelta(minutes=1),
    )
    child = ProcessRef(
        uid=process_uid(host=host, pid=600, start_time=T0),
        pid=600,
        image=r"C:\MSBuild.exe",
        start_time=T0,
    )
    creator = ProcessRef(uid=process_uid(host=host, pid=500), pid=500)
    write_events(
        graph,
        [
            Event(Kind.PROCESS_START, old.start_time, host, old, _origin(1)),
            Event(Kind.PROCESS_START, new.start_time, host, new, _origin(2)),
        ],
    )
    write_events(graph, [Event(Kind.PROCESS_START, T0, host, child, _origin(3), parent=creator)])
    rows = graph.read("MATCH (p:Process)-[:SPAWNED]->(c:Process {pid: 600}) RETURN p.uid AS uid")
    assert rows == [{"uid": new.uid}]


def test_loader_commits_everything_in_batches(graph: Graph) -> None:
    commits = []
    with Loader(graph, batch_size=2, on_commit=lambda s: commits.append(s.events)) as load:
        for event in _events():
            load.add(event)
    assert load.stats.events == 5 and load.stats.batches == 3
    assert commits == [2, 4, 5]
    assert load.stats.first_ts == T0 and load.stats.last_ts == T0 + timedelta(minutes=1)


SHAPE = (
    "MATCH (n) OPTIONAL MATCH (n)-[r]->(m) "
    "RETURN labels(n)[0] AS label, coalesce(n.uid, n.key, n.name) AS key, "
    "type(r) AS rel, coalesce(m.uid, m.key, m.name) AS target, "
    "r.count AS count, n.placeholder AS placeholder ORDER BY label, key, rel, target"
)
DATA = Path(__file__).resolve().parents[1] / "data"


def test_overlapped_loader_writes_the_same_graph_as_one_batch_at_a_time(graph: Graph) -> None:
    """Batch k commits while batch k+1 runs: tiny batches make many such overlaps, and the
    graph must come out exactly as the plain writer makes it (nothing lost, nothing twice)."""
    files = sorted(str(p) for p in DATA.glob("*.ndjson"))
    write_events(graph, iter_events(files), batch_size=3)
    expected = graph.read(SHAPE)
    hosts = graph.read(
        "MATCH (h:Host) RETURN h.name AS name, h.first_seen AS first, "
        "h.last_seen AS last ORDER BY name"
    )
    graph.write_autocommit("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS")
    with Loader(graph, batch_size=3, queue_depth=4) as load:
        for event in iter_events(files):
            load.add(event)
    assert load.stats.events > 250 and load.stats.batches > 80
    assert graph.read(SHAPE) == expected
    assert (
        graph.read(
            "MATCH (h:Host) RETURN h.name AS name, h.first_seen AS first, "
            "h.last_seen AS last ORDER BY name"
        )
        == hosts
    )


def test_creator_by_pid_in_the_next_batch_finds_its_parent(graph: Graph) -> None:
    """A parent started in batch k and a child naming it only by pid in batch k+1: the
    child's lookup must wait for batch k's commit, or it would invent a placeholder."""
    events = []
    for i in range(40):
        start = T0 + timedelta(seconds=i)
        parent = ProcessRef(
            uid=process_uid(host="ws9", pid=1000 + i, start_time=start),
            pid=1000 + i,
            image=r"C:\Windows\System32\cmd.exe",
            start_time=start,
        )
        child = ProcessRef(
            uid=process_uid(host="ws9", pid=5000 + i, start_time=start),
            pid=5000 + i,
            image=r"C:\Tools\child.exe",
            start_time=start,
        )
        events.append(Event(Kind.PROCESS_START, start, "ws9", parent, _origin(2 * i)))
        events.append(
            Event(
                Kind.PROCESS_START,
                start,
                "ws9",
                child,
                _origin(2 * i + 1),
                parent=ProcessRef(uid=process_uid(host="ws9", pid=1000 + i), pid=1000 + i),
            )
        )
    with Loader(graph, batch_size=1, queue_depth=8) as load:
        for event in events:
            load.add(event)
    rows = graph.read(
        "MATCH (p:Process)-[:SPAWNED]->(c:Process {host: 'ws9'}) "
        "RETURN count(*) AS edges, sum(CASE WHEN p.placeholder THEN 1 ELSE 0 END) "
        "AS placeholders"
    )
    assert rows == [{"edges": 40, "placeholders": 0}]


def test_host_times_cover_every_batch(graph: Graph) -> None:
    """Host first/last-seen are written apart from the batches; they still span them all."""
    with Loader(graph, batch_size=2) as load:
        for event in _events():
            load.add(event)
    rows = graph.read(
        "MATCH (h:Host {name: 'ws1'}) RETURN h.first_seen AS first, "
        "h.last_seen AS last, h.fqdn AS fqdn"
    )
    assert rows == [{"first": T0, "last": T0 + timedelta(minutes=1), "fqdn": "ws1.corp.example"}]


def test_dead_neo4j_stops_with_what_was_written() -> None:
    nowhere = Neo4jTarget(uri="bolt://127.0.0.1:9", user="neo4j", password="x")
    graph = Graph(nowhere, retry=Retry(attempts=2, first_delay=0.05))
    with (
        pytest.raises(
            IngestInterrupted, match=r"Committed before it stopped: 0 events in 0 batches"
        ),
        Loader(graph, batch_size=2) as load,
    ):
        for event in _events():
            load.add(event)
    graph.close()


def test_read_timeout_stops_a_long_query(graph: Graph) -> None:
    from neo4j.exceptions import ClientError

    with pytest.raises(ClientError, match="(?i)timeout|terminated"):
        graph.read(
            "UNWIND range(1, 100000000) AS x WITH x WHERE x % 7 = 123 RETURN count(x) AS n",
            timeout=0.5,
        )
    assert graph.read("RETURN 1 AS one", timeout=5) == [{"one": 1}]
