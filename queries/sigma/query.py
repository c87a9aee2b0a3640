"""A compiled Sigma rule's query and the pattern it stands on: what the single-event backend
(`backend`) and the correlations (`correlation`) both build with, so neither imports the
other for it. Depends on the logsource tables (`mapping`) only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provgraph.queries.sigma.mapping import Logsource


@dataclass
class CompiledQuery:
    """One Sigma rule as one Cypher query: text, parameters, and what it stands on."""

    query: str
    params: dict[str, Any]
    logsource: str
    condition: str  # the rule's condition alone, as it sits in the query
    fields: tuple[str, ...]  # Sigma fields the rule reads
    caveats: tuple[str, ...] = ()
    placeholders: tuple[str, ...] = ()  # parameters a site must fill (expand placeholders)
    needs_parent: bool = False  # the condition reads the creator (`parent`)
    lineage: tuple[str, ...] = ()  # "anc"/"desc" when the condition walks SPAWNED paths
    # the rule's product ("windows", "linux", "macos") when it names one the graph holds: the
    # query then tests it (PLATFORM_CHECK) through the rule parameter PLATFORM_PARAM
    platform: str | None = None

    def parameters(self) -> dict[str, Any]:
        """Everything the query reads: the condition's values and the product."""
        if self.platform is None:
            return dict(self.params)
        return {**self.params, PLATFORM_PARAM: self.platform}


# The product test, on the process's host (Host.os, see graph.schema).
PLATFORM_PARAM = "sigma_product"
PLATFORM_CHECK = (
    "NOT EXISTS { MATCH (h:Host {name: %(host)s}) WHERE h.os IS NOT NULL "
    f"AND h.os <> ${PLATFORM_PARAM} }}"
)


def platform_check(logsource: Logsource) -> str:
    """PLATFORM_CHECK on the logsource's host."""
    return PLATFORM_CHECK % {"host": logsource.host}


def pattern_lines(
    logsource: Logsource, condition: str, join_parent: bool, platform: str | None = None
) -> list[str]:
    """The logsource's pattern with the rule's condition applied (the creator joined when
    asked), ending on a WITH or WHERE that binds the logsource's variables. `platform` is the
    parameter holding the rule's product, when it names one."""
    if platform is not None:
        condition = f"({condition}) AND {platform_check(logsource)}"
    lines = [logsource.match]
    if join_parent:
        variables = sorted(logsource.variables | {"parent"})
        lines.append("OPTIONAL MATCH (parent:Process)-[:SPAWNED]->(p)")
        lines.append(f"WITH {', '.join(variables)}")
        lines.append(f"WHERE {condition}")
    else:
        lines[0] += f"\n  AND ({condition})"
    return lines


def build_query(
    logsource: Logsource, condition: str, needs_parent: bool, platform: str | None = None
) -> str:
    """The logsource's pattern, the rule's condition, and the engine's columns."""
    join_parent = needs_parent or logsource.always_parent
    variables = sorted(logsource.variables | ({"parent"} if join_parent else set()))
    lines = pattern_lines(logsource, condition, join_parent, platform)
    if logsource.times is None:
        first = last = logsource.time
    else:
        lines.append(f"WITH {', '.join(variables)}, {logsource.times} AS hits")
        first = "reduce(m = hits[0], t IN hits | CASE WHEN t < m THEN t ELSE m END)"
        last = "reduce(m = hits[0], t IN hits | CASE WHEN t > m THEN t ELSE m END)"
    columns = [(logsource.host, "host"), (first, "first_seen"), (last, "last_seen")]
    columns += list(logsource.returns)
    lines.append("RETURN " + ",\n       ".join(f"{e} AS {c}" for e, c in columns))
    return "\n".join(lines) + "\n"
