"""Rules as the engine in `queries` loads them, and on-demand runs through that engine."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime, timedelta
from typing import Any

from provgraph.api.rules.models import RuleDetail, RuleRead
from provgraph.api.values import plain
from provgraph.graph.tx import Graph

log = logging.getLogger("provgraph.api")


class RulesUnavailable(RuntimeError):
    """The rule engine (queries/) is not importable in this build."""


_CACHE_SECONDS = 30.0
_cache: tuple[float, list[Any]] | None = None
_cache_lock = threading.Lock()


def _load() -> list[Any]:
    """The engine's rule set (re-read at most every 30 s: rule files are edited live)."""
    global _cache
    try:
        from provgraph.queries.rule import load_rules
    except ImportError as error:
        raise RulesUnavailable(str(error)) from error
    with _cache_lock:
        if _cache is not None and time.monotonic() - _cache[0] < _CACHE_SECONDS:
            return _cache[1]
        ruleset = load_rules()
        for error in ruleset.errors:
            log.warning("rule not loaded: %s", error)
        _cache = (time.monotonic(), list(ruleset.rules))
        return _cache[1]


def _seconds(value: Any) -> Any:
    return value.total_seconds() if isinstance(value, timedelta) else value


def _read(rule: Any) -> dict[str, Any]:
    schedule = getattr(rule, "schedule", None)
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
            "interval_seconds": _seconds(schedule.interval),
            "lookback_seconds": _seconds(schedule.lookback),
        }
        if schedule
        else None,
        "path": str(rule.path) if getattr(rule, "path", None) else None,
    }


def list_rules() -> list[RuleRead]:
    return [RuleRead.model_validate(_read(r)) for r in _load()]


def get_rule(rule_id: str) -> RuleDetail | None:
    for rule in _load():
        if rule.id == rule_id:
            return RuleDetail.model_validate(
                {
                    **_read(rule),
                    "parameters": plain(dict(rule.parameters)),
                    "query": rule.query,
                    "entities": [asdict(e) if is_dataclass(e) else dict(e) for e in rule.entities],
                    "false_positives": list(rule.false_positives),
                    "investigation": rule.investigation,
                    "summary": rule.summary,
                }
            )
    return None


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
        }
    )


def run_rules(
    graph: Graph,
    *,
    since: datetime | None,
    until: datetime | None,
    rule_ids: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Run the engine now (all rules, or the named ones); one report per rule."""
    try:
        from provgraph.queries.engine import run_rules as engine_run
    except ImportError as error:
        raise RulesUnavailable(str(error)) from error
    chosen = None
    if rule_ids:
        wanted = set(rule_ids)
        chosen = [r for r in _load() if r.id in wanted]
    runs = engine_run(graph, since=since, until=until, rules=chosen)
    return [plain(asdict(run)) if is_dataclass(run) else plain(run) for run in runs]
