"""Neo4j values as the API serves them: `provgraph.graph.values` owns the conversion.

Re-exported for the API modules that still import them from here (api/query, api/rules,
api/webhooks); new code imports `provgraph.graph.values`.
"""

from __future__ import annotations

from provgraph.graph.values import json_or_text, plain

__all__ = ["json_or_text", "plain"]
