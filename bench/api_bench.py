"""Load on the read API as SOAR and analysts use it, while more telemetry is being ingested.

    python -m bench.api_bench [--events 100000] [--concurrency 8] [--requests 300]
                              [--batch 20000]   # events ingested meanwhile (0: none)
                              [--full]          # 1M events, 200k ingested meanwhile
                              [--workers N]     # uvicorn processes
                              [--keep]          # reuse the graph already built (as built)
                              [--baseline DIR]  # and another checkout's API, side by side

Builds a graph from N generated events (bench.generate, ingested through the pipeline with
the rules running), makes sure there are enough alerts to page through, starts
`uvicorn provgraph.api.app:create_app` on 127.0.0.1 in a subprocess, warms it up, then starts
a second process ingesting another batch of generated events (a later day of the same
estate) through the real pipeline, rules included, and meanwhile drives every read endpoint
from `--concurrency` client threads, the endpoints interleaved: alert list pages, alert
subgraphs, process lineage (ancestry, descendants, activity summary), a process's facts of
one kind (the expand of a grouped count), file writers and host timelines. Prints p50, p99
and max latency, errors and requests per second per endpoint, the ingest rate achieved and
how much of the measured window the ingest overlapped. Targets: alert list p99 < 100 ms,
everything else p99 < 250 ms. Uses the bench Neo4j (bench.common.bench_graph).

`--baseline DIR` serves a second API from another checkout (DIR, with its own .venv, e.g. the
main branch) on the same graph, and sends every request to both in turn (the same targets,
interleaved, under the same load): the two servers' figures side by side, so a change is
measured against what it replaces on one machine in one run, never against an old figure.
`--concurrency 1 --batch 0` is one request at a time with nothing ingested meanwhile.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from bench.common import (
    DATA,
    OUT,
    ROOT,
    bench_graph,
    generated,
    machine,
    telemetry_files,
    wipe,
    write_result,
)

LIST_TARGET_MS = 100.0
READ_TARGET_MS = 250.0
MIN_ALERTS = 500
SAMPLE = 200  # targets sampled per endpoint (a mix of random and the densest)

SYNTHETIC_ALERT = """
MATCH (p:Process {uid: $uid})
OPTIONAL MATCH (p)-[:WROTE]->(f:File)
WITH p, collect(f)[0] AS f
CREATE (a:Alert {id: $id, rule_id: 'bench_synthetic', rule_name: 'Synthetic bench alert',
        severity: $severity, risk_score: 50, tactics: ['TA0002'], techniques: ['T1059'],
        host: p.host, first_seen: $time, last_seen: $time, hit_count: 1, status: 'open',
        assignee: null, created_at: datetime(), updated_at: datetime(), seq: $seq,
        summary: 'bench', details: '{}'})
CREATE (a)-[:INVOLVES {role: 'process'}]->(p)
FOREACH (file IN CASE WHEN f IS NULL THEN [] ELSE [f] END |
  CREATE (a)-[:INVOLVES {role: 'file'}]->(file))
