"""Which parser reads a file: from its first bytes, and from its first decoded record.

`detect(head)` settles the framing (evtx, NDJSON, JSON array, CSV, text lines) and, when the
first record fits in `head`, the format. `detect_record(record)` names the parser for one
decoded JSON object. A file nothing recognises is described by `describe` so the summary can
say what it looked like.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FORMATS = ("windows", "sysmon", "security", "sysmon_linux", "ecs", "mde", "auditd")
EVTX_MAGIC = b"ElfFile\x00"
GZIP_MAGIC = b"\x1f\x8b"

_AUDIT_LINE = re.compile(r"(?:^|\s)type=\w+ msg=audit\(\d+")
_MDE_COLUMNS = {"Timestamp", "ActionType"}
_MDE_DEVICE = {"DeviceName", "DeviceId"}


@dataclass(frozen=True, slots=True)
class Detected:
    framing: str | None  # evtx, ndjson, json_array, csv, lines; None: unrecognised
    format: str | None  # a FORMATS name; None: decide from the first record
    shape: str  # the first line described, for reports


def detect(head: bytes) -> Detected:
    if head.startswith(EVTX_MAGIC):
        return Detected("evtx", "windows", "EVTX file")
    first = _first_line(head)
    shape = describe(first)
    stripped = first.lstrip()
    if stripped.startswith("["):
        return Detected("json_array", None, shape)
    if stripped.startswith("{"):
        return _detect_ndjson(stripped, shape)
    if _AUDIT_LINE.search(first):
        return Detected("lines", "auditd", shape)
    if "<Event" in first and "Linux-Sysmon" in first:
        return Detected("lines", "sysmon_linux", shape)
    if _is_mde_header(first):
        return Detected("csv", "mde", shape)
    return Detected(None, None, shape)


def _first_line(head: bytes) -> str:
    text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def _detect_ndjson(line: str, shape: str) -> Detected:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        if line.strip() == "{":
            return Detected(None, None, "a multi-line JSON document (not NDJSON)")
        return Detected("ndjson", None, shape)  # first line bad: decide on a later record
    return Detected("ndjson", detect_record(record), shape)


def _is_mde_header(line: str) -> bool:
    columns = {c.strip().strip('"').lstrip("\ufeff") for c in line.split(",")}
    return columns >= _MDE_COLUMNS and bool(_MDE_DEVICE & columns)


def detect_record(record: Any) -> str | None:
    if not isinstance(record, Mapping):
        return None
    if "SyslogMessage" in record:
        return "sysmon_linux"
    if isinstance(record.get("Event"), Mapping) or isinstance(record.get("winlog"), Mapping):
        return "windows"
    if "SourceName" in record and "Hostname" in record and "EventID" in record:
        return "windows"  # Mordor / NXLog flat export
    if "ActionType" in record and _MDE_DEVICE & record.keys():
        return "mde"
    if "Computer" in record and "EventID" in record:
        return "windows"  # Sentinel SecurityEvent / WindowsEvent
    if _has_ecs_category(record):
        return "ecs"
    return None


def _has_ecs_category(record: Mapping[str, Any]) -> bool:
    event = record.get("event")
    return "event.category" in record or (isinstance(event, Mapping) and "category" in event)


def describe(line: str) -> str:
    """A short description of a first line, for "unrecognised" reports."""
    text = line.strip()
    if not text:
        return "an empty file"
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return f"text starting {text[:40]!r}"
    if isinstance(value, Mapping):
        keys = sorted(value)
        more = ", …" if len(keys) > 8 else ""
        return f"JSON object with keys {', '.join(keys[:8])}{more}"
    return f"JSON {type(value).__name__}"
