"""Alerts as OCSF Detection Findings (class 2004, schema 1.3).

The mapping keeps the native ids so a SOAR can go from the finding back to this API:
finding_info.uid is the alert id, finding_info.analytic.uid the rule id. A rule imported from
Sigma names its Sigma rule in finding_info.analytic.related_analytics (uid: the Sigma id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from provgraph.api.alerts import attack
from provgraph.core import __version__
from provgraph.queries.alerts.models import AlertRead, Entity, Evidence

OCSF_VERSION = "1.3.0"
CLASS_UID = 2004
CATEGORY_UID = 2  # Findings

SEVERITY_IDS = {
    "informational": 1,
    "info": 1,
    "low": 2,
    "medium": 3,
    "high": 4,
    "critical": 5,
    "fatal": 6,
}
SEVERITY_NAMES = {
    0: "Unknown",
    1: "Informational",
    2: "Low",
    3: "Medium",
    4: "High",
    5: "Critical",
    6: "Fatal",
    99: "Other",
}
# Finding status: 1 New, 2 In Progress, 4 Resolved.
STATUS_IDS = {"open": (1, "New"), "acknowledged": (2, "In Progress"), "closed": (4, "Resolved")}
# Detection Finding activity: 1 Create, 2 Update, 3 Close.
ACTIVITIES = {1: "Create", 2: "Update", 3: "Close"}
CREATE, UPDATE, CLOSE = 1, 2, 3


def _ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value else None


def activity_id(alert: AlertRead) -> int:
    """Close once closed; Update once anyone touched it (triage, or a later rule run that
    changed it: `updated_at` moved past `created_at`); else Create. An alert whose first run
    already folded several hits is still new: the hit count says nothing of being touched."""
    if alert.status == "closed":
        return CLOSE
    triaged = alert.status not in (None, "open")
    changed = (
        alert.updated_at is not None
        and alert.created_at is not None
        and alert.updated_at > alert.created_at
    )
    return UPDATE if triaged or changed else CREATE


def _tactic(uid: str) -> dict[str, Any]:
    if not uid.upper().startswith("TA"):  # a name where an id belongs (older alerts)
        return {"name": uid}
    return {"uid": uid, "name": attack.tactic_name(uid), "src_url": attack.src_url(uid)}


def _technique(uid: str) -> dict[str, Any]:
    return {"uid": uid, "name": attack.technique_name(uid), "src_url": attack.src_url(uid)}


def _attacks(alert: AlertRead) -> list[dict[str, Any]]:
    """One OCSF attack per technique, with names from the ATT&CK table (an id it does not
    know is its own name)."""
    tactics = [_tactic(t) for t in alert.tactics]
    attacks = []
    for technique in alert.techniques:
        entry: dict[str, Any] = {"technique": _technique(technique)}
        if "." in technique:
            parent, _, _ = technique.partition(".")
            entry["technique"] = _technique(parent)
            entry["sub_technique"] = _technique(technique)
        if tactics:
            entry["tactic"] = tactics[0]
            entry["tactics"] = tactics
        entry["version"] = attack.ATTACK_VERSION
        attacks.append(entry)
    if not attacks and tactics:
        attacks = [{"tactic": t, "version": attack.ATTACK_VERSION} for t in tactics]
    return attacks


def _artifact(entity: Entity) -> dict[str, Any] | None:
    """One OCSF evidence artifact (process, file or destination endpoint) for an entity."""
    p = entity.properties
    if entity.kind == "Process":
        return {
            "process": {
                "uid": p.get("uid"),
                "pid": p.get("pid"),
                "name": p.get("name"),
                "cmd_line": p.get("command_line"),
                "file": {"path": p.get("image"), "name": p.get("name")} if p.get("image") else None,
                "user": {"name": p.get("user")} if p.get("user") else None,
                "parent_process": {"uid": p.get("parent_uid")} if p.get("parent_uid") else None,
            },
            "data": {"role": entity.role, "sources": p.get("sources") or []},
        }
    if entity.kind == "File":
        return {
            "file": {"path": p.get("path"), "name": p.get("name"), "type_id": 1},
            "data": {"role": entity.role},
        }
    if entity.kind == "Connection":
        return {
            "dst_endpoint": {
                "ip": p.get("ip"),
                "port": p.get("port"),
                "hostname": p.get("hostname"),
            },
            "connection_info": {"protocol_name": p.get("protocol")},
            "data": {"role": entity.role},
        }
    if entity.kind == "Host":
        return {
            "device": {
                "hostname": p.get("name"),
                "name": p.get("fqdn") or p.get("name"),
                "type_id": 0,
            },
            "data": {"role": entity.role},
        }
    return None


def _prune(value: Any) -> Any:
    """OCSF consumers treat absent and null alike; drop the nulls for smaller findings."""
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def to_detection_finding(
    alert: AlertRead,
    entities: list[Entity],
    evidence: list[Evidence] | None = None,
    rule: dict[str, Any] | None = None,
) -> dict[str, Any]:
    severity_id = SEVERITY_IDS.get((alert.severity or "").lower(), 0 if not alert.severity else 99)
    status_id, status = STATUS_IDS.get(alert.status or "", (99, "Other"))
    activity = activity_id(alert)
    last = alert.updated_at or alert.last_seen or alert.created_at
    artifacts = [a for a in (_artifact(e) for e in entities) if a]
    for item in evidence or []:
        artifacts.append(
            {
                "data": {
                    "relationship": item.relationship,
                    "source": item.source,
                    "target": item.target,
                    "sources": item.sources,
                    "raw": item.raw,
                }
            }
        )
    rule = rule or {}
    sigma = (rule.get("metadata") or {}).get("sigma") or {}
    related = (
        [
            {
                "uid": sigma.get("id"),
                "name": sigma.get("title"),
                "type_id": 1,
                "type": "Rule",
                "category": "Sigma",
            }
        ]
        if sigma
        else None
    )
    finding = {
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": activity,
        "activity_name": ACTIVITIES[activity],
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": f"Detection Finding: {ACTIVITIES[activity]}",
        "time": _ms(last),
        "start_time": _ms(alert.first_seen),
        "end_time": _ms(alert.last_seen),
        "count": alert.hit_count,
        "severity_id": severity_id,
        "severity": SEVERITY_NAMES.get(severity_id, "Other"),
        "status_id": status_id,
        "status": status,
        "risk_score": int(alert.risk_score) if alert.risk_score is not None else None,
        "message": alert.summary or alert.rule_name,
        "is_alert": True,
        "finding_info": {
            "uid": alert.id,
            "title": alert.rule_name or alert.rule_id or alert.id,
            "desc": alert.summary or rule.get("description"),
            "created_time": _ms(alert.created_at),
            "modified_time": _ms(alert.updated_at),
            "first_seen_time": _ms(alert.first_seen),
            "last_seen_time": _ms(alert.last_seen),
            "types": ["Provenance Rule"],
            "analytic": {
                "uid": alert.rule_id,
                "name": alert.rule_name,
                "type_id": 1,
                "type": "Rule",
                "desc": rule.get("description"),
                "related_analytics": related,
            },
            "attacks": _attacks(alert),
            "src_url": None,
        },
        "attacks": _attacks(alert),  # pre-1.3 consumers read them here
        "device": {"hostname": alert.host, "name": alert.host, "type_id": 0}
        if alert.host
        else None,
        "resources": [
            {"uid": e.id, "name": e.label, "type": e.kind, "role": e.role} for e in entities
        ],
        "evidences": artifacts,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": f"{alert.id}:{alert.seq}",
            "product": {
                "name": "provgraph",
                "vendor_name": "provgraph",
                "version": __version__,
                "feature": {"name": "rules"},
            },
            "logged_time": _ms(alert.created_at),
            "modified_time": _ms(alert.updated_at),
            "sequence": alert.seq,
        },
        "unmapped": {
            "assignee": alert.assignee,
            "details": alert.details,
            "references": rule.get("references"),
        },
    }
    pruned: dict[str, Any] = _prune(finding)
    return pruned
