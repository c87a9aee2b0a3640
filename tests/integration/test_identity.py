"""One real process, one node: Sysmon, Security, Defender and ECS records of the same process
end up on one node whatever order they arrive in (graph.identity)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from provgraph.graph.identity import TOLERANCE, ProcessResolver
from provgraph.graph.loader import Loader, write_events
from provgraph.graph.tx import Graph
from provgraph.graph.writer import Batch, write_statements
from provgraph.ingest.model import Event, Kind, Origin, ProcessRef, process_uid
from provgraph.ingest.reader import iter_events
from provgraph.ingest.windows import parse_windows

DATA = Path(__file__).resolve().parents[1] / "data"
EMPIRE = DATA / "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"
MSBUILD = "g:d273d0f0-cc0c-5f67-0b08-000000000800"
MSBUILD_4688 = "p:workstation6:5460:20200920T213926.186000"
WIPE = "MATCH (n) DETACH DELETE n"

# Every property and edge, sources as sets (their order is the order records came in).
NODES = """
MATCH (n)
RETURN labels(n)[0] AS label, coalesce(n.uid, n.key, n.name) AS key,
       COLLECT { UNWIND keys(n) AS k WITH k WHERE k <> 'sources'
                 RETURN [k, n[k]] ORDER BY k } AS props,
       COLLECT { UNWIND coalesce(n.sources, []) AS s RETURN s ORDER BY s } AS sources
ORDER BY label, key
"""
EDGES = """
MATCH (a)-[r]->(b)
RETURN type(r) AS type, coalesce(a.uid, a.key, a.name) AS start,
       coalesce(b.uid, b.key, b.name) AS end,
       COLLECT { UNWIND keys(r) AS k WITH k WHERE NOT k IN ['sources', 'ops']
                 RETURN [k, r[k]] ORDER BY k } AS props,
       COLLECT { UNWIND coalesce(r.sources, []) + coalesce(r.ops, []) AS s
                 RETURN s ORDER BY s } AS sets
