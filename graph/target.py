"""Which Neo4j to talk to: the one the settings name, else the managed local instance.

NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD / NEO4J_DATABASE (or the same keys in lower case in
`provgraph.yaml`) point provgraph at any Neo4j: bolt://, neo4j:// routing for a cluster,
neo4j+s:// for Aura. With none set it uses the managed local server (`provgraph neo4j start`),
whose address and password are read from its state on disk; nothing is started here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from provgraph.core.config import neo4j_settings
from provgraph.core.errors import ProvgraphError
from provgraph.graph.local.instance import USER, Instance


@dataclass(frozen=True)
class Neo4jTarget:
    uri: str
    user: str
    password: str
    database: str = "neo4j"
    managed_instance: str | None = None  # name of the local instance, when it is ours


def resolve_target(instance: str | None = None) -> Neo4jTarget:
    """The Neo4j to talk to: explicit settings first, else the managed local instance."""
    settings = neo4j_settings()
    database = settings.get("neo4j_database", "neo4j")
    if settings.get("neo4j_uri") and instance is None:
        return Neo4jTarget(
            uri=settings["neo4j_uri"],
            user=settings.get("neo4j_user", "neo4j"),
            password=settings.get("neo4j_password", ""),
            database=database,
        )
    local = Instance(instance or os.environ.get("PROVGRAPH_INSTANCE", "default"))
    if not local.is_running():
        raise ProvgraphError(
            f"No Neo4j configured and the managed instance '{local.name}' is not running: "
            "run `provgraph neo4j start`, or set NEO4J_URI (and NEO4J_USER, NEO4J_PASSWORD)."
        )
    return Neo4jTarget(
        uri=local.uri,
        user=USER,
        password=local.password(),
        database=database,
        managed_instance=local.name,
    )
