"""The alert list's pages kept in the API process (api.alerts.pages): the same request at the
same watermark is answered from them, and nothing moves a reader past a change: a new alert,
a triage update, an emptied and refilled graph each give a fresh page; keys without the read
scope are refused as before."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from provgraph.graph.tx import Graph

from tests.integration.api import scenario

BASE = "/api/v1/alerts"
WIPE = "MATCH (n) DETACH DELETE n"


def _pages(client: TestClient) -> tuple[int, int]:
    pages = client.app.state.alert_pages  # type: ignore[attr-defined]
    return pages.hits, pages.misses


def test_the_same_request_at_the_same_watermark_is_answered_from_the_pages(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    reader = key("read")
    scenario.create_alert(loaded, severity="high")
    scenario.create_alert(loaded, severity="low", host="ws2")
    first = client.get(BASE, params={"limit": 10}, headers=reader)
    assert _pages(client) == (0, 1)
    again = client.get(BASE, params={"limit": 10}, headers=key("read", "triage"))
    assert again.status_code == 200 and again.content == first.content
    assert _pages(client) == (1, 1)
    # another filter, limit or format is another page
    high = client.get(BASE, params={"limit": 10, "severity": "high"}, headers=reader).json()
    assert [a["severity"] for a in high["items"]] == ["high"]
    ocsf = client.get(BASE, params={"limit": 10, "format": "ocsf"}, headers=reader).json()
    assert all("finding_info" in item for item in ocsf["items"])
    assert len(client.get(BASE, params={"limit": 1}, headers=reader).json()["items"]) == 1
    assert _pages(client) == (1, 4)
    # a repeated filter, in another order, is the same filter
    two = {"limit": 10, "host": ["ws2", "ws1"]}
    assert len(client.get(BASE, params=two, headers=reader).json()["items"]) == 2
    swapped = {"limit": 10, "host": ["ws1", "ws2", "ws1"]}
    assert len(client.get(BASE, params=swapped, headers=reader).json()["items"]) == 2
    assert _pages(client) == (2, 5)


def test_a_new_alert_or_a_triage_update_is_never_hidden_by_a_kept_page(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    reader, triager = key("read"), key("triage")
    alert = scenario.create_alert(loaded)
    page = client.get(BASE, headers=reader).json()
    assert [(a["id"], a["status"]) for a in page["items"]] == [(alert["id"], "open")]
    newer = scenario.create_alert(loaded)
    listed = client.get(BASE, headers=reader).json()
    assert [a["id"] for a in listed["items"]] == [alert["id"], newer["id"]]
    changed = client.patch(
        f"{BASE}/{alert['id']}", headers=triager, json={"status": "acknowledged"}
    )
    assert changed.status_code == 200, changed.text
    # the same request again: the update moved the alert past the other one
    listed = client.get(BASE, headers=reader).json()
    assert [(a["id"], a["status"]) for a in listed["items"]] == [
        (newer["id"], "open"),
        (alert["id"], "acknowledged"),
    ]
    # and a SOAR client paging from its cursor gets the update, once
    after = client.get(BASE, params={"cursor": page["next_cursor"]}, headers=reader).json()
    assert [(a["id"], a["status"]) for a in after["items"]] == [
        (newer["id"], "open"),
        (alert["id"], "acknowledged"),
    ]
    hits, _ = _pages(client)
    assert hits == 0


def test_an_emptied_and_refilled_graph_never_gets_the_pages_of_the_one_before(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    """The counter of a refilled graph counts from 0 again: the same cursor at the same
    watermark asks a different graph (the counter's epoch tells them apart)."""
    reader = key("read")
    before = scenario.create_alert(loaded, rule_id="first_rule")
    assert [a["id"] for a in client.get(BASE, headers=reader).json()["items"]] == [before["id"]]
    loaded.write(WIPE)
    scenario.load(loaded)
    reader = key("read")
    after = scenario.create_alert(loaded, rule_id="second_rule")
    page = client.get(BASE, headers=reader).json()
    assert page["high_seq"] == 1
    assert [(a["id"], a["rule_id"]) for a in page["items"]] == [(after["id"], "second_rule")]
    assert _pages(client) == (0, 2)


def test_a_kept_page_is_no_way_around_the_read_scope(
    client: TestClient, loaded: Graph, key: Callable[..., dict[str, str]]
) -> None:
    scenario.create_alert(loaded)
    assert client.get(BASE, headers=key("read")).status_code == 200
    assert client.get(BASE).status_code == 401
    assert client.get(BASE, headers={"Authorization": "Bearer pgk_nope"}).status_code == 401
    assert client.get(BASE, headers=key("ingest")).status_code == 403
    assert _pages(client) == (0, 1)
