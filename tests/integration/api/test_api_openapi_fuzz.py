"""Schemathesis against our own OpenAPI document: no generated request may cause a 500, and
every answer must match what the document declares (status codes, content types, schemas)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from provgraph.api.app import create_app
from provgraph.api.keys.service import create_key
from provgraph.graph.tx import Graph
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.api import scenario
from tests.integration.api.scenario import api_settings

POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Invalid input must still be answered as declared, never with a 500.
NEGATIVE_CHECKS = [not_a_server_error, content_type_conformance]


@pytest.fixture
def fuzz_target(graph: Graph) -> Iterator[tuple[Any, dict[str, str]]]:
    scenario.load(graph)
    scenario.create_alert(graph)
    app = create_app(graph, api_settings(query_timeout_seconds=2.0))
    secret = create_key(graph, name="fuzz", scopes=["admin"]).secret
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(app):  # runs the lifespan (schema, verifier)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=headers)
        yield schema, headers


def test_no_server_errors(fuzz_target: tuple[Any, dict[str, str]]) -> None:
    """Every operation, a bounded number of generated cases each (positive and negative)."""
    schema, headers = fuzz_target
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @given(case=strategy)
            @settings(
                max_examples=15,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                checks = POSITIVE_CHECKS if mode is GenerationMode.POSITIVE else NEGATIVE_CHECKS  # noqa: B023 - run() is called in this iteration
                case.call_and_validate(headers={**(case.headers or {}), **headers}, checks=checks)

            try:
                run()
            except (KeyboardInterrupt, SystemExit):
                raise
            except Unsatisfiable:
                continue  # no invalid input exists for an operation without parameters
            except BaseException as error:  # noqa: BLE001 - failure groups are BaseExceptions
                failures.append(
                    f"{operation.method.upper()} {operation.path} ({mode.value}): "
                    f"{str(error)[:1500]}"
                )
    assert not failures, "\n\n".join(failures)
