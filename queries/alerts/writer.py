"""Rule matches become `(:Alert)` nodes: deduplicated, suppressed, sequenced.

Identity: an alert's id is a hash of its rule id and the keys of the match's identity entities,
so a rerun finds the alert it already made. Suppression: a match whose suppression-field values
equal an open-or-not alert's, within the rule's duration of it, folds into that alert (its
hit_count and times grow) instead of making a new one. Every alert remembers the identities of
the matches it absorbed (`match_keys`), which makes folding idempotent: re-running over the
same data changes nothing, not even `seq` (the change number, see `queries.alerts.seq`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from neo4j import ManagedTransaction
from provgraph.graph.model import ENTITY_LABELS
from provgraph.graph.schema import ensure_schema
from provgraph.graph.tx import Graph
from provgraph.queries.accounts import lookup_key
from provgraph.queries.alerts.seq import lock_counter, next_seq, publish_seq
from provgraph.queries.rule import Rule

ID_LENGTH = 32  # hex characters of sha256 kept
MAX_MATCH_KEYS = 10_000  # beyond this an alert counts new hits by time only
CHUNK = 500  # matches per write transaction


# -- statements (constant text; labels from ENTITY_LABELS, values as parameters) ---------------
FETCH_CANDIDATES = """
MATCH (a:Alert)
WHERE a.id IN $ids OR (a.rule_id = $rule_id AND a.suppression_key IN $suppression_keys)
RETURN a {.*} AS alert
"""

UPSERT_ALERTS = """
UNWIND $rows AS row
MERGE (a:Alert {id: row.id})
SET a += row.props
"""

_INVOLVES = """
UNWIND $rows AS row
MATCH (a:Alert {id: row.alert})
MATCH (n:%(label)s {%(key)s: row.key})
MERGE (a)-[r:INVOLVES {role: row.role}]->(n)
"""
INVOLVES = {
    kind: _INVOLVES % {"label": label, "key": key} for kind, (label, key) in ENTITY_LABELS.items()
}
# A rule names an account as its rows do: a SID, an Account key, or "DOMAIN\\name" as the
# log spelled it (`p.user`), while the node is keyed by SID when one is known, else by the
# lower-case name key. `row.lookup` is the key the name stands for (queries.accounts): the
# node with that key, or the one whose name key it is.
INVOLVES["account"] = """
UNWIND $rows AS row
MATCH (a:Alert {id: row.alert})
CALL (row) {
  MATCH (n:Account {key: row.lookup}) RETURN n
  UNION
  MATCH (n:Account {name_key: row.lookup}) RETURN n
}
MERGE (a)-[r:INVOLVES {role: row.role}]->(n)
"""


def ensure_alert_schema(graph: Graph) -> None:
    """The alerts' constraints and indexes are part of the one schema (`graph.model`)."""
    ensure_schema(graph)


# -- matches -----------------------------------------------------------------------------------
def _native(value: Any) -> Any:
    """Driver temporal values to Python ones; lists sorted so a row has one canonical form."""
    if hasattr(value, "to_native"):
        return value.to_native()
    if isinstance(value, list):
        items = [_native(v) for v in value if v is not None]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if isinstance(value, dict):
        return {k: _native(v) for k, v in value.items()}
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:ID_LENGTH]


@dataclass(frozen=True)
class EntityRef:
    role: str
    type: str
    key: str


@dataclass
class Match:
    """One returned row of a rule, in canonical form."""

    rule: Rule
    row: dict[str, Any]
    entities: list[EntityRef]
    id: str
    suppression_key: str
    first_seen: datetime
    last_seen: datetime

    @property
    def host(self) -> str | None:
        host = self.row.get("host")
        return str(host) if host is not None else None

    def summary(self) -> str:
        context: dict[str, Any] = {}
        for key, value in self.row.items():
            if isinstance(value, list):
                context[f"{key}_count"] = len(value)
                shown = ", ".join(str(v) for v in value[:5])
                context[key] = shown + (f" (+{len(value) - 5})" if len(value) > 5 else "")
            else:
                context[key] = value
        try:
            text = self.rule.summary.format_map(context) if self.rule.summary else self.rule.name
        except (KeyError, ValueError, IndexError):
            text = self.rule.name
        return text[:300]

    def risk_score(self) -> int:
        score = self.row.get("risk_score")
        return int(score) if isinstance(score, int | float) else self.rule.risk_score


