from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from provgraph.api.app import create_app
from provgraph.api.keys.service import create_key
from provgraph.graph.tx import Graph

from tests.integration.api import scenario
from tests.integration.api.scenario import api_settings


@pytest.fixture
def make_client(graph: Graph) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def build(**overrides: object) -> TestClient:
        client = TestClient(
            create_app(graph, api_settings(**overrides)), raise_server_exceptions=False
        )
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def key(graph: Graph) -> Callable[..., dict[str, str]]:
    """Headers carrying a fresh key with the given scopes."""

    def make(*scopes: str) -> dict[str, str]:
        created = create_key(graph, name="test-" + "-".join(scopes), scopes=scopes)
        return {"Authorization": f"Bearer {created.secret}"}

    return make


@pytest.fixture
def admin(key: Callable[..., dict[str, str]]) -> dict[str, str]:
    return key("admin")


@pytest.fixture
def loaded(graph: Graph) -> Graph:
    scenario.load(graph)
    return graph
