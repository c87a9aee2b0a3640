"""The FastAPI application: `create_app()` for uvicorn, tests and `provgraph serve`."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from provgraph.api import console, problems
from provgraph.api.alerts.pages import AlertPages
from provgraph.api.alerts.views import router as alerts_router
from provgraph.api.deps import Reader, authenticate
from provgraph.api.exceptions.views import router as exceptions_router
from provgraph.api.graphs.views import router as graph_router
from provgraph.api.health.views import router as health_router
from provgraph.api.hunts.views import router as hunts_router
from provgraph.api.ingestion.views import router as ingest_router
from provgraph.api.keys.service import KeyVerifier, seal_legacy_hashes
from provgraph.api.keys.views import router as keys_router
from provgraph.api.metrics import Metrics, MetricsMiddleware, RouteTemplates
from provgraph.api.problems import AUTH_RESPONSES, ProblemDetail
from provgraph.api.provenance.views import router as provenance_router
from provgraph.api.query.views import router as query_router
from provgraph.api.rules.views import router as rules_router
from provgraph.api.schema import ensure_api_schema
from provgraph.api.sealing import load_sealer
from provgraph.api.search.views import router as search_router
from provgraph.api.settings import Settings, get_settings
from provgraph.api.webhooks.service import seal_clear_subscriptions
from provgraph.api.webhooks.views import router as webhooks_router
from provgraph.api.webhooks.worker import WebhookWorker
from provgraph.core import __version__
from provgraph.graph.schema import ensure_schema
from provgraph.graph.tx import Graph

log = logging.getLogger("provgraph.api")

# Neo4j reports every read of a property no node has yet (an alert's `assignee` before anyone
# is assigned) as a WARNING notification, which the driver logs once per query: a flood on a
# busy API. Errors still get through.
NOTIFICATIONS_LOG_LEVEL = logging.ERROR

PREFIX = "/api/v1"

DESCRIPTION = """
Graph-based provenance analytics over security telemetry.

* **Alerts for SOAR**: incremental pulls with a stable cursor, triage with an audit trail,
  OCSF Detection Findings, signed webhooks.
* **Subgraphs for analysts**: an alert's provenance, any node's neighbourhood, as
  Cytoscape.js elements or GraphML; read-only Cypher.
* **Provenance for responders**: process lineage, file provenance, host timelines, contacts.

Every endpoint except `/health` needs an API key (`Authorization: Bearer <key>` or
`X-API-Key: <key>`) with the scope it names: `read`, `hunt` (ad-hoc Cypher), `triage`,
`ingest` or `admin` (which implies all). Errors are `application/problem+json`.
"""


def create_app(graph: Graph | None = None, settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    owns_graph = graph is None
    sealer = load_sealer(settings)  # creates the key file on first use (see api.sealing)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logging.getLogger("neo4j.notifications").setLevel(NOTIFICATIONS_LOG_LEVEL)
        # Sync endpoints share this pool: requests beyond it wait their turn on the loop.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        if app.state.graph is None:
            app.state.graph = Graph.connect()
        if owns_graph:
            ensure_schema(app.state.graph)  # a graph handed in is the caller's to prepare
        ensure_api_schema(app.state.graph)
        # Records made before sealing existed: sealed now (idempotent, safe on several hosts).
        sealed = seal_clear_subscriptions(app.state.graph, sealer)
        hashes = seal_legacy_hashes(app.state.graph, sealer)
        if sealed or hashes:
            log.info("sealed %d webhook subscriptions and %d key hashes", sealed, hashes)
        app.state.key_verifier = KeyVerifier(app.state.graph, settings.key_cache_seconds, sealer)
        worker = None
        if settings.webhook_enabled:
            worker = WebhookWorker(app.state.graph, settings, sealer)
            worker.start()
        app.state.webhook_worker = worker
        # Everything loaded by now lives as long as the process: out of the collector's sight,
        # a full collection no longer walks it. Walking 500 subgraphs in one process, full
        # collections paused 28 ms each (655 ms in all); frozen, 21 ms in all. A pause holds
        # the interpreter lock, so it lands on every request in flight.
        gc.freeze()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            if owns_graph:
                app.state.graph.close()

    app = FastAPI(
        title="provgraph API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=None,  # served below, behind a key unless docs are public
        docs_url=None,
        redoc_url=None,
    )
    app.state.graph = graph
    app.state.settings = settings
    app.state.sealer = sealer
    app.state.metrics = Metrics()
    app.state.alert_pages = AlertPages()
    if graph is not None:  # usable before the lifespan runs (and without one)
        app.state.key_verifier = KeyVerifier(graph, settings.key_cache_seconds, sealer)

    problems.install(app)
    for router in (
        alerts_router,
        graph_router,
        provenance_router,
        query_router,
        ingest_router,
        rules_router,
        webhooks_router,
        keys_router,
        search_router,
        exceptions_router,
        hunts_router,
    ):
        app.include_router(router, prefix=PREFIX)
    app.include_router(health_router)
    app.include_router(health_router, prefix=PREFIX, include_in_schema=False)
    app.include_router(console.router)  # /ui: the page needs no key, its data calls do
    _add_metrics(app)
    _add_docs(app, public=settings.public_docs)

    extra_paths = ["/metrics", "/health", "/api/v1/health", "/openapi.json", "/docs"]
    templates = RouteTemplates(lambda: [*app.openapi().get("paths", {}), *extra_paths])
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics, templates=templates)
    app.add_middleware(problems.CatchAll)
    return app


def _add_metrics(app: FastAPI) -> None:
    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            **AUTH_RESPONSES,
            200: {
                "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                "description": "Prometheus text format",
            },
        },
    )
    def metrics(request: Request, _: Reader) -> Response:
        return Response(
            generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )


def openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ProblemDetail"] = ProblemDetail.model_json_schema()
    app.openapi_schema = schema
    return schema


def _add_docs(app: FastAPI, *, public: bool) -> None:
    """`/docs` is public: the page holds no data and loads Swagger UI from the installed
    package (api/console.py), never a CDN, so it opens offline; the reader signs in there
    with a key, as in the console. `/openapi.json` needs a key unless `public_docs`."""
    guard = [] if public else [Depends(authenticate)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=guard)
    def openapi() -> JSONResponse:
        return JSONResponse(openapi_with_problems(app))

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> Response:
        return console.docs_page()

    app.openapi = lambda: openapi_with_problems(app)  # type: ignore[method-assign]
