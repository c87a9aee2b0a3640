"""How a graph node is named outside Neo4j: `<Label>:<key>`, e.g. `Process:g:1a2b…`.

Element ids are internal and may change; keys are the identities the graph is MERGEd on,
so an id a client saw yesterday still names the same node today.
"""

from __future__ import annotations

from typing import Any

from provgraph.graph.model import CLIENT_LABELS, PROVENANCE_RELS

# Labels a client may name (the API's own records are not among them); anything else is
# refused before a query is built. PROVENANCE_RELS: the relationship types the walks follow.
NODE_LABELS: dict[str, str] = CLIENT_LABELS
__all__ = ["NODE_LABELS", "PROVENANCE_RELS"]

# Properties too bulky for graph views (the alert's evidence carries them).
BULKY = frozenset({"raw", "times", "hash", "details"})


def primary_label(labels: list[str]) -> str:
    for label in labels:
        if label in NODE_LABELS:
            return label
    return labels[0] if labels else "Node"


def node_id(labels: list[str], props: dict[str, Any]) -> str:
    label = primary_label(labels)
    key = NODE_LABELS.get(label)
    value = props.get(key) if key else None
    return f"{label}:{value}"


def parse_node_id(text: str) -> tuple[str, str, str] | None:
    """(label, key property, key value) of a `<Label>:<key>` id, if the label is known."""
    label, sep, value = text.partition(":")
    if not sep or not value or label not in NODE_LABELS:
        return None
    return label, NODE_LABELS[label], value


_NAMED = {
    "Share": "share_name",
    "Service": "service_name",
    "ScheduledTask": "task_name",
    "ScriptBlock": "script_block_id",
}


def display_label(label: str, props: dict[str, Any]) -> str:
    """What a person reads on the node: a process's exe and pid, a file's name, an ip:port."""
    if label == "Process":
        name = props.get("name") or props.get("image") or props.get("uid")
        return f"{name} ({props['pid']})" if props.get("pid") is not None else str(name)
    if label == "File":
        return str(props.get("name") or props.get("path"))
    if label == "Connection":
        host = props.get("hostname") or props.get("ip")
        return f"{host}:{props.get('port')}" if props.get("port") is not None else str(host)
    if label == "Alert":
        return str(props.get("rule_name") or props.get("id"))
    # -- accounts, logons and Windows system changes (graph v2, part 2) --
    if label == "Account":
        name = props.get("name")
        domain = props.get("domain")
        return f"{domain}\\{name}" if name and domain else str(name or props.get("key"))
    if label == "Logon":
        kind = props.get("logon_type")
        return f"logon {props.get('logon_id')}" + (f" (type {kind})" if kind is not None else "")
    if label in _NAMED:
        return str(props.get(_NAMED[label]) or props.get("key"))
    if label in ("RegistryKey", "Pipe"):  # k1: the key's or pipe's own name, not host|path
        return str(props.get("name") or props.get("path") or props.get("key"))
    if label == "WmiObject":
        return f"{props.get('kind')}: {props.get('name')}"
    key = NODE_LABELS.get(label)
    return str(props.get(key) if key else label)
