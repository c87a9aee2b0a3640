"""`provgraph …`: one command line for the managed Neo4j, ingest, rules, alerts and the API."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from provgraph.core.errors import ProvgraphError
from provgraph.ingest.detect import FORMATS

if TYPE_CHECKING:
    from provgraph.graph.tx import Graph
    from provgraph.queries.engine import RuleRun

app = typer.Typer(
    help="Graph-based provenance analytics for security telemetry, on Neo4j.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
neo4j_app = typer.Typer(
    help="Run provgraph's own Neo4j server (no Docker needed).", no_args_is_help=True
)
app.add_typer(neo4j_app, name="neo4j")

Instance = Annotated[
    str,
    typer.Option(
        "--instance", "-i", help="Name of the managed instance.", envvar="PROVGRAPH_INSTANCE"
    ),
]


# -- neo4j -------------------------------------------------------------------------------------
@neo4j_app.command("start")
def neo4j_start(instance: Instance = "default", timeout: float = 180.0) -> None:
    """Fetch (first run only) and verify the jars, then start Neo4j and wait until Bolt answers."""
    from provgraph.graph.local import server

    local = server.Instance(instance)
    if local.is_running():
        typer.echo(f"Neo4j '{local.name}' is already running on {local.uri}")
        return
    server.start(local, timeout=timeout)
    typer.echo(
        f"Neo4j '{local.name}' is up: {local.uri} (user neo4j, password in {local.password_file})"
    )


@neo4j_app.command("stop")
def neo4j_stop(instance: Instance = "default") -> None:
    """Stop exactly the server this instance started."""
    from provgraph.graph.local import server

    local = server.Instance(instance)
    typer.echo("stopped" if server.stop(local) else f"Neo4j '{local.name}' was not running")


@neo4j_app.command("status")
def neo4j_status(instance: Instance = "default") -> None:
    """Whether it answers, its version, the Bolt URI and user, and where the password is kept."""
    from provgraph.graph.local import server

    local = server.Instance(instance)
    pid = local.pid()
    version = server.server_version(local) if pid else None
    typer.echo(f"instance:  {local.name} ({local.home})")
    typer.echo(f"process:   {'pid ' + str(pid) if pid else 'not running'}")
    typer.echo(f"answers:   {'yes, ' + version if version else 'no'}")
    if local.bolt_port:
        typer.echo(f"bolt:      {local.uri}")
        typer.echo(f"http:      http://127.0.0.1:{local.http_port}")
    typer.echo(f"user:      {server.USER}")
    typer.echo(f"password:  {local.password_file}")
    if not version:
        raise typer.Exit(1)


@neo4j_app.command("env")
def neo4j_env(instance: Instance = "default") -> None:
    """Print `export NEO4J_URI=…` lines for scripts and cypher-shell.

    Use: eval "$(provgraph neo4j env)"."""
    import shlex

    from provgraph.graph.local import server

    local = server.Instance(instance)
    for key, value in (
        ("NEO4J_URI", local.uri),
        ("NEO4J_USER", server.USER),
        ("NEO4J_USERNAME", server.USER),
        ("NEO4J_PASSWORD", local.password()),
        ("NEO4J_DATABASE", "neo4j"),
    ):
        typer.echo(f"export {key}={shlex.quote(value)}")


@neo4j_app.command("logs")
def neo4j_logs(
    instance: Instance = "default",
    lines: Annotated[int, typer.Option("--lines", "-n")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
) -> None:
    """Show the end of the server's log."""
    from provgraph.graph.local import server

    log = server.Instance(instance).log_dir / "neo4j.log"
    if not log.exists():
        raise ProvgraphError(f"no log yet at {log}")
    with log.open(errors="replace") as handle:
        for line in handle.readlines()[-lines:]:
            typer.echo(line, nl=False)
        while follow:
            line = handle.readline()
            if line:
                typer.echo(line, nl=False)
            else:
                time.sleep(0.5)


@neo4j_app.command("install")
def neo4j_install() -> None:
    """Fetch and verify the server jars without starting anything."""
    from provgraph.graph.local import jars

    lib = jars.install()
    typer.echo(f"verified {len(jars.read_lock())} jars in {lib}")


