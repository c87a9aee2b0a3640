"""`provgraph alerts list|show|set`: the alerts service (`provgraph.queries.alerts.service`)
from the terminal, the same functions the API pages, shows and triages with."""

from __future__ import annotations

import getpass
import json
import logging
from typing import Annotated, Any

import typer
from rich.table import Table

from provgraph.api.alerts.ocsf import to_detection_finding
from provgraph.api.rules.service import rule_summary
from provgraph.cli import terminal
from provgraph.cli.terminal import console, parse_time, short
from provgraph.core.errors import ProvgraphError
from provgraph.queries.alerts import service
from provgraph.queries.alerts.models import AlertRead, AlertUpdate, Entity, Status

alerts_app = typer.Typer(help="Alerts the rules raised.", no_args_is_help=True)


@alerts_app.callback()
def alerts_group() -> None:
    """Alerts the rules raised (a group, so `alerts list` stays a subcommand on its own)."""


def _score(value: float | None) -> float | int | None:
    """Risk scores are whole numbers; the model holds them as floats."""
    return int(value) if value is not None and value == int(value) else value


def _entity_refs(entities: list[Entity]) -> list[dict[str, Any]]:
    """role, node label and key of each entity, as the alert names them."""
    refs = [
        {"role": e.role, "type": e.kind, "key": e.id.removeprefix(f"{e.kind}:")} for e in entities
    ]
    return sorted(refs, key=lambda r: (r["role"] or "", r["key"]))


def _listed(alert: AlertRead, entities: list[Entity]) -> dict[str, Any]:
    """An alert as `alerts list --json` prints it: its stored properties (absent when unset)
    and the entities it involves."""
    data = alert.model_dump(exclude_none=True)
    data["risk_score"] = _score(alert.risk_score)
    data["details"] = alert.details
    data["entities"] = _entity_refs(entities)
    return data


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
    statuses = [s.value for s in Status]
    if status is not None and status not in statuses:
        raise ProvgraphError(f"status must be one of {', '.join(statuses)}")
    # the driver logs planner notifications (unknown labels on an empty graph) as warnings
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    where = service.AlertFilter(
        statuses=[status] if status else None,
        rules=[rule] if rule else None,
        hosts=[host] if host else None,
        since=parse_time(since),
    )
    with terminal.connect() as graph:
        # Up to the published watermark, as the API pages: a later `--after-seq` with the
        # last seq shown never skips an alert that was committed but not yet visible.
        page = service.list_alerts(graph, after=after_seq or 0, limit=limit, where=where)
        entities = service.entities_of(graph, alert_ids=[a.id for a in page.alerts])
    if json_out:
        listed = [_listed(a, entities[a.id]) for a in page.alerts]
        typer.echo(json.dumps(listed, indent=2, default=str))
        return
    for a in page.alerts:
        typer.echo(
            f"#{a.seq} [{a.severity}/{_score(a.risk_score)}] {a.rule_id} "
            f"({', '.join(a.techniques)}) host={a.host} "
            f"status={a.status} hits={a.hit_count} id={a.id}"
        )
        typer.echo(f"    {a.first_seen} .. {a.last_seen}  {a.summary}")
        for e in _entity_refs(entities[a.id]):
            typer.echo(f"    - {e['role']}: {e['type']} {e['key']}")
    typer.echo(f"{len(page.alerts)} alert(s)")


@alerts_app.command("show")
def alerts_show(
    alert_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="the API's JSON")] = False,
    ocsf: Annotated[bool, typer.Option("--ocsf", help="as an OCSF Detection Finding")] = False,
) -> None:
    """One alert: rule, MITRE, entities, evidence (raw records) and audit trail."""
    with terminal.connect() as graph:
        detail = service.alert_detail(graph, alert_id=alert_id, rule_of=rule_summary)
    if ocsf:
        typer.echo(
            json.dumps(
                to_detection_finding(detail, detail.entities, detail.evidence, detail.rule),
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
        entities.add_row(entity.role or "", entity.kind, short(entity.id, 100))
    console.print(entities)
    for item in detail.evidence:
        console.print(
            f"[cyan]{item.relationship}[/cyan] {item.source} -> {item.target} "
            f"({', '.join(item.sources[:3])})"
        )
        if item.raw is not None:
            console.print(f"  [dim]{short(json.dumps(item.raw, default=str), 160)}[/dim]")
    for entry in detail.audit:
        who = f"{entry.actor_name} ({entry.actor})" if entry.actor_name else entry.actor
        console.print(f"audit {entry.at} {who}: {json.dumps(entry.changes)} {entry.comment or ''}")


@alerts_app.command("set")
def alerts_set(
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
    with terminal.connect() as graph:
        alert, recorded = service.update_alert(
            graph, alert_id=alert_id, change=change, actor=f"cli:{user}", actor_name=user
        )
    verb = "updated" if recorded else "unchanged"
    console.print(
        f"{verb}: {alert.id} status={alert.status} assignee={alert.assignee} seq={alert.seq}"
    )
