"""Rule evaluation speed: Cypher on Neo4j vs the pandas reference vs DuckDB SQL, plus the
event-to-alert latency while ingesting.

    python -m bench.rules_bench                  # quick: 20k events
    python -m bench.rules_bench --events 100000 --events 1000000     # the full sizes
    python -m bench.rules_bench --full           # same as the line above

For each size N: a generated data set (bench.generate, made once under bench/out/data) is
parsed, written into an empty graph, then
  * all rules are evaluated by Cypher (read only), then run with alert writing,
  * the same correlations are computed by the pandas reference and by DuckDB SQL,
  * the match counts of the three are printed side by side.
Latency: the events are replayed in time order in small batches; after each batch the
engine runs over that batch's time range (as ingest does). An alert's latency is the time
from the start of writing the batch holding its newest event to the end of that rule run.
Uses the shared bench Neo4j (bench.common.bench_graph).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any, TypeVar

from bench.common import bench_graph, generated, machine, telemetry_files, write_result

T = TypeVar("T")


def _graph() -> Any:
    from provgraph.graph.schema import ensure_schema

    graph = bench_graph()  # the one bench Neo4j every benchmark shares, run one after another
    ensure_schema(graph)
    return graph


def _timed(work: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = work()
    return value, time.perf_counter() - started


def _wipe(graph: Any) -> None:
    while graph.write("MATCH (n) WITH n LIMIT 20000 DETACH DELETE n RETURN count(*) AS n")[0]["n"]:
        pass


def _load(events: int, seed: int) -> list[Any]:
    from provgraph.ingest.reader import iter_events

    folder = generated(events, seed)
    # drop the raw records: the rules never read them and they dominate memory
    parsed = [dataclasses.replace(e, raw=None) for e in iter_events(telemetry_files(folder))]
    parsed.sort(key=lambda e: e.ts)
    return parsed


def bench_size(graph: Any, n: int, seed: int, batch: int) -> dict[str, Any]:
    from provgraph.core.times import EPOCH, FAR_FUTURE
    from provgraph.graph.loader import write_events
    from provgraph.queries.catalog import tune
    from provgraph.queries.duckdb_reference import connect, evaluate_duckdb
    from provgraph.queries.engine import evaluate, run_rules
    from provgraph.queries.reference import build_model, evaluate_reference, events_frame
    from provgraph.queries.rule import load_rules

    from bench.accuracy import site_settings

    # The allow lists the generated world was built with, as a site would set them.
    manifest = json.loads((generated(n, seed) / "manifest.json").read_text())
    rules = tune(load_rules().rules, site_settings(manifest))
    events, parse_s = _timed(lambda: _load(n, seed))
    _wipe(graph)
    _, write_s = _timed(lambda: write_events(graph, events))
    result: dict[str, Any] = {
        "events": len(events),
        "parse_s": parse_s,
        "write_s": write_s,
        "rules": {},
    }
    for rule in rules:
        evaluate(graph, rule)  # warm the plan cache: the scheduler runs rules repeatedly
    for rule in rules:
        matches, seconds = _timed(lambda r=rule: evaluate(graph, r))
        result["rules"][rule.id] = {"cypher_s": seconds, "cypher": len(matches)}
    result["cypher_all_s"] = sum(r["cypher_s"] for r in result["rules"].values())
    runs, result["run_rules_with_alerts_s"] = _timed(lambda: run_rules(graph, rules=rules))
    result["alerts_created"] = sum(r.created for r in runs)

    frame, frame_s = _timed(lambda: events_frame(events))
    model, model_s = _timed(lambda: build_model(frame))
    result["pandas_prepare_s"] = frame_s + model_s
    for rule in rules:
        found, seconds = _timed(lambda r=rule: evaluate_reference(r, model))
        result["rules"][rule.id].update(pandas_s=seconds, pandas=len(found))
    result["pandas_all_s"] = result["pandas_prepare_s"] + sum(
        r["pandas_s"] for r in result["rules"].values()
    )

    con, duck_prepare = _timed(lambda: connect(frame))
    result["duckdb_prepare_s"] = duck_prepare
    for rule in rules:
        found, seconds = _timed(lambda r=rule: evaluate_duckdb(con, r, EPOCH, FAR_FUTURE))
        result["rules"][rule.id].update(duckdb_s=seconds, duckdb=len(found))
    result["duckdb_all_s"] = duck_prepare + sum(r["duckdb_s"] for r in result["rules"].values())
    result["latency"] = latency(graph, events, rules, batch)
    return result


def latency(graph: Any, events: list[Any], rules: list[Any], batch: int) -> dict[str, Any]:
    from provgraph.graph.loader import write_events
    from provgraph.queries.engine import run_rules

    _wipe(graph)
    samples: list[float] = []
    batches = []
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        arrived = time.perf_counter()
        write_events(graph, chunk)
        written = time.perf_counter()
        runs = run_rules(graph, since=chunk[0].ts, until=chunk[-1].ts, rules=rules)
        done = time.perf_counter()
        created = sum(r.created + r.updated for r in runs)
        samples += [done - arrived] * created
        batches.append({"write_s": written - arrived, "rules_s": done - written})
    rule_times = sorted(b["rules_s"] for b in batches)
    return {
        "batch_events": batch,
        "batches": len(batches),
        "alerts_changed": len(samples),
        "p50_s": _quantile(samples, 0.5),
        "p95_s": _quantile(samples, 0.95),
        "rules_per_batch_p50_s": _quantile(rule_times, 0.5),
        "rules_per_batch_p95_s": _quantile(rule_times, 0.95),
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(sorted(values), n=100, method="inclusive")[int(q * 100) - 1]


def report(results: dict[str, Any]) -> str:
    lines = []
    for size in results["sizes"]:
        lines.append(
            f"\n== {size['events']:,} events  (parse {size['parse_s']:.1f} s, "
            f"write {size['write_s']:.1f} s)"
        )
        lines.append(f"{'rule':36} {'cypher':>14} {'pandas':>14} {'duckdb':>14}")
        for rule_id, r in size["rules"].items():
            lines.append(
                f"{rule_id:36} {r['cypher']:5} {r['cypher_s'] * 1000:7.0f}ms "
                f"{r['pandas']:5} {r['pandas_s'] * 1000:7.0f}ms "
                f"{r['duckdb']:5} {r['duckdb_s'] * 1000:7.0f}ms"
            )
        lines.append(
            f"{'all rules':36} {size['cypher_all_s']:12.2f} s "
            f"{size['pandas_all_s']:12.2f} s {size['duckdb_all_s']:12.2f} s   "
            f"(pandas incl. {size['pandas_prepare_s']:.2f} s to build frames, "
            f"duckdb incl. {size['duckdb_prepare_s']:.2f} s to load)"
        )
        lines.append(
            f"run_rules with alert writes: {size['run_rules_with_alerts_s']:.2f} s, "
            f"{size['alerts_created']} alerts"
        )
        lat = size["latency"]
        p50 = f"{lat['p50_s']:.2f}" if lat["p50_s"] is not None else "n/a"
        p95 = f"{lat['p95_s']:.2f}" if lat["p95_s"] is not None else "n/a"
        lines.append(
            f"event-to-alert latency ({lat['batches']} batches of {lat['batch_events']}"
            f" events, {lat['alerts_changed']} alert changes): p50 {p50} s, p95 {p95} s"
            f" (target p95 < 2 s); rules per batch p50 "
            f"{lat['rules_per_batch_p50_s']:.2f} s, p95 "
            f"{lat['rules_per_batch_p95_s']:.2f} s"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, action="append", help="events per run (repeatable; default 20000)"
    )
    parser.add_argument("--full", action="store_true", help="100k and 1M events")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=500, help="events per latency batch")
    args = parser.parse_args()
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    sizes = args.events or ([100_000, 1_000_000] if args.full else [20_000])
    with _graph() as graph:
        results = {
            "machine": machine(),
            "sizes": [bench_size(graph, n, args.seed, args.batch) for n in sizes],
        }
    path = write_result("rules_bench", results)
    print(report(results))
    print(f"\nfigures written to {path}")
    print(json.dumps({"cypher_all_s": [s["cypher_all_s"] for s in results["sizes"]]}))


if __name__ == "__main__":
    main()
