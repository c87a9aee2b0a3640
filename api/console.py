"""The analyst console: a static page at `/ui` that talks to this API with the analyst's key;
and the API docs page (`/docs`, Swagger UI), whose files are served from here too.

Only a fixed list of files is served, each mapped to one path on disk: nothing a client sends
is ever joined to a path, so there is nothing to traverse. The third-party libraries come from
`npm ci --prefix ui` (never committed); until that has run, `/ui` answers with a page that says
so instead of a console that cannot draw.

The page itself needs no key (it holds no data); every data call it makes sends one. The docs
page is the same: Swagger UI comes from the npm package `swagger-ui-dist` (installed beside
cytoscape, never a CDN), so it opens offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

UI_DIR_ENV = "PROVGRAPH_UI_DIR"
INSTALL_COMMAND = "npm ci --prefix ui"

# The page loads scripts, styles and data from this origin only; images may be data:/blob:
# URLs because the PNG export builds one. Inline styles are allowed because Cytoscape sets
# style attributes on the elements it creates; inline scripts are not.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class Asset:
    relative: str  # under the ui/ folder
    media_type: str
    vendor: bool = False  # installed by npm, not written by us
    docs: bool = False  # the docs page's, not the console's


# URL path under /ui/ -> file. The whole of what the console may serve.
ASSETS: dict[str, Asset] = {
    "app.js": Asset("static/app.js", "text/javascript; charset=utf-8"),
    "graph.js": Asset("static/graph.js", "text/javascript; charset=utf-8"),
    "app.css": Asset("static/app.css", "text/css; charset=utf-8"),
    "favicon.svg": Asset("static/favicon.svg", "image/svg+xml"),
    "vendor/cytoscape.min.js": Asset(
        "node_modules/cytoscape/dist/cytoscape.min.js",
        "text/javascript; charset=utf-8",
        vendor=True,
    ),
    "vendor/cytoscape-dagre.min.js": Asset(
        "node_modules/cytoscape-dagre/dist/cytoscape-dagre.min.js",
        "text/javascript; charset=utf-8",
        vendor=True,
    ),
    "docs.js": Asset("docs/docs.js", "text/javascript; charset=utf-8", docs=True),
    "docs.css": Asset("docs/docs.css", "text/css; charset=utf-8", docs=True),
    "vendor/swagger-ui-bundle.js": Asset(
        "node_modules/swagger-ui-dist/swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        vendor=True,
        docs=True,
    ),
    "vendor/swagger-ui.css": Asset(
        "node_modules/swagger-ui-dist/swagger-ui.css",
        "text/css; charset=utf-8",
        vendor=True,
        docs=True,
    ),
}
INDEX = Asset("static/index.html", "text/html; charset=utf-8")
DOCS_INDEX = Asset("docs/index.html", "text/html; charset=utf-8", docs=True)


@lru_cache(maxsize=1)
def ui_dir() -> Path:
    """The console's folder: PROVGRAPH_UI_DIR, else `ui/` beside the `api` package."""
    configured = os.environ.get(UI_DIR_ENV)
    if configured:
        return Path(configured).resolve()
    return Path(__file__).resolve().parent.parent / "ui"


def missing_vendor_files(*, docs: bool = False) -> list[str]:
    """The npm files the console (or, with `docs`, the docs page) needs and lacks."""
    base = ui_dir()
    return [
        a.relative
        for a in ASSETS.values()
        if a.vendor and a.docs == docs and not (base / a.relative).is_file()
    ]


def _not_installed_page(missing: list[str], *, what: str = "console") -> HTMLResponse:
    items = "".join(f"<li><code>{escape(m)}</code></li>" for m in missing)
    needs = "the API docs page is drawn with" if what == "docs" else "the console draws graphs with"
    title = "API docs" if what == "docs" else "console"
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>provgraph {title}: not installed</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 46rem; margin: 3rem auto;">
<h1>The {title}'s libraries are not installed</h1>
<p>The API is running, but the browser libraries {needs} are missing
from <code>{escape(str(ui_dir()))}</code>:</p>
<ul>{items}</ul>
<p>Install them once, from the repository's root folder, then reload this page:</p>
<pre>{escape(INSTALL_COMMAND)}</pre>
<p>(<code>make setup</code> runs it too.) The JSON API under <code>/api/v1</code> works
without them.</p>
</body></html>"""
    # 503 with a style attribute: the strict CSP below is not sent on this one page.
    return HTMLResponse(
        body,
        status_code=503,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def _file(asset: Asset, headers: dict[str, str] | None = None) -> Response:
    path = ui_dir() / asset.relative
    if not path.is_file():
        if asset.vendor:
            return _not_installed_text(asset)
        return Response(
            f"console file missing: {asset.relative}\n",
            status_code=404,
            media_type="text/plain; charset=utf-8",
            headers=SECURITY_HEADERS,
        )
    # Our files change with every deploy: revalidate (ETag) instead of caching blindly.
    sent = {**(headers or SECURITY_HEADERS), "Cache-Control": "no-cache"}
    return FileResponse(path, media_type=asset.media_type, headers=sent)


def _not_installed_text(asset: Asset) -> Response:
    return Response(
        f"{asset.relative} is not installed: run `{INSTALL_COMMAND}`\n",
        status_code=503,
        media_type="text/plain; charset=utf-8",
        headers=SECURITY_HEADERS,
    )


def docs_page() -> Response:
    """`/docs`: Swagger UI from the installed package, under the console's CSP. Needs no key
    (it holds no data); it fetches /openapi.json and tries endpoints with the reader's key."""
    missing = missing_vendor_files(docs=True)
    if missing:
        return _not_installed_page(missing, what="docs")
    return _file(DOCS_INDEX)


router = APIRouter(prefix="/ui", tags=["console"], include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def index() -> Response:
    missing = missing_vendor_files()
    if missing:
        return _not_installed_page(missing)
    return _file(INDEX)


@router.get("/")
def index_slash() -> Response:
    return RedirectResponse("/ui", status_code=308)


@router.get("/{name:path}")
def asset(name: str) -> Response:
    found = ASSETS.get(name)
    if found is None:
        return Response(
            f"no console file at /ui/{escape(name)}\n",
            status_code=404,
            media_type="text/plain; charset=utf-8",
            headers=SECURITY_HEADERS,
        )
    return _file(found)
