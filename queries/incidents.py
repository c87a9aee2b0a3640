"""Incidents: alerts that belong together because they share a host, a process tree or an
account, and fall within a window of each other. Computed on read, never stored.

Two alerts are linked when their time spans, each widened by the window, overlap, and they
have a host, a process-tree root (the topmost ancestor of a process they involve) or an
account (the user of a process they involve) in common. An incident is a connected group of
two or more linked alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from provgraph.graph.tx import Graph
from provgraph.graph.values import utc_text
from provgraph.queries.alerts.service import AlertFilter
from pydantic import BaseModel

MAX_ALERTS = 2000
ANCESTRY = 64  # hops walked up to a tree's root (a code constant in the query text)


def _as_column(prop: str) -> str:
    """utc_text's map entry (`prop: <expr>`) as a column (`<expr> AS prop`)."""
    return utc_text("a", prop).split(": ", 1)[1] + f" AS {prop}"


ALERT_LINKS = (
    """
MATCH (a:Alert)
WHERE ($statuses IS NULL OR a.status IN $statuses)
  AND ($severities IS NULL OR a.severity IN $severities)
  AND ($rules IS NULL OR a.rule_id IN $rules)
  AND ($hosts IS NULL OR a.host IN $hosts)
  AND ($since IS NULL OR a.last_seen >= $since)
  AND ($until IS NULL OR a.first_seen < $until)
WITH a ORDER BY a.last_seen DESC LIMIT $limit
CALL (a) {
  OPTIONAL MATCH (a)-[:INVOLVES]->(p:Process)
  OPTIONAL MATCH (r:Process)-[:SPAWNED*0.."""
    + str(ANCESTRY)
    + """]->(p)
  WHERE NOT EXISTS { (:Process)-[:SPAWNED]->(r) }
  RETURN collect(DISTINCT CASE WHEN r IS NULL THEN null ELSE [r.uid, r.name] END) AS roots,
         collect(DISTINCT toLower(p.user)) AS accounts
}
RETURN a.id AS id, a.host AS host, """
    + _as_column("first_seen")
    + ", "
    + _as_column("last_seen")
    + """,
       roots, accounts
"""
)


class Incident(BaseModel):
    id: str
    alert_ids: list[str]
    hosts: list[str]
    shared: list[str]  # what links them, e.g. "host workstation6", "account corp\\ann"
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass
class _Alert:
    id: str
    start: datetime | None
    end: datetime | None
    keys: dict[str, str]  # link key -> how a person reads it
    host: str | None


def _time(text: Any) -> datetime | None:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None


def _near(a: _Alert, b: _Alert, window: timedelta) -> bool:
    if not (a.start and a.end and b.start and b.end):
        return False
    return a.start <= b.end + window and b.start <= a.end + window


def incidents(
    graph: Graph, *, where: AlertFilter | None = None, window: timedelta = timedelta(hours=1)
) -> list[Incident]:
    rows = graph.read_plain(ALERT_LINKS, {**(where or AlertFilter()).params(), "limit": MAX_ALERTS})
    alerts: list[_Alert] = []
    for row in rows:
        keys: dict[str, str] = {}
        if row["host"]:
            keys[f"host:{str(row['host']).lower()}"] = f"host {row['host']}"
        for root in row["roots"] or []:
            if root is not None:
                keys[f"tree:{root[0]}"] = f"process tree {root[1] or root[0]}"
        for account in row["accounts"] or []:
            if account:
                keys[f"account:{account}"] = f"account {account}"
        alerts.append(
            _Alert(row["id"], _time(row["first_seen"]), _time(row["last_seen"]), keys, row["host"])
        )
    # union-find over alerts linked by a shared key within the window
    parent = list(range(len(alerts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    shared: dict[int, set[str]] = {}
    by_key: dict[str, list[int]] = {}
    for i, alert in enumerate(alerts):
        for key in alert.keys:
            by_key.setdefault(key, []).append(i)
    for key, members in by_key.items():
        for x, i in enumerate(members):
            for j in members[x + 1 :]:
                if _near(alerts[i], alerts[j], window):
                    shared.setdefault(i, set()).add(key)
                    shared.setdefault(j, set()).add(key)
                    parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(alerts)):
        groups.setdefault(find(i), []).append(i)
    found: list[Incident] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        chosen = [alerts[i] for i in members]
        links = sorted({k for i in members for k in shared.get(i, set())})
        labels = {k: v for a in chosen for k, v in a.keys.items()}
        starts = [a.start for a in chosen if a.start]
        ends = [a.end for a in chosen if a.end]
        ids = sorted(a.id for a in chosen)
        found.append(
            Incident(
                id=ids[0],
                alert_ids=[a.id for a in sorted(chosen, key=lambda a: (a.start is None, a.start))],
                hosts=sorted({a.host for a in chosen if a.host}),
                shared=[labels[k] for k in links],
                first_seen=min(starts) if starts else None,
                last_seen=max(ends) if ends else None,
            )
        )
    found.sort(key=lambda inc: (-len(inc.alert_ids), inc.id))
    return found


def incident_filter(
    statuses: Sequence[str] | None,
    severities: Sequence[str] | None,
    rules: Sequence[str] | None,
    hosts: Sequence[str] | None,
) -> AlertFilter:
    return AlertFilter(statuses=statuses, severities=severities, rules=rules, hosts=hosts)
