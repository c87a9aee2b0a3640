"""`provgraph trace process|file|host|ip`: provenance from the terminal, answered by the same
domain reads as the API's provenance endpoints (`provgraph.queries.provenance`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from provgraph.cli import terminal
from provgraph.cli.terminal import console, short
from provgraph.queries import provenance

trace_app = typer.Typer(
    help="Provenance: where a process, file or connection came from.", no_args_is_help=True
)


def _proc(p: dict[str, Any]) -> str:
    name = p.get("name") or p.get("image") or "?"
    when = f" {p['start_time']}" if p.get("start_time") else ""
    cmd = f"  [dim]{short(p.get('command_line'), 70)}[/dim]" if p.get("command_line") else ""
    return f"[bold]{name}[/bold] pid={p.get('pid')} uid={p.get('uid')}{when}{cmd}"


@trace_app.command("process")
def trace_process(uid: str, depth: Annotated[int, typer.Option(min=0, max=10)] = 3) -> None:
    """Ancestry to the root, then the process tree below it."""
    with terminal.connect() as graph:
        lineage = provenance.process_lineage(graph, uid=uid, depth=depth)
    chain = [*lineage.ancestry, lineage.process]
    root = Tree(_proc(chain[0]))
    node = root
    for proc in chain[1:]:
        node = node.add(_proc(proc))
    node.label = f"[reverse]{node.label}[/reverse]" if len(chain) > 1 else node.label

    def grow(tree: Tree, children: list[Any]) -> None:
        for child in children:
            grow(tree.add(_proc(child.process)), child.children)

    grow(node, lineage.descendants)
    for item in lineage.wrote:
        node.add(f"[green]wrote[/green] {item['path']} x{item.get('count')}")
    for item in lineage.connected:
        node.add(
            f"[magenta]connected[/magenta] {item.get('hostname') or item['ip']}:"
            f"{item.get('port')}/{item.get('protocol')}"
        )
    console.print(root)
    if lineage.truncated:
        console.print("[yellow](descendants cut at the limit)[/yellow]")


@trace_app.command("file")
def trace_file(path: str, host: Annotated[str | None, typer.Option("--host")] = None) -> None:
    """Who wrote the file, from which process tree, and what ran it."""
    with terminal.connect() as graph:
        answers = provenance.file_provenance(graph, path=path, host=host)
    for answer in answers:
        tree = Tree(
            f"[bold]{answer.file.get('path')}[/bold] on {answer.file.get('host')}"
            + ("  [red]written, then executed[/red]" if answer.written_then_executed else "")
        )
        writers = tree.add("written by")
        for writer in answer.writers:
            branch = writers
            for proc in writer.lineage:
                branch = branch.add(_proc(proc))
            branch.add(
                f"[green]{', '.join(writer.ops)}[/green] {writer.first_time} .. "
                f"{writer.last_time} x{writer.count}  ({', '.join(writer.sources[:2])})"
            )
        runs = tree.add("executed as")
        for run in answer.executions:
            parent = (
                f" (parent {run.parent.get('name')} {run.parent.get('uid')})" if run.parent else ""
            )
            runs.add(f"{_proc(run.process)} at {run.time}{parent}, {run.children} children")
        console.print(tree)


@trace_app.command("host")
def trace_host(
    host: str,
    since: Annotated[datetime | None, typer.Option(help="ISO time, e.g. 2024-05-01T10:00Z")] = None,
    until: Annotated[datetime | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
) -> None:
    """The host's events in time order."""
    with terminal.connect() as graph:
        timeline = provenance.host_timeline(
            graph, host=host, since=_utc(since), until=_utc(until), limit=limit
        )
    table = Table("time", "event", "process", "target")
    for event in timeline.events:
        table.add_row(
            str(event.time),
            event.kind,
            f"{event.process.get('name')} ({event.process.get('pid')})",
            short(event.target, 90),
        )
    console.print(table)
    if timeline.next_cursor:
        console.print(f"[yellow]more than {limit} events; narrow with --since/--until[/yellow]")


@trace_app.command("ip")
def trace_ip(address: str) -> None:
    """Processes that contacted an IP address (or a host name: connections and DNS)."""
    is_name = any(c.isalpha() for c in address) and ":" not in address
    with terminal.connect() as graph:
        found = provenance.contacts(
            graph, ip=None if is_name else address, hostname=address if is_name else None
        )
    table = Table("endpoint", "host", "process", "first", "last", "count")
    for conn in found.connections:
        c = conn.connection
        for contact in conn.contacts:
            p = contact.process
            table.add_row(
                f"{c.get('ip')}:{c.get('port')}/{c.get('protocol')}",
                str(p.get("host")),
                f"{p.get('name')} ({p.get('pid')}) {p.get('uid')}",
                str(contact.first_time),
                str(contact.last_time),
                str(contact.count),
            )
    for domain in found.domains:
        for contact in domain.resolvers:
            p = contact.process
            table.add_row(
                f"DNS {domain.domain.get('name')} -> {', '.join(domain.answers)}",
                str(p.get("host")),
                f"{p.get('name')} ({p.get('pid')}) {p.get('uid')}",
                str(contact.first_time),
                str(contact.last_time),
                str(contact.count),
            )
    console.print(table)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
