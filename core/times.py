"""The two instants that stand for "no limit" in a time range, defined once for every layer.

A query over [since, until] with either end open gets these instead of null, so the Cypher
compares datetimes without a null check. `EPOCH` is also the zero of the writer's integer
microseconds. Neo4j's DateTime reaches year 999 999 999, so `FAR_FUTURE` is within range.
"""

from __future__ import annotations

from datetime import UTC, datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


def span(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """[since, until] with an open end replaced by EPOCH or FAR_FUTURE."""
    return (since or EPOCH, until or FAR_FUTURE)
