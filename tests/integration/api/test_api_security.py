"""Trying to break the line between an API key and the rest of Neo4j (issue 13, "the leak").

A world with every kind of API record (keys, one made before sealing; webhooks, one stored in
clear before sealing; a delivery; an audit entry), then probing queries through
`POST /query/cypher` with a `read` key (403 for every one) and a `hunt` key: whole-graph dumps
return no secret and none of the API's records as nodes, commands and procedures that reach
beyond the graph are refused, and a refused TERMINATE leaves the transaction it named alive.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from provgraph.api.keys.service import CREATE_KEY, create_key
from provgraph.api.query.service import (
    ALLOWED_PROCEDURES,
    INTERNAL_LABELS,
    INTERNAL_RELATIONSHIP_TYPES,
)
from provgraph.api.sealing import Sealer, load_sealer
from provgraph.api.webhooks import service as webhooks
from provgraph.api.webhooks.worker import WebhookWorker
from provgraph.graph.tx import Graph

from tests.integration.api import scenario
from tests.integration.api.scenario import api_settings

Q = "/api/v1/query/cypher"
PROBLEM = "application/problem+json"


@dataclass
class World:
    client: TestClient
    graph: Graph
    sealer: Sealer
    read: dict[str, str]
    hunt: dict[str, str]
    admin: dict[str, str]
    forbidden: list[str] = field(default_factory=list)  # no response may contain any of these

    def leaks(self, text: str) -> list[str]:
        return [secret for secret in self.forbidden if secret in text]


def _key_strings(sealer: Sealer, token: str) -> list[str]:
    secret = token.split("_", 2)[2]
    return [
        token,
        secret,
        hashlib.sha256(secret.encode()).hexdigest(),  # the pre-sealing hash
        sealer.keyed_hash(secret),  # the keyed hash, before sealing
    ]


@pytest.fixture
def world(loaded: Graph, make_client: Callable[..., TestClient]) -> World:
    sealer = load_sealer(api_settings())
    alert = scenario.create_alert(loaded)

    # Made before sealing existed: a key stored as plain SHA-256, a webhook stored in clear.
    legacy_id, legacy_secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    loaded.write(
        CREATE_KEY,
        {
            "id": legacy_id,
            "name": "legacy-soar",
            "hash": hashlib.sha256(legacy_secret.encode()).hexdigest(),
            "scopes": ["read"],
        },
    )
    legacy_token = f"pgk_{legacy_id}_{legacy_secret}"
    old_hook_secret, old_url_token = "whsec-old-" + secrets.token_hex(16), secrets.token_hex(16)
    old_url = f"http://127.0.0.1:9/old?token={old_url_token}"
    loaded.write(
        webhooks.CREATE_SUBSCRIPTION,
        {
            "id": uuid.uuid4().hex,
            "url": old_url,
            "secret": old_hook_secret,
            "description": "made before sealing",
            "min_severity": None,
            "cursor": 0,
        },
    )

    client = make_client()  # start-up seals what was stored in clear
    tokens = {
        scope: create_key(loaded, name=f"probe-{scope}", scopes=[scope], sealer=sealer).secret
        for scope in ("read", "hunt", "admin", "triage")
    }
    headers = {scope: {"Authorization": f"Bearer {t}"} for scope, t in tokens.items()}

    hook_secret, url_token = "whsec-" + secrets.token_hex(16), secrets.token_hex(16)
    url = f"http://127.0.0.1:9/hook?token={url_token}"
    created = client.post(
        "/api/v1/webhooks", headers=headers["admin"], json={"url": url, "secret": hook_secret}
    )
    assert created.status_code == 201, created.text
    sub_id = created.json()["id"]
    triaged = client.patch(
        f"/api/v1/alerts/{alert['id']}",
        headers=headers["triage"],
        json={"status": "acknowledged", "comment": "looking"},
    )
    assert triaged.status_code == 200, triaged.text
    loaded.write(
        webhooks.RECORD_DELIVERY,
        {
            "sub_id": sub_id,
            "id": uuid.uuid4().hex,
            "alert_id": alert["id"],
            "alert_seq": alert["seq"],
            "status": "failed",
            "attempts": 1,
            "status_code": None,
            "error": "ConnectError: refused",
            "first_at": scenario.T0,
            "last_at": scenario.T0,
            "log": webhooks.encode_log([{"attempt": 1}]),
            "lease": 0,
        },
    )
    # The legacy key still works, and its first use upgrades its hash.
    assert client.get("/api/v1/alerts", headers={"X-API-Key": legacy_token}).status_code == 200

    forbidden = [hook_secret, url_token, url, old_hook_secret, old_url_token, old_url]
    for token in [*tokens.values(), legacy_token]:
        forbidden += _key_strings(sealer, token)
    return World(
        client=client,
        graph=loaded,
        sealer=sealer,
        read=headers["read"],
        hunt=headers["hunt"],
        admin=headers["admin"],
        forbidden=forbidden,
    )


def test_nothing_secret_is_stored_in_clear(world: World) -> None:
    """Whatever a query can reach, the database itself holds no secret in clear."""
    everything = world.graph.read(
        "MATCH (n) OPTIONAL MATCH (n)-[r]->() "
        "RETURN labels(n) AS labels, properties(n) AS node, collect(properties(r)) AS rels"
    )
    assert world.leaks(repr(everything)) == []
    hashes = world.graph.read("MATCH (k:ApiKey) RETURN k.name AS name, k.hash AS hash")
    assert len(hashes) == 5 and all(row["hash"].startswith("pgs1:") for row in hashes)
    hooks = world.graph.read("MATCH (s:WebhookSubscription) RETURN s.url AS url, s.secret AS s")
    assert len(hooks) == 2
    assert all(row["url"].startswith("pgs1:") and row["s"].startswith("pgs1:") for row in hooks)


# Whole-graph dumps, in the shapes a hunter (or a thief) would write them: they run, and
# return neither a secret nor any of the API's records as a node, relationship or path.
DUMPS = [
    "MATCH (n) RETURN n",
    "MATCH (n) RETURN properties(n) AS p",
    "MATCH (n) RETURN labels(n) AS l, keys(n) AS k",
    "MATCH (n) RETURN n {.*} AS m",
    "MATCH (n) UNWIND keys(n) AS k RETURN labels(n) AS l, k, n[k] AS v",
    "MATCH (n) RETURN collect(n) AS everything",
    "MATCH (n) RETURN n.hash AS h, n.secret AS s, n.url AS u",
    "MATCH (n) WHERE n.hash IS NOT NULL RETURN n.hash AS h",
    "MATCH ()-[r]->() RETURN r, startNode(r) AS a, endNode(r) AS b",
    "MATCH ()-[r]->() RETURN type(r) AS t, properties(r) AS p, properties(startNode(r)) AS a",
    "MATCH p = ()-[*1..3]-() RETURN p LIMIT 500",
    "MATCH (n) RETURN [(n)-[r]-(m) | [r, m, properties(m)]] AS around",
    "MATCH (n) WHERE n.secret IS NOT NULL RETURN toString(n.secret) + '' AS s",
    "CALL db.schema.visualization()",
    "CALL db.schema.nodeTypeProperties()",
    "CALL db.labels() YIELD label RETURN label",
]


def test_dumps_leak_nothing(world: World) -> None:
    # One world for every probe (building it is most of the cost); failures are collected.
    failures: list[str] = []
    for query in DUMPS:
        refused = world.client.post(Q, headers=world.read, json={"query": query})
        if refused.status_code != 403 or refused.json().get("required_scope") != "hunt":
            failures.append(f"{query}: read key got {refused.status_code}")
        response = world.client.post(Q, headers=world.hunt, json={"query": query})
        if response.status_code != 200:
            failures.append(f"{query}: hunt key got {response.status_code}: {response.text}")
            continue
        if leaked := world.leaks(response.text):
            failures.append(f"{query}: leaked {leaked}")
        rows = response.json()["rows"]
        failures += [
            f"{query}: returned an API record {node['labels']}"
            for node in _nodes(rows)
            if not INTERNAL_LABELS.isdisjoint(node["labels"])
        ]
        failures += [
            f"{query}: returned an API relationship {rel['type']}"
            for rel in _relationships(rows)
            if rel["type"] in INTERNAL_RELATIONSHIP_TYPES
        ]
    assert failures == []


def test_dumps_still_show_the_provenance_graph(world: World) -> None:
    body = world.client.post(Q, headers=world.hunt, json={"query": "MATCH (n) RETURN n"}).json()
    labels = {label for node in _nodes(body["rows"]) for label in node["labels"]}
    assert {"Process", "File", "Host", "Alert"} <= labels
    internal = world.graph.read(
        "MATCH (n) WHERE any(l IN labels(n) WHERE l IN $internal) RETURN count(n) AS n",
        {"internal": sorted(INTERNAL_LABELS)},
    )[0]["n"]
    assert internal >= 8 and body["withheld"] == internal
    assert (
        body["row_count"] == world.graph.read("MATCH (n) RETURN count(n) AS n")[0]["n"] - internal
    )


def test_every_label_through_dynamic_labels(world: World) -> None:
    """`properties()` of every label, reached with a dynamic label (no label scan to refuse):
    the API's records come back only as sealed, non-secret fields."""
    labels = [row["label"] for row in world.graph.read("CALL db.labels() YIELD label")]
    assert set(labels) >= INTERNAL_LABELS
    for label in labels:
        for query in (
            "MATCH (n:$($label)) RETURN n, properties(n) AS p",
            "MATCH (n:$($label)) RETURN properties(n) AS p, keys(n) AS k",
        ):
            response = world.client.post(
                Q, headers=world.hunt, json={"query": query, "parameters": {"label": label}}
            )
            assert response.status_code == 200, (label, response.text)
            assert world.leaks(response.text) == [], label
            if label in INTERNAL_LABELS and "RETURN n," in query:
                assert response.json()["rows"] == [], label


