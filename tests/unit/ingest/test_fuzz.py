"""Generated garbage at every parser: nothing escapes but ParseError, and through the reader
every record is accepted, skipped or dead-lettered with a reason."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from provgraph.ingest.auditd import parse_auditd
from provgraph.ingest.deadletter import Summary
from provgraph.ingest.detect import FORMATS
from provgraph.ingest.errors import ParseError
from provgraph.ingest.model import Event, Origin
from provgraph.ingest.reader import PARSERS, iter_results
from provgraph.ingest.sysmon_linux import parse_sysmon_linux

DATA = Path(__file__).resolve().parents[2] / "data"
ORIGIN = Origin("fuzz", "<fuzz>", 1)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "0x1a",
            "-",
            "",
            "2024-01-01T00:00:00Z",
            "2024-01-01 00:00:00.000",
            "{00000000-0000-0000-0000-000000000000}",
            "192.0.2.1",
            "::ffff:1.2.3.4",
            "true",
            "false",
            "99999999999999999999",
            "1e400",
            "ProcessCreated",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

SYSMON_KEYS = [
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "CommandLine",
    "User",
    "ParentProcessGuid",
    "ParentProcessId",
    "ParentImage",
    "TargetFilename",
    "DestinationIp",
    "DestinationPort",
    "SourceIp",
    "Initiated",
    "Protocol",
    "QueryName",
    "QueryResults",
    "LogonId",
]
SECURITY_KEYS = [
    "NewProcessId",
    "NewProcessName",
    "ProcessId",
    "CommandLine",
    "ObjectType",
    "ObjectName",
    "AccessMask",
    "SubjectUserName",
    "TargetUserName",
    "MandatoryLabel",
    "ParentProcessName",
    "ProcessName",
]
MDE_KEYS = [
    "Timestamp",
    "DeviceName",
    "ActionType",
    "FileName",
    "FolderPath",
    "ProcessId",
    "ProcessCreationTime",
    "InitiatingProcessId",
    "InitiatingProcessCreationTime",
    "RemoteIP",
    "RemotePort",
    "Protocol",
    "PreviousFileName",
    "PreviousFolderPath",
]


def shaped(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={k: json_values for k in keys})


windows_records = st.one_of(
    st.builds(
        lambda eid, prov, data, t, c: {
            "Event": {
                "System": {
                    "Provider": {"#attributes": {"Name": prov}},
                    "EventID": eid,
                    "Computer": c,
                    "TimeCreated": {"#attributes": {"SystemTime": t}},
                },
                "EventData": data,
            }
        },
        st.sampled_from([1, 3, 5, 11, 22, 23, 26, 4688, 4689, 4663, "1", 7, None]) | json_values,
        st.sampled_from(["Microsoft-Windows-Sysmon", "Microsoft-Windows-Security-Auditing", "x"]),
        shaped(SYSMON_KEYS + SECURITY_KEYS) | json_values,
        scalars,
        scalars,
    ),
    st.builds(
        lambda eid, data, host: {
            **data,
            "EventID": eid,
            "Computer": host,
            "TimeGenerated": "2024-01-01T00:00:00Z",
        },
        st.sampled_from([4688, 4689, 4663]) | scalars,
        shaped(SECURITY_KEYS),
        scalars,
    ),
    st.builds(
        lambda data: {
            **data,
            "SourceName": "Microsoft-Windows-Sysmon",
            "Hostname": "h",
            "EventID": 1,
        },
        shaped(SYSMON_KEYS),
    ),
)
ecs_records = st.builds(
    lambda cat, typ, proc, rest: {
        "@timestamp": "2024-01-01T00:00:00Z",
        "host": {"name": "h"},
        "event": {"category": cat, "type": typ},
        "process": proc,
        **rest,
    },
    st.sampled_from(["process", "file", "network", ["process"], "x"]) | json_values,
    st.sampled_from(["start", "end", "creation", ["deletion"], "connection"]) | json_values,
    st.fixed_dictionaries(
        {}, optional={k: json_values for k in ["entity_id", "pid", "executable", "start", "parent"]}
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "file": json_values,
            "destination": json_values,
            "dns": json_values,
            "network": json_values,
        },
    ),
)


def outcome(parser: Any, record: Any) -> None:
    try:
        events = parser(record, ORIGIN)
    except ParseError as exc:
        assert exc.reason
        return
    assert isinstance(events, list) and all(isinstance(e, Event) for e in events)
    for event in events:
        assert event.ts.utcoffset() is not None


@FAST
@given(record=json_values)
def test_random_json_at_every_parser(record: Any) -> None:
    for parser in PARSERS.values():
        outcome(parser, record)


@FAST
@given(record=windows_records)
def test_windows_shapes_with_wrong_types(record: dict[str, Any]) -> None:
    for name in ("windows", "sysmon", "security"):
        outcome(PARSERS[name], record)


@FAST
@given(record=ecs_records)
def test_ecs_with_wrong_types(record: dict[str, Any]) -> None:
    outcome(PARSERS["ecs"], record)


@FAST
@given(
    record=shaped(MDE_KEYS),
    action=st.sampled_from(
        ["ProcessCreated", "FileCreated", "FileRenamed", "ConnectionSuccess", "Other"]
    ),
)
def test_mde_with_wrong_types(record: dict[str, Any], action: str) -> None:
    outcome(PARSERS["mde"], {**record, "ActionType": action})


LINUX_MESSAGE = json.loads(
    (DATA / "otrf_log4shell_linux_sysmon_syslog.ndjson").read_text().splitlines()[2]
)["SyslogMessage"]


@FAST
@given(cut=st.integers(min_value=0, max_value=len(LINUX_MESSAGE)), junk=st.text(max_size=5))
def test_truncated_sysmon_linux_xml(cut: int, junk: str) -> None:
    outcome(parse_sysmon_linux, LINUX_MESSAGE[:cut] + junk)
    outcome(parse_sysmon_linux, {"SyslogMessage": LINUX_MESSAGE[:cut]})


audit_lines = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda t, serial, body: f"type={t} msg=audit(1700000000.1:{serial}): {body}",
        st.sampled_from(["SYSCALL", "EXECVE", "PATH", "SOCKADDR", "CWD", "EOE", "X"]),
        st.integers(min_value=0, max_value=5),
        st.lists(
            st.builds(
                lambda k, v: f"{k}={v}",
                st.sampled_from(
                    [
                        "arch",
                        "syscall",
                        "success",
                        "exit",
                        "pid",
                        "ppid",
                        "a0",
                        "a1",
                        "a2",
                        "argc",
                        "saddr",
                        "name",
                        "nametype",
                        "exe",
                        "cwd",
                        "a0[0]",
                        "ses",
                    ]
                ),
                st.sampled_from(
                    [
                        "c000003e",
                        "59",
                        "42",
                        "257",
                        "yes",
                        "no",
                        "-115",
                        "1",
                        "0200",
                        "0A00",
                        "ZZ",
                        '"x"',
                        "CREATE",
                        "DELETE",
                        "NORMAL",
                        "(null)",
                        "99999999999999999999999",
                        "41",
                    ]
                ),
            ),
            max_size=8,
        ).map(" ".join),
    ),
)


@FAST
@given(lines=st.lists(audit_lines, max_size=12))
def test_random_auditd_lines(lines: list[str]) -> None:
    for result in parse_auditd(enumerate(lines, 1), "<fuzz>"):
        assert (result.error is None) != (result.events is None)
        if result.error is not None:
            assert result.error.reason


@FAST
@given(data=st.binary(max_size=400), format=st.sampled_from([None, *FORMATS]))
def test_random_bytes_through_the_reader(data: bytes, format: str | None) -> None:
    summary = Summary()
    results = list(iter_results(io.BytesIO(data), format=format, summary=summary))
    for result in results:
        assert result.events or result.skipped or (result.dead and result.dead.reason)
        if result.dead is not None:
            assert not result.dead.reason.startswith("internal error"), result.dead
    [stats] = summary.files.values()
    total = stats.accepted + sum(stats.skipped.values()) + sum(stats.rejected.values())
    assert total == stats.records == len(results)


@FAST
@given(records=st.lists(json_values, max_size=5), format=st.sampled_from([None, *FORMATS]))
def test_random_ndjson_through_the_reader(records: list[Any], format: str | None) -> None:
    data = "\n".join(json.dumps(r) for r in records).encode()
    for result in iter_results(io.BytesIO(data), format=format):
        if result.dead is not None:
            assert not result.dead.reason.startswith("internal error"), result.dead