def match_from_row(rule: Rule, raw: dict[str, Any]) -> Match:
    row = {k: _native(v) for k, v in raw.items()}
    entities: list[EntityRef] = []
    for entity in rule.entities:
        value = row.get(entity.column)
        keys = value if isinstance(value, list) else [value]
        entities += [EntityRef(entity.role, entity.type, str(k)) for k in keys if k is not None]
    identity_columns = {e.role for e in rule.entities if e.identity}
    identity = sorted(f"{e.role}={e.key}" for e in entities if e.role in identity_columns)
    if rule.suppression.fields:
        values = [
            json.dumps(_jsonable(row.get(f)), sort_keys=True) for f in rule.suppression.fields
        ]
        suppression_key = digest(rule.id, "suppress", *values)
    else:
        suppression_key = digest(rule.id, *identity)
    first, last = row["first_seen"], row["last_seen"]
    return Match(
        rule=rule,
        row=row,
        entities=entities,
        id=digest(rule.id, *identity),
        suppression_key=suppression_key,
        first_seen=first or last,
        last_seen=last or first,
    )


# -- folding matches into alerts ---------------------------------------------------------------
@dataclass
class _State:
    props: dict[str, Any]
    new: bool = False
    dirty: bool = False
    entities: set[EntityRef] = field(default_factory=set)


@dataclass
class ApplyResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    alert_ids: list[str] = field(default_factory=list)


def _absorbs(alert: dict[str, Any], match: Match, duration: timedelta) -> bool:
    """Same suppression values and within `duration` of the alert's time span."""
    if duration <= timedelta(0) or alert.get("suppression_key") != match.suppression_key:
        return False
    first, last = _native(alert["first_seen"]), _native(alert["last_seen"])
    return bool(match.first_seen <= last + duration and match.last_seen >= first - duration)


def _new_alert(match: Match, now: datetime) -> dict[str, Any]:
    rule = match.rule
    return {
        "id": match.id,
        "rule_id": rule.id,
        "rule_name": rule.name,
        "severity": rule.severity,
        "risk_score": match.risk_score(),
        "tactics": list(rule.tactics),
        "techniques": list(rule.techniques),
        "host": match.host,
        "first_seen": match.first_seen,
        "last_seen": match.last_seen,
        "hit_count": 1,
        "status": "open",
        "created_at": now,
        "updated_at": now,
        "summary": match.summary(),
        "details": json.dumps(_jsonable(match.row), sort_keys=True),
        "suppression_key": match.suppression_key,
        "match_keys": [match.id],
    }


def _fold(props: dict[str, Any], match: Match) -> dict[str, Any]:
    """The alert after absorbing `match` (a dict; equal to `props` when nothing changes)."""
    updated = dict(props)
    first, last = _native(props["first_seen"]), _native(props["last_seen"])
    updated["first_seen"] = min(first, match.first_seen)
    updated["last_seen"] = max(last, match.last_seen)
    keys = list(props.get("match_keys") or [])
    if match.id == props["id"]:
        # the alert's own match, recomputed: its details follow the graph
        updated["details"] = json.dumps(_jsonable(match.row), sort_keys=True)
        updated["summary"] = match.summary()
        updated["risk_score"] = max(int(props.get("risk_score", 0)), match.risk_score())
    elif match.id not in keys:
        if len(keys) < MAX_MATCH_KEYS:
            updated["match_keys"] = keys + [match.id]
            updated["hit_count"] = int(props.get("hit_count", 1)) + 1
        elif match.last_seen > last:
            updated["hit_count"] = int(props.get("hit_count", 1)) + 1
        updated["risk_score"] = max(int(props.get("risk_score", 0)), match.risk_score())
    return updated


def _changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return any(_native(before.get(k)) != _native(v) for k, v in after.items())