@neo4j_app.command("lock")
def neo4j_lock() -> None:
    """Maintainers: re-pin jars.lock from pom.xml (review the diff before committing)."""
    from provgraph.graph.local import jars

    typer.echo(f"wrote {jars.write_lock()}")


# -- ingest ------------------------------------------------------------------------------------
# What `provgraph ingest` exits with, for scripts; its --help and the README say the same. 1 is
# left to what Python exits with on an unexpected error, so a crash never reads as a result.
EXIT_OK = 0  # every input read; every record accepted or skipped as irrelevant
EXIT_USAGE = 2  # bad arguments (an unknown --format), or Neo4j unreachable or lost (main())
EXIT_FAILED_INPUT = 3  # an input could not be read, was not recognised, was cut short, or gave
# no events from the records it had; the other inputs were ingested
EXIT_REJECTED = 4  # every input read and gave events, but some records were rejected


def _ingest_exit_code(report: Any) -> int:
    if report.problems:
        return EXIT_FAILED_INPUT
    return EXIT_REJECTED if report.summary.rejected else EXIT_OK


@app.command(
    "ingest",
    epilog="Exit status: 0 every input read, every record accepted or skipped as irrelevant; "
    "3 an input could not be read, was not recognised, was cut short, or gave no events from the "
    "records it had (the other inputs went in); 4 some records were rejected (they are in the "
    "dead-letter file), every input gave events; 2 bad arguments, or Neo4j unreachable; "
    "1 an unexpected error (a traceback follows). The summary is printed first.",
)
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, folders, .gz, or - for stdin.")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help=f"Read every input as this format: {', '.join(FORMATS)} (default: detected "
            "per file).",
        ),
    ] = None,
    dead_letters: Annotated[
        Path, typer.Option(help="Rejected records, with file, line and reason (NDJSON).")
    ] = Path("dead-letters.ndjson"),
    batch_size: int = 5000,
    rules: Annotated[bool, typer.Option(help="Run the rules over the new time range.")] = True,
    progress: Annotated[bool, typer.Option(help="Progress bar on stderr.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    evidence: Annotated[
        str,
        typer.Option(
            help="raw: keep each edge's first raw record for alert evidence; refs: only file:line "
            "references (faster)"
        ),
    ] = "raw",
) -> None:
    """Read telemetry into the provenance graph, then run the rules over what arrived."""
    import json

    from provgraph.graph.pipeline import EVIDENCE_MODES, format_report, ingest_sources
    from provgraph.graph.tx import Graph

    if fmt is not None and fmt not in FORMATS:
        _usage_error(f"unknown format {fmt!r}; --format accepts {', '.join(FORMATS)}")
    if evidence not in EVIDENCE_MODES:
        _usage_error(f"unknown evidence mode {evidence!r}; --evidence accepts raw or refs")
    hook = _rules_hook() if rules else None
    with Graph.connect() as graph:
        report = ingest_sources(
            graph,
            paths,
            fmt,
            dead_letters=dead_letters,
            batch_size=batch_size,
            progress=progress,
            rules=hook,
            evidence=evidence,
        )
    code = _ingest_exit_code(report)
    if json_out:
        document = report.to_dict()
        if report.rules is not None:
            document["rules"] = [_rule_row(run) for run in report.rules]
        document["exit_code"] = code
        typer.echo(json.dumps(document, indent=2, default=str))
    else:
        typer.echo(format_report(report))
        if report.rules is not None:
            typer.echo(_rules_table(report.rules))
    raise typer.Exit(code)


