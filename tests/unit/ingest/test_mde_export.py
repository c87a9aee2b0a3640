"""Defender export shapes: Streaming API records and Event Hub `{"records": [...]}` documents.

The records are generated in the shape Microsoft documents for the Streaming API ("The schema
of the events in Azure Event Hub": `time`, `tenantId`, `category` = "AdvancedHunting-" + the
table name, `properties` = the Advanced Hunting row; `operationName` "Publish" as delivered).
"""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest
from provgraph.ingest import capture
from provgraph.ingest.deadletter import Summary
from provgraph.ingest.detect import detect, detect_record
from provgraph.ingest.errors import ParseError, Skipped
from provgraph.ingest.mde import parse_mde, unwrap
from provgraph.ingest.model import FileOp, Kind, Origin
from provgraph.ingest.reader import iter_results

ORIGIN = Origin("mde", "<test>", 1)
TENANT = "11111111-2222-3333-4444-555555555555"

PROCESS_ROW: dict[str, Any] = {
    "Timestamp": "2024-05-01T08:00:00.1234567Z",
    "DeviceId": "0f5e1c1d2b7a4c3e9d8f7a6b5c4d3e2f1a0b9c8d",
    "DeviceName": "ws7.corp.example",
    "ActionType": "ProcessCreated",
    "FileName": "powershell.exe",
    "FolderPath": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    "ProcessId": 4312,
    "ProcessCommandLine": "powershell.exe -nop -w hidden",
    "ProcessCreationTime": "2024-05-01T08:00:00.1200000Z",
    "AccountDomain": "corp",
    "AccountName": "alice",
    "InitiatingProcessFileName": "winword.exe",
    "InitiatingProcessFolderPath": "C:\\Program Files\\Office16\\winword.exe",
    "InitiatingProcessId": 2200,
    "InitiatingProcessCreationTime": "2024-05-01T07:58:10.0000000Z",
    "InitiatingProcessAccountDomain": "corp",
    "InitiatingProcessAccountName": "alice",
    "ReportId": 901,
}
FILE_ROW: dict[str, Any] = {
    "Timestamp": "2024-05-01T08:00:02.5000000Z",
    "DeviceId": PROCESS_ROW["DeviceId"],
    "DeviceName": "ws7.corp.example",
    "ActionType": "FileCreated",
    "FileName": "stage.ps1",
    "FolderPath": "C:\\Users\\alice\\AppData\\Local\\Temp\\stage.ps1",
    "InitiatingProcessFileName": "powershell.exe",
    "InitiatingProcessFolderPath": PROCESS_ROW["FolderPath"],
    "InitiatingProcessId": 4312,
    "InitiatingProcessCreationTime": PROCESS_ROW["ProcessCreationTime"],
    "ReportId": 902,
}
NETWORK_ROW: dict[str, Any] = {
    "Timestamp": "2024-05-01T08:00:03.0000000Z",
    "DeviceId": PROCESS_ROW["DeviceId"],
    "DeviceName": "ws7.corp.example",
    "ActionType": "ConnectionSuccess",
    "RemoteIP": "203.0.113.9",
    "RemotePort": 443,
    "RemoteUrl": "payload.example",
    "LocalIP": "10.0.0.7",
    "LocalPort": 50123,
    "Protocol": "Tcp",
    "InitiatingProcessFileName": "powershell.exe",
    "InitiatingProcessFolderPath": PROCESS_ROW["FolderPath"],
    "InitiatingProcessId": 4312,
    "InitiatingProcessCreationTime": PROCESS_ROW["ProcessCreationTime"],
    "ReportId": 903,
}
TABLES = {
    "DeviceProcessEvents": PROCESS_ROW,
    "DeviceFileEvents": FILE_ROW,
    "DeviceNetworkEvents": NETWORK_ROW,
}


