"""Rule exceptions: "not when the parent is X / the path is Y / the host is Z", for one rule.

An analyst makes one from an alert (the API's `POST /alerts/{id}/exceptions`): the values on
offer are that alert's own (`options_for`), so an exception always names something the rule
really matched. Exceptions are site settings of their rule that live beside the alerts they
came from, as `(:RuleException)` nodes: every API process and the CLI see the same ones, and
each is recorded in its alert's audit trail. The engine applies them to a rule's matches
(`drop_excepted`, called from `engine.evaluate`), so every way a rule runs honours them;
rules need no allow-list parameter of their own for it.

    kind    what is compared                                   with
    host    the match's host entity                            the host name
    parent  the name of the process that started a process     an executable name
            entity (of `role`, when one is given)
    path    a process entity's image, or a file entity's path  a full path
All comparisons ignore case (Windows paths and names are case-insensitive).
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from neo4j import ManagedTransaction
from provgraph.graph.schema import ensure_schema
from provgraph.graph.tx import Graph
from provgraph.graph.values import plain, utc_text
from provgraph.queries.alerts.seq import next_seq, publish_seq
from provgraph.queries.errors import AlertNotFound, InvalidChange, NotFound
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # the alerts writer imports the rule module, which must not import this
    from provgraph.queries.alerts.writer import Match
    from provgraph.queries.rule import Rule


class ExceptionKind(enum.StrEnum):
    PARENT = "parent"
    PATH = "path"
    HOST = "host"


class ExceptionNotFound(NotFound):
    what = "exception"


class ExceptionOption(BaseModel):
    """One exception an alert offers: what it would compare, and the alert's value."""

    kind: ExceptionKind
    role: str | None = Field(description="the entity role it applies to; null: any")
    value: str
    label: str = Field(description="how a person reads it")


class ExceptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ExceptionKind
    value: str = Field(min_length=1, max_length=4096)
    role: str | None = Field(default=None, max_length=200)
    comment: str | None = Field(default=None, max_length=10_000)


class RuleExceptionRead(BaseModel):
    id: str
    rule_id: str
    kind: ExceptionKind
    value: str
    role: str | None = None
    comment: str | None = None
    alert_id: str | None = None
    created_by: str
    created_by_name: str | None = None
    created_at: datetime


FIELDS = (
    "x {.id, .rule_id, .kind, .value, .role, .comment, .alert_id, .created_by, "
    ".created_by_name, " + utc_text("x", "created_at") + "}"
)

LIST = (
    """
MATCH (x:RuleException)
WHERE $rule_id IS NULL OR x.rule_id = $rule_id
RETURN """
    + FIELDS
    + """ AS x
ORDER BY x.rule_id, x.created_at, x.id
"""
)

# What an alert offers: its host, and for each process entity its image and its parent's
# name, for each file entity its path.
ALERT_FACTS = """
MATCH (a:Alert {id: $id})
OPTIONAL MATCH (a)-[i:INVOLVES]->(p:Process)
OPTIONAL MATCH (parent:Process)-[:SPAWNED]->(p)
WITH a, i, p, collect(DISTINCT parent.name) AS parents
WITH a, collect(CASE WHEN p IS NULL THEN null
                ELSE {role: i.role, image: p.image, parents: parents} END) AS processes
OPTIONAL MATCH (a)-[j:INVOLVES]->(f:File)
RETURN a.rule_id AS rule_id, a.host AS host, processes,
       collect(CASE WHEN f IS NULL THEN null ELSE {role: j.role, path: f.path} END) AS files
"""

CREATE = (
    """
MATCH (a:Alert {id: $alert_id})
CREATE (x:RuleException {id: $id, rule_id: a.rule_id, kind: $kind, value: $value, role: $role,
                         comment: $comment, alert_id: $alert_id, created_by: $actor,
                         created_by_name: $actor_name, created_at: datetime()})
SET a.seq = $seq, a.updated_at = datetime()
CREATE (e:AuditEntry {id: $entry_id, alert_id: $alert_id, actor: $actor, actor_name: $actor_name,
                      at: datetime(), changes: $changes, comment: $comment, seq: $seq})
CREATE (a)-[:HAS_AUDIT]->(e)
RETURN """
    + FIELDS
    + " AS x"
)