# (query, status, problem slug): each refused, for hunt (and admin) keys alike.
REFUSED = [
    ("SHOW TRANSACTIONS", 403, "command-refused"),
    ("SHOW TRANSACTIONS YIELD *", 403, "command-refused"),
    ("TERMINATE TRANSACTIONS 'neo4j-transaction-1'", 403, "command-refused"),
    ("SHOW USERS", 403, "command-refused"),
    ("SHOW CURRENT USER", 403, "command-refused"),
    ("SHOW DATABASES", 403, "command-refused"),
    ("SHOW SETTINGS", 403, "command-refused"),
    ("SHOW PROCEDURES", 403, "command-refused"),
    ("SHOW FUNCTIONS", 403, "command-refused"),
    ("SHOW INDEXES", 403, "command-refused"),
    ("SHOW CONSTRAINTS", 403, "command-refused"),
    ("ALTER CURRENT USER SET PASSWORD FROM 'a' TO 'b'", 403, "command-refused"),
    ("USE system SHOW TRANSACTIONS", 403, "command-refused"),
    ("USE system CALL db.labels()", 403, "database-refused"),
    ("USE system SHOW USERS", 400, "query-refused"),  # the server itself refuses this one
    ("USE system MATCH (n) RETURN n", 400, "query-refused"),
    ("CALL dbms.listConfig() YIELD name RETURN name", 400, "procedure-refused"),
    ("CALL dbms.components()", 400, "procedure-refused"),
    ("CALL dbms.showCurrentUser()", 400, "procedure-refused"),
    ("CALL dbms.listConnections()", 400, "procedure-refused"),
    ("CALL dbms.info()", 400, "procedure-refused"),
    ("CALL db.info()", 400, "procedure-refused"),
    ("CALL db.clearQueryCaches()", 400, "procedure-refused"),
    ("CALL db.resampleOutdatedIndexes()", 400, "procedure-refused"),
    ("CALL db.prepareForReplanning()", 400, "procedure-refused"),
    ("CALL db.stats.retrieve('GRAPH COUNTS')", 400, "procedure-refused"),
    (
        "RETURN COLLECT { CALL dbms.listConfig() YIELD name RETURN name } AS c",
        400,
        "procedure-refused",
    ),
    ("CALL db.createLabel('Sneaky')", 400, "write-refused"),
    ("CREATE INDEX sneaky IF NOT EXISTS FOR (n:Process) ON (n.user)", 400, "write-refused"),
    ("DROP CONSTRAINT apikey_id_unique", 400, "write-refused"),
    ("MATCH (k:ApiKey) SET k.scopes = ['admin']", 400, "write-refused"),
    ("CALL () { MATCH (n) RETURN n } IN TRANSACTIONS RETURN n", 400, "in-transactions-refused"),
    ("LOAD CSV FROM 'file:///etc/passwd' AS line RETURN line", 400, "outside-graph"),
    ("MATCH (k:ApiKey) RETURN k", 403, "internal-records"),
    ("MATCH (k:ApiKey) RETURN k.name, k.hash", 403, "internal-records"),
    ("MATCH (w:WebhookSubscription) RETURN properties(w)", 403, "internal-records"),
    ("MATCH (d:WebhookDelivery) RETURN d", 403, "internal-records"),
    ("MATCH (n:Process|ApiKey) RETURN n", 403, "internal-records"),
    ("MATCH (a:Alert)-[:HAS_AUDIT]->(e) RETURN e", 403, "internal-records"),
    ("MATCH ()-[r:DELIVERED]->(d) RETURN d", 403, "internal-records"),
]


