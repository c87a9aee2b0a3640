"""One real Neo4j per test run, and a clean database for every test that asks for one.

Which Neo4j: NEO4J_URI if set (tests wipe it: point it at a scratch database); else a
testcontainers Neo4j when a Docker engine answers; else provgraph's own managed server,
as a separate instance ("test", or PROVGRAPH_TEST_INSTANCE) so the demo's data is safe.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from provgraph.graph.schema import ensure_schema
from provgraph.graph.target import Neo4jTarget
from provgraph.graph.tx import Graph

WIPE = "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def neo4j_target() -> Iterator[Neo4jTarget]:
    if os.environ.get("NEO4J_URI"):
        yield Neo4jTarget(
            uri=os.environ["NEO4J_URI"],
            user=os.environ.get("NEO4J_USER", "neo4j"),
            password=os.environ.get("NEO4J_PASSWORD", ""),
            database=os.environ.get("NEO4J_DATABASE", "neo4j"),
        )
        return
    if _docker_answers():
        from testcontainers.neo4j import Neo4jContainer  # type: ignore[import-not-found]

        with Neo4jContainer("neo4j:5.26-community") as container:
            yield Neo4jTarget(
                uri=container.get_connection_url(), user="neo4j", password=container.password
            )
        return
    from provgraph.graph.local import server

    instance = server.Instance(os.environ.get("PROVGRAPH_TEST_INSTANCE", "test"))
    started_here = not instance.is_running()
    server.start(instance, quiet=True)
    try:
        yield Neo4jTarget(
            uri=instance.uri,
            user=server.USER,
            password=instance.password(),
            managed_instance=instance.name,
        )
    finally:
        if started_here and not os.environ.get("PROVGRAPH_TEST_KEEP_NEO4J"):
            server.stop(instance)


@pytest.fixture(scope="session")
def graph_session(neo4j_target: Neo4jTarget) -> Iterator[Graph]:
    with Graph(neo4j_target) as graph:
        ensure_schema(graph)
        yield graph


@pytest.fixture
def graph(graph_session: Graph) -> Iterator[Graph]:
    """A connected, empty database (with schema); emptied again afterwards."""
    graph_session.write_autocommit(WIPE)
    yield graph_session
    graph_session.write_autocommit(WIPE)
