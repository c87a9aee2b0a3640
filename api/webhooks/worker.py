"""The background worker that pushes alerts to webhook subscriptions.

Runs as a thread in the API process. Each cycle it leases the subscriptions that are due,
and for each pushes the alerts that changed since its cursor, oldest change first. A failed
POST is retried with exponential backoff; after the last attempt the failure is logged as a
delivery and the cursor moves on, so one dead receiver never stalls the others or itself.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
from provgraph.api.sealing import Sealer, SealingError
from provgraph.api.settings import Settings
from provgraph.api.webhooks import service
from provgraph.api.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from provgraph.graph.tx import Graph
from provgraph.queries.alerts.service import AlertFilter, list_alerts

log = logging.getLogger("provgraph.api.webhooks")


URL_PLACEHOLDER = "<webhook url>"


def scrub(text: str, url: str) -> str:
    """An error message without the URL (or its query, which may carry a token) in it: the
    delivery log lives in the graph, where a read can see it."""
    parts = [url]
    try:
        parsed = httpx.URL(url)
        parts += [str(parsed.copy_with(query=None, fragment=None)), parsed.query.decode()]
    except (httpx.InvalidURL, UnicodeError):
        pass
    for part in parts:
        if len(part) > 3:
            text = text.replace(part, URL_PLACEHOLDER)
    return text


class WebhookWorker:
    def __init__(self, graph: Graph, settings: Settings, sealer: Sealer) -> None:
        self.graph = graph
        self.settings = settings
        self.sealer = sealer
        self._unopenable: set[str] = set()  # subscriptions already reported as unopenable
        self.owner = f"worker-{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
            headers={"User-Agent": "provgraph-webhooks/1"},
        )
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook")

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.cycle()
            except Exception:  # noqa: BLE001 - the worker must outlive any one bad cycle
                log.exception("webhook cycle failed; retrying next cycle")
            self._stop.wait(self.settings.webhook_poll_seconds)

    # -- one cycle -------------------------------------------------------------------------
    def cycle(self) -> int:
        """Deliver what is due for every subscription; returns how many alerts were handled."""
        rows = self.graph.write(
            service.CLAIM_DUE, {"owner": self.owner, "lease": self.settings.webhook_lease_seconds}
        )
        futures = [self._pool.submit(self._serve, row["sub"]) for row in rows]
        return sum(f.result() for f in futures)

    def _serve(self, sub: dict[str, Any]) -> int:
        handled = 0
        try:
            try:
                sub = {
                    **sub,
                    "url": service.open_url(self.sealer, sub),
                    "secret": service.open_secret(self.sealer, sub),
                }
            except SealingError as error:
                if sub["id"] not in self._unopenable:
                    self._unopenable.add(sub["id"])
                    log.error("webhook %s skipped until its seal opens: %s", sub["id"], error)
                return 0
            self._unopenable.discard(sub["id"])
            page = list_alerts(
                self.graph,
                after=int(sub.get("cursor") or 0),
                limit=self.settings.webhook_batch,
                where=AlertFilter(severities=service.severities_from(sub.get("min_severity"))),
            )
            for alert in page.alerts:
                if self._stop.is_set():
                    return handled
                self._deliver(sub, alert.model_dump(mode="json"), alert.seq)
                handled += 1
            if not page.has_more:
                # Filtered pages may end below the watermark: nothing up to it matched.
                self.graph.write(
                    service.ADVANCE_CURSOR, {"id": sub["id"], "cursor": page.next_after}
                )
        finally:
            self.graph.write(service.RELEASE, {"id": sub["id"], "owner": self.owner})
        return handled

    def _deliver(self, sub: dict[str, Any], alert: dict[str, Any], seq: int) -> None:
        delivery_id = uuid.uuid4().hex
        body = json.dumps(
            {
                "type": "alert",
                "delivery_id": delivery_id,
                "subscription_id": sub["id"],
                "alert": alert,
            },
            separators=(",", ":"),
        ).encode()
        attempts: list[dict[str, Any]] = []
        first_at = _now()
        status_code: int | None = None
        error: str | None = None
        delay = self.settings.webhook_backoff_seconds
        for attempt in range(1, self.settings.webhook_max_attempts + 1):
            status_code, error = self._post(sub, body, delivery_id)
            attempts.append(
                {
                    "attempt": attempt,
                    "at": _now().isoformat(),
                    "status_code": status_code,
                    "error": error,
                }
            )
            if error is None:
                break
            if attempt < self.settings.webhook_max_attempts:
                if self._stop.wait(delay):
                    break  # shutting down: record what happened so far
                delay = min(delay * 2, self.settings.webhook_backoff_max_seconds)
        status = "delivered" if error is None else "failed"
        if status == "failed":
            log.warning(
                "webhook %s: alert %s not delivered after %d attempts: %s",
                sub["id"],
                alert["id"],
                len(attempts),
                error,
            )
        self.graph.write(
            service.RECORD_DELIVERY,
            {
                "sub_id": sub["id"],
                "id": delivery_id,
                "alert_id": alert["id"],
                "alert_seq": seq,
                "status": status,
                "attempts": len(attempts),
                "status_code": status_code,
                "error": error,
                "first_at": first_at,
                "last_at": _now(),
                "log": service.encode_log(attempts),
                "lease": self.settings.webhook_lease_seconds,
            },
        )

    def _post(
        self, sub: dict[str, Any], body: bytes, delivery_id: str
    ) -> tuple[int | None, str | None]:
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign(sub["secret"], stamp, body),
            DELIVERY_HEADER: delivery_id,
            EVENT_HEADER: "alert",
        }
        try:
            response = self._client.post(sub["url"], content=body, headers=headers)
        except httpx.HTTPError as error:
            return None, scrub(f"{type(error).__name__}: {error}", sub["url"])
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"receiver answered HTTP {response.status_code}"


def _now() -> datetime:
    return datetime.now(UTC)
