"""A small, realistic intrusion on one workstation, as normalised events, plus alerts shaped
exactly as the rule engine writes them (until its writer can be called from tests).

ws1: explorer.exe -> cmd.exe -> powershell.exe, which downloads payload.exe (DNS for
c2.example, a connection to 203.0.113.7:443), writes it, and runs it; payload.exe connects
back to 203.0.113.7:443 and spawns whoami.exe. A second host, ws2, runs notepad quietly.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from neo4j import ManagedTransaction
from provgraph.api.settings import Settings
from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.ingest.model import Event, FileOp, Kind, Origin, ProcessRef
from provgraph.queries.alerts import next_seq, publish_seq

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
PAYLOAD = r"C:\Users\alice\AppData\Local\Temp\payload.exe"

EXPLORER = ProcessRef(
    uid="g:explorer",
    pid=1000,
    image=r"C:\Windows\explorer.exe",
    user="CORP\\alice",
    start_time=T0 - timedelta(hours=1),
)
CMD = ProcessRef(
    uid="g:cmd",
    pid=2000,
    image=r"C:\Windows\System32\cmd.exe",
    command_line="cmd.exe /c powershell -enc ...",
    user="CORP\\alice",
    start_time=T0,
)
PWSH = ProcessRef(
    uid="g:pwsh",
    pid=3000,
    image=r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
    command_line="powershell -enc SQBFAFgA",
    user="CORP\\alice",
    start_time=T0 + timedelta(seconds=5),
)
PAYLOAD_P = ProcessRef(
    uid="g:payload",
    pid=4000,
    image=PAYLOAD,
    command_line=PAYLOAD,
    user="CORP\\alice",
    start_time=T0 + timedelta(seconds=40),
)
WHOAMI = ProcessRef(
    uid="g:whoami",
    pid=5000,
    image=r"C:\Windows\System32\whoami.exe",
    command_line="whoami /all",
    user="CORP\\alice",
    start_time=T0 + timedelta(seconds=50),
)
NOTEPAD = ProcessRef(
    uid="g:notepad", pid=6000, image=r"C:\Windows\notepad.exe", user="CORP\\bob", start_time=T0
)


def _origin(line: int) -> Origin:
    return Origin("sysmon", "tests/scenario.ndjson", line)


def events() -> list[Event]:
    def start(line: int, proc: ProcessRef, parent: ProcessRef | None, host: str = "ws1") -> Event:
        return Event(
            Kind.PROCESS_START,
            proc.start_time or T0,
            host,
            proc,
            _origin(line),
            parent=parent,
            raw={"EventID": 1, "Image": proc.image, "line": line},
        )

    return [
        start(1, CMD, EXPLORER),
        start(2, PWSH, CMD),
        Event(
            Kind.DNS_QUERY,
            T0 + timedelta(seconds=10),
            "ws1",
            PWSH,
            _origin(3),
            query_name="c2.example",
            query_results=("203.0.113.7",),
            raw={"EventID": 22, "QueryName": "c2.example"},
        ),
        Event(
            Kind.NETWORK_CONNECT,
            T0 + timedelta(seconds=12),
            "ws1",
            PWSH,
            _origin(4),
            remote_ip="203.0.113.7",
            remote_port=443,
            protocol="tcp",
            remote_hostname="c2.example",
            raw={"EventID": 3, "DestinationIp": "203.0.113.7"},
        ),
        Event(
            Kind.FILE_WRITE,
            T0 + timedelta(seconds=20),
            "ws1",
            PWSH,
            _origin(5),
            file_path=PAYLOAD,
            file_op=FileOp.CREATE,
            raw={"EventID": 11, "TargetFilename": PAYLOAD},
        ),
        start(6, PAYLOAD_P, PWSH),
        Event(
            Kind.NETWORK_CONNECT,
            T0 + timedelta(seconds=45),
            "ws1",
            PAYLOAD_P,
            _origin(7),
            remote_ip="203.0.113.7",
            remote_port=443,
            protocol="tcp",
            raw={"EventID": 3, "DestinationIp": "203.0.113.7", "Image": PAYLOAD},
        ),
        start(8, WHOAMI, PAYLOAD_P),
        start(9, NOTEPAD, None, host="ws2"),
    ]


def load(graph: Graph) -> None:
    write_events(graph, events())


CREATE_ALERT = """
CREATE (a:Alert {id: $id, rule_id: $rule_id, rule_name: $rule_name, severity: $severity,
        risk_score: $risk_score, tactics: $tactics, techniques: $techniques, host: $host,
        first_seen: $first_seen, last_seen: $last_seen, hit_count: 1, status: 'open',
        assignee: null, created_at: datetime(), updated_at: datetime(), seq: $seq,
        summary: $summary, details: $details})
WITH a
UNWIND $entities AS entity
CALL (a, entity) {
  OPTIONAL MATCH (p:Process {uid: entity.key}) WHERE entity.label = 'Process'
  OPTIONAL MATCH (f:File {key: entity.key}) WHERE entity.label = 'File'
  OPTIONAL MATCH (c:Connection {key: entity.key}) WHERE entity.label = 'Connection'
  OPTIONAL MATCH (h:Host {name: entity.key}) WHERE entity.label = 'Host'
  WITH a, entity, coalesce(p, f, c, h) AS target
  WHERE target IS NOT NULL
  CREATE (a)-[:INVOLVES {role: entity.role}]->(target)
}
RETURN a.seq AS seq
"""

PAYLOAD_KEY = "ws1|" + PAYLOAD.lower()


def create_alert(
    graph: Graph,
    *,
    alert_id: str | None = None,
    rule_id: str = "download_exec",
    severity: str = "high",
    host: str = "ws1",
    entities: list[dict[str, Any]] | None = None,
    publish: bool = True,
) -> dict[str, Any]:
    """An Alert as queries/ writes it: seq from the shared counter, in its own transaction,
    published after the commit (unless `publish=False`, to look at the gap in between)."""
    alert_id = alert_id or uuid.uuid4().hex
    if entities is None:
        entities = [
            {"label": "Process", "key": PWSH.uid, "role": "downloader"},
            {"label": "File", "key": PAYLOAD_KEY, "role": "payload"},
            {"label": "Process", "key": PAYLOAD_P.uid, "role": "payload_process"},
            {"label": "Connection", "key": "203.0.113.7|443|tcp", "role": "c2"},
            {"label": "Host", "key": host, "role": "host"},
        ]

    def unit(tx: ManagedTransaction) -> int:
        seq = next_seq(tx)
        tx.run(
            CREATE_ALERT,
            id=alert_id,
            rule_id=rule_id,
            rule_name="Download then execute",
            severity=severity,
            risk_score=73,
            tactics=["TA0002", "TA0011"],
            techniques=["T1059.001", "T1105"],
            host=host,
            first_seen=T0,
            last_seen=T0 + timedelta(seconds=50),
            seq=seq,
            summary="powershell.exe wrote and ran payload.exe",
            details=json.dumps({"file": PAYLOAD}),
            entities=entities,
        ).consume()
        return seq

    seq = graph.write_tx(unit)
    if publish:
        publish_seq(graph)
    return {"id": alert_id, "seq": seq}


def api_settings(**overrides: object) -> Settings:
    """Settings for an app under test: no webhook worker unless asked, no key cache."""
    base = {"webhook_enabled": False, "key_cache_seconds": 0.0}
    return Settings(**{**base, **overrides})  # type: ignore[arg-type]
