"""The reader: inputs, framing, bad input, dead letters, summary, streaming."""

from __future__ import annotations

import gzip
import io
import json
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from provgraph.ingest import reader
from provgraph.ingest.deadletter import DeadLetterWriter, Summary
from provgraph.ingest.detect import detect, detect_record
from provgraph.ingest.limits import MAX_FIELD
from provgraph.ingest.model import Kind, Origin
from provgraph.ingest.reader import iter_events, iter_results

DATA = Path(__file__).resolve().parents[2] / "data"
BUN = DATA / "sigma_shai_hulud_node_bun_execution.sysmon.ndjson"


def ecs_line(i: int, command_line: str = "sh -c true") -> str:
    return json.dumps(
        {
            "@timestamp": "2024-05-01T08:00:00Z",
            "event": {"category": "process", "type": "start"},
            "host": {"name": "h1.example"},
            "process": {
                "entity_id": f"id-{i}",
                "pid": i % 60000,
                "executable": "/bin/sh",
                "command_line": command_line,
            },
        }
    )


def test_gzip_folder_recursion_and_unrecognised_file(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "bun.ndjson.gz").write_bytes(gzip.compress(BUN.read_bytes()))
    (tmp_path / "notes.txt").write_text("hello there\nsecond line\n")
    (tmp_path / "other.json").write_text(json.dumps({"alpha": 1, "beta": 2}) + "\n")
    summary = Summary()
    events = list(iter_events(tmp_path, summary=summary))
    assert len(events) == 6 and all(e.kind is Kind.PROCESS_START for e in events)
    assert summary.files[str(tmp_path / "notes.txt")].unrecognised == "text starting 'hello there'"
    assert summary.files[str(tmp_path / "other.json")].unrecognised == (
        "JSON object with keys alpha, beta"
    )


def test_stdin_and_text_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdin:
        buffer = io.BytesIO(BUN.read_bytes())

    monkeypatch.setattr(sys, "stdin", Stdin)
    summary = Summary()
    assert len(list(iter_events("-", summary=summary))) == 6
    assert "<stdin>" in summary.files
    assert len(list(iter_events(io.StringIO(ecs_line(1) + "\n")))) == 1


def test_bad_lines_become_dead_letters_and_the_rest_go_on(tmp_path: Path) -> None:
    lines = [
        ecs_line(1).encode(),
        b'{"broken": ',
        ecs_line(2).encode()[:-5] + b"\xff\xfe" + b'"}}}',
        b"",
        b"[1, 2]",
        json.dumps(
            {
                "@timestamp": "2024-05-01T08:00:00Z",
                "event": {"category": "process", "type": "start"},
                "host": {"name": "h"},
                "process": {"pid": "abc"},
            }
        ).encode(),
        ecs_line(3).encode(),
    ]
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    letters = tmp_path / "dead.ndjson"
    summary = Summary()
    with DeadLetterWriter(letters) as writer:
        events = list(iter_events(path, dead_letters=writer, summary=summary))
    assert [e.origin.line for e in events] == [1, 7]
    stats = summary.files[str(path)]
    assert stats.records == 7 and stats.accepted == 2 and stats.skipped == {"blank line": 1}
    assert sum(stats.rejected.values()) == 4
    written = [json.loads(line) for line in letters.read_text().splitlines()]
    assert [(d["line"], d["field"]) for d in written] == [
        (2, None),
        (3, None),
        (5, None),
        (6, "process.pid"),
    ]
    assert written[1]["reason"].startswith("invalid UTF-8 at byte")
    assert all(d["path"] == str(path) and d["reason"] for d in written)
    assert "\\xff" in written[1]["raw"]


def test_over_long_record_is_rejected_and_long_field_truncated(tmp_path: Path) -> None:
    huge = "A" * (1024 * 1024 + 10)
    long_command = "x" * (MAX_FIELD + 100)
    path = tmp_path / "long.ndjson"
    path.write_text(ecs_line(1) + "\n" + huge + "\n" + ecs_line(2, long_command) + "\n")
    summary = Summary()
    events = list(iter_events(path, summary=summary))
    assert len(events) == 2
    assert events[1].truncated == ("process.command_line",)
    assert len(events[1].process.command_line or "") == MAX_FIELD
    assert summary.files[str(path)].rejected == {"record longer than 1048576 bytes": 1}


