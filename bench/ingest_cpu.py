"""Where ingest CPU goes: Neo4j, the writer process and the parser process, per 40k events.

    python -m bench.ingest_cpu [--events 200000] [--evidence raw|refs] [--batch-size 5000]

Wipes the bench Neo4j, ingests generated events with `provgraph.graph.pipeline.ingest_sources`
and reads the CPU time each process used around that one call (the Neo4j server's from
/proc through psutil, this process's and its parser child's from getrusage). On two cores
the sum against the wall time says whether ingest is CPU-bound and which side to cut.
"""

from __future__ import annotations

import argparse
import resource
import time

import psutil

from bench.common import bench_graph, generated, telemetry_files, wipe

PER = 40_000


def _neo4j_process(graph: object) -> psutil.Process:
    from provgraph.graph.local.server import Instance

    name = getattr(getattr(graph, "target", None), "managed_instance", None)
    pid = Instance(name).pid() if name else None
    if pid is None:
        raise SystemExit(
            "the bench Neo4j is not a managed instance on this machine; its CPU cannot be read"
        )
    return psutil.Process(pid)


def _cpu(times: object) -> float:
    return float(times.user + times.system)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--evidence", choices=["raw", "refs"], default="raw")
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()

    from provgraph.graph.pipeline import ingest_sources

    graph = bench_graph()
    wipe(graph)
    neo4j = _neo4j_process(graph)
    files = telemetry_files(generated(args.events))
    server0 = _cpu(neo4j.cpu_times())
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    report = ingest_sources(graph, files, evidence=args.evidence, batch_size=args.batch_size)
    wall = time.perf_counter() - started
    server = _cpu(neo4j.cpu_times()) - server0
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    writer = self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime
    parser_cpu = child1.ru_utime + child1.ru_stime - child0.ru_utime - child0.ru_stime
    scale = report.written / PER
    print(
        f"{report.written:,} events in {wall:.1f} s: {report.written / wall:,.0f} events/s "
        f"(evidence {args.evidence}, batches of {args.batch_size})"
    )
    print(
        f"CPU seconds per {PER:,} events: Neo4j {server / scale:.2f}, writer process "
        f"{writer / scale:.2f}, parser process {parser_cpu / scale:.2f}; wall {wall / scale:.2f}"
    )
    graph.close()


if __name__ == "__main__":  # the parser process is spawned: this module is re-imported there
    main()
