"""A process's many facts arrive as one grouped count and open a page at a time, in real
Chromium over the real API and Neo4j. Screenshots: tests/artifacts/31-… onwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.ingest.model import Event, FileOp, Kind, Origin, ProcessRef

from tests.e2e.conftest import ApiServer
from tests.e2e.test_console import sign_in
from tests.e2e.test_investigate import BUILD_RULE, click_node, open_alert

WRITES = 130  # more than one page of the console's FACTS_PAGE (100)

ALERT_PROCESS = """
MATCH (a:Alert {rule_id: $rule, host: 'workstation6'})-[:INVOLVES]->(p:Process)
RETURN p.uid AS uid, p.host AS host, p.start_time AS start ORDER BY a.seq, p.uid LIMIT 1
"""


@pytest.fixture(scope="module")
def noisy(sample_graph: Graph) -> Iterator[str]:
    """An alert's process that wrote WRITES files more (this module's graph only)."""
    row = sample_graph.read(ALERT_PROCESS, {"rule": BUILD_RULE})[0]
    proc = ProcessRef(uid=row["uid"])
    start = row["start"].to_native()
    write_events(
        sample_graph,
        [
            Event(
                Kind.FILE_WRITE,
                start + timedelta(seconds=1, milliseconds=i),
                row["host"],
                proc,
                Origin("sysmon", "tests/e2e-noisy.ndjson", i + 1),
                file_path=rf"C:\Users\build\AppData\Local\Temp\gen{i:03d}.tmp",
                file_op=FileOp.CREATE,
            )
            for i in range(WRITES)
        ],
    )
    yield f"Process:{row['uid']}"


def _group(page: Any, owner: str) -> dict[str, Any] | None:
    return page.evaluate(
        """(owner) => {
            const g = window.provgraph.cy.nodes('[kind = "Group"][rel = "WROTE"]')
              .filter(n => n.data('parent_id') === owner)[0];
            return g ? {id: g.id(), count: g.data('count'), display: g.data('display'),
                        summary: !!g.data('summary')} : null;
        }""",
        owner,
    )


def _files_of(page: Any, owner: str) -> int:
    return page.evaluate(
        """(owner) => window.provgraph.cy.getElementById(owner)
            .outgoers('edge[label = "WROTE"]').targets('[kind = "File"]').length""",
        owner,
    )


def test_a_summarised_group_opens_a_page_at_a_time(
    page: Any,
    api_server: ApiServer,
    api_key: str,
    noisy: str,
    shot: Callable[[Any, str], Path],
) -> None:
    sign_in(page, api_server, api_key)
    open_alert(page, BUILD_RULE)
    group = _group(page, noisy)
    assert group is not None and group["summary"], group
    total = group["count"]
    assert total >= WRITES and group["display"].startswith(f"wrote {total} files")
    drawn = _files_of(page, noisy)  # the files it wrote that are on screen anyway
    shot(page, "31-summarised-group")

    click_node(page, group["id"])
    page.wait_for_function(  # a cursor for the next page: the first one is drawn
        "(id) => !!window.provgraph.cy.getElementById(id).data('cursor')", arg=group["id"]
    )
    page.wait_for_selector("#busy", state="hidden")
    after_one = _files_of(page, noisy)
    assert after_one >= 100 and after_one <= drawn + 100
    assert f"{after_one} shown, click for more" in _group(page, noisy)["display"]
    shot(page, "32-group-first-page")

    click_node(page, group["id"])
    page.wait_for_function(
        "(id) => window.provgraph.cy.getElementById(id).length === 0", arg=group["id"]
    )
    assert _files_of(page, noisy) == total
    shot(page, "33-group-all-pages")
