from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from provgraph.api.alerts.models import (
    AlertDetail,
    AlertFormat,
    AlertPage,
    AlertRead,
    AlertUpdate,
    AuditEntryRead,
    OcsfDetectionFinding,
    Severity,
    Status,
)
from provgraph.api.alerts.ocsf import to_detection_finding
from provgraph.api.alerts.pages import AlertPages
from provgraph.api.deps import GraphDep, Reader, SettingsDep, Triager
from provgraph.api.problems import Problem, responses
from provgraph.api.routing import secured_router
from provgraph.api.rules.service import rule_summary
from provgraph.queries import exceptions
from provgraph.queries.alerts import service
from provgraph.queries.cursors import decode_cursor, encode_cursor
from provgraph.queries.errors import InvalidChange
from provgraph.queries.exceptions import ExceptionCreate, ExceptionOption, RuleExceptionRead
from provgraph.queries.incidents import Incident, incident_filter, incidents
from pydantic import BaseModel

router = secured_router(prefix="/alerts", tags=["alerts"])

CURSOR = "alerts"


class IncidentPage(BaseModel):
    incidents: list[Incident]
    window_minutes: int


def _after(cursor: str | None) -> int:
    if not cursor:
        return 0
    seq = decode_cursor(CURSOR, cursor).get("seq")
    if not isinstance(seq, int) or seq < 0:
        raise Problem(400, "the cursor does not hold a change number", slug="invalid-cursor")
    return seq