def test_beyond_the_graph_is_refused(world: World) -> None:
    before = _server_state(world.graph)
    failures: list[str] = []
    for query, status, slug in REFUSED:
        read = world.client.post(Q, headers=world.read, json={"query": query})
        if read.status_code != 403:
            failures.append(f"{query}: read key got {read.status_code}")
        for who, headers in (("hunt", world.hunt), ("admin", world.admin)):
            # admin implies hunt, and gains no more power here
            response = world.client.post(Q, headers=headers, json={"query": query})
            problem = response.json() if response.headers["content-type"] == PROBLEM else {}
            if response.status_code != status or not problem.get("type", "").endswith("/" + slug):
                failures.append(f"{query}: {who} got {response.status_code} {response.text}")
            if leaked := world.leaks(response.text):
                failures.append(f"{query}: leaked {leaked}")
    assert failures == []
    assert _server_state(world.graph) == before


def test_a_graph_read_still_works_for_hunt(world: World) -> None:
    query = {"query": "MATCH (p:Process) RETURN p.name AS name ORDER BY name LIMIT 5"}
    assert world.client.post(Q, headers=world.read, json=query).status_code == 403
    response = world.client.post(Q, headers=world.hunt, json=query)
    assert response.status_code == 200, response.text
    names = [row["name"] for row in response.json()["rows"]]
    assert names == ["cmd.exe", "explorer.exe", "notepad.exe", "payload.exe", "powershell.exe"]
    assert response.json()["withheld"] == 0


