"""Webhook subscriptions and their delivery log, kept in Neo4j next to the alerts."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

from provgraph.api.alerts.models import Severity
from provgraph.api.values import json_or_text, plain
from provgraph.api.webhooks.models import DeliveryRead, WebhookCreate, WebhookCreated, WebhookRead
from provgraph.graph.tx import Graph
from provgraph.queries.alerts import watermark

SEVERITY_ORDER = [s.value for s in Severity]

CREATE_SUBSCRIPTION = """
CREATE (s:WebhookSubscription {id: $id, url: $url, secret: $secret, description: $description,
        min_severity: $min_severity, active: true, created_at: datetime(), cursor: $cursor,
        delivered: 0, failed: 0})
RETURN s {.*} AS sub
"""

LIST_SUBSCRIPTIONS = """
MATCH (s:WebhookSubscription)
RETURN s {.*} AS sub
ORDER BY s.created_at, s.id
"""

GET_SUBSCRIPTION = """
MATCH (s:WebhookSubscription {id: $id})
RETURN s {.*} AS sub
"""

DELETE_SUBSCRIPTION = """
MATCH (s:WebhookSubscription {id: $id})
OPTIONAL MATCH (s)-[:DELIVERED]->(d:WebhookDelivery)
DETACH DELETE s, d
RETURN count(*) AS deleted
"""

LIST_DELIVERIES = """
MATCH (:WebhookSubscription {id: $id})-[:DELIVERED]->(d:WebhookDelivery)
RETURN d {.*} AS delivery
ORDER BY d.alert_seq DESC, d.first_attempt_at DESC
LIMIT $limit
"""

# The first SET takes the subscription's write lock, so the lease test that follows reads
# what other workers committed: two app processes never deliver for one subscription at once.
CLAIM_DUE = """
MATCH (s:WebhookSubscription {active: true})
SET s.lease_probe = $owner
WITH s
WHERE s.lease_until IS NULL OR s.lease_until < datetime() OR s.lease_owner = $owner
SET s.lease_until = datetime() + duration({seconds: $lease}), s.lease_owner = $owner
RETURN s {.*} AS sub
"""

RELEASE = """
MATCH (s:WebhookSubscription {id: $id, lease_owner: $owner})
SET s.lease_until = null
"""

RECORD_DELIVERY = """
MATCH (s:WebhookSubscription {id: $sub_id})
CREATE (d:WebhookDelivery {id: $id, subscription_id: $sub_id, alert_id: $alert_id,
        alert_seq: $alert_seq, status: $status, attempts: $attempts, status_code: $status_code,
        error: $error, first_attempt_at: $first_at, last_attempt_at: $last_at, log: $log})
CREATE (s)-[:DELIVERED]->(d)
SET s.cursor = CASE WHEN $alert_seq > s.cursor THEN $alert_seq ELSE s.cursor END,
    s.delivered = s.delivered + CASE WHEN $status = 'delivered' THEN 1 ELSE 0 END,
    s.failed = s.failed + CASE WHEN $status = 'failed' THEN 1 ELSE 0 END,
    s.last_success_at = CASE WHEN $status = 'delivered' THEN $last_at ELSE s.last_success_at END,
    s.last_failure_at = CASE WHEN $status = 'failed' THEN $last_at ELSE s.last_failure_at END,
    s.lease_until = datetime() + duration({seconds: $lease})
"""

ADVANCE_CURSOR = """
MATCH (s:WebhookSubscription {id: $id})
SET s.cursor = CASE WHEN $cursor > s.cursor THEN $cursor ELSE s.cursor END
"""


class SubscriptionNotFound(LookupError):
    pass


def _read(sub: dict[str, Any]) -> WebhookRead:
    data = {k: v for k, v in plain(sub).items() if k != "secret"}
    return WebhookRead.model_validate(data)


def create_subscription(graph: Graph, *, spec: WebhookCreate) -> WebhookCreated:
    secret = spec.secret or secrets.token_urlsafe(32)
    cursor = 0 if spec.from_start else watermark(graph)
    rows = graph.write(
        CREATE_SUBSCRIPTION,
        {
            "id": uuid.uuid4().hex,
            "url": str(spec.url),
            "secret": secret,
            "description": spec.description,
            "min_severity": spec.min_severity.value if spec.min_severity else None,
            "cursor": cursor,
        },
    )
    return WebhookCreated(**_read(rows[0]["sub"]).model_dump(), secret=secret)


def list_subscriptions(graph: Graph) -> list[WebhookRead]:
    return [_read(row["sub"]) for row in graph.read(LIST_SUBSCRIPTIONS)]


def get_subscription(graph: Graph, *, sub_id: str) -> WebhookRead:
    rows = graph.read(GET_SUBSCRIPTION, {"id": sub_id})
    if not rows:
        raise SubscriptionNotFound(sub_id)
    return _read(rows[0]["sub"])


def delete_subscription(graph: Graph, *, sub_id: str) -> None:
    rows = graph.write(DELETE_SUBSCRIPTION, {"id": sub_id})
    if not rows or rows[0]["deleted"] == 0:
        raise SubscriptionNotFound(sub_id)


def list_deliveries(graph: Graph, *, sub_id: str, limit: int = 100) -> list[DeliveryRead]:
    get_subscription(graph, sub_id=sub_id)
    deliveries = []
    for row in graph.read(LIST_DELIVERIES, {"id": sub_id, "limit": limit}):
        data = plain(row["delivery"])
        data["log"] = [json_or_text(entry) for entry in data.get("log") or []]
        deliveries.append(DeliveryRead.model_validate(data))
    return deliveries


def severities_from(minimum: str | None) -> list[str] | None:
    if not minimum or minimum not in SEVERITY_ORDER:
        return None
    return SEVERITY_ORDER[SEVERITY_ORDER.index(minimum) :]


def encode_log(entries: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(entry, default=str) for entry in entries]
