"""The API's start-up work on the graph: the one schema (`graph.model` declares the API's
own records beside everything else), and healing an unpublished alert change."""

from __future__ import annotations

from provgraph.graph.schema import ensure_schema
from provgraph.graph.tx import Graph
from provgraph.queries.alerts import publish_seq


def ensure_api_schema(graph: Graph) -> None:
    ensure_schema(graph)
    # Heals a writer that died between its commit and its publish (alerts it wrote would
    # otherwise stay unpaged until the next alert write).
    publish_seq(graph)