ORDER BY type, start, end
"""


def _dump(graph: Graph) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return graph.read(NODES), graph.read(EDGES)


def _records() -> list[tuple[int, dict[str, Any]]]:
    with EMPIRE.open() as lines:
        return [(n, json.loads(line)) for n, line in enumerate(lines, 1)]


def _pick(predicate: Any) -> list[Event]:
    """Parsed events of the Empire records the predicate picks, with their real line numbers."""
    events = []
    for number, record in _records():
        if predicate(record):
            events += parse_windows(record, Origin("windows", str(EMPIRE), number))
    return events


def _is_start_of(record: dict[str, Any], guid: str, pid: int) -> bool:
    if record.get("EventID") == 1 and record.get("SourceName") == "Microsoft-Windows-Sysmon":
        return record["ProcessGuid"] == guid
    if record.get("EventID") == 4688:
        return int(record["NewProcessId"], 16) == pid
    return False


# MSBuild (5460) and its first csc.exe (7160), each by Sysmon 1 and by Security 4688
BUILD_PAIR = _pick(lambda r: _is_start_of(r, "{d273d0f0-cc0c-5f67-0b08-000000000800}", 5460))
CSC_PAIR = _pick(lambda r: _is_start_of(r, "{d273d0f0-cc0e-5f67-0c08-000000000800}", 7160))


def test_the_pairs_are_what_they_say() -> None:
    assert [e.origin.source for e in BUILD_PAIR] == ["sysmon", "security"]
    assert [e.process.uid for e in BUILD_PAIR] == [MSBUILD, MSBUILD_4688]
    assert [e.origin.source for e in CSC_PAIR] == ["security", "sysmon"]


def test_empire_has_one_node_per_real_process(graph: Graph) -> None:
    write_events(graph, iter_events(EMPIRE))
    rows = graph.read(
        "MATCH (p:Process {host: 'workstation6', name: 'msbuild.exe'}) "
        "RETURN p.uid AS uid, p.pid AS pid, p.aliases AS aliases, p.guid AS guid, "
        "p.start_time AS start, p.placeholder AS placeholder"
    )
    assert rows == [
        {
            "uid": MSBUILD,
            "pid": 5460,
            "aliases": [MSBUILD_4688],
            "guid": MSBUILD[2:],
            # Sysmon's UtcTime, not the collector's @timestamp the 4688 carries
            "start": datetime(2020, 9, 20, 21, 39, 24, 350000, tzinfo=UTC),
            "placeholder": False,
        }
    ]
    # every process both sources started is one node: no 4688 key is left on a started process
    # of workstation6. The only host+pid keys are processes no record saw start (services the
    # Security 5156 records name by pid; NXLog dropped Sysmon's pids, so nothing joins them).
    pid_keyed = graph.read(
        "MATCH (p:Process {host: 'workstation6'}) WHERE p.uid STARTS WITH 'p:' "
        "RETURN p.uid AS uid, p.placeholder AS placeholder, p.start_time AS start"
    )
    assert all(r["placeholder"] and r["start"] is None for r in pid_keyed), pid_keyed
    assert graph.read(
        "MATCH (p:Process {host: 'workstation6'}) WHERE NOT p.placeholder "
        "RETURN p.name AS name, count(*) AS n, sum(size(p.aliases)) AS aliases ORDER BY name"
    ) == [
        {"name": "cmd.exe", "n": 1, "aliases": 1},
        {"name": "conhost.exe", "n": 1, "aliases": 1},
        {"name": "csc.exe", "n": 2, "aliases": 2},
        {"name": "cvtres.exe", "n": 2, "aliases": 2},
        {"name": "msbuild.exe", "n": 1, "aliases": 1},
        {"name": "powershell.exe", "n": 1, "aliases": 1},
        {"name": "whoami.exe", "n": 1, "aliases": 1},
        {"name": "wmiprvse.exe", "n": 2, "aliases": 2},
    ]
    # the children and edges of both sources are on the one MSBuild node
    children = graph.read(
        "MATCH (:Process {uid: $uid})-[s:SPAWNED]->(c:Process) "
        "RETURN c.name AS name, c.pid AS pid, s.source STARTS WITH 'sysmon' AS sysmon "
        "ORDER BY pid",
        {"uid": MSBUILD},
    )
    assert children == [
        {"name": "powershell.exe", "pid": 3008, "sysmon": True},
        {"name": "csc.exe", "pid": 7160, "sysmon": True},
        {"name": "csc.exe", "pid": 9844, "sysmon": True},
    ]
    parent = graph.read(
        "MATCH (c:Process)-[:SPAWNED]->(:Process {uid: $uid}) "
        "RETURN c.name AS name, c.pid AS pid, count(*) AS edges",
        {"uid": MSBUILD},
    )
    assert parent == [{"name": "cmd.exe", "pid": 6952, "edges": 1}]
    sources = graph.read(
        "MATCH (p:Process {uid: $uid}) UNWIND p.sources AS s "
        "RETURN split(s, ':')[0] AS source, count(*) AS n ORDER BY source",
        {"uid": MSBUILD},
    )
    assert sources == [{"source": "security", "n": 1}, {"source": "sysmon", "n": 1}]  # its starts
    wrote = graph.read(
        "MATCH (:Process {uid: $uid})-[:WROTE]->(f:File {ext: '.cs'}) RETURN f.name AS name "
        "ORDER BY name",
        {"uid": MSBUILD},
    )
    assert wrote == [{"name": "qu22daba.0.cs"}, {"name": "tfmbbev2.0.cs"}]


def test_the_tolerance_covers_the_measured_gaps(graph: Graph) -> None:
    """How far apart the two sources put one process's start in the Empire set: Security
    4688's time (the collector's @timestamp) trails Sysmon's UtcTime by 0.72 to 2.08 s, the
    figures graph.identity.TOLERANCE was chosen from."""
    write_events(graph, iter_events(EMPIRE))
    rows = graph.read(
        "MATCH (p:Process) WHERE p.uid STARTS WITH 'g:' AND p.aliases IS NOT NULL "
        "UNWIND p.aliases AS alias "
        "RETURN p.start_time AS sysmon, split(alias, ':')[3] AS security"
    )
    gaps = sorted(
        (
            datetime.strptime(r["security"], "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
            - r["sysmon"].to_native()
        )
        / timedelta(milliseconds=1)
        for r in rows
    )
    assert len(gaps) == 11
    assert (gaps[0], gaps[len(gaps) // 2], gaps[-1]) == (720, 1444, 2079)
    assert gaps[-1] * 1000 < TOLERANCE / 2  # microseconds: twice the largest gap seen


def _write_all(graph: Graph, events: list[Event], how: str) -> None:
    if how == "one batch":
        write_events(graph, events)
    elif how == "a batch each":
        with Loader(graph, batch_size=1, queue_depth=4) as load:  # overlapped commits
            for event in events:
                load.add(event)
    else:  # a run each: nothing shared but the committed graph
        for event in events:
            write_events(graph, [event])


ORDERS = [
    (how, order)
    for how in ("one batch", "a batch each", "a run each")
    for order in itertools.permutations(range(4))
    if how == "one batch" or order in {(0, 1, 2, 3), (1, 0, 3, 2), (3, 2, 1, 0), (2, 0, 3, 1)}
]


def test_the_same_records_in_any_order_give_the_same_graph(graph: Graph) -> None:
    """MSBuild and its csc child, each by Sysmon 1 and Security 4688: in one batch, a batch
    each (the loader renaming a node the previous, maybe uncommitted, batch made) and a run
    each, in many orders, the graph is the same, down to every property."""
    events = BUILD_PAIR + CSC_PAIR
    write_events(graph, events)
    expected = _dump(graph)
    nodes = {row["key"] for row in expected[0]}
    assert {MSBUILD, "g:d273d0f0-cc0e-5f67-0c08-000000000800"} <= nodes
    assert not any(key.startswith("p:") for key in nodes)
    for how, order in ORDERS:
        graph.write(WIPE)
        _write_all(graph, [events[i] for i in order], how)
        assert _dump(graph) == expected, (how, order)


def test_the_pair_in_separate_runs_renames_the_node(graph: Graph) -> None:
    """4688 first (with its child naming it by pid), Sysmon 1 in a later run: the node takes
    the GUID, keeps the 4688 key as an alias, and its child's parent_uid follows."""
    write_events(graph, [BUILD_PAIR[1], CSC_PAIR[0]])
    assert graph.read("MATCH (p:Process {uid: $uid}) RETURN count(p) AS n", {"uid": MSBUILD_4688})
    write_events(graph, [BUILD_PAIR[0]])
    rows = graph.read(
        "MATCH (p:Process {name: 'msbuild.exe'})-[:SPAWNED]->(c:Process) "
        "RETURN p.uid AS uid, p.aliases AS aliases, c.parent_uid AS child_parent"
    )
    assert rows == [{"uid": MSBUILD, "aliases": [MSBUILD_4688], "child_parent": MSBUILD}]
    # and re-ingesting the 4688 record finds the renamed node, not a new one
    write_events(graph, [BUILD_PAIR[1]])
    assert graph.read("MATCH (p:Process {name: 'msbuild.exe'}) RETURN count(p) AS n") == [{"n": 1}]


