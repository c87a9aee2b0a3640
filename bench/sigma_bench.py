"""Sigma at scale: provgraph (ingest + every compiled SigmaHQ rule) against pySigma's SQLite
backend run the Zircolite way, side by side, over the bench's generated events.

    python -m bench.sigma_bench --events 100000                    # quick
    python -m bench.sigma_bench --events 100000 --events 1000000   # full

Rules: every rule that compiles from the SigmaHQ snapshot (`../shared/sigmahq/rules`, the
`provgraph sigma import` figures); compiling them (the import) is timed apart, once per side,
and so is the SQLite side's conversion of them to SQL (Zircolite ships converted rule sets).
  * provgraph, end to end: the matchers built (`queries.sigma.stream`), the telemetry parsed and
    written into an empty bench graph with single-event rules evaluated as events stream, then
    their matches read back and written as alerts, and the remaining rules run as Cypher;
  * SQLite, end to end: the same records flattened into one table (Sysmon EventData and System
    fields as columns, COLLATE NOCASE, REGEXP as a Python search: Zircolite's layout; MDE rows
    with their own columns), the same Sigma rules converted by pySigma's SQLite backend, each run
    on the view of its logsource (Sysmon EventID, as Zircolite's Sysmon pipeline does; every
    modelled logsource has its view, so both sides run the same rules).
Each side runs in its own process, so each peak RSS is its own (ru_maxrss). Prints seconds,
events/s, peak RSS, the ratio, rules fired and match counts per side, and the rules where the
two disagree. Writes bench/out/sigma_bench.json.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import ROOT, bench_graph, generated, machine, telemetry_files, wipe, write_result

SIGMAHQ = ROOT.parent / "shared" / "sigmahq" / "rules"
# the EventIDs of each modelled logsource named by category (Zircolite's Sysmon pipeline; a
# script block is PowerShell's 4104); those named by service carry theirs (mapping.LOGSOURCES)
EVENT_IDS = {
    "process_creation": (1,),
    "file_event": (11,),
    "file_delete": (23, 26),
    "network_connection": (3,),
    "dns_query": (22,),
    "ps_script": (4104,),
}


def _event_ids() -> dict[str, tuple[int, ...]]:
    """Every modelled logsource's EventIDs: a rule of each runs on a view of its own, so the
    SQLite side runs the same rules as provgraph (a logsource with none: an empty view)."""
    from provgraph.queries.sigma.mapping import LOGSOURCES

    out = {c: tuple(sorted(ls.event_ids)) for c, ls in LOGSOURCES.items() if ls.event_ids}
    out.update(EVENT_IDS)
    return {c: out.get(c, ()) for c in LOGSOURCES}


WARMUP_EVENTS = 20_000  # an unmeasured run first on the provgraph side (see run_provgraph)


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _peak_child_rss_mib() -> float:
    """The largest peak of this process's finished children: an ingest's parser process
    (graph.parallel), when one ran, holds memory of its own."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def _compile() -> tuple[Any, float]:
    from provgraph.queries.sigma import compile_path

    started = time.perf_counter()
    report = compile_path([SIGMAHQ])
    return report, time.perf_counter() - started


