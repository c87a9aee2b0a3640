"""What the command groups share: the graph the responder commands (`alerts`, `keys`,
`trace`) open, how they print, and how a time option is read. Light to import: the graph and
the API's schema load when a command connects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from provgraph.graph.tx import Graph


class _Out:
    """Rich output sized to the terminal at print time (COLUMNS is honoured when piped)."""

    def print(self, *items: Any) -> None:
        Console(highlight=False).print(*items)


console = _Out()


def connect() -> Graph:
    """The configured graph, with the API's schema in place (keys, audit entries and the
    alert counter need their constraints; publishing heals a writer that died before it
    published its alerts)."""
    from provgraph.api.schema import ensure_api_schema
    from provgraph.graph.tx import Graph

    graph = Graph.connect()
    ensure_api_schema(graph)
    return graph


def short(value: Any, width: int = 80) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def parse_time(value: str | None) -> datetime | None:
    """An ISO time (UTC unless it says otherwise) or one relative to now: "-2h"."""
    if value is None:
        return None
    if value.startswith("-"):  # "-2h": relative to now
        from provgraph.queries.rule import parse_duration

        return datetime.now(UTC) - parse_duration(value[1:])
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
