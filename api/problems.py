"""One error shape for every failure: RFC 9457 `application/problem+json`.

Views raise `Problem` (or a subclass); the domain reads' errors (`queries.errors`: a thing
not found, a cursor not ours), validation errors, unknown routes, Neo4j failures and anything
unexpected are turned into the same shape by the handlers installed here.
No handler ever puts a stack trace in a response: unexpected errors are logged with one.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from neo4j.exceptions import ClientError, Neo4jError
from provgraph.graph.tx import GraphUnavailable
from provgraph.queries.errors import InvalidCursor, NotFound
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("provgraph.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://provgraph.example/problems/"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
    504: "Query timed out",
}


class ProblemDetail(BaseModel):
    """RFC 9457 problem details, as every error of this API is answered."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str


class Problem(Exception):
    """An error meant for the client. `slug` names the problem type."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or TITLES.get(status, "error").lower().replace(" ", "-")
        self.title = title or TITLES.get(status, "Error")
        self.headers = headers or {}
        self.extra = extra


def not_found(what: str) -> Problem:
    return Problem(404, f"{what} does not exist", slug="not-found")


def problem_response(
    request_path: str,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": TYPE_BASE + (slug or TITLES.get(status, "error").lower().replace(" ", "-")),
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request_path,
        **jsonable_encoder(extra),
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _described(status: int, description: str) -> dict[str, Any]:
    # The schema itself is added to components by api.app (see `openapi_with_problems`).
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
    }


# Declared on every authenticated router; views add the ones particular to them.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _described(401, "Missing or invalid API key"),
    403: _described(403, "The API key lacks the scope this endpoint needs"),
    422: _described(422, "The request did not validate"),
    500: _described(500, "Unexpected server error (logged; no details leak)"),
    503: _described(503, "Neo4j is unavailable"),
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Extra problem responses for one endpoint, e.g. `responses(404, 409)`."""
    notes = {
        400: "The request cannot be served as asked",
        404: "No such resource",
        409: "Conflicts with the current state",
        413: "The body is larger than the configured limit",
        415: "The body's media type or encoding is not supported",
        504: "The query ran past its time limit",
    }
    return {s: _described(s, notes.get(s, TITLES.get(s, "Error"))) for s in statuses}


def _validation_detail(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def install(app: FastAPI) -> None:
    """Exception handlers for the expected failures; `CatchAll` handles the rest."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            request.url.path,
            exc.status,
            exc.detail,
            slug=exc.slug,
            title=exc.title,
            headers=exc.headers,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
        for error in errors:
            error.pop("input", None)  # never echo what was sent (it may be a secret)
            error.pop("ctx", None)
        return problem_response(
            request.url.path, 422, _validation_detail(errors), slug="validation", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no endpoint at {request.url.path}"
        return problem_response(
            request.url.path, exc.status_code, detail, headers=getattr(exc, "headers", None)
        )

    # The domain reads' errors (queries/), in the words the API has always used.
    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        missing = not_found(f"{exc.what} {exc.key!r}")
        return problem_response(request.url.path, 404, missing.detail, slug=missing.slug)

    @app.exception_handler(InvalidCursor)
    async def _invalid_cursor(request: Request, exc: InvalidCursor) -> JSONResponse:
        return problem_response(request.url.path, 400, str(exc), slug="invalid-cursor")

    @app.exception_handler(GraphUnavailable)
    async def _unavailable(request: Request, exc: GraphUnavailable) -> JSONResponse:
        log.error("Neo4j unavailable: %s", exc)
        return problem_response(
            request.url.path,
            503,
            "the graph database is not answering; retry later",
            slug="graph-unavailable",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(ClientError)
    async def _client_error(request: Request, exc: ClientError) -> JSONResponse:
        # Only reachable from a query the client wrote (ad-hoc Cypher); others are bugs.
        log.warning("Neo4j refused a query: %s", exc.code)
        return problem_response(
            request.url.path,
            400,
            f"Neo4j refused the query: {exc.message}",
            slug="query-refused",
            code=exc.code,
        )


class CatchAll:
    """Outermost ASGI layer: any exception that escaped the handlers becomes a logged 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:  # noqa: BLE001 - the one place that must catch everything
            kind = "Neo4j error" if isinstance(error, Neo4jError) else "unexpected error"
            log.exception("%s serving %s %s", kind, scope.get("method"), scope.get("path"))
            if started:
                return  # headers are out; nothing sane left to send
            response = problem_response(
                scope.get("path", ""),
                500,
                "the server failed to answer this request; the error was logged",
                slug="internal",
            )
            await response(scope, receive, send)