def test_terminate_leaves_the_named_transaction_alive(world: World) -> None:
    """A running write (as the ingest writer's would be) is listed by the server; a hunt key's
    TERMINATE of it is refused and the write commits; SHOW TRANSACTIONS shows none of it."""
    marker = "probe-" + secrets.token_hex(8)
    session = world.graph.driver.session(database=world.graph.target.database)
    tx = session.begin_transaction(metadata={"probe": marker})
    try:
        tx.run("CREATE (:Marker {name: $m})", {"m": marker}).consume()
        (running,) = world.graph.read(
            "SHOW TRANSACTIONS YIELD transactionId, metaData WHERE metaData.probe = $m "
            "RETURN transactionId",
            {"m": marker},
        )
        tx_id = running["transactionId"]
        for query in (
            f"TERMINATE TRANSACTIONS '{tx_id}'",
            "TERMINATE TRANSACTIONS $ids",
            "SHOW TRANSACTIONS YIELD *",
        ):
            response = world.client.post(
                Q, headers=world.hunt, json={"query": query, "parameters": {"ids": [tx_id]}}
            )
            assert response.status_code == 403, response.text
            assert marker not in response.text
        tx.commit()
    finally:
        if tx.closed() is False:
            tx.rollback()
        session.close()
    assert world.graph.read("MATCH (m:Marker {name: $m}) RETURN count(m) AS n", {"m": marker}) == [
        {"n": 1}
    ]