"""

SAMPLE_PROCESSES = """
MATCH (p:Process) WHERE p.placeholder = false AND (p)-[:SPAWNED]->()
RETURN p.uid AS uid LIMIT $limit
"""

# Half random processes, half the ones with the most edges (the worst cases of every read).
RANDOM_PROCESSES = """
MATCH (p:Process) WHERE p.placeholder = false
WITH p ORDER BY rand() LIMIT $limit
RETURN p.uid AS uid
"""
DENSE_PROCESSES = """
MATCH (p:Process) WHERE p.placeholder = false
WITH p, COUNT { (p)-->() } AS degree ORDER BY degree DESC LIMIT $limit
RETURN p.uid AS uid
"""
# A dense process's kinds of facts: what a grouped count expands to.
FACT_GROUPS = """
UNWIND $uids AS uid
MATCH (p:Process {uid: uid})-[r]->(m) WHERE type(r) IN $types
WITH uid, type(r) AS rel, count(*) AS n WHERE n >= 3
RETURN uid, rel ORDER BY n DESC LIMIT $limit
"""
WRITTEN_FILES = """
MATCH (f:File) WHERE (f)<-[:WROTE]-()
WITH f ORDER BY rand() LIMIT $limit
RETURN f.path AS path, f.host AS host
"""
HOSTS = "MATCH (h:Host) RETURN h.name AS name ORDER BY name"
TIME_SPAN = "MATCH (p:Process) RETURN min(p.start_time) AS first, max(p.start_time) AS last"


def build(graph: Any, events: int, keep: bool) -> dict[str, Any]:
    from provgraph.graph.pipeline import ingest_sources
    from provgraph.queries.engine import run_rules

    if keep and graph.read("MATCH (a:Alert) RETURN count(a) AS n")[0]["n"] >= MIN_ALERTS:
        return {"reused": True}
    wipe(graph)
    folder = generated(events)
    started = time.perf_counter()
    report = ingest_sources(
        graph,
        telemetry_files(folder),
        rules=lambda g, since, until: run_rules(g, since=since, until=until),
    )
    built = {
        "events_written": report.written,
        "ingest_seconds": round(report.seconds, 1),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    built["rule_alerts"] = graph.read("MATCH (a:Alert) RETURN count(a) AS n")[0]["n"]
    built["synthetic_alerts"] = top_up_alerts(graph, MIN_ALERTS - built["rule_alerts"])
    return built


def top_up_alerts(graph: Any, missing: int) -> int:
    """Rule alerts are rare by design; page and subgraph timing needs a few hundred."""
    if missing <= 0:
        return 0
    from provgraph.queries.alerts import next_seq, publish_seq

    uids = [r["uid"] for r in graph.read(SAMPLE_PROCESSES, {"limit": missing})]
    rng = random.Random(7)
    now = datetime.now(UTC)
    for uid in uids:

        def unit(tx: Any, uid: str = uid) -> None:
            seq = next_seq(tx)
            tx.run(
                SYNTHETIC_ALERT,
                uid=uid,
                id=uuid.uuid4().hex,
                seq=seq,
                severity=rng.choice(["low", "medium", "high"]),
                time=now - timedelta(minutes=rng.randint(0, 1440)),
            ).consume()

        graph.write_tx(unit)
    publish_seq(graph)
    return len(uids)


# -- the graph as it was built, kept beside the instance -----------------------------------------
# Every run ingests its batch into the graph; `--keep` would otherwise measure a graph that
# grows by the batch at every run. A freshly built graph's data directory is copied beside the
# managed instance's (the server stopped), and a run that ingested puts it back when done, so
# every `--keep` run starts from the same graph (a run that died before that restores first).
SNAPSHOT = "snapshot-data"
DIRTY = "snapshot-dirty"


def managed_instance(graph: Any) -> Any:
    """The managed bench instance `graph` is on (None when NEO4J_URI names a server)."""
    if not graph.target.managed_instance:
        return None
    from provgraph.graph.local import server

    return server.Instance(
        graph.target.managed_instance,
        heap=os.environ.get("PROVGRAPH_NEO4J_HEAP", "4g"),
        pagecache=os.environ.get("PROVGRAPH_NEO4J_PAGECACHE", "4g"),
    )


def _copy_data(instance: Any, source: str, target: str) -> Any:
    """The instance's directory `source` copied to `target` with the server stopped, then the
    server started again and a new connection to it."""
    from provgraph.graph.local import server

    server.stop(instance)
    shutil.rmtree(instance.home / target, ignore_errors=True)
    shutil.copytree(instance.home / source, instance.home / target, symlinks=True)
    return bench_graph()


def snapshot(graph: Any) -> Any:
    instance = managed_instance(graph)
    if instance is None:
        return graph
    graph.close()
    started = time.perf_counter()
    graph = _copy_data(instance, "data", SNAPSHOT)
    (instance.home / DIRTY).unlink(missing_ok=True)
    print(f"graph kept as built ({time.perf_counter() - started:.0f} s)", flush=True)
    return graph


def restore(graph: Any, *, only_if_dirty: bool) -> Any:
    """The graph as built (see SNAPSHOT), if there is a snapshot (and it was left dirty)."""
    instance = managed_instance(graph)
    if instance is None or not (instance.home / SNAPSHOT).is_dir():
        return graph
    if only_if_dirty and not (instance.home / DIRTY).exists():
        return graph
    graph.close()
    started = time.perf_counter()
    graph = _copy_data(instance, SNAPSHOT, "data")
    (instance.home / DIRTY).unlink(missing_ok=True)
    print(f"graph restored as built ({time.perf_counter() - started:.0f} s)", flush=True)
    return graph


def mark_dirty(graph: Any) -> None:
    instance = managed_instance(graph)
    if instance is not None and (instance.home / SNAPSHOT).is_dir():
        (instance.home / DIRTY).touch()


# -- the batch ingested while the clients read ---------------------------------------------------
def batch_folder(graph: Any, events: int) -> Path:
    """Generated events for the day after the newest one in the graph: the same estate (host
    names) a day later, so every run of `--keep` ingests new events, not the same again."""
    last = graph.read(TIME_SPAN)[0]["last"]
    day = (last.to_native() if last else datetime(2026, 1, 1, tzinfo=UTC)).date()
    start = (day + timedelta(days=1)).isoformat()
    seed = 8 + (day - datetime(2026, 1, 1).date()).days
    target = DATA / f"batch-{events}-s{seed}-{start}"
    if not (target / "manifest.json").exists():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.generate",
                "--events",
                str(events),
                "--seed",
                str(seed),
                "--start",
                f"{start}T00:00:00Z",
                "--out",
                str(target),
                "--no-progress",
            ],
            check=True,
            cwd=ROOT,
        )
    return target


def ingest_batch(folder: Path, report_to: Path) -> int:
    """The concurrent ingest (run in its own process): the pipeline with the rules, as
    `provgraph ingest` runs it, timed from its first record to its last rule."""
    from provgraph.graph.pipeline import ingest_sources
    from provgraph.queries.engine import run_rules

    graph = bench_graph()
    started_at = time.time()
    started = time.perf_counter()
    report = ingest_sources(
        graph,
        telemetry_files(folder),
        rules=lambda g, since, until: run_rules(g, since=since, until=until),
    )
    seconds = time.perf_counter() - started
    graph.close()
    report_to.write_text(
        json.dumps(
            {
                "events": report.written,
                "seconds": round(seconds, 2),
                "write_seconds": round(report.seconds, 2),
                "events_per_second": round(report.written / seconds, 1) if seconds else None,
                "started_at": started_at,
                "finished_at": time.time(),
            }
        )
    )
    return 0


# -- the server and the clients ------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(graph: Any, port: int, workers: int, root: Path = ROOT) -> subprocess.Popen[bytes]:
    """uvicorn serving the API of the checkout at `root` (its own .venv when it is not this
    one)."""
    target = graph.target
    python = sys.executable if root == ROOT else str(root / ".venv" / "bin" / "python")
    env = {
        **os.environ,
        "NEO4J_URI": target.uri,
        "NEO4J_USER": target.user,
        "NEO4J_PASSWORD": target.password,
        "PROVGRAPH_WEBHOOK_ENABLED": "false",
    }
    process = subprocess.Popen(
        [
            python,
            "-m",
            "uvicorn",
            "provgraph.api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=root,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit("uvicorn exited before answering")
        time.sleep(0.3)
    process.terminate()
    raise SystemExit("uvicorn did not answer /health within 60 s")


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: Callable[[int], str]  # the i-th request's path and query
    target_ms: float
    server: str = ""  # which API answers it: "" this checkout's, else --baseline's


BASELINE = "baseline"


def side_by_side(endpoints: list[Endpoint]) -> list[Endpoint]:
    """Each endpoint twice, this checkout's then the baseline's, with the same targets: the
    i-th request of both asks for the same thing."""
    return [
        e2
        for e in endpoints
        for e2 in (e, Endpoint(f"{e.name}@{BASELINE}", e.path, e.target_ms, BASELINE))
    ]


class LeanClient:
    """One keep-alive HTTP/1.1 connection (the stdlib's), reconnected after an error."""

    def __init__(self, base: str, headers: dict[str, str], timeout: float = 60.0) -> None:
        parsed = urlsplit(base)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.headers = headers
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None

    def get(self, path: str) -> int:
        """The response's status after reading its body whole; 0 on a transport error."""
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout
                )
            self.connection.request("GET", path, headers=self.headers)
            response = self.connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self.close()
            return 0

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