@router.get(
    "",
    response_model=AlertPage,
    summary="Alerts new or changed since a cursor",
    description=(
        "Pages in change order (`seq`). Pass `next_cursor` back as `cursor` to get what is "
        "new or changed since: no alert change is skipped or repeated, even while rules are "
        "writing. `format=ocsf` returns OCSF Detection Findings as `items`."
    ),
    responses=responses(400),
)
def list_alerts(
    request: Request,
    graph: GraphDep,
    settings: SettingsDep,
    _: Reader,
    cursor: Annotated[str | None, Query(description="opaque; from a previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    status: Annotated[list[Status] | None, Query()] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    rule: Annotated[list[str] | None, Query(description="rule ids")] = None,
    host: Annotated[list[str] | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="alerts last seen at or after")] = None,
    until: Annotated[datetime | None, Query(description="alerts first seen before")] = None,
    format: AlertFormat = "native",
) -> Any:
    where = service.AlertFilter(
        statuses=[s.value for s in status] if status else None,
        severities=[s.value for s in severity] if severity else None,
        rules=rule,
        hosts=[h.lower() for h in host] if host else None,
        since=_aware(since),
        until=_aware(until),
    )
    after, limit = _after(cursor), min(limit, settings.page_max)
    # Answered from the pages made at this same watermark, if one was (see api.alerts.pages).
    high, epoch = service.page_stamp(graph)
    pages: AlertPages = request.app.state.alert_pages
    key = (epoch, high, after, limit, where.key(), format)
    if epoch is not None and (cached := pages.get(key)) is not None:
        return Response(cached, media_type="application/json")
    page = service.list_alerts(graph, after=after, limit=limit, where=where, high=high)
    body: dict[str, Any] = {
        "next_cursor": encode_cursor(CURSOR, {"seq": page.next_after}),
        "has_more": page.has_more,
        "high_seq": page.high,
    }
    if format == "ocsf":
        entities = service.entities_of(graph, alert_ids=[a.id for a in page.alerts])
        body["items"] = [to_detection_finding(a, entities[a.id]) for a in page.alerts]
        sent: Response = JSONResponse(jsonable_encoder(body))
    else:
        body["items"] = page.alerts
        # Encoded by pydantic-core directly: the alerts are validated models already, and
        # FastAPI's response_model path would validate them again and encode through
        # jsonable_encoder.
        sent = Response(
            AlertPage.model_validate(body).model_dump_json(), media_type="application/json"
        )
    if epoch is not None:
        pages.put(key, bytes(sent.body))
    return sent


@router.get(
    "/incidents",
    response_model=IncidentPage,
    summary="Alerts grouped into incidents",
    description="Groups alerts that share a host, a process tree (the topmost ancestor of a "
    "process they involve) or an account (a process's user) and whose time spans, widened by "
    "`window_minutes`, overlap. Computed on read over the newest 2,000 matching alerts; an "
    "alert with nothing in common with another is in no incident.",
)
def list_incidents(
    graph: GraphDep,
    _: Reader,
    status: Annotated[list[Status] | None, Query()] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    rule: Annotated[list[str] | None, Query(description="rule ids")] = None,
    host: Annotated[list[str] | None, Query()] = None,
    window_minutes: Annotated[int, Query(ge=0, le=7 * 24 * 60)] = 60,
) -> IncidentPage:
    where = incident_filter(
        [s.value for s in status] if status else None,
        [s.value for s in severity] if severity else None,
        rule,
        [h.lower() for h in host] if host else None,
    )
    found = incidents(graph, where=where, window=timedelta(minutes=window_minutes))
    return IncidentPage(incidents=found, window_minutes=window_minutes)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Problem(422, "times need a timezone (e.g. 2024-05-01T10:00:00Z)", slug="validation")
    return value


@router.get(
    "/{alert_id}",
    response_model=AlertDetail | OcsfDetectionFinding,
    summary="One alert with its rule, MITRE mapping, entities, evidence and audit trail",
    description="`format=ocsf` returns the alert as an OCSF Detection Finding (class 2004).",
    responses=responses(404),
)
def get_alert(graph: GraphDep, _: Reader, alert_id: str, format: AlertFormat = "native") -> Any:
    detail = service.alert_detail(graph, alert_id=alert_id, rule_of=rule_summary)
    if format == "ocsf":
        return JSONResponse(
            to_detection_finding(detail, detail.entities, detail.evidence, detail.rule)
        )
    return detail


@router.patch(
    "/{alert_id}",
    response_model=AlertRead,
    summary="Triage: set status, assignee and resolution, add a comment",
    description="Every effective change writes an audit entry (who, when, what, comment) and "
    "gives the alert a new `seq`, so incremental pulls see it. An update that changes "
    "nothing and has no comment records nothing. `resolution` (true_positive, "
    "benign_true_positive, false_positive) says why an alert is closed: it goes with "
    "`status: closed` (or an alert already closed), and reopening an alert clears it.",
    responses=responses(404, 409),
)
def update_alert(graph: GraphDep, who: Triager, alert_id: str, change: AlertUpdate) -> AlertRead:
    try:
        alert, _recorded = service.update_alert(
            graph, alert_id=alert_id, change=change, actor=who.key_id, actor_name=who.name
        )
    except InvalidChange as error:
        raise Problem(409, str(error), slug="invalid-change") from None
    return alert


@router.get(
    "/{alert_id}/exceptions/options",
    response_model=list[ExceptionOption],
    summary="The rule exceptions this alert can make",
    description="Its host, and for each process it involves that process's parent name and "
    "image path, for each file its path: the values `POST …/exceptions` accepts.",
    responses=responses(404),
)
def exception_options(graph: GraphDep, _: Reader, alert_id: str) -> list[ExceptionOption]:
    return exceptions.options_for(graph, alert_id=alert_id)[1]


@router.post(
    "/{alert_id}/exceptions",
    response_model=RuleExceptionRead,
    status_code=201,
    summary="Make an exception of the alert's rule from this alert",
    description='"Not this parent / path / host" for the alert\'s rule, from one of the '
    "alert's own values (see `…/exceptions/options`). Every later run of the rule drops the "
    "matches it covers; the alert's audit trail records it. The alert itself stays as it is "
    "(close it with a resolution).",
    responses=responses(404, 409),
)
def add_exception(
    graph: GraphDep, who: Triager, alert_id: str, change: ExceptionCreate
) -> RuleExceptionRead:
    try:
        return exceptions.add_exception(
            graph, alert_id=alert_id, change=change, actor=who.key_id, actor_name=who.name
        )
    except InvalidChange as error:
        raise Problem(409, str(error), slug="invalid-change") from None


@router.get(
    "/{alert_id}/audit",
    response_model=list[AuditEntryRead],
    summary="The alert's audit trail, oldest first",
    responses=responses(404),
)
def alert_audit(graph: GraphDep, _: Reader, alert_id: str) -> list[AuditEntryRead]:
    service.get_alert(graph, alert_id=alert_id)  # a missing alert is a 404, not an empty trail
    return service.audit_of(graph, alert_id=alert_id)