FIND = "MATCH (x:RuleException {id: $id}) RETURN " + FIELDS + " AS x"

DELETE = """
MATCH (x:RuleException {id: $id})
OPTIONAL MATCH (a:Alert {id: x.alert_id})
FOREACH (_ IN CASE WHEN a IS NULL THEN [] ELSE [1] END |
  SET a.seq = $seq, a.updated_at = datetime()
  CREATE (e:AuditEntry {id: $entry_id, alert_id: a.id, actor: $actor, actor_name: $actor_name,
                        at: datetime(), changes: $changes, comment: $comment, seq: $seq})
  CREATE (a)-[:HAS_AUDIT]->(e))
DETACH DELETE x
RETURN count(*) AS deleted
"""

PROCESS_FACTS = """
UNWIND $uids AS uid
MATCH (p:Process {uid: uid})
OPTIONAL MATCH (parent:Process)-[:SPAWNED]->(p)
RETURN uid, toLower(coalesce(p.image, '')) AS image,
       [n IN collect(DISTINCT parent.name) | toLower(n)] AS parents
"""

FILE_FACTS = """
UNWIND $keys AS key
MATCH (f:File {key: key})
RETURN key, toLower(coalesce(f.path, '')) AS path
"""


_ready: set[int] = set()


def ensure_exception_schema(graph: Graph) -> None:
    """Exceptions' constraint and index are part of the one schema (`graph.model`); made
    once per connected graph (every rule evaluation asks)."""
    if id(graph) not in _ready:
        ensure_schema(graph)
        _ready.add(id(graph))


def _read(row: dict[str, Any]) -> RuleExceptionRead:
    return RuleExceptionRead.model_validate(plain(row))


def describe(kind: ExceptionKind | str, value: str, role: str | None) -> str:
    kind = ExceptionKind(kind)
    if kind is ExceptionKind.HOST:
        return f"host is {value}"
    whose = f"the {role}'s" if role else "a process's"
    if kind is ExceptionKind.PARENT:
        return f"{whose} parent is {value}"
    return f"{whose if role else 'an entity'} path is {value}"


def options_for(graph: Graph, *, alert_id: str) -> tuple[str, list[ExceptionOption]]:
    """(rule id, the exceptions this alert can make), each with the alert's own value."""
    rows = graph.read(ALERT_FACTS, {"id": alert_id})
    if not rows:
        raise AlertNotFound(alert_id)
    row = rows[0]
    found: dict[tuple[str, str | None, str], ExceptionOption] = {}

    def offer(kind: ExceptionKind, role: str | None, value: Any) -> None:
        if not value:
            return
        key = (kind.value, role, str(value).lower())
        found.setdefault(
            key,
            ExceptionOption(
                kind=kind, role=role, value=str(value), label=describe(kind, str(value), role)
            ),
        )

    offer(ExceptionKind.HOST, None, row["host"])
    for process in row["processes"]:
        if process is None:
            continue
        for parent in process["parents"]:
            offer(ExceptionKind.PARENT, process["role"], parent)
        offer(ExceptionKind.PATH, process["role"], process["image"])
    for file in row["files"]:
        if file is not None:
            offer(ExceptionKind.PATH, file["role"], file["path"])
    return str(row["rule_id"]), list(found.values())


