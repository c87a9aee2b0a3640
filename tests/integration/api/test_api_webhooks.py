"""Webhooks: signed pushes to a local receiver, retried with backoff, failures logged."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from provgraph.api.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from provgraph.graph.tx import Graph

from tests.integration.api import scenario


class Receiver:
    """A tiny HTTP server on 127.0.0.1 that fails the first `failures` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"headers": dict(self.headers), "body": body})
                status = 500 if len(outer.requests) <= outer.failures else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[[int], Receiver]]:
    made: list[Receiver] = []

    def make(failures: int = 0) -> Receiver:
        made.append(Receiver(failures))
        return made[-1]

    yield make
    for item in made:
        item.close()


def _wait(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_delivery_is_signed_and_retried(
    make_client: Callable[..., TestClient],
    loaded: Graph,
    receiver: Callable[[int], Receiver],
    admin: dict[str, str],
) -> None:
    client = make_client(
        webhook_enabled=True,
        webhook_poll_seconds=0.1,
        webhook_backoff_seconds=0.05,
        webhook_max_attempts=4,
    )
    flaky = receiver(2)
    created = client.post(
        "/api/v1/webhooks", headers=admin, json={"url": flaky.url, "min_severity": "medium"}
    )
    assert created.status_code == 201, created.text
    sub = created.json()
    secret = sub["secret"]
    low = scenario.create_alert(loaded, severity="low", entities=[])
    high = scenario.create_alert(loaded, severity="high")

    _wait(
        lambda: any(
            r for r in client.get(f"/api/v1/webhooks/{sub['id']}/deliveries", headers=admin).json()
        )
    )
    assert len(flaky.requests) == 3  # two failures, then success
    bodies = {r["body"] for r in flaky.requests}
    payloads = [json.loads(r["body"]) for r in flaky.requests]
    assert {p["alert"]["id"] for p in payloads} == {high["id"]}  # low is below the filter
    assert len({p["delivery_id"] for p in payloads}) == 1  # retries keep the delivery id
    assert len(bodies) == 1
    for request in flaky.requests:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert verify(
            secret,
            headers[TIMESTAMP_HEADER.lower()],
            request["body"],
            headers[SIGNATURE_HEADER.lower()],
        )
        assert not verify(
            "another-secret-value",
            headers[TIMESTAMP_HEADER.lower()],
            request["body"],
            headers[SIGNATURE_HEADER.lower()],
        )

    (delivery,) = client.get(f"/api/v1/webhooks/{sub['id']}/deliveries", headers=admin).json()
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert [a["status_code"] for a in delivery["log"]] == [500, 500, 204]
    state = client.get(f"/api/v1/webhooks/{sub['id']}", headers=admin).json()
    assert state["cursor"] >= high["seq"] > low["seq"] and state["delivered"] == 1
    assert "secret" not in state


def test_dead_receiver_is_logged_and_skipped(
    make_client: Callable[..., TestClient],
    loaded: Graph,
    receiver: Callable[[int], Receiver],
    admin: dict[str, str],
) -> None:
    client = make_client(
        webhook_enabled=True,
        webhook_poll_seconds=0.1,
        webhook_backoff_seconds=0.02,
        webhook_max_attempts=3,
    )
    dead = receiver(1000)
    sub = client.post("/api/v1/webhooks", headers=admin, json={"url": dead.url}).json()
    alert = scenario.create_alert(loaded, entities=[])

    def logged() -> list[dict[str, Any]]:
        return client.get(f"/api/v1/webhooks/{sub['id']}/deliveries", headers=admin).json()

    _wait(lambda: bool(logged()))
    (delivery,) = logged()
    assert delivery["status"] == "failed" and delivery["attempts"] == 3
    assert delivery["alert_id"] == alert["id"] and "500" in delivery["error"]
    state = client.get(f"/api/v1/webhooks/{sub['id']}", headers=admin).json()
    assert state["failed"] == 1 and state["cursor"] >= alert["seq"]
    assert client.delete(f"/api/v1/webhooks/{sub['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/webhooks/{sub['id']}", headers=admin).status_code == 404


def test_subscription_starts_after_existing_alerts(
    client: TestClient, loaded: Graph, admin: dict[str, str]
) -> None:
    old = scenario.create_alert(loaded, entities=[])
    sub = client.post(
        "/api/v1/webhooks", headers=admin, json={"url": "http://127.0.0.1:9/never"}
    ).json()
    assert sub["cursor"] == old["seq"]
    replay = client.post(
        "/api/v1/webhooks",
        headers=admin,
        json={"url": "http://127.0.0.1:9/never", "from_start": True},
    ).json()
    assert replay["cursor"] == 0
    bad = client.post("/api/v1/webhooks", headers=admin, json={"url": "ftp://127.0.0.1/x"})
    assert bad.status_code == 422
