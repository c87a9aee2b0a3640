"""The console in a real browser: sign in, the queue, one alert's graph, expansion, ancestry,
triage persisted through the API, search, exports, sign-out."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import ApiServer

MSBUILD_RULE = "msbuild_script_parent"


def _msbuild_alert(server: ApiServer, key: str) -> dict[str, Any]:
    body = httpx.get(
        f"{server.url}/api/v1/alerts",
        params={"rule": MSBUILD_RULE},
        headers={"Authorization": f"Bearer {key}"},
    ).json()
    assert "items" in body, body
    hits = [a for a in body["items"] if a["host"] == "workstation6"]
    assert hits, f"the sample data should raise {MSBUILD_RULE} on workstation6: {body}"
    return hits[0]


def sign_in(page: Any, server: ApiServer, key: str) -> None:
    page.goto(f"{server.url}/ui")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#alerts tbody tr")
    page.wait_for_selector("#busy", state="hidden")


def open_msbuild(page: Any) -> None:
    row = page.locator(f"#alerts tbody tr[data-rule='{MSBUILD_RULE}']", has_text="workstation6")
    row.first.locator("button.open-alert").click()
    page.wait_for_selector("#alert-panel:not([hidden])")
    page.wait_for_function("() => window.provgraph.cy.nodes().length > 0")
    page.wait_for_selector("#busy", state="hidden")


def node_labels(page: Any) -> list[str]:
    return page.evaluate("window.provgraph.cy.nodes().map(n => n.data('label'))")


def test_console_serves_without_a_key_and_refuses_paths(api_server: ApiServer) -> None:
    index = httpx.get(f"{api_server.url}/ui")
    assert index.status_code == 200 and "provgraph" in index.text
    assert "default-src 'self'" in index.headers["content-security-policy"]
    assert httpx.get(f"{api_server.url}/ui/vendor/cytoscape.min.js").status_code == 200
    for bad in (
        "../api/console.py",
        "%2e%2e/api/console.py",
        "static/app.js",
        "node_modules/cytoscape/package.json",
        "vendor%2F..%2Fapp.js",
        "vendor/..%2F..%2Fapi%2Fconsole.py",
        "index.html",
    ):
        assert httpx.get(f"{api_server.url}/ui/{bad}").status_code == 404, bad


def test_signin_queue_alert_graph_expand_triage(
    page: Any,
    api_server: ApiServer,
    api_key: str,
    shot: Callable[[Any, str], Path],
) -> None:
    alert = _msbuild_alert(api_server, api_key)
    sign_in(page, api_server, api_key)
    # The key lives in sessionStorage, never in the address.
    assert api_key not in page.url
    assert page.evaluate("sessionStorage.getItem('provgraph.apiKey')") == api_key
    rows = page.locator("#alerts tbody tr")
    assert rows.count() >= 3
    shot(page, "01-queue")

    open_msbuild(page)
    labels = node_labels(page)
    assert any(label.startswith("cmd.exe") for label in labels), labels
    assert any(label.startswith("msbuild.exe") for label in labels), labels
    entities = page.evaluate("window.provgraph.cy.nodes('.entity').map(n => n.data('label'))")
    assert any(e.startswith("msbuild.exe") for e in entities), entities
    # Edges carry their times.
    whens = page.evaluate("window.provgraph.cy.edges().map(e => e.data('when')).filter(Boolean)")
    assert whens, "edges should be labelled with times"
    # Top-down: the parent cmd.exe sits above the MSBuild it spawned.
    ys = page.evaluate("""() => {
        const cy = window.provgraph.cy;
        const pick = (p) => cy.nodes('.entity').filter(n => n.data('label').startsWith(p))[0];
        return [pick('cmd.exe').position('y'), pick('msbuild.exe').position('y')];
    }""")
    shot(page, "02-alert-graph")
    assert ys[0] < ys[1], ys
    shot(page, "02-alert-graph")

    # Click MSBuild (a real mouse click on its rendered position), then expand it.
    pos = page.evaluate("""() => {
        const cy = window.provgraph.cy;
        const n = cy.nodes('.entity').filter(n => n.data('label').startsWith('msbuild.exe'))[0];
        cy.zoom(1.2);
        cy.center(n);
        const box = cy.container().getBoundingClientRect();
        const p = n.renderedPosition();
        return {x: box.left + p.x, y: box.top + p.y};
    }""")
    page.mouse.click(pos["x"], pos["y"])
    page.wait_for_selector("#node-panel:not([hidden])")
    assert page.locator("#node-title").inner_text().startswith("Process: msbuild.exe")
    before = page.evaluate("window.provgraph.cy.nodes().length")
    page.get_by_role("button", name="Expand neighbourhood").click()
    page.wait_for_selector("#notice:has-text('around')")
    page.wait_for_selector("#busy", state="hidden")
    after = page.evaluate("window.provgraph.cy.nodes().length")
    assert after >= before
    shot(page, "03-expanded")

    # Walk up to the root from MSBuild.
    page.get_by_role("button", name="Walk up to root").click()
    page.wait_for_selector("#notice:has-text('Root of the tree')")
    path = page.evaluate("window.provgraph.cy.nodes('.path').map(n => n.data('label'))")
    assert any(p.startswith("cmd.exe") for p in path) and len(path) >= 2, path
    shot(page, "04-ancestry")

    # Triage: acknowledge with a comment; the API must have it, with an audit entry.
    triage = page.locator("#triage")
    triage.get_by_label("Status").select_option("acknowledged")
    triage.get_by_label("Comment").fill("looking at the build tree")
    page.get_by_role("button", name="Update alert").click()
    page.wait_for_selector("#notice:has-text('acknowledged')")
    stored = httpx.get(
        f"{api_server.url}/api/v1/alerts/{alert['id']}",
        headers={"Authorization": f"Bearer {api_key}"},
    ).json()
    assert stored["status"] == "acknowledged"
    assert any(e.get("comment") == "looking at the build tree" for e in stored["audit"])
    assert page.locator("#audit li", has_text="looking at the build tree").count() == 1
    shot(page, "05-triaged")
    assert not page.problems, page.problems  # type: ignore[attr-defined]


def test_filters_search_exports_errors_and_signout(
    page: Any,
    api_server: ApiServer,
    api_key: str,
    shot: Callable[[Any, str], Path],
    tmp_path: Path,
) -> None:
    sign_in(page, api_server, api_key)
    # Filter by host: only that host's alerts remain.
    page.locator("#f-status").select_option("")
    page.locator("#filters").get_by_label("Host").fill("swachchhanda")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_selector("#busy", state="hidden")
    hosts = page.locator("#alerts tbody tr .meta .host").all_inner_texts()
    assert hosts and set(hosts) == {"swachchhanda"}, hosts
    page.get_by_role("button", name="Reset").click()
    page.wait_for_selector("#busy", state="hidden")

    # Search for a process by name and start from it.
    page.locator("#s-kind").select_option("process")
    page.locator("#s-q").fill("msbuild")
    page.get_by_role("button", name="Search", exact=True).click()
    first = page.locator("#search-results li button").first
    first.wait_for()
    assert "msbuild.exe" in first.inner_text()
    first.click()
    page.wait_for_function("() => window.provgraph.cy.nodes().length > 1")
    page.wait_for_selector("#busy", state="hidden")
    assert page.locator("#graph-title").inner_text().startswith("Around msbuild.exe")
    shot(page, "06-search")

    # Exports: PNG, GraphML and JSON of what is on screen.
    on_screen = page.evaluate("window.provgraph.cy.nodes().length")
    with page.expect_download() as png:
        page.get_by_role("button", name="Export PNG").click()
    png_path = tmp_path / "g.png"
    png.value.save_as(png_path)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with page.expect_download() as gml:
        page.get_by_role("button", name="Export GraphML").click()
    gml_path = tmp_path / "g.graphml"
    gml.value.save_as(gml_path)
    import xml.etree.ElementTree as ET

    root = ET.parse(gml_path).getroot()
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    assert len(root.findall("g:graph/g:node", ns)) == on_screen
    with page.expect_download() as js:
        page.get_by_role("button", name="Export JSON").click()
    js_path = tmp_path / "g.json"
    js.value.save_as(js_path)
    assert len(json.loads(js_path.read_text())["elements"]["nodes"]) == on_screen

    # A search that finds nothing says so.
    page.locator("#s-kind").select_option("host")
    page.locator("#s-q").fill("no-such-host-anywhere")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_selector("#search-results li:has-text('Nothing found')")
    shot(page, "07-exports")

    # Sign out: the key is gone and the sign-in form is back.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('provgraph.apiKey')") is None
    assert not page.problems, page.problems  # type: ignore[attr-defined]


def test_a_refused_key_shows_the_problem(
    page: Any,
    api_server: ApiServer,
    shot: Callable[[Any, str], Path],
) -> None:
    page.goto(f"{api_server.url}/ui")
    page.get_by_label("API key").fill("pgk_000000000000_not-a-real-secret")
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("#errors .error")
    error.wait_for()
    text = error.inner_text()
    assert "401" in text and "not valid" in text, text
    assert page.evaluate("sessionStorage.getItem('provgraph.apiKey')") is None
    shot(page, "08-refused-key")


def test_a_problem_from_the_api_is_shown(
    page: Any,
    api_server: ApiServer,
    sample_graph: Any,
    shot: Callable[[Any, str], Path],
) -> None:
    from provgraph.api.keys.service import create_key

    reader = create_key(sample_graph, name="e2e-reader", scopes=["read"]).secret
    sign_in(page, api_server, reader)
    page.locator("#f-status").select_option("")  # an earlier test may have acknowledged it
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_selector("#busy", state="hidden")
    open_msbuild(page)
    triage = page.locator("#triage")
    triage.get_by_label("Status").select_option("closed")
    triage.get_by_label("Reason for closing").select_option("false_positive")
    triage.get_by_role("button", name="Update alert").click()
    error = page.locator("#errors .error")
    error.wait_for()
    text = error.inner_text()
    assert "Forbidden (403)" in text and "triage" in text, text
    shot(page, "09-forbidden")


def test_without_npm_ci_the_console_says_what_to_run(tmp_path: Path, monkeypatch: Any) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from provgraph.api import console

    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "index.html").write_text("<!doctype html><title>x</title>")
    monkeypatch.setenv(console.UI_DIR_ENV, str(tmp_path))
    console.ui_dir.cache_clear()
    try:
        app = FastAPI()
        app.include_router(console.router)
        client = TestClient(app)
        page = client.get("/ui")
        assert page.status_code == 503 and console.INSTALL_COMMAND in page.text
        lib = client.get("/ui/vendor/cytoscape.min.js")
        assert lib.status_code == 503 and console.INSTALL_COMMAND in lib.text
    finally:
        console.ui_dir.cache_clear()
