"""Alerts for their readers: pages by change number, one alert in full, triage with audit.

The API's endpoints, its webhook worker and the CLI's `alerts list|show|set` all come here.
Pages stop at the published watermark (`queries.alerts.seq`), so paging by `seq` neither
skips nor repeats an alert while rules write.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from neo4j import ManagedTransaction
from provgraph.graph.model import PROVENANCE_RELS
from provgraph.graph.tx import Graph, TxReads
from provgraph.graph.values import json_or_text, plain, utc_text
from provgraph.queries.alerts.models import (
    AlertDetail,
    AlertRead,
    AlertUpdate,
    AuditEntryRead,
    Entity,
    Evidence,
    Mitre,
)
from provgraph.queries.alerts.seq import next_seq, publish_seq, stamp, watermark
from provgraph.queries.errors import AlertNotFound, InvalidChange
from provgraph.queries.nodes import display_label, node_id, primary_label

# What an alert's rule looks like next to it (the API's rule summary), looked up by rule id;
# the rule catalog is the caller's.
RuleLookup = Callable[[str | None], dict[str, Any] | None]

# The fields the API serves, times as ISO text: hydrating Neo4j DateTimes in the Python driver
# costs more than the query itself, and engine internals (match_keys…) stay inside.
ALERT_FIELDS = (
    "a {.id, .rule_id, .rule_name, .severity, .risk_score, .tactics, .techniques, .host, "
    ".hit_count, .status, .assignee, .resolution, .seq, .summary, .details, "
    + ", ".join(utc_text("a", p) for p in ("first_seen", "last_seen", "created_at", "updated_at"))
    + "}"
)

LIST_ALERTS = (
    """
MATCH (a:Alert)
WHERE a.seq > $after AND a.seq <= $high
  AND ($statuses IS NULL OR a.status IN $statuses)
  AND ($severities IS NULL OR a.severity IN $severities)
  AND ($rules IS NULL OR a.rule_id IN $rules)
  AND ($hosts IS NULL OR a.host IN $hosts)
  AND ($since IS NULL OR a.last_seen >= $since)
  AND ($until IS NULL OR a.first_seen < $until)
RETURN """
    + ALERT_FIELDS
    + """ AS alert
ORDER BY a.seq
LIMIT $limit
"""
)

GET_ALERT = (
    """
MATCH (a:Alert {id: $id})
RETURN """
    + ALERT_FIELDS
    + """ AS alert
"""
)

ALERT_ENTITIES = """
UNWIND $ids AS id
MATCH (a:Alert {id: id})-[i:INVOLVES]->(e)
RETURN id AS alert_id, i.role AS role, labels(e) AS labels, properties(e) AS props
ORDER BY id, i.role, elementId(e)
"""

# The records an alert came from: edges among its entities, and the SPAWNED edge that
# created each involved process (with the raw record and "source:path:line" references).
ALERT_EVIDENCE = """
MATCH (:Alert {id: $id})-[:INVOLVES]->(e)
WITH collect(DISTINCT e) AS involved
UNWIND involved AS e
CALL (e, involved) {
  MATCH (e)-[r:%(rels)s]->(y)
  WHERE y IN involved
  RETURN r, e AS x, y
  UNION
  MATCH (x:Process)-[r:SPAWNED]->(e)
  RETURN r, x, e AS y
}
RETURN DISTINCT type(r) AS rel, labels(x) AS x_labels, properties(x) AS x_props,
       labels(y) AS y_labels, properties(y) AS y_props, r {.*, times: null} AS props
""".replace("%(rels)s", "|".join(PROVENANCE_RELS))

ALERT_AUDIT = """
MATCH (:Alert {id: $id})-[:HAS_AUDIT]->(e:AuditEntry)
RETURN e {.*} AS entry
ORDER BY e.at, e.seq
"""

LOCK_ALERT = """
MATCH (a:Alert {id: $id})
SET a.updated_at = a.updated_at
RETURN a.status AS status, a.assignee AS assignee, a.resolution AS resolution
"""

APPLY_UPDATE = (
    """
MATCH (a:Alert {id: $id})
SET a.status = $status, a.assignee = $assignee, a.resolution = $resolution, a.seq = $seq,
    a.updated_at = datetime()
