"""What else did this account do, on which hosts, from which logon: one read over the
account graph (graph v2, part 2). The API's `/provenance/accounts/{account}` and the CLI's
`trace account` ask it.

An account is named by its SID ("S-1-5-21-…", any case), by `DOMAIN\\name` (any case; a DNS
domain counts by its first label, as the graph keys it) or by a bare name (every account of
that name). The answer per account: its logon sessions grouped by host, each with the
processes that ran in it and what the session did (shares, service installs, task changes);
the processes that ran as it outside a known session; what it did with no session named;
its failed logons per host; and the processes that used its credentials explicitly (4648).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from provgraph.graph.tx import Graph
from provgraph.graph.values import plain
from provgraph.ingest.model import WELL_KNOWN_NAMES, AccountRef
from provgraph.queries.errors import AccountNotFound
from pydantic import BaseModel, Field

Props = dict[str, Any]


class AccountLogon(BaseModel):
    logon: Props = Field(description="the Logon node: logon_id, logon_type, start/end, source…")
    processes: list[Props] = Field(default=[], description="processes that ran in the session")
    actions: list[Props] = Field(
        default=[], description="what the session did: share access, service installs, tasks"
    )


class AccountHost(BaseModel):
    host: str
    logons: list[AccountLogon] = []
    processes: list[Props] = Field(
        default=[], description="processes that ran as the account outside a known session"
    )


class FailedLogon(BaseModel):
    host: str
    first_time: datetime | None = None
    last_time: datetime | None = None
    count: int | None = None
    statuses: list[str] = []
    sub_statuses: list[str] = []
    failure_reasons: list[str] = []
    logon_types: list[int] = []
    source_ips: list[str] = []


class CredentialUse(BaseModel):
    process: Props
    first_time: datetime | None = None
    last_time: datetime | None = None
    count: int | None = None
    target_servers: list[str] = []


class AccountActivity(BaseModel):
    account: Props
    hosts: list[AccountHost]
    actions: list[Props] = Field(default=[], description="what it did with no session named")
    failed_logons: list[FailedLogon] = []
    credentials_used_by: list[CredentialUse] = Field(
        default=[], description="processes that used this account's credentials (4648)"
    )
    truncated: bool = Field(description="a list was cut at the limit")


class AccountActivityList(BaseModel):
    query: str
    accounts: list[AccountActivity]


FIND_ACCOUNTS = """
CALL () {
  MATCH (a:Account {key: $key}) RETURN a
  UNION
  MATCH (a:Account {name_key: $key}) RETURN a
  UNION
  MATCH (a:Account) WHERE $key IN coalesce(a.names, [])
  RETURN a
  UNION
  MATCH (a:Account) WHERE $bare IS NOT NULL AND toLower(a.name) = $bare
  RETURN a
}
RETURN properties(a) AS props
ORDER BY a.key
LIMIT 20
"""

_BRIEF = "{.uid, .name, .pid, .image, .command_line, .user, .host, .start_time, .end_time}"
_ACTIONS = """
  OPTIONAL MATCH (%(who)s)-[r:ACCESSED_SHARE|INSTALLED_SERVICE|CHANGED_TASK]->(t)
  WITH r, t ORDER BY r.first_time LIMIT $limit
  RETURN collect(CASE WHEN t IS NULL THEN null ELSE {kind: type(r), host: t.host, key: t.key,
         target: coalesce(t.share_name, t.service_name, t.task_name),
         first_time: r.first_time, last_time: r.last_time, count: r.count, ops: r.ops,
         access_masks: r.access_masks, relative_targets: r.relative_targets,
         image_paths: r.image_paths, image_path: t.image_path} END) AS actions
"""

ACCOUNT_LOGONS = (
    """
MATCH (a:Account {key: $key})-[lo:LOGGED_ON]->(l:Logon)
WITH l, lo ORDER BY l.host, coalesce(l.start_time, lo.time), l.key LIMIT $limit
CALL (l) {
  OPTIONAL MATCH (p:Process)-[:IN_LOGON]->(l)
  WITH p ORDER BY p.start_time, p.uid LIMIT $limit
  RETURN collect(p """
    + _BRIEF
    + """) AS processes
}
CALL (l) {"""
    + _ACTIONS % {"who": "l"}
    + """}