def streamed(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """One Streaming API record, as Event Hub and Storage receive it."""
    return {
        "time": "2024-05-01T08:00:09.0000000Z",
        "tenantId": TENANT,
        "operationName": "Publish",
        "category": f"AdvancedHunting-{table}",
        "properties": copy.deepcopy(row),
    }


def all_records() -> list[dict[str, Any]]:
    return [streamed(table, row) for table, row in TABLES.items()]


def results(data: str | bytes, format: str | None = None) -> tuple[list[Any], Summary]:
    summary = Summary()
    raw = data.encode() if isinstance(data, str) else data
    found = list(iter_results(io.BytesIO(raw), format, summary=summary))
    return found, summary


def test_a_streamed_record_parses_as_its_flat_row() -> None:
    for table, row in TABLES.items():
        [wrapped] = parse_mde(streamed(table, row), ORIGIN)
        [flat] = parse_mde(row, ORIGIN)
        assert (wrapped.kind, wrapped.ts, wrapped.host, wrapped.process) == (
            flat.kind,
            flat.ts,
            flat.host,
            flat.process,
        )
        assert wrapped.raw is not None and wrapped.raw["Table"] == table
        assert wrapped.raw["ReportId"] == row["ReportId"]
    [write] = parse_mde(streamed("DeviceFileEvents", FILE_ROW), ORIGIN)
    assert write.file_op is FileOp.CREATE and write.file_path is not None
    assert write.file_path.endswith("stage.ps1")


def test_unwrap_and_detection_of_the_export_shapes() -> None:
    record = streamed("DeviceProcessEvents", PROCESS_ROW)
    table, row = unwrap(record) or ("", {})
    assert table == "DeviceProcessEvents" and row["ProcessId"] == 4312
    assert detect_record(record) == "mde"
    other = {"time": "x", "category": "AuditEvent", "properties": {}}  # Azure Monitor, not MDE
    assert detect_record(other) is None and unwrap(other) is None
    document = json.dumps({"records": [record]}, indent=2).encode()
    assert detect(document).framing == "records"
    assert detect(b'\xef\xbb\xbf{"records":[' + json.dumps(record).encode()).framing == "records"
    assert detect((json.dumps(record) + "\n").encode()).format == "mde"


def test_errors_name_the_field_inside_properties() -> None:
    record = streamed("DeviceNetworkEvents", NETWORK_ROW)
    del record["properties"]["RemoteIP"]
    with pytest.raises(ParseError) as caught:
        parse_mde(record, ORIGIN)
    assert caught.value.field == "properties.RemoteIP" and caught.value.reason == "missing"
    record["properties"] = "not an object"
    with pytest.raises(ParseError) as caught:
        parse_mde(record, ORIGIN)
    assert caught.value.field == "properties"


def test_tables_without_activity_and_other_categories_say_why_they_are_skipped() -> None:
    info = streamed("DeviceInfo", {"Timestamp": "2024-05-01T08:00:00Z", "DeviceName": "ws7"})
    skipped = parse_mde(info, ORIGIN)
    assert isinstance(skipped, Skipped) and "DeviceInfo has no ActionType" in skipped.reason
    azure = {"time": "x", "category": "AuditEvent", "properties": {}, "resourceId": "/x"}
    skipped = parse_mde(azure, ORIGIN)
    assert isinstance(skipped, Skipped) and "AuditEvent is not a Defender" in skipped.reason


def test_a_pretty_printed_event_hub_document_numbers_its_records() -> None:
    document = json.dumps({"records": all_records()}, indent=2)
    found, summary = results(document)
    assert [r.origin.line for r in found] == [1, 2, 3]
    assert [r.events[0].kind for r in found] == [
        Kind.PROCESS_START,
        Kind.FILE_WRITE,
        Kind.NETWORK_CONNECT,
    ]
    assert all(r.origin.source == "mde" for r in found)
    [stats] = summary.files.values()
    assert (stats.records, stats.accepted, stats.format) == (3, 3, "mde")


def test_a_malformed_record_in_a_capture_file_loses_only_itself() -> None:
    records = all_records() * 2  # six records: spoil the second, the third and the sixth
    text = json.dumps({"records": records}, indent=1)
    pieces = text.split('"operationName"')
    assert len(pieces) == 7
    pieces[2] = pieces[2].replace('"ProcessId": 4312,', '"ProcessId": ,', 1)  # not JSON
    pieces[2] = pieces[2].replace('"InitiatingProcessId": 4312,', '"InitiatingProcessId": ,', 1)
    spoilt = '"operationName"'.join(pieces)
    spoilt = spoilt.replace('"RemotePort": 443,', '"RemotePort": 443,,', 2)  # records 3 and 6
    found, summary = results(spoilt)
    by_line = {r.origin.line: r for r in found}
    assert sorted(by_line) == [1, 2, 3, 4, 5, 6]
    bad = sorted(line for line, r in by_line.items() if r.dead is not None)
    assert bad == [2, 3, 6]
    assert all(by_line[n].dead.reason.startswith("malformed JSON") for n in bad)  # type: ignore[union-attr]
    assert "DeviceFileEvents" in by_line[2].dead.raw_line  # type: ignore[union-attr]
    assert [n for n, r in sorted(by_line.items()) if r.events] == [1, 4, 5]
    [stats] = summary.files.values()
    assert (stats.accepted, sum(stats.rejected.values())) == (3, 3)


def test_a_record_that_is_json_but_not_a_row_loses_only_itself() -> None:
    records = all_records()
    records[1]["properties"]["DeviceName"] = ""
    found, _ = results(json.dumps({"records": records}))
    dead = [r for r in found if r.dead is not None]
    assert [r.origin.line for r in dead] == [2]
    assert dead[0].dead.field == "properties.DeviceName"  # type: ignore[union-attr]
    assert [bool(r.events) for r in found] == [True, False, True]


def test_several_documents_one_per_line_number_records_across_the_file() -> None:
    records = all_records()
    lines = [json.dumps({"records": records[:2]}), json.dumps({"records": [records[2]]})]
    found, _ = results("\n".join(lines) + "\n")
    assert [(r.origin.line, r.events[0].kind) for r in found] == [
        (1, Kind.PROCESS_START),
        (2, Kind.FILE_WRITE),
        (3, Kind.NETWORK_CONNECT),
    ]


def test_streamed_records_one_per_line_and_in_an_array() -> None:
    records = all_records()
    found, _ = results("\n".join(json.dumps(r) for r in records) + "\n")
    assert [(r.origin.line, bool(r.events)) for r in found] == [(1, True), (2, True), (3, True)]
    found, _ = results(json.dumps(records))
    assert [(r.origin.line, bool(r.events)) for r in found] == [(1, True), (2, True), (3, True)]


def test_forced_format_reads_a_capture_file() -> None:
    found, _ = results(json.dumps({"records": all_records()}, indent=2), format="mde")
    assert [bool(r.events) for r in found] == [True, True, True]


def test_a_cut_capture_file_keeps_what_came_before_and_says_so() -> None:
    text = json.dumps({"records": all_records()}, indent=2)
    cut = text[: text.index('"RemoteUrl"') + 14]  # inside the third record's string
    found, summary = results(cut)
    assert [bool(r.events) for r in found[:2]] == [True, True]
    assert found[2].dead is not None and found[2].origin.line == 3
    assert "the file ends" in found[2].dead.reason
    junk = text.replace("}\n  ]\n}", "} x ]}")
    found, _ = results(junk)
    assert found[-1].dead is not None and "between records" in found[-1].dead.reason


def test_records_across_chunk_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "CHUNK", 7)  # every record spans many reads
    records = all_records() * 3
    text = json.dumps({"records": records}, indent=2).replace('"ProcessId": 4312', '"ProcessId": x')
    elements = list(capture.read_records(io.BytesIO(text.encode()), b""))
    assert [e.index for e in elements] == list(range(1, 10))
    assert [e.error is None for e in elements] == [False, True, True] * 3
    assert elements[1].value == records[1]


def test_value_end_matches_brackets_outside_strings() -> None:
    text = '{"a": "}]\\"", "b": [1, {"c": }]} , 5'
    assert capture.value_end(text, 0) == text.index(" ,")
    assert capture.value_end('7 , {"x": 1}', 0) == 2
    assert capture.value_end('{"a": "open', 0) is None
    assert capture.value_end('{"a": [1, 2', 0) is None