@dataclass
class Sample:
    endpoint: str
    started: float  # time.time()
    seconds: float
    status: int
    path: str = ""


def drive(
    bases: dict[str, str],
    headers: dict[str, str],
    endpoints: list[Endpoint],
    requests: int,
    concurrency: int,
) -> tuple[list[Sample], float, float]:
    """`requests` GETs per endpoint, interleaved (request i goes to endpoint i mod n), spread
    over `concurrency` threads each with its own connection to each server (`bases`: server
    name to URL). Returns the samples and the window's start and end (wall clock)."""
    samples: list[Sample] = []
    lock = threading.Lock()
    counter = iter(range(requests * len(endpoints)))

    def worker() -> None:
        # http.client, not httpx: with httpx the client threads spent 1.4 to 3.1 ms of CPU
        # per request (1M events, 8 threads), with http.client 0.4, on the two cores they
        # measure. The body is read whole, never decoded: a client's use of it is not the
        # API's time.
        clients = {name: LeanClient(url, headers) for name, url in bases.items()}
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                endpoint = endpoints[i % len(endpoints)]
                client = clients[endpoint.server]
                at = time.time()
                started = time.perf_counter()
                path = endpoint.path(i // len(endpoints))
                status = client.get(path)
                elapsed = time.perf_counter() - started
                with lock:
                    samples.append(Sample(endpoint.name, at, elapsed, status, path))
        finally:
            for client in clients.values():
                client.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples, began, time.time()


def cpu_seconds(pids: dict[str, int | None], alone: str = "bench client") -> dict[str, float]:
    """User + system CPU seconds each process (and its children) has used so far; `alone`
    without its children (this process: its children are the servers and the ingest)."""
    import psutil

    used: dict[str, float] = {}
    for name, pid in pids.items():
        if pid is None:
            continue
        try:
            process = psutil.Process(pid)
            times = process.cpu_times()
            total = times.user + times.system
            for child in [] if name == alone else process.children(recursive=True):
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
        except psutil.Error:
            continue
        used[name] = total
    return used


def neo4j_pid(graph: Any) -> int | None:
    """The managed bench instance's server process, if this bench runs one."""
    name = graph.target.managed_instance
    if not name:
        return None
    from provgraph.graph.local import server

    return server.Instance(name).pid()


def summarise(samples: list[Sample], endpoint: Endpoint, wall: float) -> dict[str, Any]:
    mine = [s for s in samples if s.endpoint == endpoint.name]
    ordered = sorted(s.seconds for s in mine)
    if not ordered:
        return {"endpoint": endpoint.name, "requests": 0, "met": False}
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    errors = [s.status for s in mine if s.status != 200]
    return {
        "endpoint": endpoint.name,
        "requests": len(ordered),
        "errors": len(errors),
        "error_statuses": sorted(set(errors)),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "rps": round(len(ordered) / wall, 1),
        "target_p99_ms": endpoint.target_ms,
        "met": p99 < endpoint.target_ms and not errors,
        "slowest": max(mine, key=lambda s: s.seconds).path,
    }


def endpoints_for(graph: Any, rng: random.Random) -> list[Endpoint]:
    """Every read endpoint with its targets sampled from the graph."""
    from provgraph.graph.model import PROVENANCE_RELS
    from provgraph.queries.cursors import encode_cursor

    alert_ids = [r["id"] for r in graph.read("MATCH (a:Alert) RETURN a.id AS id")]
    high = graph.read("MATCH (a:Alert) RETURN max(a.seq) AS s")[0]["s"] or 0
    cursors = [encode_cursor("alerts", {"seq": s}) for s in range(0, max(high - 50, 1), 7)]
    half = SAMPLE // 2
    dense = [r["uid"] for r in graph.read(DENSE_PROCESSES, {"limit": half})]
    processes = dense + [r["uid"] for r in graph.read(RANDOM_PROCESSES, {"limit": half})]
    facts = [
        (r["uid"], r["rel"])
        for r in graph.read(
            FACT_GROUPS,
            {
                "uids": dense,
                "types": [t for t in PROVENANCE_RELS if t != "SPAWNED"],
                "limit": SAMPLE,
            },
        )
    ]
    files = [(r["path"], r["host"]) for r in graph.read(WRITTEN_FILES, {"limit": SAMPLE})]
    hosts = [r["name"] for r in graph.read(HOSTS)]
    span = graph.read(TIME_SPAN)[0]
    first, last = span["first"].to_native(), span["last"].to_native()
    for pool in (processes, facts, files, hosts, alert_ids):
        rng.shuffle(pool)

    def pick(pool: list[Any], i: int) -> Any:
        return pool[i % len(pool)]

    def timeline(i: int) -> str:
        host = quote(pick(hosts, i), safe="")
        if i % 2 == 0:  # half from the beginning, half from a moment in the day
            return f"/api/v1/provenance/hosts/{host}/timeline?limit=200"
        at = first + (last - first) * ((i * 7919 % 1000) / 1000)
        return f"/api/v1/provenance/hosts/{host}/timeline?" + urlencode(
            {"limit": 200, "since": at.isoformat()}
        )

    def fact_page(i: int) -> str:
        uid, rel = pick(facts, i)
        return "/api/v1/graph/facts?" + urlencode({"node": f"Process:{uid}", "rel": rel})

    return [
        Endpoint(
            "alerts_list",
            lambda i: f"/api/v1/alerts?limit=50&cursor={pick(cursors, i)}",
            LIST_TARGET_MS,
        ),
        Endpoint(
            "alert_subgraph",
            lambda i: f"/api/v1/graph/alerts/{pick(alert_ids, i)}?depth=3",
            READ_TARGET_MS,
        ),
        Endpoint(
            "process_lineage",
            lambda i: f"/api/v1/provenance/processes/{quote(pick(processes, i), safe='')}",
            READ_TARGET_MS,
        ),
        Endpoint("process_facts", fact_page, READ_TARGET_MS),
        Endpoint(
            "file_writers",
            lambda i: (
                "/api/v1/provenance/files?"
                + urlencode({"path": pick(files, i)[0], "host": pick(files, i)[1]})
            ),
            READ_TARGET_MS,
        ),
        Endpoint("host_timeline", timeline, READ_TARGET_MS),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--full", action="store_true", help="1,000,000 events, 200k meanwhile")
    parser.add_argument("--batch", type=int, default=None, help="events ingested meanwhile")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--requests", type=int, default=300, help="per endpoint")
    parser.add_argument("--keep", action="store_true", help="reuse the graph if built")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (with its .venv) whose API is measured beside this one's",
    )
    parser.add_argument(
        "--only", help="comma-separated endpoint names (alerts_list, alert_subgraph, …)"
    )
    parser.add_argument("--ingest-batch", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report-to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    if args.ingest_batch:
        return ingest_batch(args.ingest_batch, args.report_to)
    events = 1_000_000 if args.full else args.events
    batch = args.batch if args.batch is not None else max(events // 5, 0)
    if events < 1_000_000:  # a small graph does not need the bench instance's 4g+4g
        os.environ.setdefault("PROVGRAPH_NEO4J_HEAP", "1g")
        os.environ.setdefault("PROVGRAPH_NEO4J_PAGECACHE", "1g")

    from provgraph.api.keys.service import create_key
    from provgraph.api.schema import ensure_api_schema
    from provgraph.graph.schema import ensure_schema

    graph = bench_graph()
    ensure_schema(graph)
    ensure_api_schema(graph)
    if args.keep:
        graph = restore(graph, only_if_dirty=True)
    built = build(graph, events, args.keep)
    print(f"graph: {built}", flush=True)
    if not built.get("reused"):
        graph = snapshot(graph)
    built["nodes"] = graph.read("MATCH (n) RETURN count(n) AS n")[0]["n"]
    built["relationships"] = graph.read("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]
    alerts = graph.read("MATCH (a:Alert) RETURN count(a) AS n")[0]["n"]
    endpoints = endpoints_for(graph, random.Random(11))
    if args.only:
        wanted = set(args.only.split(","))
        endpoints = [e for e in endpoints if e.name in wanted]
        if not endpoints:
            raise SystemExit(f"--only {args.only}: no such endpoint")
    if args.baseline:
        endpoints = side_by_side(endpoints)
    folder = batch_folder(graph, batch) if batch else None
    key = create_key(graph, name="api-bench", scopes=["read"]).secret
    headers = {"Authorization": f"Bearer {key}"}
    servers: dict[str, subprocess.Popen[bytes]] = {}
    bases: dict[str, str] = {}
    roots = [("", ROOT)] + ([(BASELINE, args.baseline.resolve())] if args.baseline else [])
    for name, root in roots:
        port = free_port()
        servers[name] = start_server(graph, port, args.workers, root)
        bases[name] = f"http://127.0.0.1:{port}"
    ingest: dict[str, Any] = {"events": 0}
    ingest_report = OUT / "api_bench_ingest.json"
    ingest_report.unlink(missing_ok=True)
    try:
        # Warm-up at the measured load, not counted: a server just started (and a JVM just
        # through a bulk load) answers its first few hundred requests slower than it will
        # for the rest of its life.
        drive(bases, headers, endpoints, max(20, args.requests // 10), args.concurrency)
        loader = None
        if folder is not None:
            mark_dirty(graph)
            loader = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.api_bench",
                    "--ingest-batch",
                    str(folder),
                    "--report-to",
                    str(ingest_report),
                ],
                cwd=ROOT,
            )
            time.sleep(3)  # past its start-up: parsing and writing
        print("measuring …", flush=True)
        load_before = os.getloadavg()[0]
        pids = {
            "neo4j": neo4j_pid(graph),
            "bench client": os.getpid(),
            **{f"api{'@' + n if n else ''}": s.pid for n, s in servers.items()},
            "ingest": loader.pid if loader is not None else None,
        }
        cpu_before = cpu_seconds(pids)
        samples, began, ended = drive(bases, headers, endpoints, args.requests, args.concurrency)
        cpu_after = cpu_seconds(pids)
        load_after = os.getloadavg()[0]
        if loader is not None:
            if loader.wait() != 0:
                raise SystemExit("the concurrent ingest failed")
            ingest = json.loads(ingest_report.read_text())
            overlap = min(ended, ingest["finished_at"]) - max(began, ingest["started_at"])
            ingest["overlap_of_window"] = round(max(overlap, 0) / (ended - began), 2)
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)
        graph.write("MATCH (k:ApiKey {name: 'api-bench'}) DETACH DELETE k")
        graph = restore(graph, only_if_dirty=True)
        graph.close()
    wall = ended - began
    results = [summarise(samples, e, wall) for e in endpoints]
    print(
        f"\n{len(samples)} requests in {wall:.1f} s from {args.concurrency} client threads, "
        f"endpoints interleaved"
    )
    for r in results:
        print(
            f"{r['endpoint']:>25}: p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
            f"max {r['max_ms']:7.1f} ms  {r['rps']:6.1f} req/s  errors {r['errors']}  "
            f"(target p99 < {r['target_p99_ms']:.0f} ms: {'met' if r['met'] else 'MISSED'})"
        )
    for r in results:
        if r.get("requests"):
            print(f"{r['endpoint']:>25}: slowest {r['slowest']}")
    # Where the two cores went during the window, per request answered: a bench client that
    # burns the cores it measures would be a defect of the bench, not of the API.
    cpu = {
        name: round((cpu_after[name] - cpu_before[name]) * 1000 / max(len(samples), 1), 1)
        for name in cpu_after
        if name in cpu_before
    }
    print(
        "CPU per request (ms, over the window): "
        + ", ".join(f"{name} {ms}" for name, ms in cpu.items())
        + f"; wall {wall * 1000 / max(len(samples), 1):.1f} ms per request on 2 cores"
    )
    # The machine is shared: its load says how much of its two cores the bench had.
    print(f"load average (1 min) {load_before:.1f} at the start, {load_after:.1f} at the end")
    if ingest.get("events"):
        print(
            f"meanwhile ingested {ingest['events']:,} events in {ingest['seconds']:.1f} s "
            f"({ingest['events_per_second']:,.0f} events/s, rules included), overlapping "
            f"{ingest['overlap_of_window']:.0%} of the measured window"
        )
    path = write_result(
        f"api_bench_{events}" + ("_side_by_side" if args.baseline else ""),
        {
            "events": events,
            "alerts": alerts,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "baseline": str(args.baseline) if args.baseline else None,
            "graph": built,
            "ingest": ingest,
            "window_seconds": round(wall, 1),
            "load_average": [round(load_before, 1), round(load_after, 1)],
            "cpu_ms_per_request": cpu,
            "results": results,
            "machine": machine(),
        },
    )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