@pytest.mark.parametrize("format", [None, "windows", "sysmon"])
def test_a_junk_first_line_does_not_hide_the_records_after_it(
    tmp_path: Path, format: str | None
) -> None:
    path = tmp_path / "junk-first.ndjson"
    path.write_bytes(b"\x00garbage\n" + BUN.read_bytes())
    letters = tmp_path / "dead.ndjson"
    summary = Summary()
    with DeadLetterWriter(letters) as writer:
        events = list(iter_events(path, format, dead_letters=writer, summary=summary))
    assert len(events) == 6 and [e.origin.line for e in events] == list(range(2, 8))
    stats = summary.files[str(path)]
    assert (stats.records, stats.accepted, stats.unrecognised, stats.problem) == (7, 6, None, None)
    [letter] = [json.loads(line) for line in letters.read_text().splitlines()]
    assert (letter["path"], letter["line"], letter["raw"]) == (str(path), 1, "\x00garbage")
    assert letter["reason"].startswith("malformed JSON")
    assert summary.shown == [{**letter, "raw_truncated": False}]


def test_lines_nothing_recognises_must_not_outnumber_the_records(tmp_path: Path) -> None:
    """One JSON record among text lines does not make a text file NDJSON; `--format` does."""
    records = BUN.read_text().splitlines()
    path = tmp_path / "mostly-text.log"
    path.write_text("\n".join([f"note {i}: nothing here" for i in range(5)] + records[:2]) + "\n")
    summary = Summary()
    assert list(iter_events(path, summary=summary)) == []
    stats = summary.files[str(path)]
    assert stats.unrecognised == "text starting 'note 0: nothing here'"
    assert stats.problem == "format not recognised (text starting 'note 0: nothing here')"
    summary = Summary()
    assert len(list(iter_events(path, "windows", summary=summary))) == 2
    stats = summary.files[str(path)]
    assert (stats.accepted, sum(stats.rejected.values()), stats.problem) == (2, 5, None)
    assert [d["line"] for d in summary.shown] == [1, 2, 3, 4, 5]


def test_a_forced_format_reads_a_file_nothing_recognised(tmp_path: Path) -> None:
    """Before, `--format` kept an unrecognised file unread: no event, no dead letter."""
    path = tmp_path / "junk.ndjson"
    path.write_bytes(b"garbage\nmore garbage\n")
    summary = Summary()
    assert list(iter_results(path, summary=summary)) == []
    assert summary.files[str(path)].unrecognised == "text starting 'garbage'"
    summary = Summary()
    results = list(iter_results(path, "ecs", summary=summary))
    assert [(r.origin.line, r.dead is not None) for r in results] == [(1, True), (2, True)]
    stats = summary.files[str(path)]
    assert stats.problem == "no events from 2 record(s): 2 rejected"


def test_junk_before_a_csv_header_is_rejected_and_the_header_found() -> None:
    header = "Timestamp,DeviceName,ActionType,FileName"
    row = "2024-05-01T08:00:00Z,h1,ProcessCreated,a.exe"
    text = f"\x00garbage\n{header}\n{row}\n{row}\n"
    summary = Summary()
    results = list(iter_results(io.BytesIO(text.encode()), summary=summary))
    [stats] = summary.files.values()
    assert stats.format == "mde" and stats.skipped["CSV header"] == 1
    assert results[0].dead is not None and results[0].origin.line == 1
    assert results[0].dead.reason == "not a mde record: a line before the CSV header"
    assert [r.origin.line for r in results] == [1, 2, 3, 4]


def test_an_empty_file_is_empty_not_unrecognised(tmp_path: Path) -> None:
    path = tmp_path / "empty.ndjson"
    path.write_bytes(b"\n  \n")
    summary = Summary()
    assert list(iter_results(path, summary=summary)) == []
    stats = summary.files[str(path)]
    assert stats.empty and stats.unrecognised is None and stats.problem is None


