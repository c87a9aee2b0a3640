from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import Header, Query, Request
from provgraph.api.deps import GraphDep, Ingester, SettingsDep
from provgraph.api.ingestion import service
from provgraph.api.ingestion.models import IngestResult
from provgraph.api.problems import Problem, responses
from provgraph.api.routing import secured_router
from starlette.concurrency import run_in_threadpool

router = secured_router(prefix="/ingest", tags=["ingest"])

ACCEPTED_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json",
    "application/jsonlines",
    "text/plain",
    "application/octet-stream",
    "application/gzip",
    "application/x-gzip",
    "text/csv",
}
GZIP_TYPES = {"application/gzip", "application/x-gzip"}
Format = Literal["windows", "sysmon", "security", "sysmon_linux", "ecs", "mde", "auditd"]

_BODY = {
    "requestBody": {
        "required": True,
        "description": "NDJSON, a JSON array, CSV or auditd text; gzip with "
        "`Content-Encoding: gzip` or `Content-Type: application/gzip`.",
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}}
            for t in ("application/x-ndjson", "application/json", "application/gzip")
        },
    }
}


@router.post(
    "",
    response_model=IngestResult,
    summary="Ingest telemetry",
    description="Parses the body with the same pipeline as `provgraph ingest` and writes the "
    "events; answers how many records were accepted, skipped and rejected, by reason, the first "
    "100 rejected records with their line and reason (as the CLI's dead-letter file has them), "
    "and `problem` when the body failed as a whole. A body whose format is not recognised is "
    "refused (400); `?format=` names it, and then even a body with a junk first line is read.",
    responses=responses(400, 413, 415),
    openapi_extra=_BODY,
)
async def ingest(
    request: Request,
    graph: GraphDep,
    settings: SettingsDep,
    _: Ingester,
    format: Annotated[Format | None, Query(description="default: detected")] = None,
    run_rules: Annotated[bool, Query(description="run the rules over what was written")] = True,
    content_type: Annotated[str | None, Header()] = None,
    content_encoding: Annotated[str | None, Header()] = None,
    content_length: Annotated[int | None, Header(ge=0)] = None,
) -> Any:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media and media not in ACCEPTED_TYPES:
        raise Problem(
            415,
            f"content type {media!r} is not accepted; send NDJSON, JSON or gzip",
            slug="unsupported-media-type",
        )
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise Problem(
            415,
            f"content encoding {encoding!r} is not supported (gzip is)",
            slug="unsupported-encoding",
        )
    if content_length is not None and content_length > settings.max_ingest_bytes:
        raise _too_large(settings.max_ingest_bytes, "request body")
    gzipped = encoding != "identity" or media in GZIP_TYPES
    try:
        spool, received, decoded = await service.receive(
            request.stream(),
            gzipped=gzipped,
            max_bytes=settings.max_ingest_bytes,
            max_decoded=settings.max_decompressed_bytes,
        )
    except service.BodyTooLarge as error:
        raise _too_large(error.limit, error.what) from None
    except service.BadEncoding as error:
        raise Problem(400, str(error), slug="bad-encoding") from None
    if decoded == 0:
        spool.close()
        raise Problem(400, "the body is empty", slug="empty-body")
    name = f"<http>:{uuid.uuid4().hex[:12]}"
    stream = service.NamedStream(spool, name)
    try:
        summary = await run_in_threadpool(
            service.ingest_body, graph, stream=stream, fmt=format, run_rules=run_rules
        )
    except service.PipelineUnavailable as error:
        raise Problem(503, str(error), slug="ingest-unavailable") from None
    finally:
        stream.close()
    unrecognised = [
        f["unrecognised"] for f in summary.get("files", {}).values() if f.get("unrecognised")
    ]
    if unrecognised and not summary.get("accepted"):
        raise Problem(
            400,
            f"the body's format was not recognised ({unrecognised[0]}); name it with ?format=",
            slug="unrecognised-format",
        )
    rejections = summary.pop("rejections", {})
    problems = list(summary.get("problems", {}).values())
    return IngestResult(
        source=name,
        format=format,
        bytes_received=received,
        bytes_decoded=decoded,
        accepted=int(summary.get("accepted", 0)),
        skipped=dict(summary.get("skipped", {})),
        rejected=dict(summary.get("rejected", {})),
        rejections=rejections.get("shown", []),
        rejections_total=int(rejections.get("total", 0)),
        problem=problems[0] if problems else None,
        written=int(summary.get("written", 0)),
        rules=summary.pop("rules", []),
        summary=summary,
    )


def _too_large(limit: int, what: str) -> Problem:
    return Problem(
        413,
        f"the {what} is larger than the {limit}-byte limit; split it into smaller posts",
        slug="too-large",
        limit=limit,
    )