def test_allowed_procedures_are_read_mode_on_the_server(graph: Graph) -> None:
    modes = {
        row["name"].lower(): row["mode"]
        for row in graph.read("SHOW PROCEDURES YIELD name, mode RETURN name, mode")
    }
    assert {name: modes.get(name) for name in ALLOWED_PROCEDURES} == dict.fromkeys(
        ALLOWED_PROCEDURES, "READ"
    )


def test_internal_relationship_types_are_complete(world: World) -> None:
    """Every relationship that touches an API record has a type the filter knows."""
    touching = world.graph.read(
        "MATCH (a)-[r]-(b) WHERE any(l IN labels(a) WHERE l IN $internal) "
        "RETURN collect(DISTINCT type(r)) AS types",
        {"internal": sorted(INTERNAL_LABELS)},
    )[0]["types"]
    assert set(touching) == INTERNAL_RELATIONSHIP_TYPES


def test_admin_sees_urls_but_never_secrets(world: World) -> None:
    listed = world.client.get("/api/v1/webhooks", headers=world.admin)
    assert listed.status_code == 200
    urls = sorted(sub["url"] for sub in listed.json())
    assert len(urls) == 2 and all("token=" in url for url in urls)  # opened for the admin
    assert all("secret" not in sub for sub in listed.json())
    hook_secrets = [s for s in world.forbidden if s.startswith("whsec-")]
    assert len(hook_secrets) == 2 and not any(s in listed.text for s in hook_secrets)
    assert world.client.get("/api/v1/webhooks", headers=world.hunt).status_code == 403


