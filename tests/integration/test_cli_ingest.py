"""`provgraph ingest` as a script sees it: the real command in a subprocess against the real
Neo4j, its exit status, what it prints, and what reached the graph."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from provgraph.graph.target import Neo4jTarget
from provgraph.graph.tx import Graph
from provgraph.ingest.detect import FORMATS
from provgraph.ingest.evtx_file import FILE_HEADER_SIZE

from provgraph.cli.main import EXIT_FAILED_INPUT, EXIT_OK, EXIT_REJECTED, EXIT_USAGE
from tests.unit.ingest.evtx_samples import NETEXEC, build, record_spans

DATA = Path(__file__).resolve().parents[1] / "data"
BUN = DATA / "sigma_shai_hulud_node_bun_execution.sysmon.ndjson"
PROCESSES = "MATCH (p:Process) RETURN count(p) AS n"


@pytest.fixture
def run(graph: Graph, neo4j_target: Neo4jTarget, tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "NEO4J_URI": neo4j_target.uri,
        "NEO4J_USER": neo4j_target.user,
        "NEO4J_PASSWORD": neo4j_target.password,
        "NEO4J_DATABASE": neo4j_target.database,
        "COLUMNS": "200",
    }

    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "provgraph.cli.main", "ingest", "--no-progress", *args]
        return subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
        )

    return invoke


def test_a_clean_input_exits_0_and_prints_the_rules_as_a_table(run, graph: Graph) -> None:  # type: ignore[no-untyped-def]
    done = run(str(BUN))
    assert done.returncode == EXIT_OK, done.stderr
    assert "records accepted 6, events written 6" in done.stdout
    assert "RuleRun(" not in done.stdout
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rule "))
    assert lines[header].split() == ["rule", "matches", "new", "error"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1 : -1]}
    assert rows["dependency_compromise_shell_child"][1] != "0"  # the sample's known alert
    assert "build_process_compromise" in rows and lines[-1].startswith("rules ran: ")
    assert not (Path(done.args[0]).parent / "dead-letters.ndjson").exists()


def test_a_junk_first_line_is_rejected_and_the_rest_ingested(
    run,  # type: ignore[no-untyped-def]
    graph: Graph,
    tmp_path: Path,
) -> None:
    source = tmp_path / "junk-first.ndjson"
    source.write_bytes(b"\x00garbage\n" + BUN.read_bytes())
    for args in ([], ["--format", "sysmon"]):
        done = run(str(source), "--no-rules", *args)
        assert done.returncode == EXIT_REJECTED, (done.stdout, done.stderr)
        assert "records accepted 6" in done.stdout and "rejected: malformed JSON ×1" in done.stdout
        [letter] = map(json.loads, (tmp_path / "dead-letters.ndjson").read_text().splitlines())
        assert (letter["path"], letter["line"]) == (str(source), 1)
        (tmp_path / "dead-letters.ndjson").unlink()
    assert graph.read(PROCESSES)[0]["n"] > 0


def test_an_input_that_cannot_be_read_exits_3_after_the_summary(
    run,  # type: ignore[no-untyped-def]
    graph: Graph,
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-such-file.ndjson"
    done = run(str(missing), str(BUN), "--no-rules", "--json")
    assert done.returncode == EXIT_FAILED_INPUT, done.stderr
    report = json.loads(done.stdout)
    assert report["exit_code"] == EXIT_FAILED_INPUT and report["accepted"] == 6
    assert report["problems"][str(missing)].startswith("could not be read: FileNotFoundError")
    assert report["rejections"]["shown"][0]["line"] == 0
    assert graph.read(PROCESSES)[0]["n"] > 0  # the readable input went in all the same
    text = run(str(missing), "--no-rules")
    assert text.returncode == EXIT_FAILED_INPUT
    assert f"{missing}: could not be read" in text.stdout
    assert text.stdout.splitlines()[-1] == "1 of 1 input(s) failed as a whole"


def test_an_unrecognised_input_exits_3_and_a_named_format_reads_it(
    run,  # type: ignore[no-untyped-def]
    graph: Graph,
    tmp_path: Path,
) -> None:
    junk = tmp_path / "junk.log"
    junk.write_text("garbage\nmore garbage\n")
    done = run(str(junk), "--no-rules")
    assert done.returncode == EXIT_FAILED_INPUT
    assert f"{junk}: format not recognised (text starting 'garbage')" in done.stdout
    named = run(str(junk), "--no-rules", "--format", "ecs")
    assert named.returncode == EXIT_FAILED_INPUT
    assert f"{junk}: no events from 2 record(s): 2 rejected" in named.stdout
    lines = [json.loads(x)["line"] for x in (tmp_path / "dead-letters.ndjson").open()]
    assert lines == [1, 2]


def test_an_unknown_format_is_one_line_and_exit_2(run, graph: Graph, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done = run(str(BUN), "--format", "nosuch")
    assert done.returncode == EXIT_USAGE
    assert done.stdout == ""
    assert done.stderr.strip() == (
        f"error: unknown format 'nosuch'; --format accepts {', '.join(FORMATS)}"
    )
    assert not (tmp_path / "dead-letters.ndjson").exists()
    assert graph.read(PROCESSES)[0]["n"] == 0


def test_help_lists_the_formats_and_the_exit_codes(run) -> None:  # type: ignore[no-untyped-def]
    done = run("--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.replace("│", " ").split())
    assert ", ".join(FORMATS) in text
    for code in ("0 every input read", "3 an input could not be read", "4 some records"):
        assert code in text, code


@pytest.mark.skipif(not NETEXEC.exists(), reason="the shared SigmaHQ regression data is absent")
def test_an_evtx_cut_inside_its_first_chunk_exits_3_and_says_so(
    run,  # type: ignore[no-untyped-def]
    graph: Graph,
    tmp_path: Path,
) -> None:
    data, _ = build(NETEXEC)
    source = tmp_path / "cut.evtx"
    cut = record_spans(data[FILE_HEADER_SIZE:])[3][0] + 100  # inside the fourth record
    source.write_bytes(data[: FILE_HEADER_SIZE + cut])
    done = run(str(source), "--no-rules")
    assert done.returncode == EXIT_FAILED_INPUT, done.stderr
    assert "records accepted 3, events written 3" in done.stdout
    assert f"{source}: cut short: the file ends {cut} bytes into chunk 0" in done.stdout
    assert "3 record(s) read, 4 lost" in done.stdout
    assert "rejected: EVTX file cut short ×4" in done.stdout
    # cut where the chunk held nothing more: every record read, nothing to report
    source.write_bytes(data[:20_000])
    whole = run(str(source), "--no-rules")
    assert whole.returncode == EXIT_OK and "records accepted 7" in whole.stdout