def apply_matches(
    graph: Graph, rule: Rule, matches: Sequence[Match], now: datetime | None = None
) -> ApplyResult:
    """Write the matches of one rule run as alerts, CHUNK matches per transaction."""
    result = ApplyResult()
    ordered = sorted(matches, key=lambda m: (m.first_seen, m.last_seen, m.id))
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        stamp = now or datetime.now(UTC)
        part = graph.write_tx(
            partial(_apply_chunk, rule=rule, chunk=chunk, now=stamp),
            what=f"writing alerts of rule {rule.id}",
        )
        if part.created or part.updated:
            publish_seq(graph)
        result.created += part.created
        result.updated += part.updated
        result.unchanged += part.unchanged
        result.alert_ids += [i for i in part.alert_ids if i not in result.alert_ids]
    return result


def _apply_chunk(
    tx: ManagedTransaction, rule: Rule, chunk: Sequence[Match], now: datetime
) -> ApplyResult:
    # a retried transaction calls this again: build the result afresh each time
    result = ApplyResult()
    lock_counter(tx)
    rows = tx.run(
        FETCH_CANDIDATES,
        ids=[m.id for m in chunk],
        rule_id=rule.id,
        suppression_keys=sorted({m.suppression_key for m in chunk}),
    ).data()
    alerts: dict[str, _State] = {r["alert"]["id"]: _State(props=r["alert"]) for r in rows}
    touched: list[str] = []
    for match in chunk:
        target = _target(alerts, match, rule.suppression.duration)
        if target is None:
            alerts[match.id] = state = _State(props=_new_alert(match, now), new=True, dirty=True)
        else:
            state = alerts[target]
            folded = _fold(state.props, match)
            if _changed(state.props, folded):
                state.props = folded
                state.dirty = True
        state.entities.update(match.entities)
        touched.append(state.props["id"])
    dirty = [s for s in alerts.values() if s.dirty]
    if dirty:
        first = next_seq(tx, len(dirty))
        for offset, state in enumerate(sorted(dirty, key=lambda s: s.props["id"])):
            state.props["seq"] = first + offset
            state.props["updated_at"] = now
            state.props.pop("assignee", None)  # triage owns it; never overwrite
        tx.run(
            UPSERT_ALERTS, rows=[{"id": s.props["id"], "props": _storable(s.props)} for s in dirty]
        ).consume()
    _link_entities(tx, alerts)
    result.created += sum(1 for s in dirty if s.new)
    result.updated += sum(1 for s in dirty if not s.new)
    distinct = list(dict.fromkeys(touched))
    result.unchanged += sum(1 for i in distinct if not alerts[i].dirty)
    result.alert_ids = distinct
    return result


def _target(alerts: dict[str, _State], match: Match, duration: timedelta) -> str | None:
    if match.id in alerts:
        return match.id
    for alert_id, state in sorted(alerts.items()):
        if state.props.get("rule_id") == match.rule.id and match.id in (
            state.props.get("match_keys") or []
        ):
            return alert_id
    candidates = [
        (s.props["first_seen"], i)
        for i, s in alerts.items()
        if s.props.get("rule_id") == match.rule.id
        and s.props.get("status") != "closed"
        and _absorbs(s.props, match, duration)
    ]
    return min(candidates)[1] if candidates else None


def _storable(props: dict[str, Any]) -> dict[str, Any]:
    return {k: _native(v) for k, v in props.items() if v is not None}


def _link_entities(tx: ManagedTransaction, alerts: dict[str, _State]) -> None:
    by_type: dict[str, list[dict[str, str]]] = {}
    for alert_id, state in sorted(alerts.items()):
        for entity in sorted(state.entities, key=lambda e: (e.type, e.key, e.role)):
            if entity.type in INVOLVES:
                row = {"alert": alert_id, "key": entity.key, "role": entity.role}
                if entity.type == "account":
                    row["lookup"] = lookup_key(entity.key)[0]
                by_type.setdefault(entity.type, []).append(row)
    for kind, rows in sorted(by_type.items()):
        tx.run(INVOLVES[kind], rows=rows).consume()


def alert_ids_for(rule_id: str, entity_keys: Iterable[tuple[str, str]]) -> str:
    """The id an alert of `rule_id` gets for identity entities [(role, key), …]."""
    return digest(rule_id, *sorted(f"{role}={key}" for role, key in entity_keys))
