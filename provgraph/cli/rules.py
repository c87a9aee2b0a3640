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
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic_core import to_jsonable_python

from provgraph.cli.terminal import (
    EXIT_FAILED_INPUT,
    EXIT_OK,
    EXIT_PARTLY_FAILED,
    EXIT_USAGE,
    emit_json,
    one_line,
)
from provgraph.cli.terminal import parse_time as _parse_time

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from provgraph.graph.tx import Graph
    from provgraph.queries.catalog import Catalog, Snapshot
    from provgraph.queries.rule import Example, Rule

rules_app = typer.Typer(
    help="Detection rules: list, enable/disable, validate, test and run them.",
    no_args_is_help=True,
)

RulesDir = Annotated[
    Path | None,
    typer.Option(
        "--rules-dir",
        help="Only the rules in this folder (default: the shipped rules and the settings' "
        "rule_dirs). Site settings that name its rules apply.",
    ),
]
RuleIds = Annotated[
    list[str] | None, typer.Option("--rule", "-r", help="Only this rule (repeatable).")
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]

LOAD_EPILOG = (
    f"Exit status: {EXIT_OK} every rule loaded; {EXIT_FAILED_INPUT} a rule file or site "
    f"setting did not load (each problem on stderr with its file and line); {EXIT_USAGE} bad "
    "arguments. `provgraph --help` lists every status."
)


def _quiet_driver() -> None:
    # the driver logs planner notifications (unknown labels on an empty graph) as warnings
    logging.getLogger("neo4j").setLevel(logging.ERROR)


def _catalog(rules_dir: Path | None) -> Catalog:
    """The shipped rules and the site's rule folders, or only `--rules-dir`; site settings
    applied either way. Problems are printed by the commands, not logged."""
    from provgraph.queries.catalog import Catalog

    if rules_dir:
        return Catalog.of_folders(rules_dir, log_problems=False)
    return Catalog(log_problems=False)


def _snapshot(rules_dir: Path | None) -> Snapshot:
    return _catalog(rules_dir).snapshot()


def _problem(error: Any) -> dict[str, Any]:
    """A rule file problem for --json: where (file, line, column) and why."""
    return {
        "path": getattr(error, "path", None),
        "line": getattr(error, "line", None),
        "column": getattr(error, "column", None),
        "reason": getattr(error, "reason", None) or one_line(str(error)),
        "message": one_line(str(error)),
    }


def _every(interval: timedelta) -> str:
    """A schedule interval as a person writes it: 30s, 5m, 1h, 1d, 1h30m."""
    seconds = int(interval.total_seconds())
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


# -- rules -------------------------------------------------------------------------------------
@rules_app.command("list", epilog=LOAD_EPILOG)
def rules_list(rules_dir: RulesDir = None, json_out: JsonOut = False) -> None:
    """Every rule with its severity, ATT&CK ids, schedule and effective parameters (site
    settings applied)."""
    view = _snapshot(rules_dir)
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
                        "site_parameters": dict(entry.site),
                        "schedule": {
                            "interval": r.schedule.interval.total_seconds(),
                            "lookback": r.schedule.lookback.total_seconds(),
                        },
                        "time_limit": r.time_limit.total_seconds() if r.time_limit else None,
                        "source": entry.source,
                        "enabled": entry.enabled,
                        "disabled": dict(entry.disabled) if not entry.enabled else None,
                        "metadata": dict(r.metadata),
                    }
                    for entry in view.entries
                    for r in [entry.rule]
                ],
                indent=2,
            )
        )
    else:
        for entry in view.entries:
            r = entry.rule
            site = "  (site settings: " + ", ".join(entry.site) + ")" if entry.site else ""
            state = "" if entry.enabled else "  [disabled]"
            typer.echo(
                f"{r.id:34} {r.severity:8} every {_every(r.schedule.interval):6} "
                f"{', '.join(r.techniques)}".rstrip()
                + state
            )
            source = "" if entry.source == "shipped" else f"  [{entry.source}]"
            typer.echo(f"    {r.name}{source}{site}")
    for error in view.errors:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    if view.errors:
        raise typer.Exit(EXIT_FAILED_INPUT)


def _set_enabled(rule_id: str, enabled: bool, reason: str) -> None:
    catalog = _catalog(None)
    changed = catalog.set_enabled(rule_id, enabled, reason)
    word = "enabled" if enabled else "disabled"
    typer.echo(f"{rule_id} {word}" if changed else f"{rule_id} was already {word}")


@rules_app.command("enable")
def rules_enable(rule_id: Annotated[str, typer.Argument(help="The rule's id.")]) -> None:
    """Turn a disabled rule back on (it runs after ingests, on schedule and on demand)."""
    _set_enabled(rule_id, True, "")


@rules_app.command("disable")
def rules_disable(
    rule_id: Annotated[str, typer.Argument(help="The rule's id.")],
    reason: Annotated[str, typer.Option(help="Why, kept in the state file.")] = "",
) -> None:
    """Stop a rule from running (any rule: shipped, site or imported). It stays listed; its
    alerts stay. The state lives in <rules home>/state.json and survives restarts."""
    _set_enabled(rule_id, False, reason or "provgraph rules disable")


@rules_app.command("validate", epilog=LOAD_EPILOG)
def rules_validate(
    rules_dir: RulesDir = None,
    offline: Annotated[bool, typer.Option(help="Skip the server's EXPLAIN.")] = False,
    json_out: JsonOut = False,
) -> None:
    """Load every rule, check the site settings against it and EXPLAIN its Cypher on the
    server; print each problem with its file and line. Exit status 3 when any rule is broken."""
    _quiet_driver()
    catalog = _catalog(rules_dir)
    if offline:
        errors = catalog.validate(None)
    else:
        from provgraph.graph.tx import Graph

        with Graph.connect() as graph:
            errors = catalog.validate(graph)
    for error in errors:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
    bad = {e.path for e in errors}
    good = [r.id for r in catalog.rules() if str(r.path) not in bad]
    if json_out:
        emit_json({"valid": good, "problems": [_problem(e) for e in errors]})
    else:
        typer.echo(f"{len(good)} rule(s) valid, {len(errors)} problem(s)")
    if errors:
        raise typer.Exit(EXIT_FAILED_INPUT)


