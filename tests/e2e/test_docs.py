"""The API docs page in a real browser, offline: /docs opens with no network beyond loopback
(Swagger UI comes from the installed swagger-ui-dist package), the reader signs in with a key
as in the console, and "Try it out" on GET /api/v1/alerts answers 200."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from provgraph.api import console

from tests.e2e.conftest import ApiServer

LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}


@pytest.fixture
def offline(page: Any) -> Iterator[list[str]]:
    """Every request off loopback is refused before it leaves, and remembered."""
    if console.missing_vendor_files(docs=True):
        pytest.fail(
            f"swagger-ui-dist is not installed: run `{console.INSTALL_COMMAND}`", pytrace=False
        )
    refused: list[str] = []

    def only_loopback(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOOPBACK or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    page.context.route("**/*", only_loopback)
    yield refused


def test_docs_page_is_public_and_its_files_are_local(api_server: ApiServer) -> None:
    page = httpx.get(f"{api_server.url}/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "cdn" not in page.text.lower() and "//" not in page.text.replace("://", "")
    for asset in ("vendor/swagger-ui-bundle.js", "vendor/swagger-ui.css", "docs.js", "docs.css"):
        assert httpx.get(f"{api_server.url}/ui/{asset}").status_code == 200, asset
    # the description itself still needs a key (public_docs is off here)
    assert httpx.get(f"{api_server.url}/openapi.json").status_code == 401


def test_sign_in_then_try_it_out_on_alerts(
    page: Any,
    offline: list[str],
    api_server: ApiServer,
    api_key: str,
    shot: Callable[[Any, str], Path],
) -> None:
    page.goto(f"{api_server.url}/docs")
    page.wait_for_selector("#docs-signin:not([hidden])")
    assert "Sign in" in page.locator("#docs-status").inner_text()
    assert page.locator("#swagger-ui .opblock").count() == 0  # nothing without a key

    page.get_by_label("API key").fill("pgk_000000000000_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#docs-status.error")
    assert "refused" in page.locator("#docs-status").inner_text()

    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#swagger-ui .info .title")
    assert "provgraph API" in page.locator("#swagger-ui .info .title").inner_text()
    assert page.evaluate("sessionStorage.getItem('provgraph.apiKey')") == api_key
    assert api_key not in page.url
    shot(page, "docs-01-signed-in")

    block = page.locator(".opblock-get", has=page.locator("[data-path='/api/v1/alerts']")).first
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    body = block.locator(".live-responses-table tbody .response-col_description pre").first
    assert '"items"' in body.inner_text()
    block.scroll_into_view_if_needed()
    shot(page, "docs-02-try-it-out")

    assert offline == [], f"the docs page reached off loopback: {offline}"
    # The browser logs a refused fetch as an error: exactly the two refusals above (no key,
    # then a bad one); nothing else (a CSP violation, a script error) went wrong.
    problems: list[str] = page.problems  # type: ignore[attr-defined]
    refusals = [p for p in problems if "status of 401" in p]
    assert len(refusals) == 2 and len(problems) == 2, problems

    # Signing out forgets the key and hides the operations again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector("#docs-signin:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('provgraph.apiKey')") is None
