from __future__ import annotations

from provgraph.api.deps import Admin, GraphDep, Reader, Triager
from provgraph.api.problems import Problem, not_found, responses
from provgraph.api.routing import secured_router
from provgraph.api.rules import service
from provgraph.api.rules.models import (
    RuleDetail,
    RuleRead,
    RuleRunRequest,
    RuleRunResult,
    RuleUpdate,
)
from provgraph.queries.catalog import UnknownRules

router = secured_router(prefix="/rules", tags=["rules"], responses=responses(503))


def _unavailable(error: Exception) -> Problem:
    return Problem(503, f"the rule catalog is not available: {error}", slug="rules-unavailable")


@router.get("", response_model=list[RuleRead], summary="Every loaded rule")
def list_rules(_: Reader) -> list[RuleRead]:
    try:
        return service.list_rules()
    except service.RulesUnavailable as error:
        raise _unavailable(error) from None


@router.get(
    "/{rule_id}",
    response_model=RuleDetail,
    summary="One rule, with its query",
    responses=responses(404),
)
def get_rule(_: Reader, rule_id: str) -> RuleDetail:
    try:
        rule = service.get_rule(rule_id)
    except service.RulesUnavailable as error:
        raise _unavailable(error) from None
    if rule is None:
        raise not_found(f"rule {rule_id!r}")
    return rule


@router.patch(
    "/{rule_id}",
    response_model=RuleDetail,
    summary="Enable or disable a rule",
    description='`{"enabled": false}` stops the rule from running (after ingests, on '
    "schedule and on demand) until it is enabled again; it stays listed and its alerts stay. "
    "The state survives restarts (`<rules home>/state.json`, shared with `provgraph rules "
    "enable|disable`).",
    responses=responses(404),
)
def update_rule(principal: Admin, rule_id: str, change: RuleUpdate) -> RuleDetail:
    try:
        rule = service.set_enabled(rule_id, change.enabled, actor=principal.key_id)
    except service.RulesUnavailable as error:
        raise _unavailable(error) from None
    if rule is None:
        raise not_found(f"rule {rule_id!r}")
    return rule


@router.post(
    "/run",
    response_model=RuleRunResult,
    summary="Run rules now",
    description="Runs the given rules (default: all) over a time range and writes "
    "their alerts; reruns never duplicate an alert.",
    responses=responses(400, 404),
)
def run_rules(graph: GraphDep, _: Triager, request: RuleRunRequest) -> RuleRunResult:
    try:
        chosen = service.select_rules(request.rules)
    except service.RulesUnavailable as error:
        raise _unavailable(error) from None
    except UnknownRules as error:
        raise not_found(f"rules {list(error.missing)}") from None
    if request.since and request.until and request.since >= request.until:
        raise Problem(400, "`since` must be before `until`", slug="bad-range")
    report = service.run_rules(graph, since=request.since, until=request.until, rules=chosen)
    return RuleRunResult(runs=report)