@rules_app.command(
    "test",
    epilog=f"Exit status: {EXIT_OK} every example checked gave its expected count; "
    f"{EXIT_PARTLY_FAILED} an example failed; {EXIT_FAILED_INPUT} a rule file did not load.",
)
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
    json_out: JsonOut = False,
) -> None:
    """Run every rule's embedded examples through its pandas reference, when it has one
    (queries/reference.py), and with --neo4j through the graph. Rules are tested as the
    catalog holds them: site settings applied."""
    from provgraph.queries.reference import REFERENCES

    _quiet_driver()
    view = _snapshot(rules_dir)
    chosen = view.select(rule or None)
    failures = unchecked = 0
    results: list[dict[str, Any]] = []
    say = (lambda line: None) if json_out else typer.echo
    graph = None
    if neo4j:
        from provgraph.graph.tx import Graph

        graph = Graph.connect()
    try:
        for r in chosen:
            site = " with site settings" if view.get(r.id).site else ""
            for example in r.examples:
                got = _example_counts(graph, r, example, reference=r.id in REFERENCES)
                head = f"{r.id}: {example.name}{site} (expect {example.expect}"
                ok = all(v == example.expect for v in got.values()) if got else None
                results.append(
                    {
                        "rule": r.id,
                        "example": example.name,
                        "expect": example.expect,
                        "counts": got,
                        "ok": ok,
                    }
                )
                if not got:
                    unchecked += 1
                    say(f"--   {head}; no reference: --neo4j checks it on the graph)")
                    continue
                failures += not ok
                counts = ", ".join(f"{k} {v}" for k, v in got.items())
                if r.id not in REFERENCES:
                    counts += ", no reference"
                say(f"{'ok  ' if ok else 'FAIL'} {head}; {counts})")
    finally:
        if graph is not None:
            graph.close()
    if json_out:
        emit_json({"examples": results, "failed": failures, "unchecked": unchecked})
    elif unchecked:
        typer.echo(f"{unchecked} example(s) not checked")
    for error in view.errors:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    if view.errors:
        raise typer.Exit(EXIT_FAILED_INPUT)
    if failures:
        raise typer.Exit(EXIT_PARTLY_FAILED)


def _example_counts(
    graph: Graph | None, rule: Rule, example: Example, *, reference: bool
) -> dict[str, int]:
    """Matches of one example: by the pandas reference (when the rule has one) and on the graph."""
    from provgraph.queries.examples import events_from_specs
    from provgraph.queries.reference import evaluate_reference, events_frame

    got: dict[str, int] = {}
    if reference:
        frame = events_frame(events_from_specs(example.events))
        got["reference"] = len(evaluate_reference(rule, frame))
    if graph is not None:
        got["graph"] = _example_on_graph(graph, rule, example.events)
    return got


_CLEANUP = """
MATCH (n) WHERE (n:Host AND n.name STARTS WITH $prefix)
   OR ((n:Process OR n:File) AND n.host STARTS WITH $prefix)
DETACH DELETE n
"""
_ORPHAN_CONNECTIONS = "MATCH (c:Connection) WHERE NOT (c)--() DELETE c"


def _example_on_graph(graph: Graph, rule: Rule, specs: Sequence[Mapping[str, Any]]) -> int:
    from provgraph.graph.loader import write_events
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


@rules_app.command(
    "run",
    epilog=f"Exit status: {EXIT_OK} every rule ran; {EXIT_PARTLY_FAILED} a rule failed (e.g. "
    f"ran past its time limit; the others still ran); {EXIT_FAILED_INPUT} a rule file did not "
    f"load; {EXIT_USAGE} bad arguments or Neo4j unreachable. With --json: one JSON object "
    "per rule run, one per line.",
)
def rules_run(
    rules_dir: RulesDir = None,
    rule: RuleIds = None,
    since: Annotated[
        str | None, typer.Option(help="ISO time or -2h (default: the beginning).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="ISO time or -0s (default: the end).")] = None,
    schedule: Annotated[bool, typer.Option(help="Keep running each rule on its schedule.")] = False,
    json_out: JsonOut = False,
) -> None:
    """Run the rules once over [since, until] and write alerts, or keep them on schedule
    (picking up edits to rule files and site settings as they happen)."""
    from provgraph.graph.tx import Graph
    from provgraph.queries.engine import RuleRun, Scheduler, run_rules

    _quiet_driver()
    start, end = _parse_time(since, "--since"), _parse_time(until, "--until")
    catalog = _catalog(rules_dir)
    view = catalog.snapshot()
    chosen = view.select(rule or None)
    for error in view.errors:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)

    def show(run: RuleRun) -> None:
        if json_out:
            typer.echo(json.dumps(to_jsonable_python(run)))
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
            only = frozenset(rule) if rule else None
            try:
                Scheduler(graph, catalog=catalog, only=only).run_forever(stop, on_run=show)
            except KeyboardInterrupt:
                stop.set()
            return
        runs = run_rules(graph, start, end, chosen)
    for run in runs:
        show(run)
    if view.errors:
        raise typer.Exit(EXIT_FAILED_INPUT)
    if any(run.error for run in runs):
        raise typer.Exit(EXIT_PARTLY_FAILED)
