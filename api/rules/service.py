"""Rules as the catalog holds them (site settings applied), and on-demand runs of them.

The API reads the process's one catalog (`provgraph.queries.catalog.default_catalog`), the
same the engine uses after each ingest, so what `GET /rules/{id}` shows is what runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from provgraph.api.rules.models import RuleDetail, RuleRead
from provgraph.api.values import plain
from provgraph.graph.tx import Graph
from provgraph.queries.catalog import (
    CatalogEntry,
    RuleSettingsError,
    Snapshot,
    UnknownRules,
    default_catalog,
)
from provgraph.queries.engine import run_rules as engine_run_rules
from provgraph.queries.rule import Rule


class RulesUnavailable(RuntimeError):
    """The catalog cannot be read: the settings file does not fit the rules."""


def _snapshot() -> Snapshot:
    try:
        return default_catalog().snapshot()
    except RuleSettingsError as error:
        raise RulesUnavailable(str(error)) from error


def _read(entry: CatalogEntry) -> dict[str, Any]:
    rule = entry.rule
    return {
        "id": rule.id,
        "name": rule.name,
        "description": rule.description,
        "severity": rule.severity,
        "risk_score": rule.risk_score,
        "tactics": list(rule.tactics),
        "techniques": list(rule.techniques),
        "references": list(rule.references),
        "schedule": {
            "interval_seconds": rule.schedule.interval.total_seconds(),
            "lookback_seconds": rule.schedule.lookback.total_seconds(),
        },
        "time_limit_seconds": rule.time_limit.total_seconds() if rule.time_limit else None,
        "source": entry.source,
        "path": str(rule.path) if rule.path else None,
        "enabled": entry.enabled,
        "disabled": None if entry.enabled else plain(dict(entry.disabled)),
    }


def list_rules() -> list[RuleRead]:
    return [RuleRead.model_validate(_read(entry)) for entry in _snapshot().entries]


def get_rule(rule_id: str) -> RuleDetail | None:
    """One rule with its effective parameters (site values over the shipped ones)."""
    for entry in _snapshot().entries:
        if entry.rule.id == rule_id:
            rule = entry.rule
            return RuleDetail.model_validate(
                {
                    **_read(entry),
                    "parameters": plain(dict(rule.parameters)),
                    "site_parameters": plain(dict(entry.site)),
                    "query": rule.query,
                    "entities": [asdict(e) for e in rule.entities],
                    "false_positives": list(rule.false_positives),
                    "investigation": rule.investigation,
                    "summary": rule.summary,
                    "metadata": plain(dict(rule.metadata)),
                }
            )
    return None


def set_enabled(rule_id: str, enabled: bool, *, actor: str) -> RuleDetail | None:
    """Enable or disable one rule (the catalog's state file); None when there is no such rule."""
    catalog = default_catalog()
    try:
        catalog.set_enabled(rule_id, enabled, f"disabled through the API by {actor}")
    except UnknownRules:
        return None
    except RuleSettingsError as error:
        raise RulesUnavailable(str(error)) from error
    return get_rule(rule_id)


def rule_summary(rule_id: str | None) -> dict[str, Any] | None:
    """The rule an alert came from, for alert details; None when unknown or unavailable."""
    if not rule_id:
        return None
    try:
        rule = get_rule(rule_id)
    except RulesUnavailable:
        return None
    if rule is None:
        return None
    return rule.model_dump(
        include={
            "id",
            "name",
            "description",
            "severity",
            "risk_score",
            "tactics",
            "techniques",
            "references",
            "false_positives",
            "investigation",
            "metadata",
        }
    )


def select_rules(rule_ids: Sequence[str] | None) -> list[Rule]:
    """The named rules (all when none are named); UnknownRules names the missing ids."""
    return _snapshot().select(rule_ids or None)


def run_rules(
    graph: Graph,
    *,
    since: datetime | None,
    until: datetime | None,
    rules: Sequence[Rule],
) -> list[dict[str, Any]]:
    """Run these rules now through the engine; one report per rule."""
    runs = engine_run_rules(graph, since=since, until=until, rules=rules)
    return [plain(asdict(run)) for run in runs]