# -- provgraph ---------------------------------------------------------------------------------
def run_provgraph(events: int, seed: int) -> dict[str, Any]:
    from provgraph.graph.pipeline import Evidence, ingest_sources
    from provgraph.graph.schema import ensure_schema
    from provgraph.queries.sigma.stream import SigmaStream, SpecCache, stream_plan

    report, compile_s = _compile()
    # what `provgraph sigma import` does after compiling (untimed, like the SQLite side's SQL
    # conversion): the rules through pySigma's pipeline once, kept on disk (stream.SpecCache),
    # in a fresh folder so no earlier run's cache counts
    cache = Path(tempfile.mkdtemp(prefix="sigma-bench-specs-"))
    started = time.perf_counter()
    stream_plan(report.rules, cache=SpecCache(cache))
    import_plan_s = time.perf_counter() - started
    files = [str(p) for p in telemetry_files(generated(events, seed))]
    graph = bench_graph()
    # A server just started runs its first ingest and first rule queries cold (its JIT and
    # query plans): one run measured 58.3 s right after a restart against 30.6 s warm. As the
    # ingest bench does, a small unmeasured run first, so the figure is a running server's.
    warm_plan = stream_plan(report.rules, cache=SpecCache(cache))
    warm = SigmaStream(warm_plan.streamed, warm_plan.cypher, warm_plan.gates)
    wipe(graph)
    ingest_sources(
        graph,
        [str(p) for p in telemetry_files(generated(WARMUP_EVENTS, seed))],
        observer=warm.observe,
        rules=warm.hook,
    )
    # the warm-up's stream and matchers are not the timed run's: let them go before it
    del warm, warm_plan
    wipe(graph)
    ensure_schema(graph)
    # a child that peaked before the timed run (the server's `java -version` and
    # `neo4j-admin` when this run started it) is not the ingest's parser process
    child_before = _peak_child_rss_mib()
    started = time.perf_counter()
    # the timed run starts as an ingest process would: the matchers from the kept specs
    plan = stream_plan(report.rules, cache=SpecCache(cache))
    stream = SigmaStream(plan.streamed, plan.cypher, plan.gates)
    plan_s = time.perf_counter() - started
    phases: dict[str, float] = {}

    def hook(graph: Any, since: Any, until: Any) -> list[Any]:
        # the stream's own hook (SigmaStream.hook), its parts timed apart
        t0 = time.perf_counter()
        # before apply, which forgets them: the rules an event sent to Cypher, and the
        # identities decided on the graph's facts after the ingest
        phases["deferred"] = sum(1 for sr in stream.rules if stream.deferred(sr))
        phases["undecided"] = sum(len(keys) for keys in stream.undecided.values())
        phases["gates_opened"] = len(stream.opened)  # before run_cypher, which forgets them
        stream.recheck(graph, since, until)  # what apply does first; timed apart here
        t1 = time.perf_counter()
        streamed = stream.apply(graph, since, until)
        t2 = time.perf_counter()
        cypher = stream.run_cypher(graph, since, until)
        phases["recheck_s"] = t1 - t0
        phases["streamed_alerts_s"] = t2 - t1
        phases["cypher_rules_s"] = time.perf_counter() - t2
        return streamed + cypher

    result = ingest_sources(
        graph, files, observer=stream.observe, rules=hook, evidence=Evidence.RAW
    )
    seconds = time.perf_counter() - started
    shutil.rmtree(cache, ignore_errors=True)
    runs = result.rules or []
    cypher_ids = {r.id for r in plan.cypher}
    slowest = sorted((r for r in runs if r.rule_id in cypher_ids), key=lambda r: -r.seconds)
    streamed_ids = {sr.rule.id for sr in plan.streamed}
    fired = {r.rule_id: r.matches for r in runs if r.matches}
    return {
        "side": "provgraph",
        "events": result.written,
        "compile_s": round(compile_s, 2),
        "rules_compiled": len(report.compiled),
        "rules_total": len(report.compiled) + len(report.failed),
        "rules_streamed": len(plan.streamed),
        "rules_cypher": len(plan.cypher),
        "rules_deferred_to_cypher": int(phases.get("deferred", 0)),
        # Cypher rules with a gate (stream.compile_gate), and those some event opened: the
        # others' queries were not run (no event of the ingest could match them)
        "rules_gated": len(plan.gates),
        "gates_opened": int(phases.get("gates_opened", 0)),
        "identities_rechecked": int(phases.get("undecided", 0)),
        "import_matcher_specs_s": round(import_plan_s, 2),
        "matcher_build_s": round(plan_s, 2),
        "stream_s": round(stream.seconds, 2),
        "matcher_calls": stream.confirmed,
        "ingest_s": round(result.seconds, 2),
        "recheck_s": round(phases.get("recheck_s", 0.0), 2),
        "streamed_alerts_s": round(phases.get("streamed_alerts_s", 0.0), 2),
        "cypher_rules_s": round(phases.get("cypher_rules_s", 0.0), 2),
        "slowest_cypher_rules": {r.rule_id: round(r.seconds, 2) for r in slowest[:10]},
        "seconds": round(seconds, 2),
        "events_per_s": round(result.written / seconds, 1),
        "peak_rss_mib": _peak_rss_mib(),
        # a parser process's peak, when the ingest ran one (none in-process: 0)
        "parser_peak_rss_mib": _peak_child_rss_mib() if _peak_child_rss_mib() > child_before else 0,
        "child_before_run_rss_mib": child_before,
        "rules_fired": len(fired),
        "streamed_rules_fired": len(set(fired) & streamed_ids),
        "matches": sum(fired.values()),
        "alerts_created": sum(r.created for r in runs),
        "rule_errors": sum(1 for r in runs if r.error),
        "fired": fired,
    }