def add_exception(
    graph: Graph,
    *,
    alert_id: str,
    change: ExceptionCreate,
    actor: str,
    actor_name: str | None = None,
) -> RuleExceptionRead:
    """Make an exception of the alert's rule from one of the alert's own values (see
    `options_for`; anything else raises InvalidChange), with an entry in its audit trail."""
    ensure_exception_schema(graph)
    _rule_id, options = options_for(graph, alert_id=alert_id)
    wanted = (change.kind, change.role, change.value.lower())
    if not any((o.kind, o.role, o.value.lower()) == wanted for o in options):
        offered = "; ".join(f"{o.kind.value}/{o.role or '-'}={o.value}" for o in options)
        raise InvalidChange(
            f"alert {alert_id} has no {change.kind.value} {change.value!r}"
            + (f" for role {change.role!r}" if change.role else "")
            + f" (it offers: {offered or 'nothing'})"
        )
    label = describe(change.kind, change.value, change.role)

    def unit(tx: ManagedTransaction) -> dict[str, Any]:
        seq = next_seq(tx)
        record = tx.run(
            CREATE,
            {
                "alert_id": alert_id,
                "id": str(uuid.uuid4()),
                "kind": change.kind.value,
                "value": change.value,
                "role": change.role,
                "comment": change.comment,
                "actor": actor,
                "actor_name": actor_name,
                "seq": seq,
                "entry_id": str(uuid.uuid4()),
                "changes": json.dumps({"exception": {"from": None, "to": label}}),
            },
        ).single()
        if record is None:
            raise AlertNotFound(alert_id)
        return dict(record["x"])

    made = graph.write_tx(unit, what="adding a rule exception")
    publish_seq(graph)
    return _read(made)


def list_exceptions(graph: Graph, *, rule_id: str | None = None) -> list[RuleExceptionRead]:
    return [_read(row["x"]) for row in graph.read_plain(LIST, {"rule_id": rule_id})]


def remove_exception(
    graph: Graph,
    *,
    exception_id: str,
    actor: str,
    actor_name: str | None = None,
    comment: str | None = None,
) -> RuleExceptionRead:
    """Delete an exception; the alert it came from records that in its audit trail."""
    rows = graph.read_plain(FIND, {"id": exception_id})
    if not rows:
        raise ExceptionNotFound(exception_id)
    gone = _read(rows[0]["x"])
    label = describe(gone.kind, gone.value, gone.role)

    def unit(tx: ManagedTransaction) -> None:
        seq = next_seq(tx)
        tx.run(
            DELETE,
            {
                "id": exception_id,
                "seq": seq,
                "entry_id": str(uuid.uuid4()),
                "actor": actor,
                "actor_name": actor_name,
                "comment": comment,
                "changes": json.dumps({"exception": {"from": label, "to": None}}),
            },
        ).consume()

    graph.write_tx(unit, what="removing a rule exception")
    publish_seq(graph)
    return gone


def drop_excepted(graph: Graph, rule: Rule, matches: Sequence[Match]) -> list[Match]:
    """The matches no exception of the rule covers (all of them when it has none)."""
    if not matches:
        return list(matches)
    exceptions = list_exceptions(graph, rule_id=rule.id)
    if not exceptions:
        return list(matches)
    uids = sorted({e.key for m in matches for e in m.entities if e.type == "process"})
    keys = sorted({e.key for m in matches for e in m.entities if e.type == "file"})
    images: dict[str, str] = {}
    parents: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    if uids and any(x.kind is not ExceptionKind.HOST for x in exceptions):
        for row in graph.read(PROCESS_FACTS, {"uids": uids}):
            images[row["uid"]] = row["image"]
            parents[row["uid"]] = list(row["parents"])
    if keys and any(x.kind is ExceptionKind.PATH for x in exceptions):
        for row in graph.read(FILE_FACTS, {"keys": keys}):
            paths[row["key"]] = row["path"]

    def covered(match: Match, x: RuleExceptionRead) -> bool:
        value = x.value.lower()
        for entity in match.entities:
            if x.role is not None and entity.role != x.role:
                continue
            if x.kind is ExceptionKind.HOST and entity.type == "host":
                if entity.key.lower() == value:
                    return True
            elif x.kind is ExceptionKind.PARENT and entity.type == "process":
                if value in parents.get(entity.key, []):
                    return True
            elif x.kind is ExceptionKind.PATH:
                found = (
                    images.get(entity.key)
                    if entity.type == "process"
                    else paths.get(entity.key)
                    if entity.type == "file"
                    else None
                )
                if found == value:
                    return True
        if x.kind is ExceptionKind.HOST and x.role is None and match.host is not None:
            return match.host.lower() == value
        return False

    return [m for m in matches if not any(covered(m, x) for x in exceptions)]
