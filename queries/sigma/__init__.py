"""Sigma rules as graph patterns: a pySigma backend emitting parameterised Cypher.

`compile_path(paths)` compiles every Sigma rule in files or folders (correlations included)
into provgraph `Rule`s and reports, per rule, whether it compiled and why not. `CypherBackend`
and `provgraph_pipeline()` are the pySigma pieces; `mapping` holds the logsource and field table
(and the lineage extension), `correlation` the correlation queries, `store` the imported rules
on disk, `check` the time-budget check of `provgraph sigma import`.
"""

from provgraph.queries.sigma.backend import CypherBackend
from provgraph.queries.sigma.compile import Report, RuleResult, compile_path, compile_rule
from provgraph.queries.sigma.errors import Unsupported
from provgraph.queries.sigma.pipeline import provgraph_pipeline
from provgraph.queries.sigma.query import CompiledQuery

__all__ = [
    "CompiledQuery",
    "CypherBackend",
    "Report",
    "RuleResult",
    "Unsupported",
    "compile_path",
    "compile_rule",
    "provgraph_pipeline",
]