CREATE (e:AuditEntry {id: $entry_id, alert_id: $id, actor: $actor, actor_name: $actor_name,
                      at: datetime(), changes: $changes, comment: $comment, seq: $seq})
CREATE (a)-[:HAS_AUDIT]->(e)
RETURN """
    + ALERT_FIELDS
    + """ AS alert
"""
)


@dataclass(frozen=True)
class AlertFilter:
    statuses: Sequence[str] | None = None
    severities: Sequence[str] | None = None
    rules: Sequence[str] | None = None
    hosts: Sequence[str] | None = None
    since: datetime | None = None
    until: datetime | None = None

    def key(self) -> tuple[Any, ...]:
        """The filter as a hashable value: two filters with equal keys match the same alerts."""

        def listed(values: Sequence[str] | None) -> tuple[str, ...] | None:
            return tuple(sorted(set(values))) if values else None

        return (
            listed(self.statuses),
            listed(self.severities),
            listed(self.rules),
            listed(self.hosts),
            self.since,
            self.until,
        )

    def params(self) -> dict[str, Any]:
        def listed(values: Sequence[str] | None) -> list[str] | None:
            return list(values) if values else None

        return {
            "statuses": listed(self.statuses),
            "severities": listed(self.severities),
            "rules": listed(self.rules),
            "hosts": listed(self.hosts),
            "since": self.since,
            "until": self.until,
        }


@dataclass(frozen=True)
class Page:
    alerts: list[AlertRead]
    next_after: int
    has_more: bool
    high: int


def to_alert(props: dict[str, Any]) -> AlertRead:
    data = plain(props)
    data["details"] = json_or_text(data.get("details"))
    for name in ("tactics", "techniques"):
        data[name] = data.get(name) or []
    return AlertRead.model_validate(data)


def list_alerts(
    graph: Graph,
    *,
    after: int = 0,
    limit: int = 100,
    where: AlertFilter | None = None,
    high: int | None = None,
) -> Page:
    """Alerts whose change number is above `after`, oldest change first.

    The page stops at the counter's published value (read first, unless `high`, a watermark
    read before, is given): every change up to it is committed and visible, so paging by seq
    neither skips nor repeats while rules write. Both reads share one transaction (a statement
    in it still sees every commit before it).
    """
    return graph.reads(
        lambda q: _list_alerts(q, after=after, limit=limit, where=where, high=high),
        "listing alerts",
    )


def _list_alerts(
    graph: TxReads, *, after: int, limit: int, where: AlertFilter | None, high: int | None
) -> Page:
    if high is None:
        high = watermark(graph)
    if high <= after:
        return Page([], after, False, high)
    params = (where or AlertFilter()).params()
    rows = graph.read_plain(LIST_ALERTS, {"after": after, "high": high, "limit": limit, **params})
    alerts = [to_alert(row["alert"]) for row in rows]
    if len(alerts) == limit:
        return Page(alerts, alerts[-1].seq, alerts[-1].seq < high, high)
    # Fewer than asked: nothing else up to `high` matches, so the next pull starts there.
    return Page(alerts, high, False, high)


def page_stamp(graph: Graph) -> tuple[int, str | None]:
    """The alert watermark and the counter's epoch (`queries.alerts.seq.stamp`)."""
    return stamp(graph)


def get_alert(graph: Graph, *, alert_id: str) -> AlertRead:
    rows = graph.read_plain(GET_ALERT, {"id": alert_id})
    if not rows:
        raise AlertNotFound(alert_id)
    return to_alert(rows[0]["alert"])


def to_entity(role: str | None, labels: list[str], props: dict[str, Any]) -> Entity:
    label = primary_label(labels)
    clean = {k: v for k, v in plain(props).items() if k not in ("raw",)}
    return Entity(
        role=role,
        id=node_id(labels, props),
        kind=label,
        label=display_label(label, props),
        properties=clean,
    )


def entities_of(graph: Graph, *, alert_ids: Sequence[str]) -> dict[str, list[Entity]]:
    found: dict[str, list[Entity]] = {i: [] for i in alert_ids}
    for row in graph.read(ALERT_ENTITIES, {"ids": list(alert_ids)}):
        found[row["alert_id"]].append(to_entity(row["role"], row["labels"], row["props"]))
    return found


