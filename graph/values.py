"""Neo4j values as JSON-ready Python, and the Cypher that keeps times cheap to read."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from neo4j.time import Date, DateTime, Duration, Time

_AS_IS = frozenset({str, int, float, bool, type(None)})


def plain(value: Any) -> Any:
    """Temporal values become ISO 8601 strings (UTC 'Z'), containers are walked."""
    kind = type(value)
    if kind in _AS_IS:  # the common case, checked without isinstance's slower walk
        return value
    if kind is list and all(type(v) in _AS_IS for v in value):
        return value
    if isinstance(value, DateTime):
        value = value.to_native()
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
            return value.isoformat().replace("+00:00", "Z")
        return value.isoformat()
    if isinstance(value, Date | Time | Duration):
        return value.iso_format()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def json_or_text(value: Any) -> Any:
    """Properties that hold JSON text (raw records, alert details) as objects when they parse."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def utc_text(var: str, prop: str) -> str:
    """Cypher (code-side names only) for `var.prop`, a DateTime, as ISO text in UTC ending in
    'Z', or null. Text crosses the wire far cheaper than DateTimes the Python driver must
    hydrate one by one."""
    return (
        f"{prop}: CASE WHEN {var}.{prop} IS NULL THEN null "
        f"ELSE toString(datetime({{datetime: {var}.{prop}, timezone: '+00:00'}})) END"
    )