def test_a_bounded_run_cache_forgets_and_reads_the_graph_instead(graph: Graph) -> None:
    """A run cache far too small for the Empire set (5 of its 31 processes) forgets processes
    as it goes and asks the graph for them again: the graph comes out the same."""
    events = list(iter_events(EMPIRE))
    write_events(graph, events, batch_size=10)
    expected = _dump(graph)
    graph.write(WIPE)
    resolver = ProcessResolver(graph, max_known=5)
    held = []
    for i in range(0, len(events), 10):
        batch = Batch()
        for event in events[i : i + 10]:
            batch.add(event)
        folded = resolver.resolve(batch.folded(host_times=True))
        write_statements(graph, folded.statements, batch.events)
        held.append(len(resolver._known))
    assert min(held[4:]) <= 5 < max(held)  # it forgot, and kept going
    assert _dump(graph) == expected


T0 = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)


def _origin(line: int) -> Origin:
    return Origin("test", "identity.ndjson", line)


def _start(
    uid: str, pid: int, at: datetime, image: str, line: int, parent: ProcessRef | None = None
) -> Event:
    ref = ProcessRef(uid=uid, pid=pid, image=image, start_time=at)
    return Event(Kind.PROCESS_START, at, "ws1", ref, _origin(line), parent=parent)


def _by_pid(kind: Kind, pid: int, at: datetime, line: int, **target: Any) -> Event:
    ref = ProcessRef(uid=process_uid(host="ws1", pid=pid), pid=pid)
    return Event(kind, at, "ws1", ref, _origin(line), **target)


