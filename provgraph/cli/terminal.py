"""What the command groups share: the exit statuses, the graph the responder commands
(`alerts`, `keys`, `trace`) open, and how they print (one time format, names before ids,
absent values left out, JSON for scripts). Light to import: the graph and the API's schema
load when a command connects."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from pydantic_core import to_jsonable_python
from rich.console import Console

if TYPE_CHECKING:
    from provgraph.graph.tx import Graph

# -- exit statuses -----------------------------------------------------------------------------
# One table for every command; `provgraph --help` and the README print it. 1 is left to what
# Python exits with on an unexpected error, so a crash never reads as a result.
EXIT_OK = 0
EXIT_USAGE = 2  # bad arguments or option values; or Neo4j unreachable
EXIT_FAILED_INPUT = 3  # an input failed as a whole: a file that cannot be read or does not load
EXIT_PARTLY_FAILED = 4  # the inputs were read, but some records or rule runs failed
EXIT_NOT_FOUND = 5  # the thing named is not in the graph, or the lookup found nothing
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that stopped reading

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "done: the answer is printed (an empty listing, e.g. `alerts list`, is an answer)"),
    (1, "an unexpected error (a bug: a traceback follows)"),
    (
        EXIT_USAGE,
        "bad arguments or option values, or Neo4j unreachable (one line on stderr says which)",
    ),
    (
        EXIT_FAILED_INPUT,
        "an input failed as a whole: `ingest` could not read or recognise a file; a rule file "
        "or site setting does not load (`rules list|validate|test|run`)",
    ),
    (
        EXIT_PARTLY_FAILED,
        "some items failed: `ingest` rejected records (dead-letter file), `rules run` had a "
        "rule fail, `rules test` had an example fail",
    ),
    (
        EXIT_NOT_FOUND,
        "not found: no such alert, process, file, host, rule or key, or a lookup with no "
        "result (`trace host` with no events, `trace ip` with no contacts)",
    ),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
    (EXIT_BROKEN_PIPE, "the reader of the output went away (`| head`)"),
)


def exit_codes_help() -> str:
    """The table as one paragraph per status, for `--help` epilogs."""
    return "\n\n".join(f"{code}: {meaning}" for code, meaning in EXIT_CODES)


LOOKUP_EPILOG = (
    f"Exit status: {EXIT_OK} found; {EXIT_NOT_FOUND} not found or nothing found (one line on "
    f"stderr; with --json the empty answer is still printed when there is one); {EXIT_USAGE} "
    "bad arguments or Neo4j unreachable. `provgraph --help` lists every status."
)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One line on stderr, then the exit status."""
    typer.secho(f"error: {one_line(message)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def nothing_found(message: str) -> NoReturn:
    fail(message, EXIT_NOT_FOUND)


def one_line(message: str) -> str:
    return " ".join(str(message).split())


# -- the graph ---------------------------------------------------------------------------------
def connect() -> Graph:
    """The configured graph, with the API's schema in place (keys, audit entries and the
    alert counter need their constraints; publishing heals a writer that died before it
    published its alerts). A responder waits seconds, not the writer's minute of backoff,
    to hear that Neo4j is down."""
    from provgraph.api.schema import ensure_api_schema
    from provgraph.graph.target import resolve_target
    from provgraph.graph.tx import Graph, Retry

    graph = Graph(resolve_target(), retry=Retry(attempts=3, first_delay=0.5))
    try:
        ensure_api_schema(graph)
    except BaseException:
        graph.close()
        raise
    return graph


# -- printing ----------------------------------------------------------------------------------
UNWRAPPED = 100_000  # columns rich may use: more than any line holds


class _Out:
    """Rich output sized to the terminal at print time (COLUMNS is honoured when piped).
    Callers pass rich Text, never markup built from data: a command line holding `[red]`
    must print as typed. Nothing is wrapped or cropped here: a line longer than the
    terminal goes out whole, for the terminal to wrap, so no name, path or id is ever split
    or cut; the commands cut only bulky text (command lines) to `width()` themselves."""

    def print(self, *items: Any) -> None:
        Console(highlight=False, markup=False, width=UNWRAPPED).print(*items)


console = _Out()


def width() -> int:
    """Columns to fit (COLUMNS, else the terminal's, else 80 when piped)."""
    return max(40, shutil.get_terminal_size((80, 24)).columns)


def emit_json(document: Any) -> None:
    """A document for scripts: times as ISO 8601 UTC, as the API serves them."""
    typer.echo(json.dumps(to_jsonable_python(document), indent=2, ensure_ascii=False))


def wrapped(text: str, indent: int = 4) -> str:
    """Free text (a summary) wrapped to the width under an indent; never cut."""
    pad = " " * indent
    return textwrap.fill(
        one_line(text),
        width=width(),
        initial_indent=pad,
        subsequent_indent=pad,
        break_long_words=False,
        break_on_hyphens=False,
    )


def short(value: Any, limit: int = 80) -> str:
    """Cut bulky free text (command lines, raw records) to `limit`; names are never cut."""
    text = "" if value is None else one_line(str(value))
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def when(value: Any) -> str:
    """The one time format of human output: `2020-09-20 21:39:24.350Z` (UTC, milliseconds);
    "" when absent. Takes datetimes, Neo4j DateTimes and ISO text."""
    if value is None or value == "":
        return ""
    if hasattr(value, "to_native"):
        value = value.to_native()
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return str(value)
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S}.{value.microsecond // 1000:03d}Z"


def span(first: Any, last: Any) -> str:
    """`first .. last`, or the one time when they are the same instant."""
    a, b = when(first), when(last)
    return a if a == b or not b else (f"{a} .. {b}" if a else b)


def process_name(p: Mapping[str, Any] | None) -> str:
    """`msbuild.exe (5460)`; the pid only when known, the image's file name when the name
    is not."""
    if not p:
        return "?"
    name = p.get("name") or _basename(p.get("image")) or "process"
    pid = p.get("pid")
    return f"{name} ({pid})" if pid is not None else str(name)


def endpoint(c: Mapping[str, Any]) -> str:
    """`203.0.113.7:443/tcp (c2.example)`: the address, and the name when it is known."""
    text = str(c.get("ip") or c.get("hostname") or "?")
    if c.get("port") is not None:
        text += f":{c['port']}"
    if c.get("protocol"):
        text += f"/{c['protocol']}"
    if c.get("hostname") and c.get("ip"):
        text += f" ({c['hostname']})"
    return text


def entity_name(kind: str, props: Mapping[str, Any], fallback: str) -> tuple[str, str | None]:
    """What a person calls a graph entity, and the id to pivot on when the name is not it:
    a process's `name (pid)` and uid (for `trace process`), a file's path as logged, an
    endpoint's address, a host's or domain's name."""
    if kind == "Process":
        return process_name(props), props.get("uid")
    if kind == "File":
        return str(props.get("path") or fallback), None
    if kind == "Connection":
        return endpoint(props), None
    if kind in ("Host", "Domain"):
        return str(props.get("name") or fallback), None
    return fallback, None


def _basename(path: Any) -> str:
    if not path:
        return ""
    return str(path).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def parse_time(value: str | None, option: str = "--since") -> datetime | None:
    """An ISO time (UTC unless it says otherwise) or one relative to now: "-2h". A value
    that is neither is a usage error naming the option."""
    if value is None:
        return None
    if value.startswith("-"):  # "-2h": relative to now
        from provgraph.queries.rule import parse_duration

        try:
            return datetime.now(UTC) - parse_duration(value[1:])
        except ValueError:
            raise typer.BadParameter(
                f"{value} is not a time before now like -30s, -5m, -2h or -1d",
                param_hint=option,
            ) from None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value} is not an ISO time like 2024-05-01T10:00Z or a duration like -2h",
            param_hint=option,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
