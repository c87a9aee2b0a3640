"""Sigma's matching semantics hold on the real server, modifier by modifier.

One small event story is written once per test; each case compiles an inline Sigma rule and
checks exactly which processes it matches (uids are the story's `uid`s with the `g:` prefix).
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.ingest.model import Event, Kind, Origin, ProcessRef
from provgraph.queries.engine import evaluate
from provgraph.queries.examples import BASE, events_from_specs
from provgraph.queries.sigma import compile_path

STORY: list[dict[str, Any]] = [
    {
        "kind": "process_start",
        "t": 0,
        "host": "h1",
        "uid": "cmd",
        "pid": 100,
        "image": "C:\\Windows\\System32\\CMD.EXE",
        "command_line": 'cmd.exe /c "reg add HKLM\\Software\\X /v Y"',
        "user": "CORP\\alice",
        "parent": {"uid": "explorer", "image": "C:\\Windows\\explorer.exe", "user": "CORP\\alice"},
    },
    {
        "kind": "process_start",
        "t": 10,
        "host": "h1",
        "uid": "ps",
        "pid": 7000,
        "image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "command_line": "powershell -NoP -Enc SQBFAFgA",
        "user": "CORP\\bob",
        "parent": {"uid": "cmd"},
    },
    {  # no command line at all
        "kind": "process_start",
        "t": 20,
        "host": "h1",
        "uid": "bare",
        "pid": 300,
        "image": "C:\\Tools\\bare.exe",
        "user": "CORP\\alice",
        "parent": {"uid": "cmd"},
    },
    {"kind": "network_connect", "t": 30, "host": "h1", "uid": "ps", "ip": "10.1.2.3", "port": 445},
    {"kind": "network_connect", "t": 31, "host": "h1", "uid": "ps", "ip": "192.0.2.7", "port": 443},
    {"kind": "network_connect", "t": 32, "host": "h1", "uid": "cmd", "ip": "fe80::1", "port": 80},
    {
        "kind": "network_connect",
        "t": 33,
        "host": "h1",
        "uid": "cmd",
        "ip": "2001:db8::5",
        "port": 8,
    },
    {
        "kind": "network_connect",
        "t": 34,
        "host": "h1",
        "uid": "bare",
        "ip": "0:0:0:0:0:0:0:1",
        "port": 9,
    },
    {"kind": "file_write", "t": 40, "host": "h1", "uid": "ps", "path": "C:\\Temp\\a.ps1"},
    {
        "kind": "file_write",
        "t": 41,
        "host": "h1",
        "uid": "cmd",
        "path": "C:\\Temp\\b.ps1",
        "op": "delete",
    },
]


def _dns(uid: str, name: str, t: int) -> Event:
    return Event(
        kind=Kind.DNS_QUERY,
        ts=BASE + timedelta(seconds=t),
        host="h1",
        process=ProcessRef(uid=f"g:{uid}"),
        origin=Origin("test", "<story>", 100 + t),
        query_name=name,
    )


@pytest.fixture
def story(graph: Graph) -> Graph:
    events = events_from_specs(STORY) + [_dns("ps", "evil.example", 50), _dns("cmd", "ok.test", 51)]
    write_events(graph, events)
    return graph


def matches(
    graph: Graph,
    detection: dict[str, Any],
    category: str = "process_creation",
    product: str = "windows",
    **window: Any,
) -> set[str]:
    doc = {
        "title": "semantics",
        "id": "7c3b0e4e-0000-4000-8000-000000000001",
        "logsource": {"category": category, "product": product},
        "detection": detection,
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rule.yml"
        path.write_text(yaml.safe_dump(doc))
        (result,) = compile_path([path]).results
    assert result.rule is not None, result.reason
    return {m.row["process_uid"].removeprefix("g:") for m in evaluate(graph, result.rule, **window)}


def sel(category: str = "process_creation", **fields: Any) -> dict[str, Any]:
    return {"selection": fields, "condition": "selection"}


PROCESS_CASES = [
    ("case-insensitive equality", {"Image": "c:\\windows\\system32\\cmd.exe"}, {"cmd"}),
    ("endswith", {"Image|endswith": "\\CMD.exe"}, {"cmd"}),
    ("startswith list", {"Image|startswith": ["C:\\TOOLS", "c:\\nothing"]}, {"bare"}),
    ("contains all", {"CommandLine|contains|all": ["REG ADD", "hklm"]}, {"cmd"}),
    ("contains all, one missing", {"CommandLine|contains|all": ["reg add", "hkcu"]}, set()),
    ("inner wildcard", {"CommandLine": "*reg add HK?M*\\\\X /v*"}, {"cmd"}),
    ("re is case-sensitive", {"CommandLine|re": "-enc\\s"}, set()),
    ("re with i", {"CommandLine|re|i": "-enc\\s"}, {"ps"}),
    ("windash", {"CommandLine|windash|contains": " -c "}, {"cmd"}),
    ("parent through SPAWNED", {"ParentImage|endswith": "\\cmd.exe"}, {"ps", "bare"}),
    ("null", {"CommandLine": None}, {"bare"}),
    ("exists false", {"CommandLine|exists": False}, {"bare"}),
    ("fieldref", {"User|fieldref": "ParentUser"}, {"cmd", "bare"}),
    ("gt on pid", {"ProcessId|gt": 299}, {"ps", "bare"}),
    ("cased", {"CommandLine|cased|contains": "-NoP"}, {"ps"}),
    ("cased misses", {"CommandLine|cased|contains": "-nop"}, set()),
]


@pytest.mark.parametrize(
    ("name", "fields", "expected"), PROCESS_CASES, ids=[c[0] for c in PROCESS_CASES]
)
def test_process_creation_semantics(
    story: Graph, name: str, fields: dict[str, Any], expected: set[str]
) -> None:
    assert matches(story, sel(**fields)) == expected


def test_not_holds_for_an_event_without_the_filtered_field(story: Graph) -> None:
    detection = {
        "selection": {"User|endswith": "\\alice"},
        "filter": {"CommandLine|contains": "reg"},
        "condition": "selection and not filter",
    }
    assert matches(story, detection) == {"bare"}


def test_time_window_is_the_event_time(story: Graph) -> None:
    detection = sel(**{"Image|endswith": ".exe"})
    assert matches(story, detection, until=BASE + timedelta(seconds=5)) == {"cmd"}
    assert matches(story, detection, since=BASE + timedelta(seconds=15)) == {"bare"}


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [
        ("10.0.0.0/8", {"ps"}),
        ("10.1.2.0/30", {"ps"}),
        ("10.1.2.0/31", set()),
        ("10.1.2.4/30", set()),
        ("192.0.2.0/24", {"ps"}),
        ("fe80::/10", {"cmd"}),
        ("2001:db8::/32", {"cmd"}),
        ("::1/128", {"bare"}),  # written in full, 0:0:0:0:0:0:0:1, as Sysmon does
        ("fc00::/7", set()),
    ],
)
def test_cidr_is_exact(story: Graph, cidr: str, expected: set[str]) -> None:
    assert matches(story, sel(**{"DestinationIp|cidr": cidr}), "network_connection") == expected


def test_network_fields(story: Graph) -> None:
    assert matches(story, sel(DestinationPort=[445, 80]), "network_connection") == {"ps", "cmd"}
    detection = {
        "s": {"Image|endswith": "\\powershell.exe"},
        "f": {"DestinationIp|cidr": "10.0.0.0/8"},
        "condition": "s and not f",
    }
    assert matches(story, detection, "network_connection") == {"ps"}  # its 192.0.2.7 connection


def test_file_event_is_creation_and_file_delete_is_deletion(story: Graph) -> None:
    assert matches(story, sel(**{"TargetFilename|endswith": ".ps1"}), "file_event") == {"ps"}
    assert matches(story, sel(**{"TargetFilename|endswith": ".ps1"}), "file_delete") == {"cmd"}
    # the acting process's own facts come from its start event
    assert matches(story, sel(**{"CommandLine|contains": "-enc"}), "file_event") == {"ps"}


def test_dns_query(story: Graph) -> None:
    assert matches(story, sel(**{"QueryName|endswith": ".EXAMPLE"}), "dns_query") == {"ps"}


def test_a_rule_judges_only_hosts_of_its_product(graph: Graph) -> None:
    """SigmaHQ's "Execution Of Non-Existing File" (a Windows image without a backslash) fired
    on every Linux process of the bench before hosts knew their platform. A rule for one
    product leaves out hosts known to run another; a host nothing tells about stays in."""
    specs = [
        {"kind": "process_start", "t": 0, "host": "win1", "uid": "w", "pid": 1,
         "image": "C:\\Windows\\System32\\bash.exe"},
        {"kind": "process_start", "t": 1, "host": "lin1", "uid": "l", "pid": 2,
         "image": "/usr/bin/bash"},
        {"kind": "process_start", "t": 2, "host": "odd1", "uid": "u", "pid": 3, "image": "bash"},
    ]  # fmt: skip
    write_events(graph, events_from_specs(specs))
    hosts = {
        r["name"]: r["os"]
        for r in graph.read("MATCH (h:Host) RETURN h.name AS name, h.os AS os", {})
    }
    assert hosts == {"win1": "windows", "lin1": "linux", "odd1": None}
    detection = sel(**{"Image|endswith": "bash"})
    assert matches(graph, detection) == {"u"}  # not w (bash.exe), never l (Linux)
    assert matches(graph, sel(**{"Image|contains": "bash"})) == {"w", "u"}
    assert matches(graph, sel(**{"Image|contains": "bash"}), product="linux") == {"l", "u"}
