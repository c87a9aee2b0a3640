"""Site settings for tests: a provgraph.yaml in a tmp folder, and events the registry allow
list decides on.

Two hosts run node, which connects to a public address: on `ws-allowed` to the site's own
registry, on `ws-evil` to a drop host. Shipped defaults alert on both; with the allow list
`registry.corp.example` set, only `ws-evil` alerts. The second host proves the rule ran.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.queries.examples import events_from_specs

RULE = "dependency_compromise_network"
ALLOW_LIST = f"rules:\n  {RULE}:\n    registry_allow_list: [registry.corp.example]\n"
ALERTING_HOSTS = {"ws-allowed", "ws-evil"}  # under the shipped defaults
SITE_ALERTING_HOSTS = {"ws-evil"}  # with ALLOW_LIST

SPECS = [
    {"kind": "process_start", "t": 0, "host": "ws-allowed", "uid": "n1", "image": "/usr/bin/node"},
    {
        "kind": "network_connect",
        "t": 3,
        "host": "ws-allowed",
        "uid": "n1",
        "image": "/usr/bin/node",
        "ip": "23.192.0.20",
        "port": 443,
        "hostname": "npm.registry.corp.example",
    },
    {"kind": "process_start", "t": 0, "host": "ws-evil", "uid": "n2", "image": "/usr/bin/node"},
    {
        "kind": "network_connect",
        "t": 4,
        "host": "ws-evil",
        "uid": "n2",
        "image": "/usr/bin/node",
        "ip": "23.192.0.21",
        "port": 443,
        "hostname": "drop.evil.test",
    },
]


def use_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    """Write `text` as the settings file and point PROVGRAPH_CONFIG at it."""
    path = tmp_path / "provgraph.yaml"
    path.write_text(text)
    monkeypatch.setenv("PROVGRAPH_CONFIG", str(path))
    return path


def write_registry_events(graph: Graph) -> None:
    write_events(graph, events_from_specs(SPECS))


def alerting_hosts(graph: Graph, rule_id: str = RULE) -> set[str]:
    rows = graph.read("MATCH (a:Alert {rule_id: $rule}) RETURN a.host AS host", {"rule": rule_id})
    return {row["host"] for row in rows}
