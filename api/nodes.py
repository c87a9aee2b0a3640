"""Node ids as the API serves them: `provgraph.queries.nodes` owns the naming.

Re-exported for the API modules that still import it from here (api/query); new code
imports `provgraph.queries.nodes`.
"""

from __future__ import annotations

from provgraph.queries.nodes import node_id

__all__ = ["node_id"]