def test_an_unreadable_input_is_a_problem_and_the_others_go_on(tmp_path: Path) -> None:
    cut = tmp_path / "cut.ndjson.gz"
    cut.write_bytes(gzip.compress(BUN.read_bytes())[:-20])
    summary = Summary()
    events = list(iter_events([tmp_path / "missing.ndjson", cut, BUN], summary=summary))
    assert len(events) >= 6
    problems = summary.problems
    assert set(problems) == {str(tmp_path / "missing.ndjson"), str(cut)}
    assert problems[str(tmp_path / "missing.ndjson")].startswith(
        "could not be read: FileNotFoundError"
    )
    assert "EOFError" in problems[str(cut)]
    assert summary.files[str(BUN)].problem is None


def test_forced_format_and_unknown_format() -> None:
    sysmon_line = BUN.read_bytes().splitlines()[0]
    [result] = list(iter_results(io.BytesIO(sysmon_line), format="security"))
    assert result.skipped == "provider microsoft-windows-sysmon is not Security auditing"
    [result] = list(iter_results(io.BytesIO(sysmon_line), format="sysmon"))
    assert result.events and result.events[0].origin.source == "sysmon"
    with pytest.raises(ValueError, match="unknown format"):
        list(iter_results(io.BytesIO(b""), format="nope"))


def test_json_array_with_a_syntax_error_keeps_what_came_before() -> None:
    records = [json.loads(line) for line in BUN.read_text().splitlines()[:2]]
    data = json.dumps(records)[:-1] + ', {"Event": }]'
    summary = Summary()
    events = list(iter_events(io.BytesIO(data.encode()), summary=summary))
    assert len(events) == 2
    [stats] = summary.files.values()
    assert stats.rejected == {"malformed JSON": 1}


def test_sysmon_linux_raw_xml_lines() -> None:
    row = json.loads((DATA / "otrf_log4shell_linux_sysmon_syslog.ndjson").open().readline())
    line = "May 11 18:10:20 ubuntu5 sysmon: " + row["SyslogMessage"]
    [result] = list(iter_results(io.BytesIO(line.encode())))
    assert result.events and result.events[0].kind is Kind.PROCESS_END
    assert result.events[0].origin.source == "sysmon_linux"


def test_detection() -> None:
    assert detect(b"ElfFile\x00rest").framing == "evtx"
    assert detect(b"type=SYSCALL msg=audit(1.0:1): x=1\n").format == "auditd"
    assert detect(b"Timestamp,DeviceName,ActionType\n").format == "mde"
    assert detect(b'{\n  "a": 1\n}\n').shape == "a multi-line JSON document (not NDJSON)"
    assert detect_record({"Computer": "x", "EventID": 4688}) == "windows"
    assert detect_record({"event": {"category": "file"}}) == "ecs"
    assert detect_record([1]) is None


def test_evtx_record_mapping() -> None:
    good = BUN.read_text().splitlines()
    results = [
        reader._evtx_record(
            {"event_record_id": i, "data": data}, Origin("windows", "x.evtx", i), "windows"
        )
        for i, data in enumerate([good[0], good[1], "{bad"], 1)
    ]
    assert [bool(r.events) for r in results] == [True, True, False]
    assert results[2].dead is not None and results[2].dead.reason.startswith("malformed EVTX JSON")
    assert results[0].events[0].origin == Origin("sysmon", "x.evtx", 1)


def test_memory_stays_flat_as_input_grows() -> None:
    class Lines(io.RawIOBase):
        """A large NDJSON stream generated on the fly, never held whole."""

        def __init__(self, count: int) -> None:
            self.lines = (ecs_line(i).encode() + b"\n" for i in range(count))
            self.pending = b""

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            while len(self.pending) < len(buffer):
                try:
                    self.pending += next(self.lines)
                except StopIteration:
                    break
            n = min(len(buffer), len(self.pending))
            buffer[:n] = self.pending[:n]
            self.pending = self.pending[n:]
            return n

    def peak(count: int) -> int:
        tracemalloc.start()
        total = sum(1 for _ in iter_events(io.BufferedReader(Lines(count))))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert total == count
        return top

    small, large = peak(2_000), peak(20_000)  # 20k lines is about 5 MB of input
    assert large < small * 1.5 + 256 * 1024