def _usage_error(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(EXIT_USAGE)


def _rule_row(run: Any) -> dict[str, Any]:
    return {
        "rule_id": run.rule_id,
        "matches": run.matches,
        "created": run.created,
        "updated": run.updated,
        "error": run.error,
    }


def _rules_table(runs: list[Any]) -> str:
    """The rule runs after an ingest, one line each, as `provgraph rules run` prints them."""
    lines = [f"{'rule':36} {'matches':>7} {'new':>5}  error"]
    for run in runs:
        lines.append(
            f"{run.rule_id:36} {run.matches:7} {run.created:5}  {run.error or ''}".rstrip()
        )
    failed = sum(1 for run in runs if run.error)
    created = sum(run.created for run in runs)
    lines.append(
        f"rules ran: {len(runs)}, new alerts {created}" + (f", {failed} failed" if failed else "")
    )
    return "\n".join(lines)


def _rules_hook() -> Callable[[Graph, datetime, datetime], list[RuleRun]]:
    """After an ingest: the catalog's rules (site settings applied) over the range written."""
    from provgraph.queries.engine import run_rules

    def hook(graph: Graph, since: datetime, until: datetime) -> list[RuleRun]:
        return run_rules(graph, since=since, until=until)

    return hook


# -- graph -------------------------------------------------------------------------------------
@app.command("schema")
def schema() -> None:
    """Create constraints and indexes (idempotent; ingest and serve do this too)."""
    from provgraph.graph.schema import ensure_schema
    from provgraph.graph.tx import Graph

    with Graph.connect() as graph:
        ensure_schema(graph)
    typer.echo("schema ready")


# -- API -----------------------------------------------------------------------------------------
@app.command("serve")
def serve(
    host: Annotated[
        str, typer.Option(help="Bind address; loopback unless you mean otherwise.")
    ] = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
) -> None:
    """Serve the API (OpenAPI docs at /docs, analyst console at /ui)."""
    import uvicorn

    from provgraph.api.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level=log_level)


SAMPLE_DATA = Path(__file__).resolve().parents[2] / "tests" / "data"


@app.command("demo")
def demo(
    port: int = 8000,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
) -> None:
    """Start Neo4j, ingest the bundled sample data, run the rules and serve the API."""
    from provgraph.api.keys.service import create_key
    from provgraph.graph.local import server
    from provgraph.graph.pipeline import format_report, ingest_sources
    from provgraph.graph.tx import Graph
    from provgraph.queries.engine import run_rules

    if not os.environ.get("NEO4J_URI"):
        local = server.Instance(os.environ.get("PROVGRAPH_INSTANCE", "default"))
        server.start(local)
        typer.echo(f"Neo4j '{local.name}' is up on {local.uri}")
    samples = sorted(SAMPLE_DATA.glob("*.ndjson"))
    typer.echo(f"Ingesting {len(samples)} bundled sample files (see tests/data/ATTRIBUTION.md) …")
    with Graph.connect() as graph:
        report = ingest_sources(graph, samples, progress=True)
        typer.echo(format_report(report))
        runs = run_rules(graph)  # the whole history: the samples span 2020 to 2025
        for run in runs:
            outcome = (
                f"error: {run.error}"
                if run.error
                else (f"{run.matches} matches, {run.created} new alerts")
            )
            typer.echo(f"  {run.rule_id:<36} {outcome}")
        typer.echo(f"Rules ran: {len(runs)} rules, {sum(r.created for r in runs)} new alerts.")
        key = create_key(graph, name="demo", scopes=["admin"])
    typer.echo(f"\nAPI key for this demo (admin scope, shown once): {key.secret}")
    typer.echo("Try: provgraph alerts list   |   provgraph trace process <uid>")
    if serve_api:
        typer.echo(f"Serving on http://127.0.0.1:{port}  (docs /docs, console /ui; Ctrl-C to stop)")
        serve(host="127.0.0.1", port=port, log_level="warning")


def _mount_subcommands() -> None:
    """Rules, alerts and Sigma imports from queries/, responder commands from api/."""
    from provgraph.cli.responder import alert_set, alert_show, keys_app, trace_app
    from provgraph.cli.rules import alerts_app, rules_app
    from provgraph.cli.sigma import sigma_app

    alerts_app.command("show")(alert_show)
    alerts_app.command("set")(alert_set)
    app.add_typer(rules_app, name="rules")
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(keys_app, name="keys")
    app.add_typer(trace_app, name="trace")
    app.add_typer(sigma_app, name="sigma")


_mount_subcommands()


def main() -> None:
    try:
        app()
    except ProvgraphError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
