"""dependency_compromise_shell_child's references without a database: the command-line
normalisation on real quoting, and the DuckDB SQL agreeing with the pandas oracle on the real
recordings (tests/data and tests/data/runtimes), under the rule's and the seed's notion of a
package manager."""

from __future__ import annotations

from pathlib import Path

import pytest
from provgraph.core.times import span
from provgraph.ingest.reader import iter_events
from provgraph.queries.duckdb_reference import connect, evaluate_duckdb
from provgraph.queries.reference import (
    build_model,
    evaluate_reference,
    events_frame,
    installing,
    normalise_command_line,
)
from provgraph.queries.rule import load_rules

DATA = Path(__file__).resolve().parents[2] / "data"
RULE = load_rules().get("dependency_compromise_shell_child")
SUFFIXES = RULE.parameters["program_suffixes"]


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ('"C:\\Users\\x\\python.exe"  -c "import base64"', "python -c import base64"),
        ("python3  -c  x", "python3 -c x"),
        ("npm install left-pad", "npm install left-pad"),
        (
            '"C:\\Program Files\\nodejs\\\\node.exe"  "C:\\Program Files\\nodejs\\\\node_modules'
            '\\npm\\bin\\npm-cli.js" install',
            "node c:\\program files\\nodejs\\\\node_modules\\npm\\bin\\npm-cli.js install",
        ),
        ("/usr/bin/NPM.CMD ci", "npm ci"),
        ('"unterminated', "unterminated"),
        (None, ""),
    ],
)
def test_normalised_command_lines(raw: str | None, normalised: str) -> None:
    assert normalise_command_line(raw, SUFFIXES) == normalised


@pytest.mark.parametrize(
    ("name", "command_line", "expected"),
    [
        ("npm.cmd", "npm.cmd run build", True),  # a package manager whatever its verb
        ("python.exe", '"C:\\Python311\\python.exe"  -m  pip install x', True),
        ("python3", "/venv/bin/python3 /venv/lib/pip/_vendor/_in_process.py build_wheel", True),
        ("node", "npm install x", True),  # Linux: node shows npm's command line
        ("node.exe", '"C:\\node.exe"  "C:\\npm\\bin\\npx-cli.js" skills add x', True),
        ("python.exe", '"C:\\Python311\\python.exe"  wmiexec.py corp/admin@10.0.0.9', False),
        ("node.exe", '"C:\\node.exe" server.js', False),
        ("python.exe", "python -m pipx_clone", False),
        ("go", "go get example.test/mod", True),
        ("go", "go run ./exploit", False),
        ("node.exe", None, False),  # known only as someone's parent: no command line
    ],
)
def test_what_counts_as_a_package_install(
    name: str, command_line: str | None, expected: bool
) -> None:
    assert installing(name, command_line, RULE.parameters) is expected


def test_duckdb_agrees_with_the_oracle_on_the_real_recordings() -> None:
    paths = sorted((DATA / "runtimes").glob("*.ndjson")) + sorted(DATA.glob("*.ndjson"))
    frame = events_frame([e for path in paths for e in iter_events(path)])
    model = build_model(frame)
    con = connect(frame)
    since, until = span(None, None)
    seed = [*RULE.parameters["package_managers"], *RULE.parameters["package_runtimes"]]
    for overrides, count in (({}, 1), ({"package_managers": seed}, 8)):
        pandas_rows = evaluate_reference(RULE, model, **overrides)
        duck_rows = evaluate_duckdb(con, RULE, since, until, **overrides)
        assert set(pandas_rows.process_uid) == set(duck_rows.process_uid)
        assert len(pandas_rows) == count
