"""A host timeline is read a time window at a time: events far apart, a process started days
before it writes, a process whose start was never seen, all still come, in order, paged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.ingest.model import Event, FileOp, Kind, Origin, ProcessRef

from tests.integration.api.scenario import T0

P = "/api/v1/provenance"
OLD = ProcessRef(uid="g:svc", pid=700, image="/usr/sbin/svc", start_time=T0 - timedelta(days=3))
UNSEEN = ProcessRef(uid="g:unseen", pid=900, image="/usr/bin/agent")  # no start on record
SHORT = ProcessRef(uid="g:short", pid=800, image="/usr/bin/tar", start_time=T0)


def _events() -> list[Event]:
    line = iter(range(1, 100))

    def write(proc: ProcessRef, at: timedelta, path: str) -> Event:
        return Event(
            Kind.FILE_WRITE,
            T0 + at,
            "lnx1",
            proc,
            Origin("mde", "tests/windows.ndjson", next(line)),
            file_path=path,
            file_op=FileOp.MODIFY,
        )

    return [
        Event(Kind.PROCESS_START, OLD.start_time, "lnx1", OLD, Origin("mde", "t", 90)),
        Event(Kind.PROCESS_START, T0, "lnx1", SHORT, Origin("mde", "t", 91)),
        write(SHORT, timedelta(seconds=1), "/tmp/a.tar"),
        Event(Kind.PROCESS_END, T0 + timedelta(seconds=2), "lnx1", SHORT, Origin("mde", "t", 92)),
        write(UNSEEN, timedelta(hours=2), "/var/log/agent.log"),
        # Days after the service started, and hours after anything else happened.
        write(OLD, timedelta(hours=5), "/var/log/svc.log"),
        write(OLD, timedelta(hours=5, seconds=1), "/var/lib/svc/state"),
        write(OLD, timedelta(days=2), "/var/lib/svc/state.new"),
    ]


def test_timeline_windows_miss_nothing(
    client: TestClient, graph: Graph, key: Callable[..., dict[str, str]]
) -> None:
    write_events(graph, _events())
    reader = key("read")
    whole = client.get(f"{P}/hosts/lnx1/timeline", params={"limit": 1000}, headers=reader)
    assert whole.status_code == 200, whole.text
    events = whole.json()["events"]
    seen = [(e["kind"], e["process"]["uid"], e["target"]) for e in events]
    assert seen == [
        ("process_start", "g:svc", "/usr/sbin/svc"),
        ("process_start", "g:short", "/usr/bin/tar"),
        ("file_write", "g:short", "/tmp/a.tar"),
        ("process_end", "g:short", "/usr/bin/tar"),
        ("file_write", "g:unseen", "/var/log/agent.log"),
        ("file_write", "g:svc", "/var/log/svc.log"),
        ("file_write", "g:svc", "/var/lib/svc/state"),
        ("file_write", "g:svc", "/var/lib/svc/state.new"),
    ]
    paged, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{P}/hosts/lnx1/timeline", params=params, headers=reader).json()
        paged += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == events
    later = client.get(
        f"{P}/hosts/lnx1/timeline",
        params={"since": (T0 + timedelta(hours=1)).isoformat()},
        headers=reader,
    ).json()["events"]
    assert [e["target"] for e in later] == [
        "/var/log/agent.log",
        "/var/log/svc.log",
        "/var/lib/svc/state",
        "/var/lib/svc/state.new",
    ]
    nothing = client.get(f"{P}/hosts/nosuchhost/timeline", headers=reader).json()
    assert nothing["events"] == [] and nothing["next_cursor"] is None


def test_a_fact_stamped_just_before_its_process_start_is_not_lost(graph: Graph) -> None:
    """Sources stamp a start and its process's facts with clocks of their own (MDE's
    connections come up to a second before their process's start): a window that ends
    between the two still holds the fact."""
    from provgraph.queries.provenance import TIMELINE_WINDOW, host_timeline

    first = ProcessRef(uid="g:first", pid=100, image="/usr/bin/first", start_time=T0)
    start = T0 + TIMELINE_WINDOW + timedelta(milliseconds=500)
    late = ProcessRef(uid="g:late", pid=200, image="/usr/bin/curl", start_time=start)
    write_events(
        graph,
        [
            Event(Kind.PROCESS_START, T0, "lnx2", first, Origin("mde", "t", 1)),
            Event(Kind.PROCESS_START, start, "lnx2", late, Origin("mde", "t", 2)),
            Event(
                Kind.FILE_WRITE,
                start - timedelta(seconds=1),  # in the first window; the start is not
                "lnx2",
                late,
                Origin("mde", "t", 3),
                file_path="/tmp/early.out",
                file_op=FileOp.CREATE,
            ),
        ],
    )
    events = host_timeline(graph, host="lnx2", limit=100).events
    assert [(e.kind, e.target) for e in events] == [
        ("process_start", "/usr/bin/first"),
        ("file_write", "/tmp/early.out"),
        ("process_start", "/usr/bin/curl"),
    ]
