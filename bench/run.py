"""Every benchmark, one command, one report.

    python -m bench.run --quick      # a few minutes: 20k/100k events
    python -m bench.run --full       # 100k and 1M events (tens of minutes on 2 cores)

Runs, one after another on the shared bench Neo4j: ingest throughput against the naive
writer (with peak memory), rule evaluation against the pandas and DuckDB references with
event-to-alert latency, precision and recall on the generator's ground truth, API latency
under load, and the compiled SigmaHQ rules against pySigma SQLite (bench.sigma_bench).
Writes bench/out/report.json, bench/out/report.md and PNG plots beside them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import OUT, ROOT, machine
from bench.ingest_bench import report as ingest_table
from bench.mix_bench import report as mix_table

PLANS = {
    "quick": {
        "ingest": ["--events", "100000", "--small", "20000", "--naive-seconds", "20"],
        "mix": ["--events", "100000", "--small", "20000"],
        "rules": ["--events", "20000"],
        "accuracy": ["--events", "100000"],
        "api": ["--events", "100000", "--requests", "200", "--concurrency", "8"],
        "sigma": ["--events", "100000"],
    },
    "full": {
        "ingest": ["--events", "1000000", "--small", "100000", "--naive-seconds", "120"],
        "mix": ["--events", "1000000", "--small", "100000", "--repeat", "2"],
        "rules": ["--events", "100000", "--events", "1000000"],
        "accuracy": ["--events", "1000000"],
        "api": ["--events", "1000000", "--requests", "300", "--concurrency", "8"],
        "sigma": ["--events", "100000", "--events", "1000000"],
    },
}
MODULES = {
    "ingest": "bench.ingest_bench",
    "mix": "bench.mix_bench",
    "rules": "bench.rules_bench",
    "accuracy": "bench.accuracy",
    "api": "bench.api_bench",
    "sigma": "bench.sigma_bench",
}


def _run(name: str, args: list[str]) -> dict[str, Any]:
    print(f"\n=== {name}: python -m {MODULES[name]} {' '.join(args)}", flush=True)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", MODULES[name], *args], cwd=ROOT)
    return {"seconds": round(time.perf_counter() - started, 1), "exit": result.returncode}


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def collect(plan: dict[str, list[str]], runs: dict[str, Any]) -> dict[str, Any]:
    api_events = plan["api"][plan["api"].index("--events") + 1]
    return {
        "machine": machine(),
        "runs": runs,
        "ingest": _load(OUT / "ingest.json"),
        "mix": _load(OUT / "mix_bench.json"),
        "rules": _load(OUT / "rules_bench.json"),
        "accuracy": _load(OUT / "accuracy.json"),
        "api": _load(OUT / f"api_bench_{api_events}.json"),
        "sigma": _load(OUT / "sigma_bench.json"),
    }


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    out = [
        f"# provgraph benchmarks ({report['mode']})",
        "",
        f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}, Python {m['python']}.",
        f"Measured {report['finished']}. Each section says what it measured.",
        "",
    ]
    ingest = report.get("ingest")
    if ingest:
        out += [
            "## Ingest (parse, normalise, write to Neo4j; targets ≥ 20,000 events/s, ≥ 30× naive)",
            "",
            ingest_table(ingest),
            "",
        ]
        largest = max(ingest["sizes"], key=int)
        neo = ingest["sizes"][largest]["pipeline"].get("neo4j", {})
        if neo:
            out += [
                f"Neo4j after the largest ingest: heap {neo.get('heap_used_mib')} of "
                f"{neo.get('heap_max_mib')} MiB used; page cache {neo.get('pagecache_configured')}"
                f" configured for a store of {neo.get('store_on_disk_mib')} MiB on disk.",
                "",
            ]
    mix = report.get("mix")
    if mix:
        out += [
            "## Ingest cost per event: realistic mix vs today's (target ratio ≤ 1.15)",
            "",
            mix_table(mix),
            "",
        ]
    rules = report.get("rules")
    if rules:
        out += [
            "## Rules: all rules, Cypher vs pandas reference vs DuckDB SQL",
            "",
            "| events | Cypher s | pandas s | DuckDB s | alert latency p50 s "
            "| p95 s (target < 2) |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for size in rules["sizes"]:
            lat = size["latency"]
            out.append(
                f"| {size['events']:,} | {size['cypher_all_s']:.2f} | {size['pandas_all_s']:.2f}"
                f" | {size['duckdb_all_s']:.2f} | {_f(lat.get('p50_s'))} | {_f(lat.get('p95_s'))} |"
            )
        out.append("")
    acc = report.get("accuracy")
    if acc:
        out += [
            "## Precision and recall on ground truth "
            f"({acc['events']:,} events, seed {acc['seed']})",
            "",
            f"Overall precision **{acc['precision']}**, recall **{acc['recall']}**.",
            "",
            "| rule | alerts | true | positives | found | precision | recall |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for rule, r in acc["rules"].items():
            out.append(
                f"| {rule} | {r['alerts']} | {r['true_alerts']} | {r['positives']} | {r['found']}"
                f" | {r['precision']} | {r['recall']} |"
            )
        out.append("")
    api = report.get("api")
    if api:
        ingest_meanwhile = api.get("ingest") or {}
        out += [
            f"## API under load ({api['events']:,} events, {api['alerts']} alerts, "
            f"{api['concurrency']} client threads, {api['workers']} worker, endpoints "
            "interleaved while a batch is ingested)",
            "",
            "| endpoint | p50 ms | p99 ms | max ms | req/s | errors | target p99 |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in api["results"]:
            out.append(
                f"| {r['endpoint']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r.get('max_ms', 0):.1f} | {r['rps']:.1f} | {r['errors']} | "
                f"< {r['target_p99_ms']:.0f} ms: {'met' if r['met'] else 'missed'} |"
            )
        out.append("")
        if api.get("load_average"):
            start, end = api["load_average"]
            out += [
                f"Machine load average (1 min) {start} at the start and {end} at the end of "
                f"the measured window, on {report['machine']['cores']} cores.",
                "",
            ]
        if ingest_meanwhile.get("events"):
            out += [
                f"Meanwhile {ingest_meanwhile['events']:,} more events were ingested in "
                f"{ingest_meanwhile['seconds']:.1f} s ({ingest_meanwhile['events_per_second']:,.0f}"
                f" events/s, rules included), overlapping "
                f"{ingest_meanwhile['overlap_of_window']:.0%} of the measured window.",
                "",
            ]
    sigma = report.get("sigma")
    if sigma:
        out += [
            "## Sigma: provgraph (ingest + all compiled SigmaHQ rules) vs pySigma SQLite",
            "",
            "| events | side | seconds | events/s | peak RSS MiB | rules fired | matches |",
            "|---:|---|---:|---:|---:|---:|---:|",
        ]
        for size in sigma["sizes"]:
            for side in ("provgraph", "sqlite"):
                r = size[side]
                out.append(
                    f"| {size['events']:,} | {side} | {r['seconds']:.1f} | {r['events_per_s']:,.0f}"
                    f" | {r['peak_rss_mib']:,.0f} | {r['rules_fired']} | {r['matches']} |"
                )
            out.append(f"| | ratio | {size['ratio']}× | | | | |")
        out.append("")
    out += ["## Plots", "", "![ingest](ingest.png) ![rules](rules.png) ![latency](latency.png)", ""]
    return "\n".join(out)


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def plots(report: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    ingest = report.get("ingest")
    if ingest:
        sizes = sorted(ingest["sizes"], key=int)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(
            [int(s) for s in sizes],
            [ingest["sizes"][s]["pipeline"]["events_per_second"] for s in sizes],
            marker="o",
            label="provgraph batched pipeline",
        )
        ax.axhline(
            ingest["naive"]["events_per_second"],
            color="grey",
            linestyle="--",
            label="naive: one transaction per event",
        )
        ax.axhline(20000, color="red", linestyle=":", label="target 20,000/s")
        ax.set(xscale="log", xlabel="input events", ylabel="events/s", title="Ingest throughput")
        ax.legend(fontsize=8)
        made.append(_save(fig, "ingest.png"))
    rules = report.get("rules")
    if rules:
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = [s["events"] for s in rules["sizes"]]
        for key, label in (
            ("cypher_all_s", "Cypher on Neo4j"),
            ("pandas_all_s", "pandas reference"),
            ("duckdb_all_s", "DuckDB SQL"),
        ):
            ax.plot(xs, [s[key] for s in rules["sizes"]], marker="o", label=label)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="input events",
            ylabel="seconds, all rules",
            title="Rule evaluation time",
        )
        ax.legend(fontsize=8)
        made.append(_save(fig, "rules.png"))
    fig, ax = plt.subplots(figsize=(6, 4))
    bars: list[tuple[str, float, float]] = []
    if report.get("api"):
        bars += [(r["endpoint"], r["p50_ms"], r["p99_ms"]) for r in report["api"]["results"]]
    if rules:
        lat = rules["sizes"][-1]["latency"]
        if lat.get("p50_s") is not None:
            bars.append(("event→alert", lat["p50_s"] * 1000, lat["p95_s"] * 1000))
    if bars:
        names = [b[0] for b in bars]
        ax.bar([i - 0.2 for i in range(len(bars))], [b[1] for b in bars], width=0.4, label="p50")
        ax.bar(
            [i + 0.2 for i in range(len(bars))],
            [b[2] for b in bars],
            width=0.4,
            label="p99 (p95 for event→alert)",
        )
        ax.set_xticks(range(len(bars)), names)
        ax.set(yscale="log", ylabel="ms", title="Latency")
        ax.legend(fontsize=8)
        made.append(_save(fig, "latency.png"))
    return made


def _save(fig: Any, name: str) -> Path:
    path = OUT / name
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few minutes (default)")
    mode.add_argument("--full", action="store_true", help="1M events; tens of minutes")
    parser.add_argument(
        "--only",
        choices=sorted(MODULES),
        action="append",
        help="run only these benchmarks (repeatable); the report uses the "
        "latest results of the others",
    )
    args = parser.parse_args()
    name = "full" if args.full else "quick"
    plan = PLANS[name]
    runs = {
        bench: _run(bench, plan[bench]) for bench in plan if not args.only or bench in args.only
    }
    report = collect(plan, runs)
    report["mode"] = name
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(report, indent=2, default=str))
    made = plots(report)
    (OUT / "report.md").write_text(markdown(report))
    print(
        f"\nreport: {OUT / 'report.md'}, {OUT / 'report.json'}; plots: "
        + ", ".join(str(p.name) for p in made)
    )
    failed = [b for b, r in runs.items() if r["exit"] != 0]
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
