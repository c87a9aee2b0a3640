"""Shared pieces of the Sigma integration tests: recordings in, matches out."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from provgraph.graph.loader import write_events
from provgraph.graph.tx import Graph
from provgraph.graph.writer import file_key
from provgraph.ingest.errors import ParseError
from provgraph.ingest.model import normalise_guid, normalise_host
from provgraph.ingest.reader import iter_events
from provgraph.ingest.winevent import unwrap
from provgraph.queries.engine import evaluate
from provgraph.queries.rule import Rule
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.rule import SigmaRule

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"
SIGMA_DATA = DATA / "sigma"
SIGMAHQ = ROOT.parent / "shared" / "sigmahq"  # the shared snapshot, beside the repository
SYSMON_CATEGORIES = {1: "process_creation", 11: "file_event"}


def records(path: Path) -> list[dict[str, Any]]:
    """Every JSON object of a file: NDJSON, or evtx-rs's pretty-printed records in a row."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    out, i = [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        obj, i = decoder.raw_decode(text, i)
        out.append(obj)


def ingest_records(graph: Graph, recs: Iterable[dict[str, Any]], scratch: Path) -> int:
    """Write records through the real ingest path (an NDJSON file, as `provgraph ingest` reads)."""
    path = scratch / "records.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    return write_events(graph, iter_events(path))


def sysmon_records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        for rec in records(path):
            try:
                win = unwrap(rec)
            except ParseError:
                continue
            if win.provider and "sysmon" in win.provider.lower():
                out.append(rec)
    return out


def matched_keys(graph: Graph, rule: Rule, category: str) -> set[Any]:
    """What a rule matched, keyed like the SQLite side: process uids, (process, file) pairs."""
    rows = [m.row for m in evaluate(graph, rule)]
    if category == "process_creation":
        return {r["process_uid"] for r in rows}
    return {(r["process_uid"], r["file_key"]) for r in rows}


class SqliteReference:
    """pySigma's SQLite backend over the same records, one table per Sigma category (Sysmon
    EventData columns, COLLATE NOCASE, REGEXP as a Python search: Zircolite's layout)."""

    def __init__(self, recs: Iterable[dict[str, Any]]) -> None:
        rows: dict[str, list[dict[str, Any]]] = {c: [] for c in SYSMON_CATEGORIES.values()}
        for rec in recs:
            win = unwrap(rec)
            if win.event_id in SYSMON_CATEGORIES:
                data = {k: None if v is None else str(v) for k, v in win.data.items()}
                data["Computer"] = win.computer
                rows[SYSMON_CATEGORIES[win.event_id]].append(data)
        self.db = {category: self._table(items) for category, items in rows.items()}
        self.backend = sqliteBackend()

    @staticmethod
    def _table(items: list[dict[str, Any]]) -> sqlite3.Connection:
        con = sqlite3.connect(":memory:")
        con.create_function("regexp", 2, lambda p, v: v is not None and re.search(p, v) is not None)
        columns = sorted({k for item in items for k in item} | {"ProcessGuid", "Computer"})
        con.execute(
            "CREATE TABLE logs (" + ", ".join(f'"{c}" TEXT COLLATE NOCASE' for c in columns) + ")"
        )
        for item in items:
            names = ", ".join(f'"{k}"' for k in item)
            marks = ", ".join("?" for _ in item)
            con.execute(f"INSERT INTO logs ({names}) VALUES ({marks})", list(item.values()))
        return con

    def matches(self, sigma_text: str, category: str) -> set[Any]:
        (rule,) = [
            r for r in SigmaCollection.from_yaml(sigma_text).rules if isinstance(r, SigmaRule)
        ]
        (sql,) = self.backend.convert_rule(rule)
        con = self.db[category]
        try:
            cursor = con.execute(sql)
        except sqlite3.OperationalError as error:
            if "no such column" in str(error):
                return set()  # a field no record has: nothing matches it
            raise
        names = [d[0] for d in cursor.description]
        out: set[Any] = set()
        for row in cursor.fetchall():
            data = dict(zip(names, row, strict=True))
            uid = "g:" + normalise_guid(data["ProcessGuid"])
            if category == "process_creation":
                out.add(uid)
            else:
                host = normalise_host(data["Computer"])
                out.add((uid, file_key(host, data["TargetFilename"])))
        return out


WIPE_ALL = "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