def test_another_hosts_key_is_a_clear_error_not_a_crash(
    world: World, make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    """A host given a different sealing key says so (the log names the value and both keys'
    fingerprints; a key it cannot check is a 503, a webhook it cannot open is listed with
    `sealing_error`), and its webhook worker skips what it cannot open instead of failing."""
    stranger_settings = api_settings(secret_key="z" * 40)
    stranger = make_client(secret_key="z" * 40)
    its_admin = create_key(
        world.graph, name="stranger-admin", scopes=["admin"], sealer=load_sealer(stranger_settings)
    )
    headers = {"Authorization": f"Bearer {its_admin.secret}"}
    with caplog.at_level(logging.ERROR, logger="provgraph.api"):
        listed = stranger.get("/api/v1/webhooks", headers=headers)
        assert listed.status_code == 200, listed.text
        assert len(listed.json()) == 2
        for sub in listed.json():
            assert sub["url"] is None and "PROVGRAPH_SECRET_KEY" in sub["sealing_error"]
            assert world.sealer.fingerprint in sub["sealing_error"]
        foreign = stranger.get("/api/v1/alerts", headers=world.read)  # sealed by the first key
        assert foreign.status_code == 503 and foreign.headers["content-type"] == PROBLEM
        assert foreign.json()["type"].endswith("/sealing-key")
        assert "PROVGRAPH_SECRET_KEY" in foreign.json()["detail"]
    assert world.leaks(listed.text + foreign.text) == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert world.sealer.fingerprint in logged and "fingerprint" in logged
    assert world.leaks(logged) == []

    cursors = _cursors(world.graph)
    scenario.create_alert(world.graph, entities=[])
    world.graph.write("MATCH (s:WebhookSubscription) SET s.lease_until = null")  # all due now
    worker = WebhookWorker(world.graph, stranger_settings, load_sealer(stranger_settings))
    try:
        with caplog.at_level(logging.ERROR, logger="provgraph.api.webhooks"):
            caplog.clear()
            assert worker.cycle() == 0 and worker.cycle() == 0
        skipped = [r for r in caplog.records if "skipped until its seal opens" in r.getMessage()]
        assert len(skipped) == 2  # once per subscription, not once per cycle
    finally:
        worker.stop()
    assert _cursors(world.graph) == cursors  # nothing is lost: the alerts wait


def test_legacy_records_were_upgraded(world: World) -> None:
    """Start-up sealed the clear webhook and the legacy hash; the key's first use gave it a
    keyed hash. A legacy hash start-up has not sealed yet works and is upgraded too."""
    (legacy,) = world.graph.read(
        "MATCH (k:ApiKey {name: 'legacy-soar'}) RETURN k.id AS id, k.hash AS hash"
    )
    opened = world.sealer.unseal(legacy["hash"], context=f"api-key.hash:{legacy['id']}")
    assert not opened.startswith("sha256:") and len(opened) == 64
    (old,) = world.graph.read(
        "MATCH (s:WebhookSubscription {description: 'made before sealing'}) RETURN s {.*} AS s"
    )
    assert webhooks.open_secret(world.sealer, old["s"]).startswith("whsec-old-")

    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    plain = hashlib.sha256(secret.encode()).hexdigest()
    world.graph.write(CREATE_KEY, {"id": key_id, "name": "late", "hash": plain, "scopes": ["read"]})
    late = {"X-API-Key": f"pgk_{key_id}_{secret}"}
    assert world.client.get("/api/v1/alerts", headers=late).status_code == 200
    (row,) = world.graph.read("MATCH (k:ApiKey {id: $id}) RETURN k.hash AS h", {"id": key_id})
    assert row["h"].startswith("pgs1:") and plain not in row["h"]
    assert world.client.get("/api/v1/alerts", headers=late).status_code == 200
    wrong = {"X-API-Key": f"pgk_{key_id}_{secret[:-2]}xx"}
    assert world.client.get("/api/v1/alerts", headers=wrong).status_code == 401


# -- helpers ---------------------------------------------------------------------------------
def _walk(value: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found += _walk(item)
    elif isinstance(value, list):
        for item in value:
            found += _walk(item)
    return found


def _nodes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in _walk(rows) if "labels" in m and "properties" in m]


def _relationships(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in _walk(rows) if "type" in m and "properties" in m and "start" in m]


def _server_state(graph: Graph) -> dict[str, Any]:
    counts = graph.read(
        "MATCH (n) RETURN count(n) AS nodes, sum(size(keys(n))) AS props, "
        "collect(DISTINCT [n.id, n.scopes, n.hash]) AS records"
    )[0]
    indexes = graph.read("SHOW INDEXES YIELD name RETURN collect(name) AS names")[0]["names"]
    constraints = graph.read("SHOW CONSTRAINTS YIELD name RETURN collect(name) AS n")[0]["n"]
    labels = graph.read("CALL db.labels() YIELD label RETURN collect(label) AS l")[0]["l"]
    counts["records"] = sorted(counts["records"], key=repr)
    return {**counts, "indexes": sorted(indexes), "constraints": sorted(constraints), "l": labels}


def _cursors(graph: Graph) -> dict[str, int]:
    rows = graph.read("MATCH (s:WebhookSubscription) RETURN s.id AS id, s.cursor AS cursor")
    return {row["id"]: row["cursor"] for row in rows}
