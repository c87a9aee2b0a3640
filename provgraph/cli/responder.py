"""Terminal commands for responders, over the same service functions as the API.

Mounted by `provgraph/cli.py`:
    app.add_typer(keys_app, name="keys")     # provgraph keys create|list|revoke
    app.add_typer(alert_app, name="alert")   # provgraph alert list|show|set
    app.add_typer(trace_app, name="trace")   # provgraph trace process|file|host|ip
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from provgraph.api.alerts import service as alerts
from provgraph.api.alerts.models import AlertUpdate, Status
from provgraph.api.alerts.ocsf import to_detection_finding
from provgraph.api.keys import service as keys
from provgraph.api.keys.models import Scope
from provgraph.api.provenance import service as provenance
from provgraph.api.schema import ensure_api_schema
from provgraph.core.errors import ProvgraphError
from provgraph.graph.tx import Graph


class _Out:
    """Rich output sized to the terminal at print time (COLUMNS is honoured when piped)."""

    def print(self, *items: Any) -> None:
        Console(highlight=False).print(*items)


console = _Out()

keys_app = typer.Typer(
    help="API keys: create (secret shown once), list, revoke.", no_args_is_help=True
)
alert_app = typer.Typer(help="Alerts: list, show with evidence, triage.", no_args_is_help=True)
trace_app = typer.Typer(
    help="Provenance: where a process, file or connection came from.", no_args_is_help=True
)


def _graph() -> Graph:
    graph = Graph.connect()
    ensure_api_schema(graph)
    return graph


def _short(value: Any, width: int = 80) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _proc(p: dict[str, Any]) -> str:
    name = p.get("name") or p.get("image") or "?"
    when = f" {p['start_time']}" if p.get("start_time") else ""
    cmd = f"  [dim]{_short(p.get('command_line'), 70)}[/dim]" if p.get("command_line") else ""
    return f"[bold]{name}[/bold] pid={p.get('pid')} uid={p.get('uid')}{when}{cmd}"


# -- keys --------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="who or what uses the key")],
    scope: Annotated[
        list[Scope],
        typer.Option(
            "--scope", help="repeat: ingest, read, hunt, triage, admin (admin implies all)"
        ),
    ],
) -> None:
    """Create a key and print its secret (this once; only a hash is kept)."""
    with _graph() as graph:
        created = keys.create_key(graph, name=name, scopes=scope)
    console.print(f"key id:  {created.id}\nscopes:  {', '.join(s.value for s in created.scopes)}")
    console.print("secret (shown once, store it now):")
    typer.echo(created.secret)


@keys_app.command("list")
def keys_list() -> None:
    """Every key: id, name, scopes, created, revoked (never secrets)."""
    with _graph() as graph:
        found = keys.list_keys(graph)
    table = Table("id", "name", "scopes", "created", "revoked")
    for key in found:
        table.add_row(
            key.id,
            key.name,
            ",".join(s.value for s in key.scopes),
            str(key.created_at or ""),
            "yes" if key.revoked else "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id (API processes stop accepting it within seconds)."""
    with _graph() as graph:
        revoked = keys.revoke_key(graph, key_id=key_id)
    if revoked is None:
        raise ProvgraphError(f"no API key with id {key_id}")
    console.print(f"revoked {revoked.id} ({revoked.name})")