def evidence_of(graph: Graph, *, alert_id: str) -> list[Evidence]:
    items = []
    for row in graph.read(ALERT_EVIDENCE, {"id": alert_id}):
        props = plain(row["props"])
        sources = props.get("sources") or ([props["source"]] if props.get("source") else [])
        items.append(
            Evidence(
                relationship=row["rel"],
                source=node_id(row["x_labels"], row["x_props"]),
                target=node_id(row["y_labels"], row["y_props"]),
                time=props.get("time"),
                first_time=props.get("first_time"),
                last_time=props.get("last_time"),
                count=props.get("count"),
                sources=sources,
                raw=json_or_text(props.get("raw")),
            )
        )
    items.sort(key=lambda e: (str(e.time or e.first_time or ""), e.relationship, e.source))
    return items


def audit_of(graph: Graph, *, alert_id: str) -> list[AuditEntryRead]:
    entries = []
    for row in graph.read(ALERT_AUDIT, {"id": alert_id}):
        data = plain(row["entry"])
        data["changes"] = json_or_text(data.get("changes")) or {}
        entries.append(AuditEntryRead.model_validate(data))
    return entries


def alert_detail(graph: Graph, *, alert_id: str, rule_of: RuleLookup | None = None) -> AlertDetail:
    """One alert in full (its rule's summary from `rule_of`, entities, evidence, audit trail):
    what the API and the CLI both show. Raises AlertNotFound."""
    alert = get_alert(graph, alert_id=alert_id)
    return AlertDetail(
        **alert.model_dump(),
        rule=rule_of(alert.rule_id) if rule_of else None,
        mitre=Mitre(tactics=alert.tactics, techniques=alert.techniques),
        entities=entities_of(graph, alert_ids=[alert_id])[alert_id],
        evidence=evidence_of(graph, alert_id=alert_id),
        audit=audit_of(graph, alert_id=alert_id),
    )


def update_alert(
    graph: Graph, *, alert_id: str, change: AlertUpdate, actor: str, actor_name: str | None = None
) -> tuple[AlertRead, bool]:
    """Apply a triage change with an audit entry and a new seq, all in one transaction.

    Returns the alert and whether anything was recorded: an update that changes nothing
    and carries no comment leaves the alert (and its seq) alone.
    """

    def unit(tx: ManagedTransaction) -> dict[str, Any]:
        # The counter first, as the rule engine does, so the two never wait on each other
        # in opposite orders.
        seq = next_seq(tx)
        current = tx.run(LOCK_ALERT, id=alert_id).single()
        if current is None:
            raise AlertNotFound(alert_id)  # rolls back the counter bump too
        status = change.status.value if change.status else current["status"]
        assignee = current["assignee"]
        if change.assignee is not None:
            assignee = change.assignee or None
        # A resolution says why an alert is closed: reopening clears it, and one can be given
        # (or corrected) only for an alert that is or becomes closed.
        resolution = current["resolution"] if status == "closed" else None
        if change.resolution is not None:
            if status != "closed":
                raise InvalidChange(
                    f"alert {alert_id} is {status}: a resolution goes with status 'closed'"
                )
            resolution = change.resolution.value
        changes: dict[str, dict[str, Any]] = {}
        if status != current["status"]:
            changes["status"] = {"from": current["status"], "to": status}
        if assignee != current["assignee"]:
            changes["assignee"] = {"from": current["assignee"], "to": assignee}
        if resolution != current["resolution"]:
            changes["resolution"] = {"from": current["resolution"], "to": resolution}
        if not changes and not change.comment:
            raise _NothingToDo()
        record = tx.run(
            APPLY_UPDATE,
            id=alert_id,
            status=status,
            assignee=assignee,
            resolution=resolution,
            seq=seq,
            entry_id=str(uuid.uuid4()),
            actor=actor,
            actor_name=actor_name,
            changes=json.dumps(changes),
            comment=change.comment,
        ).single(strict=True)
        return dict(record["alert"])

    try:
        props = graph.write_tx(unit, what="updating an alert")
    except _NothingToDo:
        return get_alert(graph, alert_id=alert_id), False
    publish_seq(graph)
    return to_alert(props), True


class _NothingToDo(Exception):
    """Raised inside the transaction so the counter bump is rolled back."""