def test_a_pid_reused_later_is_another_process(graph: Graph) -> None:
    first = process_uid(host="ws1", pid=500, start_time=T0)
    later = T0 + timedelta(hours=1)
    events = [
        _start(first, 500, T0, r"C:\Windows\System32\cmd.exe", 1),
        _by_pid(Kind.FILE_WRITE, 500, T0 + timedelta(seconds=10), 2, file_path=r"C:\a.txt"),
        _by_pid(Kind.PROCESS_END, 500, T0 + timedelta(minutes=30), 3),
        # pid 500 again an hour later, now with a GUID: not the cmd.exe above
        _start("g:later", 500, later, r"C:\Windows\System32\cmd.exe", 4),
        _by_pid(Kind.FILE_WRITE, 500, later + timedelta(seconds=10), 5, file_path=r"C:\b.txt"),
    ]
    write_events(graph, events)
    rows = graph.read(
        "MATCH (p:Process {pid: 500}) OPTIONAL MATCH (p)-[:WROTE]->(f:File) "
        "RETURN p.uid AS uid, p.end_time AS ended, collect(f.name) AS wrote ORDER BY uid"
    )
    assert rows == [
        {"uid": "g:later", "ended": None, "wrote": ["b.txt"]},
        {"uid": first, "ended": T0 + timedelta(minutes=30), "wrote": ["a.txt"]},
    ]


def test_a_start_within_tolerance_but_another_image_is_another_process(graph: Graph) -> None:
    write_events(
        graph,
        [
            _start(process_uid(host="ws1", pid=77, start_time=T0), 77, T0, r"C:\a.exe", 1),
            _start("g:other", 77, T0 + timedelta(seconds=1), r"C:\b.exe", 2),
        ],
    )
    assert graph.read("MATCH (p:Process {pid: 77}) RETURN count(p) AS n") == [{"n": 2}]


def test_defender_and_ecs_records_join_sysmon_and_the_guid_wins(graph: Graph) -> None:
    """A site running Sysmon, Defender and Elastic on one host: three keys, one process."""
    image = r"C:\Tools\agent.exe"
    mde = ProcessRef(
        uid=process_uid(host="ws1", pid=4242, start_time=T0 + timedelta(milliseconds=3)),
        pid=4242,
        image=image,
        command_line="agent.exe --mde",
        start_time=T0 + timedelta(milliseconds=3),
    )
    ecs = ProcessRef(uid="e:abc", pid=4242, image=image, start_time=T0)
    sysmon = ProcessRef(
        uid="g:agent", pid=4242, image=image, command_line="agent.exe", start_time=T0
    )
    write_events(graph, [Event(Kind.PROCESS_START, T0, "ws1", mde, _origin(1))])
    write_events(graph, [Event(Kind.PROCESS_START, T0, "ws1", ecs, _origin(2))])
    write_events(graph, [Event(Kind.PROCESS_START, T0, "ws1", sysmon, _origin(3))])
    rows = graph.read(
        "MATCH (p:Process {pid: 4242}) "
        "RETURN p.uid AS uid, p.aliases AS aliases, p.command_line AS cmd"
    )
    assert rows == [{"uid": "g:agent", "aliases": ["e:abc", mde.uid], "cmd": "agent.exe"}]


@pytest.mark.parametrize("batch_size", [1, 5000])
def test_a_creator_named_by_pid_before_its_guid_is_one_node(graph: Graph, batch_size: int) -> None:
    """A 4688 names its creator by pid before any record gives that pid to the creator's
    GUID: the placeholder it made is claimed when a Sysmon record says GUID + pid."""
    creator = ProcessRef(uid=process_uid(host="ws1", pid=960), pid=960)
    child = _start(process_uid(host="ws1", pid=8, start_time=T0), 8, T0, r"C:\x.exe", 1, creator)
    svchost = ProcessRef(uid="g:svchost", pid=960, image=r"C:\svchost.exe")
    later = T0 + timedelta(seconds=30)
    sysmon_child = _start("g:child2", 9, later, r"C:\y.exe", 2, svchost)
    with Loader(graph, batch_size=batch_size) as load:
        for event in [child, sysmon_child]:
            load.add(event)
    rows = graph.read(
        "MATCH (p:Process {pid: 960})-[:SPAWNED]->(c:Process) "
        "RETURN p.uid AS uid, collect(c.pid) AS children"
    )
    assert len(rows) == 1 and sorted(rows[0]["children"]) == [8, 9]
    assert rows[0]["uid"] == "g:svchost"