# -- pySigma SQLite, the Zircolite way ---------------------------------------------------------
def _flat(files: list[Path]) -> Iterator[dict[str, str | None]]:
    from provgraph.ingest.errors import ParseError
    from provgraph.ingest.winevent import unwrap

    for path in files:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                if "Event" in record:
                    try:
                        win = unwrap(record)
                    except ParseError:
                        continue
                    row = {k: None if v is None else str(v) for k, v in win.data.items()}
                    row["EventID"] = str(win.event_id)
                    row["Computer"] = win.computer
                    row["Channel"] = win.channel if hasattr(win, "channel") else None
                else:  # an MDE row: its own columns (no Sysmon pipeline maps them)
                    row = {
                        k: None if v is None else str(v)
                        for k, v in record.items()
                        if not isinstance(v, dict | list)
                    }
                yield row


def _sqlite_queries(report: Any) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """Each compiled rule converted by pySigma's SQLite backend: rule id -> (logsource, SQL),
    and the rules the backend could not convert (its own limits, reported)."""
    from sigma.backends.sqlite import sqliteBackend
    from sigma.collection import SigmaCollection
    from sigma.rule import SigmaRule

    backend = sqliteBackend()
    queries: dict[str, tuple[str, str]] = {}
    failures: dict[str, str] = {}
    for result in report.compiled:
        if result.compiled_query is None:
            continue
        rid = result.rule.id
        text = Path(result.path).read_text(encoding="utf-8")
        rules = [r for r in SigmaCollection.from_yaml(text).rules if isinstance(r, SigmaRule)]
        if not rules:
            continue
        try:
            (sql,) = backend.convert_rule(rules[0])
        except Exception as error:  # noqa: BLE001 - the reference's own limits, reported
            failures[rid] = f"convert: {type(error).__name__}"
            continue
        queries[rid] = (result.compiled_query.logsource, sql)
    return queries, failures


def run_sqlite(events: int, seed: int) -> dict[str, Any]:
    report, compile_s = _compile()
    files = telemetry_files(generated(events, seed))
    # Zircolite ships its rule sets converted ahead of time: converting is the SQLite side's
    # compile, timed apart like provgraph's (it used to be inside the timed run)
    started = time.perf_counter()
    queries, failures = _sqlite_queries(report)
    convert_s = time.perf_counter() - started
    started = time.perf_counter()
    con = sqlite3.connect(":memory:")
    con.create_function(
        "regexp", 2, lambda p, v: v is not None and re.search(p, v) is not None, deterministic=True
    )
    rows = list(_flat(files))  # Zircolite loads the whole log into memory too
    columns = sorted({k for row in rows for k in row})
    con.execute(
        "CREATE TABLE logs (" + ", ".join(f'"{c}" TEXT COLLATE NOCASE' for c in columns) + ")"
    )
    index = {c: i for i, c in enumerate(columns)}
    marks = ", ".join("?" for _ in columns)
    batch: list[list[str | None]] = []
    for row in rows:
        values: list[str | None] = [None] * len(columns)
        for k, v in row.items():
            values[index[k]] = v
        batch.append(values)
    con.executemany(f"INSERT INTO logs VALUES ({marks})", batch)
    del rows, batch
    for category, ids in _event_ids().items():
        wanted = ", ".join(f"'{i}'" for i in ids) or "NULL"  # constants, not input
        con.execute(f'CREATE VIEW "{category}" AS SELECT * FROM logs WHERE EventID IN ({wanted})')
    load_s = time.perf_counter() - started
    fired: dict[str, int] = {}
    for rid, (category, sql) in queries.items():
        sql = sql.replace("FROM logs", f'FROM "{category}"', 1)
        try:
            count = len(con.execute(sql).fetchall())
        except sqlite3.OperationalError as error:
            if "no such column" not in str(error):
                failures[rid] = f"run: {error}"
            continue  # a field no record has: nothing matches it
        if count:
            fired[rid] = count
    seconds = time.perf_counter() - started
    return {
        "side": "sqlite",
        "events": events,
        "compile_s": round(compile_s, 2),
        "convert_s": round(convert_s, 2),
        "load_s": round(load_s, 2),
        "run_s": round(seconds - load_s, 2),
        "seconds": round(seconds, 2),
        "events_per_s": round(events / seconds, 1),
        "peak_rss_mib": _peak_rss_mib(),
        "rules_run": len(queries) - sum(1 for f in failures.values() if f.startswith("run")),
        "rules_failed": failures,
        "rules_fired": len(fired),
        "matches": sum(fired.values()),
        "fired": fired,
    }


