"""The `provgraph` executable itself, in subprocesses: what a script sees of its exit status,
stdout and stderr (one line, never a traceback), also when Neo4j refuses it or the reader of
its output goes away."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from provgraph.graph.target import Neo4jTarget
from provgraph.graph.tx import Graph


def _env(target: Neo4jTarget, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROVGRAPH_CONFIG"}
    env.update(
        NEO4J_URI=target.uri,
        NEO4J_USER=target.user,
        NEO4J_PASSWORD=target.password,
        NEO4J_DATABASE=target.database,
        COLUMNS="80",
    )
    env.update(extra)
    return env


def _provgraph(
    env: dict[str, str], cwd: Path, *args: str, **options: object
) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "provgraph.cli.main", *args]
    return subprocess.run(command, env=env, cwd=cwd, timeout=120, **options)  # type: ignore[call-overload, no-any-return]


@pytest.fixture
def env(sample: Graph, neo4j_target: Neo4jTarget) -> dict[str, str]:
    return _env(neo4j_target)


def test_a_lookup_with_no_result_exits_5(env: dict[str, str], tmp_path: Path) -> None:
    for args, message in (
        (["trace", "host", "nosuchhost"], b"error: no host nosuchhost\n"),
        (["trace", "ip", "203.0.113.7"], b"error: no process contacted 203.0.113.7\n"),
    ):
        done = _provgraph(env, tmp_path, *args, capture_output=True)
        assert (done.returncode, done.stdout, done.stderr) == (5, b"", message), args


def test_found_exits_0(env: dict[str, str], tmp_path: Path) -> None:
    done = _provgraph(env, tmp_path, "trace", "host", "mordordc", capture_output=True)
    assert done.returncode == 0 and done.stderr == b""
    assert done.stdout.count(b"\n") >= 1


def test_no_arguments_print_the_help_and_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    done = _provgraph(env, tmp_path, capture_output=True)
    assert done.returncode == 2 and b"Usage: provgraph" in done.stdout
    assert b"Exit status, the same for every command" in done.stdout


def test_refused_credentials_are_one_line(
    sample: Graph, neo4j_target: Neo4jTarget, tmp_path: Path
) -> None:
    env = _env(neo4j_target, NEO4J_PASSWORD="not-the-password")
    done = _provgraph(env, tmp_path, "alerts", "list", capture_output=True)
    assert done.returncode == 2 and done.stdout == b""
    [line] = done.stderr.decode().splitlines()
    assert line.startswith("error: Neo4j refused the credentials (check NEO4J_USER"), line


def test_a_reader_that_went_away_is_141_not_a_crash(env: dict[str, str], tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head` that has already stopped reading
    try:
        done = _provgraph(
            env, tmp_path, "trace", "host", "workstation6", stdout=write_end, stderr=subprocess.PIPE
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141 and b"Traceback" not in done.stderr, done.stderr
