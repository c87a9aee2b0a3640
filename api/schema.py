"""Constraints for the nodes only the API writes (keys, audit trail, webhooks).

The graph model lives in `graph.schema`; these follow the same pattern (one uniqueness
constraint per node key, created idempotently at start-up). They belong in
`graph.schema.NODE_KEYS` once the graph owners take them in.
"""

from __future__ import annotations

from provgraph.graph.tx import Graph
from provgraph.queries.alerts import ensure_alert_schema, publish_seq

API_NODE_KEYS: dict[str, str] = {
    # The alert change counter: without this, two first writers could MERGE two counters.
    "Counter": "name",
    "ApiKey": "id",
    "AuditEntry": "id",
    "WebhookSubscription": "id",
    "WebhookDelivery": "id",
}


def api_schema_statements() -> list[str]:
    return [
        f"CREATE CONSTRAINT {label.lower()}_{key}_unique IF NOT EXISTS "
        f"FOR (n:{label}) REQUIRE n.{key} IS UNIQUE"
        for label, key in API_NODE_KEYS.items()
    ]


def ensure_api_schema(graph: Graph) -> None:
    for statement in api_schema_statements():
        graph.write(statement)
    ensure_alert_schema(graph)  # the engine's alert indexes, which alert paging relies on
    # Heals a writer that died between its commit and its publish (alerts it wrote would
    # otherwise stay unpaged until the next alert write).
    publish_seq(graph)
