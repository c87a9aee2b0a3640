from __future__ import annotations

from fastapi import Request
from provgraph.api.deps import Admin, GraphDep
from provgraph.api.keys import service
from provgraph.api.keys.models import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from provgraph.api.problems import not_found, responses
from provgraph.api.routing import secured_router

router = secured_router(prefix="/keys", tags=["keys"])


@router.get("", response_model=list[ApiKeyRead], summary="Every API key (never the secrets)")
def list_keys(graph: GraphDep, _: Admin) -> list[ApiKeyRead]:
    return service.list_keys(graph)


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=201,
    summary="Create a key; its secret is shown in this answer only",
)
def create_key(graph: GraphDep, _: Admin, spec: ApiKeyCreate) -> ApiKeyCreated:
    return service.create_key(graph, name=spec.name, scopes=spec.scopes)


@router.delete(
    "/{key_id}", response_model=ApiKeyRead, summary="Revoke a key", responses=responses(404)
)
def revoke_key(request: Request, graph: GraphDep, _: Admin, key_id: str) -> ApiKeyRead:
    revoked = service.revoke_key(graph, key_id=key_id)
    # Revoked on this host: refused here at once, not after the verifier's cache time (other
    # API hosts still take up to `key_cache_seconds`).
    request.app.state.key_verifier.forget()
    if revoked is None:
        raise not_found(f"API key {key_id!r}")
    return revoked
