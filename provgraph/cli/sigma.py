"""`provgraph sigma …`: compile Sigma rules into provgraph rules and keep them in the catalog.

app.add_typer(sigma_app, name="sigma")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provgraph.cli.terminal import EXIT_OK, EXIT_PARTLY_FAILED, EXIT_USAGE

if TYPE_CHECKING:
    from datetime import timedelta

    from provgraph.graph.tx import Graph
    from provgraph.queries.catalog import SiteSettings
    from provgraph.queries.rule import Rule
    from provgraph.queries.sigma.check import Timing
    from provgraph.queries.sigma.store import Stored

sigma_app = typer.Typer(
    help="Sigma rules: import them as provgraph rules (same catalog, engine and alerts).",
    no_args_is_help=True,
)

# The command line's exit statuses (provgraph.cli.terminal): 0 every rule compiled (or runs
# inside a correlation), stored, within budget; 4 some rules did not compile or ran past the
# budget (the others were imported); 2 bad arguments, settings that do not fit, or Neo4j
# unreachable for a check.
EXIT_SOME = EXIT_PARTLY_FAILED

WIPE = "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(EXIT_USAGE)


def _settings() -> SiteSettings:
    from provgraph.queries.catalog import RuleSettingsError, SiteSettings

    try:
        return SiteSettings.read()
    except RuleSettingsError as error:
        raise _fail(str(error)) from None


@sigma_app.command(
    "import",
    epilog="Exit status: 0 every rule compiled (or runs inside a correlation) and, when "
    "checked, ran within its budget; 1 some rules did not compile or ran past the budget "
    "(the others were imported); 2 bad arguments, settings that do not fit, or Neo4j "
    "unreachable for a check.",
)
def sigma_import(
    paths: Annotated[list[Path], typer.Argument(help="Sigma rule files or folders.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compile and report; store nothing.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Run each compiled rule once over the graph in use (read-only) within the "
            "budget; a rule past it is imported disabled.",
        ),
    ] = False,
    check_on: Annotated[
        Path | None,
        typer.Option(
            "--check-on",
            help="Like --check, on a scratch managed Neo4j (--scratch-instance, its database "
            "wiped) loaded with this telemetry (any format `provgraph ingest` reads).",
        ),
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            help="Time budget per rule for the check, e.g. 30s (default: the rules' "
            "time limit, rule_time_limit in the settings, 120 s unless set)."
        ),
    ] = None,
    scratch_instance: Annotated[
        str, typer.Option(help="Managed instance --check-on loads and wipes.")
    ] = "sigma-check",
    top: Annotated[int, typer.Option(help="How many top reasons to list.")] = 15,
) -> None:
    """Compile Sigma rules (files or folders in SigmaHQ's layout) into provgraph rules, store
    them in the catalog's Sigma folder (<rules home>/sigma/) and report, per rule, what
    happened. Importing the same rules again changes nothing; an updated rule replaces its
    older version; a rule that no longer compiles is removed."""
    from provgraph.queries.rule import parse_duration
    from provgraph.queries.sigma import compile_path
    from provgraph.queries.sigma.store import store

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise _fail(f"no such file or folder: {', '.join(missing)}")
    if check and check_on:
        raise _fail("--check and --check-on exclude each other")
    if check_on is not None and not check_on.exists():
        raise _fail(f"no such file or folder: {check_on}")
    if scratch_instance == "default" and check_on is not None:
        raise _fail("--check-on wipes its instance; name a scratch one, not 'default'")
    settings = _settings()
    try:
        limit = parse_duration(budget) if budget else settings.time_limit
    except ValueError as error:
        raise _fail(f"--budget: {error}") from None
    report = compile_path([p.resolve() for p in paths])
    outcomes = store(report, settings.sigma_dir, dry_run=dry_run)
    if not dry_run:
        # the stream's matchers made now, once, and kept (stream.SpecCache): an ingest after
        # the import reads them instead of putting every rule through pySigma again
        from provgraph.queries.sigma.stream import stream_plan

        stream_plan(report.rules)
    timings: dict[str, Timing] = {}
    if check or check_on is not None:
        rules = [r.rule for r in report.compiled if r.rule is not None]
        timings = _check(rules, limit, check_on, scratch_instance)
        if not dry_run:
            _apply_budget(settings, timings, limit, check_on)
    over = [t for t in timings.values() if not t.ok]
    code = EXIT_SOME if report.failed or over else EXIT_OK
    if json_out:
        document: dict[str, Any] = {
            "folder": str(settings.sigma_dir),
            "dry_run": dry_run,
            **{k: v for k, v in report.to_dict().items() if k != "rules"},
            "stored": _counts(outcomes),
            "budget_seconds": limit.total_seconds() if timings else None,
            "over_budget": len(over),
            "rules": [
                {
                    **o.to_dict(),
                    **({"check": timings[o.rule_id].to_dict()} if o.rule_id in timings else {}),
                }
                for o in outcomes
            ],
            "exit_code": code,
        }
        typer.echo(json.dumps(document, indent=2, default=str))
    else:
        typer.echo(_format(outcomes, timings, limit))
        typer.echo("\n" + report.summary())
        stored = ", ".join(f"{n} {action}" for action, n in _counts(outcomes).items())
        verb = "would store" if dry_run else "stored"
        typer.echo(f"{verb} in {settings.sigma_dir}: {stored or 'nothing'}")
        if timings:
            typer.echo(
                f"checked {len(timings)} rule(s) within {limit.total_seconds():g} s each: "
                f"{len(over)} over budget or rejected"
                + (" (left disabled)" if over and not dry_run else "")
            )
        if report.failed:
            typer.echo("top reasons (rules):")
            for reason, n in report.reasons().most_common(top):
                typer.echo(f"  {n:5d}  {reason}")
    raise typer.Exit(code)


def _counts(outcomes: list[Stored]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        if outcome.action is not None:
            counts[outcome.action] = counts.get(outcome.action, 0) + 1
    return counts


def _format(outcomes: list[Stored], timings: dict[str, Timing], limit: timedelta) -> str:
    lines = []
    for o in outcomes:
        r = o.result
        if r.status == "compiled":
            head = f"{o.action or 'compiled':10} {o.rule_id}  {r.path}: {r.title}"
            if r.placeholders:
                head += f" (placeholders: {', '.join(r.placeholders)})"
            timing = timings.get(o.rule_id or "")
            if timing is not None:
                if timing.exceeded:
                    head += f"  OVER BUDGET (stopped at {limit.total_seconds():g} s): disabled"
                elif timing.error:
                    head += f"  REJECTED by the server: {timing.error}: disabled"
                else:
                    head += f"  ({timing.seconds * 1000:.0f} ms, {timing.matches} matches)"
            lines.append(head)
        elif r.status == "part":
            extra = f"; {o.note}" if o.note else ""
            lines.append(
                f"{'part':10} {r.path}: {r.title}: runs inside {', '.join(r.part_of)}{extra}"
            )
        else:
            extra = f" ({o.note})" if o.note else ""
            lines.append(f"{'failed':10} {r.path}: {r.title}: {r.kind}: {r.reason}{extra}")
    return "\n".join(lines)


def _check(
    rules: list[Rule], limit: timedelta, check_on: Path | None, scratch: str
) -> dict[str, Timing]:
    import logging

    from provgraph.core.errors import ProvgraphError
    from provgraph.graph.tx import Graph
    from provgraph.queries.sigma.check import check_rules

    logging.getLogger("neo4j").setLevel(logging.ERROR)
    if check_on is None:
        try:
            with Graph.connect() as graph:
                return check_rules(graph, rules, limit)
        except ProvgraphError as error:
            raise _fail(f"--check needs Neo4j: {error}") from None
    from provgraph.graph.local import server

    local = server.Instance(scratch)
    started_here = not local.is_running()
    server.start(local, quiet=True)
    try:
        with Graph.connect(scratch) as graph:
            _load_reference(graph, check_on)
            return check_rules(graph, rules, limit)
    finally:
        if started_here:
            server.stop(local)


def _load_reference(graph: Graph, data: Path) -> None:
    from provgraph.graph.pipeline import ingest_sources
    from provgraph.graph.schema import ensure_schema

    ensure_schema(graph)
    graph.write_autocommit(WIPE)
    report = ingest_sources(graph, [str(data)], progress=False, rules=None)
    typer.echo(
        f"reference data: {data}: {report.summary.accepted} records in the scratch graph",
        err=True,
    )


def _apply_budget(
    settings: SiteSettings, timings: dict[str, Timing], limit: timedelta, data: Path | None
) -> None:
    """Disable what ran past the budget (or the server rejected); enable again what an
    earlier check disabled and now passes. Other disabled rules are left as the user set."""
    from provgraph.queries.catalog import RuleState
    from provgraph.queries.sigma.check import BUDGET_REASON

    state = RuleState(settings.state_path)
    disabled = state.disabled()
    where = f"on {data}" if data else "on the graph in use"
    for rule_id, timing in timings.items():
        if not timing.ok:
            why = "rejected by the server" if timing.error else f"past {limit.total_seconds():g} s"
            state.set(rule_id, False, f"{BUDGET_REASON}: {why} {where}")
        elif str(disabled.get(rule_id, {}).get("reason", "")).startswith(BUDGET_REASON):
            state.set(rule_id, True)


@sigma_app.command("remove")
def sigma_remove(
    rule_ids: Annotated[list[str], typer.Argument(help="Imported rule ids (sigma_…).")],
) -> None:
    """Delete imported rules from the catalog's Sigma folder (and their enabled state)."""
    from provgraph.queries.catalog import RuleState
    from provgraph.queries.sigma.store import remove

    settings = _settings()
    gone = remove(settings.sigma_dir, rule_ids)
    RuleState(settings.state_path).forget(gone)
    for rule_id in gone:
        typer.echo(f"removed {rule_id}")
    unknown = sorted(set(rule_ids) - set(gone))
    if unknown:
        raise _fail(f"not imported: {', '.join(unknown)}")
