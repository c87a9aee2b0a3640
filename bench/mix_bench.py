"""Per-event ingest cost of the realistic mix against today's, side by side in one run.

    python -m bench.mix_bench --events 200000 --small 50000 [--repeat 2] [--seed 7]

For each size, on the bench Neo4j: a fresh database, then `ingest_sources` in a child
process (its peak RSS its own) over the generator's data set of today's mix (Sysmon
1/3/5/11/22/23 + MDE) and then of the realistic mix (`bench.generate --mix realistic`: also
Sysmon 7/10/12/13 and Security 4624/4634/4672). Cost is wall time per input record (µs/event),
the same end-to-end work the ingest benchmark measures; `--repeat` takes each figure's best
of N runs (the machine is shared: the best run is the least disturbed one). The ratio
realistic / today is the figure issue 14 bounds at 1.15.

Records of kinds this build does not model are read, parsed and skipped (counted in
`skipped`, by reason): they cost parsing but write nothing, so a build without the new kinds
measures less than the cost they will have. The output says so when it happens.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from bench.common import ROOT, bench_graph, generated, machine, wipe, write_result

MIXES = ("today", "realistic")
WARMUP_EVENTS = 20_000


def run_child(events: int, seed: int, mix: str) -> dict[str, Any]:
    folder = generated(events, seed, mix)
    with bench_graph() as graph:
        wipe(graph)
    result = subprocess.run(
        [sys.executable, "-m", "bench.ingest_bench", "--child", str(folder), "--evidence", "raw"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    stats = dict(json.loads(result.stdout.strip().splitlines()[-1]))
    manifest = json.loads((folder / "manifest.json").read_text())
    stats["input_events"] = manifest["events_written"]
    stats["us_per_event"] = stats["seconds"] * 1e6 / stats["input_events"]
    stats["input_per_second"] = stats["input_events"] / stats["seconds"]
    with bench_graph() as graph:
        stats["graph"] = graph.read(
            "MATCH (n) WITH count(n) AS nodes MATCH ()-[r]->() RETURN nodes, count(r) AS rels"
        )[0]
    return stats


def bench(sizes: list[int], seed: int, repeat: int) -> dict[str, Any]:
    print(
        f"[mix] warming up the server ({WARMUP_EVENTS:,} events, not measured) …", file=sys.stderr
    )
    run_child(WARMUP_EVENTS, seed, "today")
    results: dict[str, Any] = {"machine": machine(), "seed": seed, "repeat": repeat, "sizes": {}}
    for size in sizes:
        entry: dict[str, Any] = {}
        for attempt in range(repeat):
            for mix in MIXES:  # interleaved, so drift on a shared machine hits both alike
                print(f"[mix] {size:,} events, {mix} mix, run {attempt + 1} …", file=sys.stderr)
                stats = run_child(size, seed, mix)
                best = entry.get(mix)
                if best is None or stats["us_per_event"] < best["us_per_event"]:
                    entry[mix] = stats
                entry.setdefault(f"{mix}_runs_us", []).append(round(stats["us_per_event"], 1))
        entry["ratio"] = entry["realistic"]["us_per_event"] / entry["today"]["us_per_event"]
        results["sizes"][str(size)] = entry
    return results


def report(results: dict[str, Any]) -> str:
    lines = [
        "| events | mix | µs/event (best; all runs) | events/s | written | skipped | "
        "peak RSS MiB writer / parser | nodes | edges |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes: set[str] = set()
    for size, entry in results["sizes"].items():
        for mix in MIXES:
            s = entry[mix]
            runs = ", ".join(str(x) for x in entry[f"{mix}_runs_us"])
            lines.append(
                f"| {int(size):,} | {mix} | {s['us_per_event']:.1f} ({runs}) | "
                f"{s['input_per_second']:,.0f} | {s['events']:,} | {s['skipped']:,} | "
                f"{s['peak_rss_mib']} / {s['parser_peak_rss_mib']} | "
                f"{s['graph']['nodes']:,} | {s['graph']['rels']:,} |"
            )
            for reason, n in s.get("skipped_by_reason", {}).items():
                if "not modelled" in reason:
                    notes.add(f"{int(size):,} {mix}: {n:,} × {reason}")
        lines.append(
            f"| {int(size):,} | **realistic / today** | **{entry['ratio']:.3f}** | | | | | | |"
        )
    if notes:
        lines += [
            "",
            "Skipped by this build (parsed, not written; the cost of writing them is "
            "not in these figures):",
            *sorted(f"- {n}" for n in notes),
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=50_000, help="a second size (memory)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    results = bench(sorted({args.small, args.events}), args.seed, max(1, args.repeat))
    path = write_result("mix_bench", results)
    print(report(results))
    print(f"(written to {path})")


if __name__ == "__main__":
    main()
