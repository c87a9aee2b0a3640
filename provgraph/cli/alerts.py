"""`provgraph alerts list|show|set`: the alerts service (`provgraph.queries.alerts.service`)
from the terminal, the same functions the API pages, shows and triages with."""

from __future__ import annotations

import getpass
import json
import logging
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from provgraph.api.alerts import attack
from provgraph.api.alerts.ocsf import to_detection_finding
from provgraph.api.rules.service import rule_summary
from provgraph.cli import terminal
from provgraph.cli.terminal import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    emit_json,
    entity_name,
    fail,
    parse_time,
    short,
    span,
    when,
    wrapped,
)
from provgraph.ingest.model import normalise_host
from provgraph.queries.alerts import service
from provgraph.queries.alerts.models import AlertRead, AlertUpdate, Entity, Status

alerts_app = typer.Typer(help="Alerts the rules raised.", no_args_is_help=True)

SHOW_EPILOG = (
    f"Exit status: {EXIT_OK} shown; {EXIT_NOT_FOUND} no such alert; {EXIT_USAGE} bad "
    "arguments or Neo4j unreachable. `provgraph --help` lists every status."
)


@alerts_app.callback()
def alerts_group() -> None:
    """Alerts the rules raised (a group, so `alerts list` stays a subcommand on its own)."""


def _score(value: float | None) -> float | int | None:
    """Risk scores are whole numbers; the model holds them as floats."""
    return int(value) if value is not None and value == int(value) else value


def _entity_refs(entities: list[Entity]) -> list[dict[str, Any]]:
    """role, node label, key and display name of each entity, as the alert names them."""
    refs = [
        {
            "role": e.role,
            "type": e.kind,
            "key": e.id.removeprefix(f"{e.kind}:"),
            "name": entity_name(e.kind, e.properties, e.label)[0],
        }
        for e in entities
    ]
    return sorted(refs, key=lambda r: (r["role"] or "", r["key"]))


def _listed(alert: AlertRead, entities: list[Entity]) -> dict[str, Any]:
    """An alert as `alerts list --json` prints it: its stored properties (absent when unset)
    and the entities it involves."""
    data = alert.model_dump(mode="json", exclude_none=True)
    data["risk_score"] = _score(alert.risk_score)
    data["details"] = alert.details
    data["entities"] = _entity_refs(entities)
    return data


def _entity_lines(entities: list[Entity], *, skip_host: str | None = None) -> list[str]:
    """`role: name  id` per entity, names first; the alert's own host is not repeated."""
    lines = []
    for e in sorted(entities, key=lambda e: (e.role or "", e.label, e.id)):
        if e.kind == "Host" and skip_host and e.properties.get("name") == skip_host:
            continue
        name, pivot = entity_name(e.kind, e.properties, e.label)
        role = f"{e.role}: " if e.role else ""
        lines.append(f"{role}{name}" + (f"  {pivot}" if pivot else ""))
    return lines


def _attack_line(ids: list[str], name_of: Any) -> str:
    return ", ".join(f"{i} {name_of(i)}" if name_of(i) != i else i for i in ids)


@alerts_app.command(
    "list",
    epilog="Exit status: 0 listed, even when no alert matches (an empty page is an answer); "
    "2 bad arguments or Neo4j unreachable. With --json: "
    '{"alerts": [...], "next_after_seq": N, "has_more": bool}; pass next_after_seq back '
    "as --after-seq for what changed since.",
)
def alerts_list(
    status: Annotated[Status | None, typer.Option(help="open, acknowledged or closed")] = None,
    rule: Annotated[str | None, typer.Option("--rule", "-r", help="Rule id.")] = None,
    host: Annotated[str | None, typer.Option(help="Host (short name, any case).")] = None,
    since: Annotated[str | None, typer.Option(help="last_seen at or after (ISO or -2h).")] = None,
    after_seq: Annotated[
        int | None,
        typer.Option(min=0, help="Only alerts changed after this seq (a SOAR cursor)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Alerts per page.")] = 100,
    json_out: Annotated[bool, typer.Option("--json", help="Print the page as JSON.")] = False,
) -> None:
    """Alerts in change order, with rule, severity, ATT&CK ids, host, entities and times."""
    # the driver logs planner notifications (unknown labels on an empty graph) as warnings
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    where = service.AlertFilter(
        statuses=[status.value] if status else None,
        rules=[rule] if rule else None,
        hosts=[normalise_host(host)] if host else None,
        since=parse_time(since, "--since"),
    )
    with terminal.connect() as graph:
        # Up to the published watermark, as the API pages: a later `--after-seq` with the
        # last seq shown never skips an alert that was committed but not yet visible.
        page = service.list_alerts(graph, after=after_seq or 0, limit=limit, where=where)
        entities = service.entities_of(graph, alert_ids=[a.id for a in page.alerts])
    if json_out:
        emit_json(
            {
                "alerts": [_listed(a, entities[a.id]) for a in page.alerts],
                "next_after_seq": page.next_after,
                "has_more": page.has_more,
            }
        )
        return
    for a in page.alerts:
        head = [f"#{a.seq}", f"{a.severity or '?'} {_score(a.risk_score)}", a.status or "?"]
        head += [a.rule_id or "?", a.host or ""]
        if a.hit_count and a.hit_count > 1:
            head.append(f"hits {a.hit_count}")
        typer.echo("  ".join(x for x in head if x))
        typer.echo(f"    {span(a.first_seen, a.last_seen)}  {', '.join(a.techniques)}".rstrip())
        if a.summary:
            typer.echo(wrapped(a.summary))
        for line in _entity_lines(entities[a.id], skip_host=a.host):
            typer.echo(f"    - {line}")
        typer.echo(f"    id {a.id}")
    more = f"; more: --after-seq {page.next_after}" if page.has_more else ""
    typer.echo(f"{len(page.alerts)} alert(s){more}")


