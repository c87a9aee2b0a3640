"""Neo4j dies in the middle of an ingest: the run stops saying what was committed, and
rerunning the same input completes the graph without duplicates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from provgraph.graph.loader import IngestInterrupted, Loader
from provgraph.graph.local import server
from provgraph.graph.schema import ensure_schema
from provgraph.graph.target import Neo4jTarget
from provgraph.graph.tx import Graph, Retry
from provgraph.ingest.reader import iter_events

MORDOR = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson"
)
COUNT = "MATCH (n) OPTIONAL MATCH (n)-[r]->() RETURN count(DISTINCT n) AS nodes, count(r) AS rels"


def test_server_killed_mid_run_then_rerun_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVGRAPH_HOME", str(tmp_path))
    instance = server.Instance("dies", heap="512m", pagecache="128m")
    server.start(instance, quiet=True)
    try:
        target = Neo4jTarget(uri=instance.uri, user=server.USER, password=instance.password())
        graph = Graph(target, retry=Retry(attempts=3, first_delay=0.1))
        ensure_schema(graph)  # as every ingest does: the loader then overlaps its commits

        def kill_after_first_batch(stats: object) -> None:
            if instance.is_running():
                server.stop(instance)

        with (
            pytest.raises(IngestInterrupted) as stopped,
            Loader(graph, batch_size=50, on_commit=kill_after_first_batch) as load,
        ):
            for event in iter_events(MORDOR):
                load.add(event)
        message = str(stopped.value)
        # The server stops after the first commit is reported; the batch already at its
        # commit may still get in while it shuts down. Either way the message says exactly
        # what was committed: whole batches, a prefix of the input.
        said = re.search(r"Committed before it stopped: (\d+) events in (\d+) batches", message)
        assert said is not None, message
        events, batches = int(said[1]), int(said[2])
        assert 1 <= batches <= 2 and events == 50 * batches
        assert "Rerun the same command" in message
        graph.close()

        server.start(instance, quiet=True)
        with Graph(target) as graph:
            partial = graph.read(COUNT)[0]
            assert graph.read("MATCH (h:Host) RETURN count(h) > 0 AS some")[0]["some"]
            with Loader(graph, batch_size=50) as load:
                for event in iter_events(MORDOR):
                    load.add(event)
            rerun = graph.read(COUNT)[0]
            graph.write_autocommit("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS")
            with Loader(graph, batch_size=50) as load:
                for event in iter_events(MORDOR):
                    load.add(event)
            clean = graph.read(COUNT)[0]
        assert 0 < partial["nodes"] < clean["nodes"]
        assert rerun == clean  # the rerun completed it, with nothing duplicated
    finally:
        server.stop(instance)
