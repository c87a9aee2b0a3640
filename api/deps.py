"""Dependencies every router shares: the graph, the settings, and the caller's key."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from provgraph.api.keys.models import Principal, Scope
from provgraph.api.keys.service import KeyVerifier
from provgraph.api.problems import Problem
from provgraph.api.sealing import Sealer, SealingError
from provgraph.api.settings import Settings
from provgraph.graph.tx import Graph

log = logging.getLogger("provgraph.api")

bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer pgk_…`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: pgk_…`")

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="provgraph"'}


# The dependencies are `async def` where they do no I/O: FastAPI runs a plain `def` dependency
# in anyio's thread pool, so a read endpoint paid four thread hops (graph, settings, key, scope)
# before its own. On the event loop they cost nothing; only a key not in the verifier's cache
# goes to a thread, as it asks Neo4j.
async def get_graph(request: Request) -> Graph:
    return request.app.state.graph


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_sealer(request: Request) -> Sealer:
    return request.app.state.sealer


GraphDep = Annotated[Graph, Depends(get_graph)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SealerDep = Annotated[Sealer, Depends(get_sealer)]


def sealing_problem(error: SealingError) -> Problem:
    """A sealed value this host cannot open: the operator's to fix, said without secrets."""
    log.error("sealing: %s", error)
    return Problem(
        503,
        "this API host cannot open the values sealed in the graph (its sealing key is not the "
        "one they were sealed with): the operator must give every API host the same "
        "PROVGRAPH_SECRET_KEY; the server log names the value and both key fingerprints",
        slug="sealing-key",
    )


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    header_key: Annotated[str | None, Security(api_key_header)],
) -> Principal:
    token = credentials.credentials if credentials else header_key
    if not token:
        raise Problem(
            401,
            "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            slug="unauthenticated",
            headers=CHALLENGE,
        )
    verifier: KeyVerifier = request.app.state.key_verifier
    token = token.strip()
    try:
        known, principal = verifier.cached(token)
        if not known:
            principal = await run_in_threadpool(verifier.verify, token)
    except SealingError as error:
        raise sealing_problem(error) from None
    if principal is None:
        raise Problem(
            401,
            "the API key is not valid (unknown, malformed or revoked)",
            slug="invalid-key",
            headers={"WWW-Authenticate": 'Bearer realm="provgraph", error="invalid_token"'},
        )
    request.state.principal = principal
    return principal


def require_scope(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.allows(scope):
            raise Problem(
                403,
                f"this endpoint needs the '{scope.value}' scope; the key "
                f"'{principal.key_id}' has {sorted(s.value for s in principal.scopes)}",
                slug="insufficient-scope",
                required_scope=scope.value,
            )
        return principal

    check.__name__ = f"require_{scope.value}"
    return check


Reader = Annotated[Principal, Depends(require_scope(Scope.READ))]
Hunter = Annotated[Principal, Depends(require_scope(Scope.HUNT))]
Triager = Annotated[Principal, Depends(require_scope(Scope.TRIAGE))]
Ingester = Annotated[Principal, Depends(require_scope(Scope.INGEST))]
Admin = Annotated[Principal, Depends(require_scope(Scope.ADMIN))]
