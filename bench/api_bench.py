"""Load on the API as SOAR and analysts use it: alert list pages and depth-3 alert subgraphs.

    python -m bench.api_bench [--events 20000] [--concurrency 8] [--requests 2000]
                              [--full]        # 1M events    [--workers N]  # uvicorn processes
                              [--keep]        # reuse the graph already built for these events

Builds a graph from N generated events (bench.generate, ingested through the CLI's pipeline
with the rules running), makes sure there are enough alerts to page through, starts
`uvicorn api.app:create_app` on 127.0.0.1 in a subprocess, and drives it from a bounded pool
of client threads (loopback only; a fixed number of requests per endpoint). Prints p50/p99
latency and requests per second; targets: p99 < 100 ms for the list, < 250 ms for subgraphs.
Uses the shared bench Neo4j (bench.common.bench_graph), which only benchmarks use.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx  # noqa: E402

from bench.common import (  # noqa: E402
    ROOT,
    bench_graph,
    generated,
    machine,
    telemetry_files,
    wipe,
    write_result,
)

TARGETS_MS = {"alerts_list": 100.0, "alert_subgraph": 250.0}
MIN_ALERTS = 500

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(graph: Any, port: int, workers: int) -> subprocess.Popen[bytes]:
    target = graph.target
    env = {
        **os.environ,
        "NEO4J_URI": target.uri,
        "NEO4J_USER": target.user,
        "NEO4J_PASSWORD": target.password,
        "PROVGRAPH_WEBHOOK_ENABLED": "false",
    }
    process = subprocess.Popen(
        [
            sys.executable,
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
        cwd=ROOT,
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


def drive(
    name: str,
    base: str,
    headers: dict[str, str],
    paths: Callable[[int], str],
    requests: int,
    concurrency: int,
) -> dict[str, Any]:
    """`requests` GETs spread over `concurrency` threads (each with its own connection)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        nonlocal errors
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                started = time.perf_counter()
                response = client.get(paths(i))
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        errors += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return {
        "endpoint": name,
        "requests": len(ordered),
        "errors": errors,
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(p99, 1),
        "rps": round(len(ordered) / wall, 1),
        "target_p99_ms": TARGETS_MS[name],
        "met": p99 < TARGETS_MS[name],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--full", action="store_true", help="1,000,000 events")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint")
    parser.add_argument("--keep", action="store_true", help="reuse the graph if built")
    args = parser.parse_args(argv)
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    events = 1_000_000 if args.full else args.events
    if events < 1_000_000:  # a small graph does not need the bench instance's 4g+4g
        os.environ.setdefault("PROVGRAPH_NEO4J_HEAP", "1g")
        os.environ.setdefault("PROVGRAPH_NEO4J_PAGECACHE", "1g")

    from provgraph.api.keys.service import create_key
    from provgraph.api.schema import ensure_api_schema
    from provgraph.graph.schema import ensure_schema

    graph = bench_graph()
    ensure_schema(graph)
    ensure_api_schema(graph)
    built = build(graph, events, args.keep)
    print(f"graph: {built}")
    alert_ids = [r["id"] for r in graph.read("MATCH (a:Alert) RETURN a.id AS id")]
    key = create_key(graph, name="api-bench", scopes=["read"]).secret
    headers = {"Authorization": f"Bearer {key}"}
    port = free_port()
    server = start_server(graph, port, args.workers)
    base = f"http://127.0.0.1:{port}"
    try:
        high = graph.read("MATCH (a:Alert) RETURN max(a.seq) AS s")[0]["s"] or 0
        from provgraph.queries.cursors import encode_cursor

        cursors = [encode_cursor("alerts", {"seq": s}) for s in range(0, max(high - 50, 1), 7)]

        def list_path(i: int) -> str:
            return f"/api/v1/alerts?limit=50&cursor={cursors[i % len(cursors)]}"

        def subgraph_path(i: int) -> str:
            return f"/api/v1/graph/alerts/{alert_ids[i % len(alert_ids)]}?depth=3"

        # Warm-up at the measured load: a tenth of the requests, not counted. A server just
        # started (and a JVM just through a bulk load) answers its first few hundred
        # requests slower than it will for the rest of its life.
        warm = max(50, args.requests // 10)
        drive("alerts_list", base, headers, list_path, warm, args.concurrency)
        drive("alert_subgraph", base, headers, subgraph_path, warm, args.concurrency)
        results = [
            drive("alerts_list", base, headers, list_path, args.requests, args.concurrency),
            drive("alert_subgraph", base, headers, subgraph_path, args.requests, args.concurrency),
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)
        graph.write("MATCH (k:ApiKey {name: 'api-bench'}) DETACH DELETE k")
        graph.close()
    for r in results:
        print(
            f"{r['endpoint']:>15}: p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
            f"{r['rps']:8.1f} req/s  errors {r['errors']}  "
            f"(target p99 < {r['target_p99_ms']:.0f} ms: {'met' if r['met'] else 'MISSED'})"
        )
    path = write_result(
        f"api_bench_{events}",
        {
            "events": events,
            "alerts": len(alert_ids),
            "concurrency": args.concurrency,
            "workers": args.workers,
            "graph": built,
            "results": results,
            "machine": machine(),
        },
    )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