@alerts_app.command("show", epilog=SHOW_EPILOG)
def alerts_show(
    alert_id: Annotated[str, typer.Argument(help="The alert's id, as `alerts list` prints it.")],
    as_json: Annotated[bool, typer.Option("--json", help="The API's JSON.")] = False,
    ocsf: Annotated[bool, typer.Option("--ocsf", help="As an OCSF Detection Finding.")] = False,
) -> None:
    """One alert: rule, ATT&CK, entities, evidence (raw records) and audit trail."""
    if as_json and ocsf:
        fail("--json and --ocsf are two shapes of the same answer: give one")
    with terminal.connect() as graph:
        detail = service.alert_detail(graph, alert_id=alert_id, rule_of=rule_summary)
    if ocsf:
        emit_json(to_detection_finding(detail, detail.entities, detail.evidence, detail.rule))
        return
    if as_json:
        emit_json(detail)
        return
    echo = typer.echo
    echo(f"{detail.rule_name or detail.rule_id}  ({detail.rule_id})")
    echo(f"id {detail.id}  seq {detail.seq}")
    facts = [
        f"severity {detail.severity}",
        f"risk {_score(detail.risk_score)}",
        f"status {detail.status}",
        f"assignee {detail.assignee}" if detail.assignee else "unassigned",
        f"host {detail.host}" if detail.host else "",
    ]
    echo("  ".join(f for f in facts if f))
    echo(f"seen {span(detail.first_seen, detail.last_seen)}  hits {detail.hit_count or 1}")
    if detail.tactics:
        echo(f"tactics: {_attack_line(detail.tactics, attack.tactic_name)}")
    if detail.techniques:
        echo(f"techniques: {_attack_line(detail.techniques, attack.technique_name)}")
    if detail.summary:
        echo(wrapped(detail.summary, indent=0))
    names = {e.id: entity_name(e.kind, e.properties, e.label)[0] for e in detail.entities}
    if detail.entities:
        echo("entities")
        for line in _entity_lines(detail.entities):
            echo(f"    - {line}")
    if detail.evidence:
        echo("evidence")
    room = terminal.width() - 8
    for item in detail.evidence:
        source, target = names.get(item.source, item.source), names.get(item.target, item.target)
        times = when(item.time) or span(item.first_time, item.last_time)
        count = f"  ×{item.count}" if item.count and item.count > 1 else ""
        echo(f"    {item.relationship}  {times}{count}".rstrip())
        echo(f"        {source} -> {target}")
        for source_ref in item.sources[:3]:
            echo(f"        {source_ref}")
        if item.raw is not None:
            echo(f"        {short(json.dumps(item.raw, default=str), room)}")
    if detail.audit:
        echo("audit")
    for entry in detail.audit:
        who = f"{entry.actor_name} ({entry.actor})" if entry.actor_name else entry.actor
        changes = ", ".join(
            f"{field} {change.get('from') or '-'} -> {change.get('to') or '-'}"
            for field, change in entry.changes.items()
            if isinstance(change, dict)
        )
        comment = f'  "{entry.comment}"' if entry.comment else ""
        echo(f"    {when(entry.at)}  {who}: {changes or 'comment'}{comment}")


@alerts_app.command("set", epilog=SHOW_EPILOG)
def alerts_set(
    alert_id: Annotated[str, typer.Argument(help="The alert's id.")],
    status: Annotated[Status | None, typer.Option(help="open, acknowledged or closed")] = None,
    assignee: Annotated[str | None, typer.Option(help='A name, or "" to unassign.')] = None,
    comment: Annotated[str | None, typer.Option(help="Recorded in the audit trail.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the alert as JSON.")] = False,
) -> None:
    """Triage from the terminal; recorded in the audit trail as `cli:<user>`."""
    if status is None and assignee is None and comment is None:
        fail("nothing to set: give --status, --assignee or --comment")
    try:
        change = AlertUpdate(status=status, assignee=assignee, comment=comment)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "value"
        fail(f"--{field}: {first['msg']}")
    user = getpass.getuser()
    with terminal.connect() as graph:
        alert, recorded = service.update_alert(
            graph, alert_id=alert_id, change=change, actor=f"cli:{user}", actor_name=user
        )
    if json_out:
        emit_json({"alert": alert, "recorded": recorded})
        return
    verb = "updated" if recorded else "unchanged"
    who = f"assignee {alert.assignee}" if alert.assignee else "unassigned"
    typer.echo(f"{verb}: {alert.id}  status {alert.status}  {who}  seq {alert.seq}")
