"""`provgraph rules …` and `provgraph alerts …`: typer apps the main CLI mounts.

app.add_typer(rules_app, name="rules")
app.add_typer(alerts_app, name="alerts")
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provgraph.core.errors import ProvgraphError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from provgraph.graph.tx import Graph
    from provgraph.queries.catalog import Catalog, Snapshot
    from provgraph.queries.rule import Example, Rule

rules_app = typer.Typer(
    help="Detection rules: list, enable/disable, validate, test and run them.",
    no_args_is_help=True,
)
alerts_app = typer.Typer(help="Alerts the rules raised.", no_args_is_help=True)

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


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    if value.startswith("-"):  # "-2h": relative to now
        from provgraph.queries.rule import parse_duration

        return datetime.now(UTC) - parse_duration(value[1:])
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- rules -------------------------------------------------------------------------------------
@rules_app.command("list")
def rules_list(
    rules_dir: RulesDir = None, json_out: Annotated[bool, typer.Option("--json")] = False
) -> None:
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
                f"{r.id:36} {r.severity:8} {','.join(r.techniques):32} "
                f"every {r.schedule.interval}  {entry.source:8} {r.name}{site}{state}"
            )
    for error in view.errors:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    if view.errors:
        raise typer.Exit(1)


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


@rules_app.command("validate")
def rules_validate(
    rules_dir: RulesDir = None,
    offline: Annotated[bool, typer.Option(help="Skip the server's EXPLAIN.")] = False,
) -> None:
    """Load every rule, check the site settings against it and EXPLAIN its Cypher on the
    server; print each problem with its file and line. Exit status 1 when any rule is broken."""
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
    """Run every rule's embedded examples through its pandas reference, when it has one
    (queries/reference.py), and with --neo4j through the graph. Rules are tested as the
    catalog holds them: site settings applied."""
    from provgraph.queries.reference import REFERENCES

    _quiet_driver()
    view = _snapshot(rules_dir)
    chosen = view.select(rule or None)
    failures = unchecked = 0
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
                if not got:
                    unchecked += 1
                    typer.echo(f"--   {head}; no reference: --neo4j checks it on the graph)")
                    continue
                ok = all(v == example.expect for v in got.values())
                failures += not ok
                counts = ", ".join(f"{k} {v}" for k, v in got.items())
                if r.id not in REFERENCES:
                    counts += ", no reference"
                typer.echo(f"{'ok  ' if ok else 'FAIL'} {head}; {counts})")
    finally:
        if graph is not None:
            graph.close()
    if unchecked:
        typer.echo(f"{unchecked} example(s) not checked")
    if failures:
        raise typer.Exit(1)


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
    """Run the rules once over [since, until] and write alerts, or keep them on schedule
    (picking up edits to rule files and site settings as they happen). Exit status 1 when a
    rule file did not load or a rule failed (e.g. ran past its time limit)."""
    from provgraph.graph.tx import Graph
    from provgraph.queries.engine import RuleRun, Scheduler, run_rules

    _quiet_driver()
    catalog = _catalog(rules_dir)
    view = catalog.snapshot()
    chosen = view.select(rule or None)
    for error in view.errors:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)

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
            only = frozenset(rule) if rule else None
            try:
                Scheduler(graph, catalog=catalog, only=only).run_forever(stop, on_run=show)
            except KeyboardInterrupt:
                stop.set()
            return
        runs = run_rules(graph, _parse_time(since), _parse_time(until), chosen)
    for run in runs:
        show(run)
    if view.errors or any(run.error for run in runs):
        raise typer.Exit(1)


# -- alerts ------------------------------------------------------------------------------------
@alerts_app.callback()
def alerts_group() -> None:
    """Alerts the rules raised (a group, so `alerts list` stays a subcommand on its own)."""


@alerts_app.command("list")
def alerts_list(
    status: Annotated[str | None, typer.Option(help="open, acknowledged or closed")] = None,
    rule: Annotated[str | None, typer.Option("--rule", "-r", help="Rule id.")] = None,
    host: Annotated[str | None, typer.Option(help="Host (short, lower-case).")] = None,
    since: Annotated[str | None, typer.Option(help="last_seen at or after (ISO or -2h).")] = None,
    after_seq: Annotated[
        int | None, typer.Option(help="Only alerts changed after this seq (a SOAR cursor).")
    ] = None,
    limit: int = 100,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Alerts in change order, with rule, severity, ATT&CK ids, host, entities and times."""
    from provgraph.graph.tx import Graph
    from provgraph.queries.alerts import STATUSES, list_alerts

    if status is not None and status not in STATUSES:
        raise ProvgraphError(f"status must be one of {', '.join(STATUSES)}")
    _quiet_driver()
    with Graph.connect() as graph:
        alerts = list_alerts(
            graph,
            status=status,
            rule_id=rule,
            host=host,
            since=_parse_time(since),
            after_seq=after_seq,
            limit=limit,
        )
    if json_out:
        for alert in alerts:
            alert["details"] = json.loads(alert.get("details") or "null")
        typer.echo(json.dumps(alerts, indent=2, default=str))
        return
    for a in alerts:
        typer.echo(
            f"#{a['seq']} [{a['severity']}/{a['risk_score']}] {a['rule_id']} "
            f"({', '.join(a.get('techniques', []))}) host={a.get('host')} "
            f"status={a['status']} hits={a['hit_count']}"
        )
        typer.echo(f"    {a['first_seen']} .. {a['last_seen']}  {a['summary']}")
        for e in a["entities"]:
            typer.echo(f"    - {e['role']}: {e['type']} {e['key']}")
    typer.echo(f"{len(alerts)} alert(s)")
