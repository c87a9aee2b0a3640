"""Ingest throughput and memory: provgraph's batched pipeline against a naive writer.

    python -m bench.ingest_bench --events 1000000 --small 100000

For each size: a fresh database, then `provgraph.graph.pipeline.ingest_sources` over generated
Sysmon + MDE telemetry in a child process (so its peak RSS is its own), end to end: read,
parse, normalise, write to the real Neo4j. Then, in the same run, the same events through a
naive writer that commits one transaction per event with the same Cypher. The naive writer
is given a time budget and its rate is measured on the prefix it gets through (at a few
hundred events a second it would need hours for a million); the ratio compares rates.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, bench_graph, generated, machine, neo4j_memory, telemetry_files, wipe


def _child(folder: str, evidence: str = "raw") -> None:
    """Runs in its own process: ingest a folder, print stats as JSON."""
    from provgraph.graph.pipeline import ingest_sources

    from bench.common import bench_graph

    with bench_graph() as graph:
        files = telemetry_files(Path(folder))
        report = ingest_sources(graph, files, progress=sys.stderr.isatty(), evidence=evidence)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The parser process (when ingest parses in parallel) is a child: its peak counts too.
    parser_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "records": report.summary.accepted,
                "events": report.written,
                "seconds": report.seconds,
                "events_per_second": report.events_per_second,
                "rejected": sum(report.summary.rejected.values()),
                "skipped": sum(report.summary.skipped.values()),
                "skipped_by_reason": dict(report.summary.skipped.most_common(16)),
                "peak_rss_mib": round(peak_kib / 1024, 1),
                "parser_peak_rss_mib": round(parser_kib / 1024, 1),
            }
        )
    )


def run_pipeline(folder: Path, evidence: str = "raw") -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ingest_bench",
            "--child",
            str(folder),
            "--evidence",
            evidence,
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def run_naive(folder: Path, budget: float, evidence: str = "raw") -> dict[str, Any]:
    """One transaction per event: the same statements as the batch writer, batch size one,
    keeping the same evidence."""
    from provgraph.graph.identity import ProcessResolver
    from provgraph.graph.loader import write_batch
    from provgraph.graph.writer import Batch
    from provgraph.ingest.reader import iter_events

    with bench_graph() as graph:
        wipe(graph)
        resolver = ProcessResolver(graph)  # one per run, as the pipeline's loader has
        written = 0
        started = time.perf_counter()
        for event in iter_events(telemetry_files(folder)):
            batch = Batch(keep_raw=evidence == "raw")
            batch.add(event)
            write_batch(graph, batch, resolver)
            written += 1
            if time.perf_counter() - started > budget:
                break
        seconds = time.perf_counter() - started
    return {"events": written, "seconds": seconds, "events_per_second": written / seconds}


WARMUP_EVENTS = 20_000


def bench(
    sizes: list[int], naive_budget: float, seed: int, evidence: str = "raw"
) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "sizes": {}, "warmup_events": WARMUP_EVENTS}
    # A server just started runs its first ingest cold (the JVM has compiled nothing yet): in
    # one run 100k events went at 5,989 events/s and the 1M after them at 15,342. One small
    # unmeasured ingest first, so every size is measured on a warm server.
    print(
        f"[ingest] warming up the server ({WARMUP_EVENTS:,} events, not measured) …",
        file=sys.stderr,
        flush=True,
    )
    run_pipeline(generated(WARMUP_EVENTS, seed), evidence)
    for size in sizes:
        folder = generated(size, seed)
        with bench_graph() as graph:
            wipe(graph)
        print(f"[ingest] {size:,} events: provgraph pipeline …", file=sys.stderr, flush=True)
        pipeline = run_pipeline(folder, evidence)
        with bench_graph() as graph:
            pipeline["neo4j"] = neo4j_memory(graph)
            pipeline["graph"] = graph.read(
                "MATCH (n) WITH count(n) AS nodes MATCH ()-[r]->() RETURN nodes, count(r) AS rels"
            )[0]
        results["sizes"][str(size)] = {"pipeline": pipeline}
        print(
            f"[ingest]   {pipeline['events_per_second']:,.0f} events/s, peak RSS "
            f"{pipeline['peak_rss_mib']} MiB "
            f"(parser process {pipeline['parser_peak_rss_mib']} MiB)",
            file=sys.stderr,
            flush=True,
        )
    largest = str(max(sizes))
    print(
        f"[ingest] naive one-transaction-per-event writer, {naive_budget:.0f}s budget …",
        file=sys.stderr,
        flush=True,
    )
    naive = run_naive(generated(int(largest), seed), naive_budget, evidence)
    fast = results["sizes"][largest]["pipeline"]["events_per_second"]
    results["naive"] = naive
    results["speedup_vs_naive"] = round(fast / naive["events_per_second"], 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--small", type=int, default=100_000, help="a second, smaller size (memory growth)"
    )
    parser.add_argument("--naive-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--evidence",
        choices=["raw", "refs"],
        default="raw",
        help="raw records kept on edges (default), or source references only",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.evidence)
        return
    sizes = sorted({args.small, args.events})
    results = bench(sizes, args.naive_seconds, args.seed, args.evidence)
    results["evidence"] = args.evidence
    from bench.common import write_result

    path = write_result("ingest", results)
    print(report(results))
    print(f"(written to {path})")


def report(results: dict[str, Any]) -> str:
    """Markdown: the size table and the naive comparison (bench.run's report uses it too)."""
    lines = [
        "| events | events/s | peak RSS MiB (writer / parser) | nodes | edges |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size, entry in results["sizes"].items():
        p = entry["pipeline"]
        lines.append(
            f"| {int(size):,} | {p['events_per_second']:,.0f} | {p['peak_rss_mib']} / "
            f"{p.get('parser_peak_rss_mib', '-')} | "
            f"{p['graph']['nodes']:,} | {p['graph']['rels']:,} |"
        )
    naive = results["naive"]
    lines.append(
        f"\nNaive one-transaction-per-event writer (same statements): "
        f"{naive['events_per_second']:,.0f} events/s over the first {naive['events']:,} "
        f"events. Batched pipeline / naive: **{results['speedup_vs_naive']}×**."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
