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
from dataclasses import dataclass, replace
from typing import Any

from provgraph.ingest.capture import RECORDS_DOCUMENT

FORMATS = ("windows", "sysmon", "security", "sysmon_linux", "ecs", "mde", "auditd")
EVTX_MAGIC = b"ElfFile\x00"
GZIP_MAGIC = b"\x1f\x8b"

_AUDIT_LINE = re.compile(r"(?:^|\s)type=\w+ msg=audit\(\d+")
_MDE_COLUMNS = {"Timestamp", "ActionType"}
_MDE_DEVICE = {"DeviceName", "DeviceId"}
MDE_EXPORT_PREFIX = "AdvancedHunting-"  # the Streaming API's category: this + the table name


SNIFF_LINES = 8  # non-blank lines looked at: a bad first line must not decide a whole file


@dataclass(frozen=True, slots=True)
class Detected:
    framing: str | None  # evtx, ndjson, json_array, records, csv, lines; None: unrecognised
    format: str | None  # a FORMATS name; None: decide from the first record
    shape: str  # the first line described, for reports
    start: int = 1  # the line the records (or the CSV header) start on; earlier ones are bad


def detect(head: bytes) -> Detected:
    """From the first bytes: EVTX by its magic; otherwise the first of the first few non-blank
    lines that a framing recognises decides, if such lines are not outnumbered by lines nothing
    recognises (so junk in front of real records does not hide them, and one JSON line in a text
    file does not make it NDJSON). Lines before the decisive one are the reader's to reject."""
    if head.startswith(EVTX_MAGIC):
        return Detected("evtx", "windows", "EVTX file")
    if RECORDS_DOCUMENT.match(head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")):
        return Detected("records", None, 'an Event Hub {"records": [...]} document')
    lines = _first_lines(head)
    if not lines:
        return Detected(None, None, "an empty file")
    first = lines[0][1]
    shape = describe(first)
    stripped = first.lstrip()
    if stripped.startswith("["):
        return Detected("json_array", None, shape)
    if stripped.strip() == "{":
        return Detected(None, None, "a multi-line JSON document (not NDJSON)")
    for position, (number, line) in enumerate(lines):
        found = _detect_line(line)
        if found is None:
            continue
        framing, format = found
        alike = sum(1 for _, later in lines[position:] if _detect_line(later) == found)
        if framing == "csv":
            alike = len(lines) - position  # rows after a header are not headers
        if alike < position:
            break  # outnumbered by lines nothing recognises
        return Detected(framing, format, shape, start=number)
    if stripped.startswith("{"):
        return Detected("ndjson", None, shape)  # decide on a later record
    return Detected(None, None, shape)


def force(detected: Detected, format: str, head: bytes) -> Detected:
    """The framing a named format (`--format`, `?format=`) is read with: detection's where it
    fits, else JSON lines for the JSON formats and CSV for Defender text. A file nothing
    recognised is read all the same, so its bad lines become dead letters, not silence."""
    if format == "auditd":
        return Detected("lines", format, detected.shape)  # the auditd parser rejects junk lines
    if format == "sysmon_linux" and detected.framing in (None, "lines"):
        return Detected("lines", format, detected.shape)
    if detected.framing in ("evtx", "json_array", "ndjson", "csv", "records"):
        return replace(detected, format=format)
    if format == "mde" and not any(t.lstrip().startswith("{") for _, t in _first_lines(head)):
        return Detected("csv", format, detected.shape)
    return Detected("ndjson", format, detected.shape)


def _first_lines(head: bytes) -> list[tuple[int, str]]:
    """(line number, text) of the first SNIFF_LINES non-blank lines, numbered as the reader
    numbers them (a line ends at "\\n")."""
    text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    found = []
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            found.append((number, line.rstrip("\r")))
            if len(found) == SNIFF_LINES:
                break
    return found


def _detect_line(line: str) -> tuple[str, str | None] | None:
    """(framing, format) for one line a framing recognises with its format known; or None."""
    stripped = line.lstrip()
    if stripped.startswith("{"):
        try:
            record = json.loads(stripped)
        except json.JSONDecodeError:
            return None
        format = detect_record(record)
        return ("ndjson", format) if format is not None else None
    if _AUDIT_LINE.search(line):
        return "lines", "auditd"
    if "<Event" in line and "Linux-Sysmon" in line:
        return "lines", "sysmon_linux"
    if _is_mde_header(line):
        return "csv", "mde"
    return None


def _is_mde_header(line: str) -> bool:
    columns = {c.strip().strip('"').lstrip("\ufeff") for c in line.split(",")}
    return columns >= _MDE_COLUMNS and bool(_MDE_DEVICE & columns)


def detect_record(record: Any) -> str | None:
    if not isinstance(record, Mapping):
        return None
    if _is_mde_export(record):
        return "mde"
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


def _is_mde_export(record: Mapping[str, Any]) -> bool:
    """A Defender Streaming API record: {"time", "category": "AdvancedHunting-<Table>",
    "properties": {<the row>}} (Event Hub and Storage exports)."""
    category = record.get("category")
    return (
        isinstance(category, str)
        and category.lower().startswith(MDE_EXPORT_PREFIX.lower())
        and "properties" in record
    )


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
