"""Database-free pieces of the API: signatures, cursors, OCSF mapping, GraphML, body limits."""

from __future__ import annotations

import asyncio
import gzip
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from provgraph.api.alerts.ocsf import to_detection_finding
from provgraph.api.graphs.export import elements, graphml
from provgraph.api.ingestion.service import BadEncoding, BodyTooLarge, receive
from provgraph.api.keys.service import parse_token
from provgraph.api.metrics import RouteTemplates
from provgraph.api.query.service import QueryRefused, check_plan
from provgraph.api.webhooks.signing import sign, verify
from provgraph.queries.alerts.models import AlertRead, Entity
from provgraph.queries.cursors import decode_cursor, encode_cursor
from provgraph.queries.errors import InvalidCursor
from provgraph.queries.subgraph import Subgraph


def test_signature_roundtrip_and_replay_window() -> None:
    body = b'{"a":1}'
    signature = sign("s3cret-s3cret-s3cret", 1_700_000_000, body)
    assert signature.startswith("v1=") and len(signature) == 3 + 64
    assert verify("s3cret-s3cret-s3cret", "1700000000", body, signature, now=1_700_000_100)
    assert not verify(
        "s3cret-s3cret-s3cret", "1700000000", body + b" ", signature, now=1_700_000_100
    )
    assert not verify("s3cret-s3cret-s3cret", "1700000000", body, signature, now=1_700_009_999)
    assert not verify("s3cret-s3cret-s3cret", "soon", body, signature)


def test_cursor_is_opaque_and_kind_checked() -> None:
    token = encode_cursor("alerts", {"seq": 42})
    assert "42" not in token and decode_cursor("alerts", token)["seq"] == 42
    with pytest.raises(InvalidCursor) as refused:
        decode_cursor("timeline", token)
    assert "issued for timeline pages" in str(refused.value)
    with pytest.raises(InvalidCursor):
        decode_cursor("alerts", "%%%")


def test_key_token_shape() -> None:
    assert parse_token("pgk_0123456789ab_secret") == ("0123456789ab", "secret")
    assert parse_token("pgk_short_secret") is None
    assert parse_token("Bearer x") is None


def test_ocsf_mapping() -> None:
    t = datetime(2024, 5, 1, tzinfo=UTC)
    alert = AlertRead(
        id="a1",
        seq=3,
        rule_id="r",
        rule_name="Rule",
        severity="medium",
        status="acknowledged",
        tactics=["TA0002"],
        techniques=["T1059.001"],
        first_seen=t,
        last_seen=t,
        created_at=t,
        updated_at=t,
        risk_score=40,
    )
    entity = Entity(
        role="actor",
        id="Process:g:1",
        kind="Process",
        label="x.exe (1)",
        properties={"uid": "g:1", "pid": 1, "name": "x.exe", "image": "C:\\x.exe"},
    )
    finding = to_detection_finding(alert, [entity])
    assert finding["class_uid"] == 2004 and finding["type_uid"] == 200402
    assert finding["severity_id"] == 3 and finding["status_id"] == 2
    assert finding["finding_info"]["attacks"][0]["sub_technique"]["uid"] == "T1059.001"
    assert finding["finding_info"]["attacks"][0]["technique"]["uid"] == "T1059"
    assert finding["evidences"][0]["process"]["pid"] == 1
    assert finding["time"] == int(t.timestamp() * 1000)
    assert "device" not in finding  # no host: pruned, not null


def test_graphml_survives_control_characters_and_reserved_names() -> None:
    sub = Subgraph(max_nodes=10)
    sub.add_node("1", ["Process"], {"uid": "g:1", "command_line": "a\x00b\x1bc", "pid": 1})
    sub.add_node("2", ["File"], {"key": "h|c:\\x", "path": "C:\\x", "name": "x"})
    sub.add_edge("r", "WROTE", "1", "2", {"source": "sysmon:f:1", "times": [1], "count": 2})
    cy = elements(sub)
    edge = cy["edges"][0]["data"]
    assert edge["source"] == "Process:g:1" and edge["prop_source"] == "sysmon:f:1"
    assert "times" not in edge
    root = ET.fromstring(graphml(sub))
    ns = "{http://graphml.graphdrawing.org/xmlns}"
    assert len(root.findall(f"{ns}graph/{ns}node")) == 2
    assert len(root.findall(f"{ns}graph/{ns}edge")) == 1


