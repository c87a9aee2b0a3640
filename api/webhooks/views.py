from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response
from provgraph.api.deps import Admin, GraphDep, SealerDep
from provgraph.api.problems import not_found, responses
from provgraph.api.routing import secured_router
from provgraph.api.webhooks import service
from provgraph.api.webhooks.models import DeliveryRead, WebhookCreate, WebhookCreated, WebhookRead

router = secured_router(prefix="/webhooks", tags=["webhooks"])

SIGNING_NOTE = (
    "Each POST carries `X-Provgraph-Timestamp` (unix seconds) and `X-Provgraph-Signature: "
    "v1=<hex>`, the HMAC-SHA256 of `<timestamp>.<raw body>` under the subscription's secret; "
    "`X-Provgraph-Delivery` names the delivery (the same across its retries)."
)


@router.post(
    "",
    response_model=WebhookCreated,
    status_code=201,
    summary="Subscribe a URL to new and changed alerts",
    description=SIGNING_NOTE,
)
def create(graph: GraphDep, sealer: SealerDep, _: Admin, spec: WebhookCreate) -> WebhookCreated:
    return service.create_subscription(graph, spec=spec, sealer=sealer)


@router.get(
    "", response_model=list[WebhookRead], summary="Every subscription (its URL, never its secret)"
)
def list_all(graph: GraphDep, sealer: SealerDep, _: Admin) -> list[WebhookRead]:
    return service.list_subscriptions(graph, sealer=sealer)


@router.get(
    "/{sub_id}", response_model=WebhookRead, summary="One subscription", responses=responses(404)
)
def get_one(graph: GraphDep, sealer: SealerDep, _: Admin, sub_id: str) -> WebhookRead:
    try:
        return service.get_subscription(graph, sub_id=sub_id, sealer=sealer)
    except service.SubscriptionNotFound:
        raise not_found(f"webhook subscription {sub_id!r}") from None


@router.delete(
    "/{sub_id}",
    status_code=204,
    response_class=Response,
    summary="Unsubscribe (and drop its delivery log)",
    responses=responses(404),
)
def delete(graph: GraphDep, _: Admin, sub_id: str) -> Response:
    try:
        service.delete_subscription(graph, sub_id=sub_id)
    except service.SubscriptionNotFound:
        raise not_found(f"webhook subscription {sub_id!r}") from None
    return Response(status_code=204)


@router.get(
    "/{sub_id}/deliveries",
    response_model=list[DeliveryRead],
    summary="The delivery log, newest first",
    responses=responses(404),
)
def deliveries(
    graph: GraphDep, _: Admin, sub_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[DeliveryRead]:
    try:
        return service.list_deliveries(graph, sub_id=sub_id, limit=limit)
    except service.SubscriptionNotFound:
        raise not_found(f"webhook subscription {sub_id!r}") from None
