"""`provgraph rules …`: the typer app the main CLI mounts (`provgraph alerts …` is in
provgraph/cli/alerts.py).

app.add_typer(rules_app, name="rules")
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from provgraph.cli.terminal import parse_time as _parse_time
from provgraph.core.errors import ProvgraphError

rules_app = typer.Typer(
    help="Detection rules: list, validate, test and run them.", no_args_is_help=True
)

RulesDir = Annotated[
    Path | None, typer.Option("--rules-dir", help="Rule folder (default: the shipped rules).")
]
RuleIds = Annotated[
    list[str] | None, typer.Option("--rule", "-r", help="Only this rule (repeatable).")
]


def _quiet_driver() -> None:
    # the driver logs planner notifications (unknown labels on an empty graph) as warnings
    logging.getLogger("neo4j").setLevel(logging.ERROR)


def _ruleset(rules_dir: Path | None, only: list[str] | None = None):  # type: ignore[no-untyped-def]
    from provgraph.queries.rule import load_rules

    ruleset = load_rules(rules_dir) if rules_dir else load_rules()
    if only:
        unknown = set(only) - {r.id for r in ruleset.rules}
        if unknown:
            raise ProvgraphError(f"no such rule: {', '.join(sorted(unknown))}")
        ruleset.rules = [r for r in ruleset.rules if r.id in only]
    return ruleset


# -- rules -------------------------------------------------------------------------------------
@rules_app.command("list")
def rules_list(
    rules_dir: RulesDir = None, json_out: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Every rule with its severity, ATT&CK ids and schedule."""
    ruleset = _ruleset(rules_dir)
    if json_out:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "name": r.name,
                        "severity": r.severity,
                        "risk_score": r.risk_score,
                        "tactics": r.tactics,
                        "techniques": r.techniques,
                        "parameters": r.parameters,
                        "schedule": {
                            "interval": r.schedule.interval.total_seconds(),
                            "lookback": r.schedule.lookback.total_seconds(),
                        },
                    }
                    for r in ruleset.rules
                ],
                indent=2,
            )
        )
    else:
        for r in ruleset.rules:
            typer.echo(
                f"{r.id:36} {r.severity:8} {','.join(r.techniques):32} "
                f"every {r.schedule.interval}  {r.name}"
            )
    for error in ruleset.errors:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    if ruleset.errors:
        raise typer.Exit(1)


@rules_app.command("validate")
def rules_validate(
    rules_dir: RulesDir = None,
    offline: Annotated[bool, typer.Option(help="Skip the server's EXPLAIN.")] = False,
) -> None:
    """Load every rule and EXPLAIN its Cypher on the server; print each problem with its
    file and line. Exit status 1 when any rule is broken."""
    from provgraph.queries.engine import validate

    _quiet_driver()
    ruleset = _ruleset(rules_dir)
    if offline:
        errors = validate(None, ruleset)
    else:
        from provgraph.graph.tx import Graph

        with Graph.connect() as graph:
            errors = validate(graph, ruleset)
    for error in errors:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
    bad = {e.path for e in errors}
    good = [r.id for r in ruleset.rules if str(r.path) not in bad]
    typer.echo(f"{len(good)} rule(s) valid, {len(errors)} problem(s)")
    if errors:
        raise typer.Exit(1)


@rules_app.command("test")
def rules_test(
    rules_dir: RulesDir = None,
    rule: RuleIds = None,
    neo4j: Annotated[
        bool,
        typer.Option(
            "--neo4j",
            help="Also run the examples through the graph (written under a "
            "throwaway host prefix, deleted afterwards).",
        ),
    ] = False,
) -> None:
    """Run every rule's embedded examples through the pandas reference (and the graph)."""
    from provgraph.queries.examples import events_from_specs
    from provgraph.queries.reference import evaluate_reference, events_frame

    _quiet_driver()
    ruleset = _ruleset(rules_dir, rule)
    failures = 0
    graph = None
    if neo4j:
        from provgraph.graph.tx import Graph

        graph = Graph.connect()
    try:
        for r in ruleset.rules:
            for example in r.examples:
                events = events_from_specs(example.events)
                got = {"reference": len(evaluate_reference(r, events_frame(events)))}
                if graph is not None:
                    got["graph"] = _example_on_graph(graph, r, example.events)
                ok = all(v == example.expect for v in got.values())
                failures += not ok
                mark = "ok  " if ok else "FAIL"
                counts = ", ".join(f"{k} {v}" for k, v in got.items())
                typer.echo(f"{mark} {r.id}: {example.name} (expect {example.expect}; {counts})")
    finally:
        if graph is not None:
            graph.close()
    if failures:
        raise typer.Exit(1)


_CLEANUP = """
MATCH (n) WHERE (n:Host AND n.name STARTS WITH $prefix)
   OR ((n:Process OR n:File) AND n.host STARTS WITH $prefix)
DETACH DELETE n
"""
_ORPHAN_CONNECTIONS = "MATCH (c:Connection) WHERE NOT (c)--() DELETE c"


def _example_on_graph(graph: Any, rule: Any, specs: Any) -> int:
    from provgraph.graph.writer import write_events
    from provgraph.queries.engine import evaluate
    from provgraph.queries.examples import events_from_specs

    prefix = f"rtest-{secrets.token_hex(4)}-"
    events = events_from_specs(specs, prefix=prefix)
    try:
        write_events(graph, events)
        since = min(e.ts for e in events) - timedelta(days=30)
        until = max(e.ts for e in events) + timedelta(days=30)
        return sum(
            1 for m in evaluate(graph, rule, since, until) if (m.host or "").startswith(prefix)
        )
    finally:
        graph.write(_CLEANUP, {"prefix": prefix})
        graph.write(_ORPHAN_CONNECTIONS)


@rules_app.command("run")
def rules_run(
    rules_dir: RulesDir = None,
    rule: RuleIds = None,
    since: Annotated[
        str | None, typer.Option(help="ISO time or -2h (default: the beginning).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="ISO time or -0s (default: the end).")] = None,
    schedule: Annotated[bool, typer.Option(help="Keep running each rule on its schedule.")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run the rules once over [since, until] and write alerts, or keep them on schedule."""
    from provgraph.graph.tx import Graph
    from provgraph.queries.engine import RuleRun, Scheduler, run_rules

    _quiet_driver()
    ruleset = _ruleset(rules_dir, rule)

    def show(run: RuleRun) -> None:
        if json_out:
            typer.echo(json.dumps(run.__dict__, default=str))
        elif run.error:
            typer.secho(f"{run.rule_id}: FAILED {run.error}", fg=typer.colors.RED)
        else:
            typer.echo(
                f"{run.rule_id:36} matches {run.matches:5}  new {run.created:4}  "
                f"updated {run.updated:4}  unchanged {run.unchanged:4}  "
                f"{run.seconds * 1000:8.1f} ms"
            )

    with Graph.connect() as graph:
        if schedule:
            stop = threading.Event()
            try:
                Scheduler(graph, ruleset.rules).run_forever(stop, on_run=show)
            except KeyboardInterrupt:
                stop.set()
            return
        for run in run_rules(graph, _parse_time(since), _parse_time(until), ruleset.rules):
            show(run)
