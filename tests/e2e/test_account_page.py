"""The console's account page (issue 16 "Accounts"), in real Chromium over the real API and
Neo4j holding the Empire sample: opened from an alert's account, from a selected process and
from the search box; hosts, logon sessions (type, time, source, elevated) with the processes
of each, failed logons and credentials used, readable at 1,366 px.

Screenshots: tests/artifacts/30-account-page-1366.png, 31-account-from-search.png."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.conftest import ApiServer
from tests.e2e.test_console import sign_in
from tests.e2e.test_investigate import open_alert

PGUSTAVO = "S-1-5-21-4228717743-1032521047-1810997296-1104"
SESSION = "workstation6|0x2f1c4dc"  # the network logon that ran the MSBuild chain
MSBUILD = "Process:g:d273d0f0-cc0c-5f67-0b08-000000000800"

# Nothing in the account page may stick out sideways or be cut: every table and list fits
# the page's width, and the page itself scrolls only downwards.
LAYOUT = """() => {
    const view = document.querySelector('#account-view');
    const box = view.getBoundingClientRect();
    const wide = [...view.querySelectorAll('table, h3, h4, dl, ul')].filter(e => {
        const b = e.getBoundingClientRect();
        return b.width > 0 && (b.left < box.left - 1 || b.right > box.right + 1);
    }).map(e => e.tagName + ' ' + e.className);
    return {
        wide, left: box.left, right: box.right, viewport: window.innerWidth,
        overflowX: view.scrollWidth - view.clientWidth,
        fontPx: parseFloat(getComputedStyle(view.querySelector('table.acct')).fontSize),
        graphShown: document.querySelector('#cy').getBoundingClientRect().height > 0,
    };
}"""


def test_account_page_from_an_alert_at_1366_px(
    browser: Any, api_server: ApiServer, api_key: str, shot: Callable[[Any, str], Path]
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, api_server, api_key)
        open_alert(page, "msbuild_script_parent")
        link = page.locator("#alert-facts button[data-account='THESHIRE\\\\pgustavo']")
        link.wait_for()
        link.click()
        page.wait_for_selector("#account-view:not([hidden])")
        page.wait_for_selector("#busy", state="hidden")
        assert page.locator("#account-title").inner_text() == "Account THESHIRE\\pgustavo"
        article = page.locator(f"#account-body article[data-account='{PGUSTAVO.lower()}']")
        assert article.count() == 1
        facts = article.locator("dl.facts").inner_text()
        assert PGUSTAVO.lower() in facts and "workstation6" in facts
        session = article.locator(f"tr.session[data-logon='{SESSION}']")
        cells = session.locator("td").all_inner_texts()
        assert cells[0] == "0x2f1c4dc" and cells[1] == "3 network"
        assert cells[2].startswith("2020-09-20") and "172.18.39.5" in cells[4]
        assert cells[5] == "elevated" and cells[6] == "Kerberos"
        # the processes of that session follow its row
        processes = session.locator("xpath=following-sibling::tr[1]").inner_text()
        assert "msbuild.exe (5460)" in processes and "csc.exe" in processes
        assert article.get_by_role("heading", name="Failed logons").count() == 1
        assert article.get_by_role("heading", name="Credentials used by").count() == 1
        shot(page, "30-account-page-1366")
        layout = page.evaluate(LAYOUT)
        assert layout["wide"] == [] and layout["overflowX"] <= 0, layout
        assert layout["right"] <= layout["viewport"] and layout["fontPx"] >= 12, layout
        assert not layout["graphShown"]  # the page is drawn where the graph was
        shot(page, "30-account-page-1366")
        # a process of the session opens the graph around it; back on the graph
        article.locator(f"button[data-node='{MSBUILD}']").first.click()
        page.wait_for_selector("#account-view", state="hidden")
        page.wait_for_function(
            "(id) => window.provgraph.cy.getElementById(id).nonempty()", arg=MSBUILD
        )
        page.wait_for_selector("#node-panel:not([hidden])")
        # the selected process names its account: the node panel opens its page again
        button = page.locator("#n-account")
        assert button.is_visible()
        button.click()
        page.wait_for_selector("#account-view:not([hidden])")
        assert "pgustavo" in page.locator("#account-title").inner_text()
        page.locator("#a-back").click()
        page.wait_for_selector("#account-view", state="hidden")
        assert page.evaluate("() => document.querySelector('#cy').clientHeight") > 300
        assert errors == []
    finally:
        context.close()


def test_account_page_from_the_search_box(
    page: Any, api_server: ApiServer, api_key: str, shot: Callable[[Any, str], Path]
) -> None:
    sign_in(page, api_server, api_key)
    page.locator("#s-kind").select_option("account")
    page.locator("#s-q").fill(PGUSTAVO)
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_selector("#account-view:not([hidden])")
    page.wait_for_selector("#busy", state="hidden")
    assert page.locator("#account-title").inner_text() == "Account THESHIRE\\pgustavo"
    hosts = page.locator("#account-body h4").all_inner_texts()
    assert "On workstation6" in hosts
    shot(page, "31-account-from-search")
    # an account that is not in the graph says so, and the page stays as it was
    page.locator("#s-q").fill("THESHIRE\\nobody")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_selector("#errors .error")
    assert "404" in page.locator("#errors").inner_text()
    assert page.problems == [] or all("404" in p for p in page.problems), page.problems
