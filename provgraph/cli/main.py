"""`provgraph …`: one command line for the managed Neo4j, ingest, rules, alerts and the API."""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from provgraph.cli import terminal
from provgraph.cli.terminal import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED_INPUT,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_PARTLY_FAILED,
    EXIT_USAGE,
    fail,
    one_line,
)
from provgraph.core.errors import ProvgraphError
from provgraph.graph.pipeline import Evidence
from provgraph.graph.writer import BATCH_SIZE
from provgraph.ingest.detect import FORMATS

if TYPE_CHECKING:
    from provgraph.graph.tx import Graph
    from provgraph.queries.engine import RuleRun

app = typer.Typer(
    help="Graph-based provenance analytics for security telemetry, on Neo4j.",
    epilog="Exit status, the same for every command:\n\n" + terminal.exit_codes_help(),
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


@neo4j_app.command(
    "status",
    epilog=f"Exit status: {EXIT_OK} the server answers; {EXIT_USAGE} it does not.",
)
def neo4j_status(
    instance: Instance = "default",
    json_out: Annotated[bool, typer.Option("--json", help="The status as JSON.")] = False,
) -> None:
    """Whether it answers, its version, the Bolt URI and user, and where the password is kept."""
    from provgraph.graph.local import server

    local = server.Instance(instance)
    pid = local.pid()
    version = server.server_version(local) if pid else None
    http = f"http://127.0.0.1:{local.http_port}" if local.http_port else None
    if json_out:
        terminal.emit_json(
            {
                "instance": local.name,
                "home": str(local.home),
                "pid": pid,
                "running": pid is not None,
                "answers": version is not None,
                "version": version,
                "bolt": local.uri if local.bolt_port else None,
                "http": http,
                "user": server.USER,
                "password_file": str(local.password_file),
            }
        )
    else:
        typer.echo(f"instance:  {local.name} ({local.home})")
        typer.echo(f"process:   {'pid ' + str(pid) if pid else 'not running'}")
        typer.echo(f"answers:   {'yes, ' + version if version else 'no'}")
        if local.bolt_port:
            typer.echo(f"bolt:      {local.uri}")
            typer.echo(f"http:      {http}")
        typer.echo(f"user:      {server.USER}")
        typer.echo(f"password:  {local.password_file}")
    if not version:
        raise typer.Exit(EXIT_USAGE)


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
# What `provgraph ingest` exits with, from the one table in terminal.py: 0 every input read,
# every record accepted or skipped as irrelevant; 3 an input could not be read, was not
# recognised, was cut short, or gave no events from the records it had (the other inputs were
# ingested); 4 every input read and gave events, but some records were rejected; 2 bad
# arguments, or Neo4j unreachable or lost.
EXIT_REJECTED = EXIT_PARTLY_FAILED


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
    batch_size: Annotated[int, typer.Option(help="Events per transaction.", min=1)] = BATCH_SIZE,
    rules: Annotated[bool, typer.Option(help="Run the rules over the new time range.")] = True,
    progress: Annotated[bool, typer.Option(help="Progress bar on stderr.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    evidence: Annotated[
        Evidence,
        typer.Option(
            help="raw: keep each edge's first raw record for alert evidence; refs: only file:line "
            "references (faster)"
        ),
    ] = Evidence.RAW,
) -> None:
    """Read telemetry into the provenance graph, then run the rules over what arrived."""
    import json

    from provgraph.graph.pipeline import format_report, ingest_sources
    from provgraph.graph.tx import Graph

    if fmt is not None and fmt not in FORMATS:
        _usage_error(f"unknown format {fmt!r}; --format accepts {', '.join(FORMATS)}")
    hook, observer = _rules_hook() if rules else (None, None)
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
            observer=observer,
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
    fail(message, EXIT_USAGE)


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


def _rules_hook() -> tuple[
    Callable[[Graph, datetime, datetime], list[RuleRun]], Callable[[Any], None] | None
]:
    """After an ingest: the catalog's rules (site settings applied) over the range written.
    Single-event Sigma rules, when the catalog has some, are evaluated as events stream
    (the observer) and only their matches are read back; the others run as Cypher."""
    from provgraph.queries.engine import run_rules
    from provgraph.queries.sigma.stream import catalog_stream

    stream = catalog_stream()
    if stream is not None:
        return stream.hook, stream.observe

    def hook(graph: Graph, since: datetime, until: datetime) -> list[RuleRun]:
        return run_rules(graph, since=since, until=until)

    return hook, None


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
        typer.echo(_rules_table(runs))
        key = create_key(graph, name="demo", scopes=["admin"])
    typer.echo(f"\nAPI key for this demo (admin scope, shown once): {key.secret}")
    typer.echo("Try: provgraph alerts list   |   provgraph trace process <uid>")
    if serve_api:
        typer.echo(f"Serving on http://127.0.0.1:{port}  (docs /docs, console /ui; Ctrl-C to stop)")
        serve(host="127.0.0.1", port=port, log_level="warning")


def _mount_subcommands() -> None:
    """Rules, Sigma imports, alerts, API keys and provenance traces, one typer app each."""
    from provgraph.cli.alerts import alerts_app
    from provgraph.cli.keys import keys_app
    from provgraph.cli.rules import rules_app
    from provgraph.cli.sigma import sigma_app
    from provgraph.cli.trace import trace_app

    app.add_typer(rules_app, name="rules")
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(keys_app, name="keys")
    app.add_typer(trace_app, name="trace")
    app.add_typer(sigma_app, name="sigma")


_mount_subcommands()


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The `provgraph` executable: run the command, exit with its status."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command line and return its exit status. User errors (bad arguments, unknown
    ids, Neo4j down) print one line on stderr and never a traceback; a bug still raises."""
    try:
        outcome = app(
            args=list(argv) if argv is not None else None,
            prog_name="provgraph",
            standalone_mode=False,
        )
    except KeyboardInterrupt:
        return _error("interrupted", EXIT_INTERRUPTED)
    except SystemExit as done:
        # typer ends a write to a closed pipe (`| head`) with exit(1), which would read as a
        # crash; it is the reader's choice, said as a shell says a process SIGPIPE stopped.
        cause = done.__context__
        if isinstance(cause, OSError) and cause.errno == errno.EPIPE:
            return EXIT_BROKEN_PIPE
        raise
    except ProvgraphError as error:
        return _error(str(error), _status_of(error))
    except Exception as error:
        handled = _click_error(error)
        if handled is None:
            message = _neo4j_trouble(error)
            if message is None:
                raise
            handled = _error(message, EXIT_USAGE)
        return handled
    return outcome if isinstance(outcome, int) else EXIT_OK


# Typer raises click's exceptions (its own vendored copy in recent releases, click itself in
# older ones), so they are told apart by class name rather than imported from either.
def _click_error(error: Exception) -> int | None:
    kinds = {cls.__name__ for cls in type(error).__mro__}
    ctx = getattr(error, "ctx", None)
    if "NoArgsIsHelpError" in kinds and ctx is not None:
        typer.echo(ctx.get_help(), nl=False)
        return EXIT_USAGE
    if "UsageError" in kinds:
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        message = error.format_message().replace("Value error, ", "")  # type: ignore[attr-defined]
        return _error(message + where, EXIT_USAGE)
    if "ClickException" in kinds:
        code = getattr(error, "exit_code", EXIT_USAGE)
        return _error(error.format_message(), code)  # type: ignore[attr-defined]
    if "Abort" in kinds:
        return _error("interrupted", EXIT_INTERRUPTED)
    return None


def _error(message: str, code: int) -> int:
    typer.secho(f"error: {one_line(message)}", fg=typer.colors.RED, err=True)
    return code


def _status_of(error: ProvgraphError) -> int:
    """Not found, a rule file that does not load, or (the rest) usage and Neo4j trouble."""
    from provgraph.queries.catalog import RuleSettingsError, UnknownRules
    from provgraph.queries.errors import NotFound
    from provgraph.queries.rule import RuleError

    if isinstance(error, NotFound | UnknownRules):
        return EXIT_NOT_FOUND
    if isinstance(error, RuleError | RuleSettingsError):
        return EXIT_FAILED_INPUT
    return EXIT_USAGE


def _neo4j_trouble(error: Exception) -> str | None:
    """The driver's refusals that are the user's to fix (credentials, address), in a line."""
    from neo4j.exceptions import AuthError, DriverError

    if isinstance(error, AuthError):
        return f"Neo4j refused the credentials (check NEO4J_USER and NEO4J_PASSWORD): {error}"
    if isinstance(error, DriverError):
        return f"Neo4j could not be reached: {error}"
    return None


if __name__ == "__main__":
    main()
