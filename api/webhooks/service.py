"""Webhook subscriptions and their delivery log, kept in Neo4j next to the alerts.

A subscription's signing secret and its URL (which often carries a token) are stored sealed
(`api.sealing`), each bound to its subscription: a read of the graph shows neither. The admin
endpoints open the URL to show it; the worker opens both to sign and send; the secret is never
shown again after the subscription is made.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from typing import Any

from provgraph.api.alerts.models import Severity
from provgraph.api.sealing import PREFIX as SEALED_PREFIX
from provgraph.api.sealing import Sealer, SealingError
from provgraph.api.values import json_or_text, plain
from provgraph.api.webhooks.models import DeliveryRead, WebhookCreate, WebhookCreated, WebhookRead
from provgraph.graph.tx import Graph
from provgraph.queries.alerts import watermark

log = logging.getLogger("provgraph.api.webhooks")

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


# Start-up migration: subscriptions stored before sealing existed.
FIND_CLEAR = """
MATCH (s:WebhookSubscription)
WHERE NOT s.url STARTS WITH $prefix OR NOT s.secret STARTS WITH $prefix
RETURN s.id AS id, s.url AS url, s.secret AS secret
"""

# Guarded by the values read: a host that sealed them first is left alone.
SEAL_SUBSCRIPTION = """
MATCH (s:WebhookSubscription {id: $id})
WHERE s.url = $old_url AND s.secret = $old_secret
SET s.url = $url, s.secret = $secret
RETURN s.id AS id
"""


class SubscriptionNotFound(LookupError):
    pass


def url_context(sub_id: str) -> str:
    return f"webhook.url:{sub_id}"


def secret_context(sub_id: str) -> str:
    return f"webhook.secret:{sub_id}"


def open_url(sealer: Sealer, sub: dict[str, Any]) -> str:
    return sealer.open_or_clear(str(sub["url"]), context=url_context(str(sub["id"])))


def open_secret(sealer: Sealer, sub: dict[str, Any]) -> str:
    return sealer.open_or_clear(str(sub["secret"]), context=secret_context(str(sub["id"])))


def _read(sub: dict[str, Any], sealer: Sealer) -> WebhookRead:
    data = {k: v for k, v in plain(sub).items() if k != "secret"}
    try:
        data["url"] = open_url(sealer, sub)
    except SealingError as error:  # one unopenable subscription must not hide the others
        log.error("webhook %s: %s", sub.get("id"), error)
        data["url"] = None
        data["sealing_error"] = str(error)
    return WebhookRead.model_validate(data)


def create_subscription(graph: Graph, *, spec: WebhookCreate, sealer: Sealer) -> WebhookCreated:
    sub_id = uuid.uuid4().hex
    secret = spec.secret or secrets.token_urlsafe(32)
    cursor = 0 if spec.from_start else watermark(graph)
    rows = graph.write(
        CREATE_SUBSCRIPTION,
        {
            "id": sub_id,
            "url": sealer.seal(str(spec.url), context=url_context(sub_id)),
            "secret": sealer.seal(secret, context=secret_context(sub_id)),
            "description": spec.description,
            "min_severity": spec.min_severity.value if spec.min_severity else None,
            "cursor": cursor,
        },
    )
    return WebhookCreated(**_read(rows[0]["sub"], sealer).model_dump(), secret=secret)


def list_subscriptions(graph: Graph, *, sealer: Sealer) -> list[WebhookRead]:
    return [_read(row["sub"], sealer) for row in graph.read(LIST_SUBSCRIPTIONS)]


def get_subscription(graph: Graph, *, sub_id: str, sealer: Sealer) -> WebhookRead:
    rows = graph.read(GET_SUBSCRIPTION, {"id": sub_id})
    if not rows:
        raise SubscriptionNotFound(sub_id)
    return _read(rows[0]["sub"], sealer)


def seal_clear_subscriptions(graph: Graph, sealer: Sealer) -> int:
    """Seal the URL and secret of subscriptions stored in clear (made before sealing existed).
    Idempotent, and safe with several hosts starting at once; returns how many it sealed."""
    sealed = 0
    for row in graph.read(FIND_CLEAR, {"prefix": SEALED_PREFIX}):
        sub_id = str(row["id"])
        url, secret = row["url"], row["secret"]
        new_url = url if Sealer.is_sealed(url) else sealer.seal(url, context=url_context(sub_id))
        new_secret = (
            secret
            if Sealer.is_sealed(secret)
            else sealer.seal(secret, context=secret_context(sub_id))
        )
        done = graph.write(
            SEAL_SUBSCRIPTION,
            {
                "id": sub_id,
                "old_url": url,
                "old_secret": secret,
                "url": new_url,
                "secret": new_secret,
            },
        )
        sealed += len(done)
    return sealed


def delete_subscription(graph: Graph, *, sub_id: str) -> None:
    rows = graph.write(DELETE_SUBSCRIPTION, {"id": sub_id})
    if not rows or rows[0]["deleted"] == 0:
        raise SubscriptionNotFound(sub_id)


def list_deliveries(graph: Graph, *, sub_id: str, limit: int = 100) -> list[DeliveryRead]:
    if not graph.read(GET_SUBSCRIPTION, {"id": sub_id}):
        raise SubscriptionNotFound(sub_id)
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
