"""Alerts, owned here for every caller: the rule engine writes them, the API and the CLI
read and triage them through the same functions.

    writer   rule matches become alerts (identity, suppression, folding)  -- the engine
    seq      the change number every alert write takes, and the published watermark
    service  pages by change number up to the watermark, one alert in full, triage + audit
    models   what the service returns (pydantic: the API serves them as they are)

The engine-side names are importable from the package itself.
"""

from __future__ import annotations

from provgraph.queries.alerts.seq import COUNTER, PUBLISH_SEQ, next_seq, publish_seq, watermark
from provgraph.queries.alerts.writer import (
    ApplyResult,
    EntityRef,
    Match,
    alert_ids_for,
    apply_matches,
    ensure_alert_schema,
    match_from_row,
)

__all__ = [
    "COUNTER",
    "PUBLISH_SEQ",
    "ApplyResult",
    "EntityRef",
    "Match",
    "alert_ids_for",
    "apply_matches",
    "ensure_alert_schema",
    "match_from_row",
    "next_seq",
    "publish_seq",
    "watermark",
]