RETURN properties(l) AS logon, lo.time AS linked, processes, actions
"""
)

# Processes that ran as the account in no session of its that the graph knows.
ACCOUNT_PROCESSES = (
    """
MATCH (a:Account {key: $key})<-[:RAN_AS]-(p:Process)
WHERE NOT EXISTS { (p)-[:IN_LOGON]->(:Logon)<-[:LOGGED_ON]-(a) }
WITH p ORDER BY p.host, p.start_time, p.uid LIMIT $limit
RETURN p """
    + _BRIEF
    + """ AS process
"""
)

ACCOUNT_DIRECT = (
    """
MATCH (a:Account {key: $key})
CALL (a) {"""
    + _ACTIONS % {"who": "a"}
    + """}
CALL (a) {
  OPTIONAL MATCH (a)-[r:FAILED_LOGON]->(h:Host)
  WITH h, r ORDER BY h.name
  RETURN collect(CASE WHEN h IS NULL THEN null ELSE {host: h.name, first_time: r.first_time,
         last_time: r.last_time, count: r.count, statuses: r.statuses,
         sub_statuses: r.sub_statuses, failure_reasons: coalesce(r.failure_reasons, []),
         logon_types: r.logon_types,
         source_ips: r.source_ips} END) AS failed
}
CALL (a) {
  OPTIONAL MATCH (p:Process)-[r:USED_CREDENTIALS]->(a)
  WITH p, r ORDER BY r.first_time LIMIT $limit
  RETURN collect(CASE WHEN p IS NULL THEN null ELSE {process: p """
    + _BRIEF
    + """, first_time: r.first_time, last_time: r.last_time, count: r.count,
         target_servers: r.target_servers} END) AS creds
}
RETURN actions, failed, creds
"""
)


def lookup_key(account: str) -> tuple[str, str | None]:
    """The key an account is looked up by (a SID, or a name_key) and, for a bare name, the
    lower-case name."""
    text = account.strip()
    if text.lower().startswith("s-1-"):
        return text.lower(), None
    domain, sep, name = text.rpartition("\\")
    key = AccountRef(domain=domain if sep else None, name=name).name_key or text.lower()
    key = WELL_KNOWN_NAMES.get(key, key)
    return key, None if sep else key


def account_activity(graph: Graph, *, account: str, limit: int = 200) -> AccountActivityList:
    key, bare = lookup_key(account)
    found = graph.read(FIND_ACCOUNTS, {"key": key, "bare": bare})
    if not found:
        raise AccountNotFound(account)
    answers = []
    for row in found:
        props = plain(row["props"])
        answers.append(_activity(graph, props, limit))
    return AccountActivityList(query=account, accounts=answers)


def _activity(graph: Graph, props: Props, limit: int) -> AccountActivity:
    params = {"key": props["key"], "limit": limit}
    hosts: dict[str, AccountHost] = {}
    truncated = False

    def host(name: str) -> AccountHost:
        if name not in hosts:
            hosts[name] = AccountHost(host=name)
        return hosts[name]

    logons = graph.read(ACCOUNT_LOGONS, params)
    truncated |= len(logons) >= limit
    for row in logons:
        logon = {k: v for k, v in plain(row["logon"]).items() if k != "sources"}
        processes = plain(row["processes"])
        truncated |= len(processes) >= limit
        host(str(logon.get("host"))).logons.append(
            AccountLogon(logon=logon, processes=processes, actions=plain(row["actions"]))
        )
    outside = graph.read(ACCOUNT_PROCESSES, params)
    truncated |= len(outside) >= limit
    for row in outside:
        process = plain(row["process"])
        host(str(process.get("host"))).processes.append(process)
    direct = graph.read(ACCOUNT_DIRECT, params)[0]
    return AccountActivity(
        account=props,
        hosts=[hosts[name] for name in sorted(hosts)],
        actions=plain(direct["actions"]),
        failed_logons=[FailedLogon.model_validate(plain(f)) for f in direct["failed"]],
        credentials_used_by=[CredentialUse.model_validate(plain(c)) for c in direct["creds"]],
        truncated=truncated,
    )
