"""ECS dns events of Elastic Defend (`endpoint.events.network`, event.category network)."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

from provgraph.ingest.ecs import parse_ecs
from provgraph.ingest.errors import Skipped
from provgraph.ingest.model import Kind, Origin
from provgraph.ingest.reader import iter_results

ORIGIN = Origin("ecs", "<test>", 1)

# The shape Elastic Defend writes for a Windows DNS lookup result (data_stream
# logs-endpoint.events.network): the question, the resolved addresses and the process.
LOOKUP_RESULT: dict[str, Any] = {
    "@timestamp": "2024-05-01T08:00:04.217Z",
    "agent": {"type": "endpoint", "version": "8.13.2"},
    "data_stream": {"dataset": "endpoint.events.network", "type": "logs"},
    "event": {
        "action": "lookup_result",
        "category": ["network"],
        "type": ["protocol", "info"],
        "kind": "event",
        "outcome": "success",
        "dataset": "endpoint.events.network",
    },
    "host": {"name": "ws7.corp.example", "os": {"family": "windows"}},
    "network": {"protocol": "dns"},
    "dns": {
        "question": {"name": "payload.example", "type": "A"},
        "resolved_ip": ["203.0.113.9", "203.0.113.10"],
        "Ext": {"status": 0},
    },
    "message": "DNS event",
    "process": {
        "entity_id": "NzRmMjFiZTgtNDY1Ni00YWRkLWE2ZTYtZDE3MmU1ZmU5N2Ix",
        "pid": 4312,
        "executable": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "name": "powershell.exe",
    },
    "user": {"domain": "CORP", "name": "alice"},
}


def test_a_lookup_result_is_a_dns_query_with_its_answers() -> None:
    [event] = parse_ecs(LOOKUP_RESULT, ORIGIN)
    assert event.kind is Kind.DNS_QUERY and event.query_name == "payload.example"
    assert event.query_results == ("203.0.113.9", "203.0.113.10")
    assert event.process is not None
    assert event.process.uid == "e:NzRmMjFiZTgtNDY1Ni00YWRkLWE2ZTYtZDE3MmU1ZmU5N2Ix"
    assert event.process.pid == 4312 and event.host == "ws7"


def test_answers_come_from_dns_answers_too_without_duplicates() -> None:
    record = copy.deepcopy(LOOKUP_RESULT)
    record["dns"]["resolved_ip"] = "203.0.113.9"  # a single keyword, not a list
    record["dns"]["answers"] = [
        {"name": "payload.example", "type": "CNAME", "data": "edge.cdn.example"},
        {"name": "edge.cdn.example", "type": "A", "data": "203.0.113.9", "ttl": 60},
        {"type": "AAAA", "data": "2001:db8::9"},
    ]
    [event] = parse_ecs(record, ORIGIN)
    assert event.query_results == ("203.0.113.9", "edge.cdn.example", "2001:db8::9")


def test_flat_dotted_fields_and_mapped_addresses() -> None:
    flat = {
        "@timestamp": "2024-05-01T08:00:04.217Z",
        "event.category": "network",
        "event.action": "lookup_result",
        "host.name": "ws7",
        "process.pid": 4312,
        "dns.question.name": "payload.example",
        "dns.resolved_ip": ["::ffff:203.0.113.9"],
    }
    [event] = parse_ecs(flat, ORIGIN)
    assert event.query_results == ("203.0.113.9",) and event.process is not None
    assert event.process.uid == "p:ws7:4312"


def test_the_request_before_the_result_is_skipped_so_a_lookup_counts_once() -> None:
    request = copy.deepcopy(LOOKUP_RESULT)
    request["event"]["action"] = "lookup_requested"
    del request["dns"]["resolved_ip"]
    skipped = parse_ecs(request, ORIGIN)
    assert isinstance(skipped, Skipped) and "lookup_requested" in skipped.reason


def test_a_dns_record_without_a_process_is_skipped_with_the_reason() -> None:
    wire = copy.deepcopy(LOOKUP_RESULT)
    del wire["process"]
    skipped = parse_ecs(wire, ORIGIN)
    assert isinstance(skipped, Skipped) and "no process" in skipped.reason


def test_ndjson_of_dns_events_is_detected_and_read() -> None:
    request = copy.deepcopy(LOOKUP_RESULT)
    request["event"]["action"] = "lookup_requested"
    lines = "\n".join(json.dumps(r) for r in (request, LOOKUP_RESULT)) + "\n"
    found = list(iter_results(io.BytesIO(lines.encode())))
    assert [r.origin.source for r in found] == ["ecs", "ecs"]
    assert found[0].skipped is not None and not found[0].events
    assert [e.kind for e in found[1].events] == [Kind.DNS_QUERY]
