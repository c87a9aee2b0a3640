"""End-to-end: the real API (uvicorn on a free loopback port) over the real Neo4j, with the
sample data ingested and the rules run, driven through Debian's Chromium by Playwright.

Nothing here skips: a missing browser, Playwright or `npm ci` is a failure that says what
to install, because a console test that quietly does not run proves nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from provgraph.api import console
from provgraph.api.app import create_app
from provgraph.api.keys.service import create_key
from provgraph.api.settings import Settings
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.tx import Graph
from provgraph.queries.engine import run_rules

from tests.conftest import WIPE

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("PROVGRAPH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _need_browser() -> None:
    if not Path(CHROMIUM).is_file() and not shutil.which(CHROMIUM):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the console's end-to-end tests "
            "need Debian's browser (`apt-get install -y chromium`), or set "
            "PROVGRAPH_CHROMIUM to another Chromium binary.",
            pytrace=False,
        )
    missing = console.missing_vendor_files()
    if missing:
        pytest.fail(
            f"the console's libraries are not installed ({', '.join(missing)}): run "
            f"`{console.INSTALL_COMMAND}`",
            pytrace=False,
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiServer:
    """uvicorn in a thread, serving create_app() with the console mounted."""

    def __init__(self, graph: Graph) -> None:
        settings = Settings(webhook_enabled=False, key_cache_seconds=0.0)  # type: ignore[call-arg]
        self.app = create_app(graph, settings)
        if not any(getattr(r, "path", "") == "/ui" for r in self.app.routes):
            self.app.include_router(console.router)  # until api/app.py mounts it
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="e2e-uvicorn", daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def sample_graph(graph_session: Graph) -> Iterator[Graph]:
    """The bundled sample telemetry, ingested, with the rules' alerts written."""
    graph_session.write_autocommit(WIPE)
    ingest_sources(graph_session, sorted(str(p) for p in DATA.glob("*.ndjson")))
    runs = run_rules(graph_session)
    failed = [r for r in runs if getattr(r, "error", None)]
    assert not failed, f"rules failed: {[(r.rule_id, r.error) for r in failed]}"
    yield graph_session
    graph_session.write_autocommit(WIPE)


@pytest.fixture(scope="module")
def api_server(sample_graph: Graph) -> Iterator[ApiServer]:
    with ApiServer(sample_graph) as server:
        yield server


@pytest.fixture(scope="module")
def api_key(sample_graph: Graph) -> str:
    return create_key(sample_graph, name="e2e-analyst", scopes=["read", "triage", "hunt"]).secret


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need_browser()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the Python Playwright client is missing: `pip install playwright` "
            "(never `playwright install`: the tests use Debian's Chromium)",
            pytrace=False,
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    page.problems = problems  # type: ignore[attr-defined]
    yield page
    context.close()


@pytest.fixture
def shot() -> Callable[[Any, str], Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        return path

    return take