# -- side by side ------------------------------------------------------------------------------
def _child(side: str, events: int, seed: int) -> dict[str, Any]:
    out = ROOT / "bench" / "out" / f"sigma_{side}_{events}.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.sigma_bench",
            "--side",
            side,
            "--events",
            str(events),
            "--seed",
            str(seed),
            "--out",
            str(out),
        ],
        check=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    a, b = set(ours["fired"]), set(theirs["fired"])
    return {
        "ratio": round(theirs["seconds"] / ours["seconds"], 2) if ours["seconds"] else None,
        "fired_both": len(a & b),
        "fired_only_provgraph": sorted(a - b),
        "fired_only_sqlite": sorted(b - a),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, action="append")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--side", choices=("provgraph", "sqlite"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sizes = args.events or [100_000]
    if args.side:
        work = run_provgraph if args.side == "provgraph" else run_sqlite
        result = work(sizes[0], args.seed)
        assert args.out is not None
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        return
    report: dict[str, Any] = {"machine": machine(), "sizes": []}
    for n in sizes:
        ours, theirs = _child("provgraph", n, args.seed), _child("sqlite", n, args.seed)
        both = compare(ours, theirs)
        report["sizes"].append({"events": n, "provgraph": ours, "sqlite": theirs, **both})
        print(
            f"\n== Sigma, {n:,} events, {ours['rules_compiled']} compiled SigmaHQ rules "
            f"({ours['rules_streamed']} streamed, {ours['rules_cypher']} Cypher, "
            f"{ours['rules_deferred_to_cypher']} deferred to Cypher; {ours['rules_gated']} "
            f"Cypher rules gated, {ours['gates_opened']} gates opened)"
        )
        print(
            f"{'':10} {'seconds':>8} {'events/s':>10} {'peak RSS MiB':>13} {'fired':>6} "
            f"{'matches':>8}"
        )
        for side in (ours, theirs):
            print(
                f"{side['side']:10} {side['seconds']:8.1f} {side['events_per_s']:10,.0f} "
                f"{side['peak_rss_mib']:13,.0f} {side['rules_fired']:6} {side['matches']:8}"
            )
        if ours.get("parser_peak_rss_mib"):
            print(
                f"provgraph: a child process (the ingest's parser, when it ran one) peaked at "
                f"{ours['parser_peak_rss_mib']:,.0f} MiB (beside the figure above)"
            )
        print(
            f"provgraph: matchers {ours['matcher_build_s']} s (their specs made at import "
            f"{ours.get('import_matcher_specs_s', '?')} s, not counted), ingest with streaming "
            f"{ours['ingest_s']} s (matchers {ours['stream_s']} s), "
            f"{ours['identities_rechecked']:,} starts decided on the graph's facts "
            f"{ours['recheck_s']} s, streamed rules' alerts {ours['streamed_alerts_s']} s, "
            f"Cypher rules {ours['cypher_rules_s']} s"
        )
        print(
            f"sqlite: load {theirs['load_s']} s, rules {theirs['run_s']} s "
            f"(SQL conversion {theirs['convert_s']} s, not counted)"
        )
        print(
            f"ratio (SQLite s / provgraph s): {both['ratio']}x; fired by both "
            f"{both['fired_both']}, only provgraph {len(both['fired_only_provgraph'])}, "
            f"only SQLite {len(both['fired_only_sqlite'])}"
        )
    write_result("sigma_bench", report)


if __name__ == "__main__":
    main()