# -- alerts ------------------------------------------------------------------------------------
@alert_app.command("list")
def alert_list(
    status: Annotated[list[Status] | None, typer.Option(help="repeatable")] = None,
    host: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Newest changes last, as the API pages them."""
    where = alerts.AlertFilter(
        statuses=[s.value for s in status] if status else None,
        hosts=[host.lower()] if host else None,
    )
    with _graph() as graph:
        high = alerts.watermark(graph)
        page = alerts.list_alerts(graph, after=max(high - 10 * limit, 0), limit=limit, where=where)
    table = Table("seq", "severity", "status", "host", "rule", "last seen")
    table.add_column("id", no_wrap=True, min_width=32)
    for a in page.alerts:
        table.add_row(
            str(a.seq),
            a.severity or "",
            a.status or "",
            a.host or "",
            a.rule_name or a.rule_id or "",
            str(a.last_seen or ""),
            a.id,
        )
    console.print(table)


@alert_app.command("show")
def alert_show(
    alert_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="the API's JSON")] = False,
    ocsf: Annotated[bool, typer.Option("--ocsf", help="as an OCSF Detection Finding")] = False,
) -> None:
    """One alert: rule, MITRE, entities, evidence (raw records) and audit trail."""
    with _graph() as graph:
        try:
            detail, rule = alerts.alert_with_rule(graph, alert_id=alert_id)
        except alerts.AlertNotFound:
            raise ProvgraphError(f"no alert {alert_id}") from None
    if ocsf:
        typer.echo(
            json.dumps(
                to_detection_finding(detail, detail.entities, detail.evidence, rule),
                indent=2,
                default=str,
            )
        )
        return
    if as_json:
        typer.echo(detail.model_dump_json(indent=2))
        return
    console.print(f"[bold]{detail.rule_name or detail.rule_id}[/bold]  ({detail.id})")
    console.print(
        f"severity {detail.severity}  risk {detail.risk_score}  status {detail.status}"
        f"  assignee {detail.assignee or '-'}  host {detail.host}  seq {detail.seq}"
    )
    console.print(f"seen {detail.first_seen} .. {detail.last_seen}  hits {detail.hit_count}")
    console.print(f"MITRE: {', '.join(detail.tactics)} / {', '.join(detail.techniques)}")
    if detail.summary:
        console.print(detail.summary)
    entities = Table("role", "kind", "entity")
    for entity in detail.entities:
        entities.add_row(entity.role or "", entity.kind, _short(entity.id, 100))
    console.print(entities)
    for item in detail.evidence:
        console.print(
            f"[cyan]{item.relationship}[/cyan] {item.source} -> {item.target} "
            f"({', '.join(item.sources[:3])})"
        )
        if item.raw is not None:
            console.print(f"  [dim]{_short(json.dumps(item.raw, default=str), 160)}[/dim]")
    for entry in detail.audit:
        who = f"{entry.actor_name} ({entry.actor})" if entry.actor_name else entry.actor
        console.print(f"audit {entry.at} {who}: {json.dumps(entry.changes)} {entry.comment or ''}")


@alert_app.command("set")
def alert_set(
    alert_id: str,
    status: Annotated[Status | None, typer.Option()] = None,
    assignee: Annotated[str | None, typer.Option(help='"" to unassign')] = None,
    comment: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Triage from the terminal; recorded in the audit trail as `cli:<user>`."""
    try:
        change = AlertUpdate(status=status, assignee=assignee, comment=comment)
    except ValueError as error:
        raise ProvgraphError(f"nothing to set: {error}") from None
    user = getpass.getuser()
    with _graph() as graph:
        try:
            alert, recorded = alerts.update_alert(
                graph, alert_id=alert_id, change=change, actor=f"cli:{user}", actor_name=user
            )
        except alerts.AlertNotFound:
            raise ProvgraphError(f"no alert {alert_id}") from None
    verb = "updated" if recorded else "unchanged"
    console.print(
        f"{verb}: {alert.id} status={alert.status} assignee={alert.assignee} seq={alert.seq}"
    )


# -- trace -------------------------------------------------------------------------------------
@trace_app.command("process")
def trace_process(uid: str, depth: Annotated[int, typer.Option(min=0, max=10)] = 3) -> None:
    """Ancestry to the root, then the process tree below it."""
    with _graph() as graph:
        try:
            lineage = provenance.process_lineage(graph, uid=uid, depth=depth)
        except provenance.NotFound:
            raise ProvgraphError(f"no process {uid}") from None
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
    with _graph() as graph:
        try:
            answers = provenance.file_provenance(graph, path=path, host=host)
        except provenance.NotFound:
            raise ProvgraphError(f"no file {path}" + (f" on {host}" if host else "")) from None
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
    with _graph() as graph:
        timeline = provenance.host_timeline(
            graph, host=host, since=_utc(since), until=_utc(until), limit=limit
        )
    table = Table("time", "event", "process", "target")
    for event in timeline.events:
        table.add_row(
            str(event.time),
            event.kind,
            f"{event.process.get('name')} ({event.process.get('pid')})",
            _short(event.target, 90),
        )
    console.print(table)
    if timeline.next_cursor:
        console.print(f"[yellow]more than {limit} events; narrow with --since/--until[/yellow]")


@trace_app.command("ip")
def trace_ip(address: str) -> None:
    """Processes that contacted an IP address (or a host name: connections and DNS)."""
    is_name = any(c.isalpha() for c in address) and ":" not in address
    with _graph() as graph:
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
