"""The command line as a responder runs it: the real `provgraph` entry point over the real
Neo4j holding the bundled sample data (ingested once for this folder, the rules run over it).

`cli(...)` runs one command line through `provgraph.cli.main.run`, the function the
executable calls, in this process (a subprocess per command would spend most of the suite
starting Python); `test_cli_process.py` checks the executable itself in subprocesses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from provgraph.graph.pipeline import ingest_sources
from provgraph.graph.target import Neo4jTarget
from provgraph.graph.tx import Graph
from provgraph.queries.engine import run_rules

from provgraph.cli.main import run
from tests.conftest import WIPE

DATA = Path(__file__).resolve().parents[2] / "data"

# The sample's known facts, read from the files in tests/data (OTRF Empire MSBuild extract).
MSBUILD_UID = "g:d273d0f0-cc0c-5f67-0b08-000000000800"
CMD_UID = "g:d273d0f0-cc0c-5f67-0908-000000000800"
SOURCE_FILE = r"C:\Users\pgustavo\AppData\Local\Temp\qu22daba\qu22daba.0.cs"
BRACKETS_UID = "g:0197231e-5666-6929-d010-000000000d00"  # its command line holds "[Environment]"

# One time format for every human output, and what the others looked like.
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z")
OTHER_TIMES = re.compile(r"\+00:00|\d{4}-\d\d-\d\dT\d\d:|:\d\d\.\d{4,}")


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.strip().splitlines()


Cli = Callable[..., Result]


@pytest.fixture(scope="package")
def sample(graph_session: Graph) -> Iterator[Graph]:
    """The bundled sample telemetry with the rules' alerts, once for the CLI tests."""
    graph_session.write_autocommit(WIPE)
    report = ingest_sources(graph_session, sorted(str(p) for p in DATA.glob("*.ndjson")))
    assert not report.problems, report.problems
    runs = run_rules(graph_session)
    assert not [r for r in runs if r.error], [(r.rule_id, r.error) for r in runs]
    yield graph_session
    graph_session.write_autocommit(WIPE)


def point_at(monkeypatch: pytest.MonkeyPatch, target: Neo4jTarget) -> None:
    monkeypatch.setenv("NEO4J_URI", target.uri)
    monkeypatch.setenv("NEO4J_USER", target.user)
    monkeypatch.setenv("NEO4J_PASSWORD", target.password)
    monkeypatch.setenv("NEO4J_DATABASE", target.database)


@pytest.fixture
def cli(
    sample: Graph,
    neo4j_target: Neo4jTarget,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> Cli:
    """Run `provgraph ARGS…` at 80 columns against the sample graph."""
    point_at(monkeypatch, neo4j_target)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("PROVGRAPH_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no provgraph.yaml of the checkout's applies

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        code = run(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke
