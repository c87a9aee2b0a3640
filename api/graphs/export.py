"""A walked subgraph as Cytoscape.js elements JSON or as GraphML."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

from provgraph.graph.values import plain
from provgraph.queries.nodes import BULKY, display_label, node_id, primary_label
from provgraph.queries.subgraph import FACT_TARGETS, Subgraph

# Keys Cytoscape gives a meaning to inside `data`; properties with these names are renamed.
_NODE_RESERVED = frozenset({"id", "label", "kind", "parent", "source", "target"})
_EDGE_RESERVED = frozenset({"id", "label", "source", "target", "parent"})


def _props(props: dict[str, Any], reserved: frozenset[str]) -> dict[str, Any]:
    clean = {}
    for key, value in props.items():
        if value is None or key in BULKY:
            continue
        clean[f"prop_{key}" if key in reserved else key] = plain(value)
    return clean


def _edge_id(rel: str, source: str, target: str) -> str:
    return f"{rel}:{source}->{target}"


def elements(sub: Subgraph) -> dict[str, Any]:
    ids = {eid: node_id(labels, props) for eid, (labels, props) in sub.nodes.items()}
    nodes = []
    for eid, (labels, props) in sub.nodes.items():
        kind = primary_label(labels)
        data = {
            "id": ids[eid],
            "label": display_label(kind, props),
            "kind": kind,
            **_props(props, _NODE_RESERVED),
        }
        nodes.append({"data": data, "classes": kind.lower()})
    edges = []
    for rel, start, end, props in sub.edges.values():
        source, target = ids[start], ids[end]
        data = {
            "id": _edge_id(rel, source, target),
            "source": source,
            "target": target,
            "label": rel,
            **_props(props, _EDGE_RESERVED),
        }
        edges.append({"data": data, "classes": rel.lower()})
    shown = _shown(sub)
    for (eid, rel), count in sub.groups.items():
        owner = ids[eid]
        gid = group_id(rel, owner)
        of = FACT_TARGETS.get(rel, "Node")
        nodes.append(
            {
                "data": {
                    "id": gid,
                    "label": f"{rel} {count} {of}",
                    "kind": "Group",
                    "of": of,
                    "rel": rel,
                    "count": count,
                    "shown": shown[(rel, eid)],
                    "parent_id": owner,
                    "summary": True,
                },
                "classes": f"group {of.lower()} summary",
            }
        )
        edges.append(
            {
                "data": {
                    "id": _edge_id(rel, owner, gid),
                    "source": owner,
                    "target": gid,
                    "label": rel,
                    "count": count,
                },
                "classes": f"{rel.lower()} summary",
            }
        )
    return {"nodes": nodes, "edges": edges}


def _shown(sub: Subgraph) -> Counter[tuple[str, str]]:
    """Per (relationship type, start node): the edges drawn, i.e. a group's members drawn
    anyway (an alert's entity, a file another process on screen ran)."""
    return Counter((rel, start) for rel, start, _, _ in sub.edges.values())


def group_id(rel: str, owner: str) -> str:
    """A summarised group's node id: what the console also names its own groups."""
    return f"Group:{rel}:{owner}"


def groups(sub: Subgraph) -> list[dict[str, Any]]:
    """The summarised groups, for clients that read them beside the elements."""
    ids = {eid: node_id(*sub.nodes[eid]) for eid, _ in sub.groups}
    shown = _shown(sub)
    return [
        {
            "id": group_id(rel, ids[eid]),
            "node": ids[eid],
            "rel": rel,
            "of": FACT_TARGETS.get(rel, "Node"),
            "count": count,
            "shown": shown[(rel, eid)],
        }
        for (eid, rel), count in sub.groups.items()
    ]


def roots(sub: Subgraph) -> list[str]:
    return [node_id(*sub.nodes[eid]) for eid in sub.roots if eid in sub.nodes]


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_GRAPHML_NS = "http://graphml.graphdrawing.org/xmlns"


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    return _XML_BAD.sub("\ufffd", text)


def _attr_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "long"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "double"
    return "string"


def graphml(sub: Subgraph) -> bytes:
    """GraphML 1.0 with one <key> per property (lists and maps as JSON text)."""
    cy = elements(sub)
    ET.register_namespace("", _GRAPHML_NS)
    root = ET.Element(f"{{{_GRAPHML_NS}}}graphml")
    for domain, items in (("node", cy["nodes"]), ("edge", cy["edges"])):
        names: dict[str, list[Any]] = {}
        for item in items:
            for key, value in item["data"].items():
                if key not in ("id", "source", "target"):
                    names.setdefault(key, []).append(value)
        for name, values in sorted(names.items()):
            ET.SubElement(
                root,
                f"{{{_GRAPHML_NS}}}key",
                {
                    "id": f"{domain[0]}_{name}",
                    "for": domain,
                    "attr.name": name,
                    "attr.type": _attr_type(values),
                },
            )
    graph = ET.SubElement(
        root, f"{{{_GRAPHML_NS}}}graph", {"id": "provgraph", "edgedefault": "directed"}
    )
    for item in cy["nodes"]:
        data = item["data"]
        node = ET.SubElement(graph, f"{{{_GRAPHML_NS}}}node", {"id": _xml_text(data["id"])})
        _data(node, "n", data)
    for item in cy["edges"]:
        data = item["data"]
        edge = ET.SubElement(
            graph,
            f"{{{_GRAPHML_NS}}}edge",
            {
                "id": _xml_text(data["id"]),
                "source": _xml_text(data["source"]),
                "target": _xml_text(data["target"]),
            },
        )
        _data(edge, "e", data)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _data(parent: ET.Element, prefix: str, data: dict[str, Any]) -> None:
    for key, value in data.items():
        if key in ("id", "source", "target") or value is None:
            continue
        ET.SubElement(
            parent, f"{{{_GRAPHML_NS}}}data", {"key": f"{prefix}_{key}"}
        ).text = _xml_text(value)