# Plan shapes as Neo4j 5.26 reports them (EXPLAIN in a read transaction); the integration
# tests in tests/integration/api/test_api_security.py ask the real server.
def _plan(*operators: tuple[str, str | None]) -> dict[str, object]:
    plan: dict[str, object] | None = None
    for kind, details in reversed(operators):
        node: dict[str, object] = {"operatorType": kind, "args": {"Details": details}}
        if plan is not None:
            node["children"] = [plan]
        plan = node
    assert plan is not None
    return plan


@pytest.mark.parametrize(
    ("query_type", "plan", "slug"),
    [
        ("r", _plan(("ProduceResults@neo4j", "l"), ("LoadCSV@neo4j", "l")), "outside-graph"),
        (
            "s",
            _plan(("ProcedureCall@neo4j", "dbms.listConfig() :: (name :: STRING)")),
            "procedure-refused",
        ),
        (
            "r",
            _plan(("ProcedureCall@neo4j", "db.resampleOutdatedIndexes() :: ()")),
            "procedure-refused",
        ),
        ("r", _plan(("ShowTransactions@neo4j", "defaultColumns")), "command-refused"),
        ("r", _plan(("TerminateTransactions@neo4j", "transactions(x)")), "command-refused"),
        ("s", _plan(("AdministrationCommand@system", None)), "command-refused"),
        ("s", _plan(("db.labels@system", None)), "database-refused"),
        ("r", _plan(("TransactionApply@neo4j", "IN TRANSACTIONS")), "in-transactions-refused"),
        ("r", _plan(("NodeByLabelScan@neo4j", "k:ApiKey")), "internal-records"),
        ("r", _plan(("UnionNodeByLabelsScan@neo4j", "n:Process|`ApiKey`")), "internal-records"),
        (
            "r",
            _plan(("NodeUniqueIndexSeek@neo4j", "UNIQUE k:ApiKey(id) WHERE id = $autostring_0")),
            "internal-records",
        ),
        (
            "r",
            _plan(("DirectedRelationshipTypeScan@neo4j", "(a)-[r:DELIVERED]->(b)")),
            "internal-records",
        ),
        ("w", _plan(("Create@neo4j", "(anon_0:Marker)")), "write-refused"),
        ("s", _plan(("CreateIndex@neo4j", "RANGE INDEX x FOR (:P) ON (a)")), "write-refused"),
    ],
)
def test_plan_check_refuses(query_type: str, plan: dict[str, object], slug: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        check_plan(plan, query_type=query_type, database="neo4j")
    assert refused.value.slug == slug


def test_plan_check_passes_reads() -> None:
    check_plan(
        _plan(("ProcedureCall@neo4j", "db.labels() :: (label :: STRING)")),
        query_type="r",
        database="neo4j",
    )
    # Excluding the API's records is fine; only reading them by label is refused.
    check_plan(
        _plan(("Filter@neo4j", "NOT n:ApiKey"), ("AllNodesScan@neo4j", "n")),
        query_type="r",
        database="neo4j",
    )


def test_route_templates() -> None:
    routes = RouteTemplates(lambda: ["/api/v1/alerts", "/api/v1/alerts/{alert_id}"])
    assert routes.match("/api/v1/alerts/xyz") == "/api/v1/alerts/{alert_id}"
    assert routes.match("/etc/passwd") == "unmatched"


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _receive(
    *parts: bytes, gzipped: bool, max_bytes: int = 10_000, max_decoded: int = 10_000
) -> bytes:
    spool, _, _ = asyncio.run(
        receive(_chunks(*parts), gzipped=gzipped, max_bytes=max_bytes, max_decoded=max_decoded)
    )
    return spool.read()


def test_receive_gunzips_members_and_enforces_limits() -> None:
    two_members = gzip.compress(b"a\n") + gzip.compress(b"b\n")
    assert _receive(two_members[:5], two_members[5:], gzipped=True) == b"a\nb\n"
    assert _receive(b"plain", gzipped=False) == b"plain"
    with pytest.raises(BodyTooLarge):
        _receive(b"x" * 20, gzipped=False, max_bytes=10)
    with pytest.raises(BodyTooLarge):
        _receive(gzip.compress(b"0" * 100_000), gzipped=True, max_decoded=1000)
    with pytest.raises(BadEncoding):
        _receive(b"not gzip", gzipped=True)
    with pytest.raises(BadEncoding):
        _receive(gzip.compress(b"abc")[:-4], gzipped=True)
