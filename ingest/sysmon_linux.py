"""Sysmon for Linux: its events are XML, alone on a line (optionally after a syslog prefix)
or inside a Sentinel `Syslog` row's `SyslogMessage`. The XML is parsed with xmltodict and then
mapped exactly like Windows Sysmon.

Two defects of the real data are repaired rather than rejected:
* In the exported messages entities have lost their semicolon to a space
  (`&lt unknown process&gt ` for `<unknown process>`), which is not XML; they are
  restored before parsing.
* syslog cuts messages (about 2 KiB in the Log4Shell set), mid-field. The complete `<Data>`
  fields before the cut are kept, the cut one is kept as far as it goes and named in
  `Event.truncated`. Losing the whole record would lose e.g. the java -> shell process start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict
from provgraph.ingest import sysmon
from provgraph.ingest.errors import ParseError, Skipped
from provgraph.ingest.fields import as_str
from provgraph.ingest.model import Event, Origin
from provgraph.ingest.winevent import unwrap

# the semicolon of an entity arrives as a space ("&lt unknown process&gt ") or not at all
_BARE_ENTITY = re.compile(r"&(lt|gt|quot|amp|apos)(?: |(?!;))")
_CUT_FIELD = re.compile(r'^<Data Name="([^"<>]+)">([^<]*)$')
_PARTIAL_ENTITY = re.compile(r"&[#0-9a-zA-Z]*$")
_EVENT_START = "<Event"


def parse_sysmon_linux(record: Mapping[str, Any] | str, origin: Origin) -> list[Event]:
    """`record` is a Syslog row (dict with `SyslogMessage`) or a text line holding the XML."""
    if isinstance(record, str):
        text, row, field = record, None, "line"
    elif isinstance(record, Mapping):
        text, row, field = as_str(_message(record), "SyslogMessage"), record, "SyslogMessage"
    else:
        raise ParseError(None, f"expected a JSON object or text, got {type(record).__name__}")
    start = text.find(_EVENT_START)
    if start < 0:
        return Skipped("syslog message without a Sysmon XML event")
    tree, cut = parse_event_xml(text[start:], field)
    raw = tree if row is None else {**row, "SyslogMessage": tree}
    events = sysmon.from_winrecord(unwrap(tree), origin, raw)
    if cut and events:
        return [replace(e, truncated=e.truncated + (cut,)) for e in events]
    return events


def _message(row: Mapping[str, Any]) -> Any:
    if "SyslogMessage" not in row:
        raise ParseError("SyslogMessage", "missing")
    return row["SyslogMessage"]


def parse_event_xml(text: str, field: str) -> tuple[dict[str, Any], str | None]:
    """(xmltodict tree, name of the field cut by truncation or None)."""
    text = _BARE_ENTITY.sub(r"&\1;", text.strip())
    try:
        return _parse(text, field), None
    except ParseError:
        salvaged = _salvage(text)
        if salvaged is None:
            raise
        return _parse(salvaged[0], field), salvaged[1]


def _parse(text: str, field: str) -> dict[str, Any]:
    try:
        tree = xmltodict.parse(text)
    except (ExpatError, ValueError) as exc:
        raise ParseError(field, f"malformed XML: {exc}") from None
    if not isinstance(tree, dict) or not isinstance(tree.get("Event"), dict):
        raise ParseError(field, "XML root is not <Event>")
    return tree


def _salvage(text: str) -> tuple[str, str | None] | None:
    """Close a message cut inside <EventData>: keep the whole fields, and the cut field's
    text so far. A cut anywhere else (inside <System>, inside a tag) is not salvageable."""
    if "<EventData>" not in text or text.endswith("</Event>"):
        return None
    before, data = text.split("<EventData>", 1)
    end = data.rfind("</Data>")
    whole = data[: end + len("</Data>")] if end >= 0 else ""
    closed = before + "<EventData>" + whole
    cut = _CUT_FIELD.match(data[len(whole) :])
    if cut is None:
        return closed + "</EventData></Event>", None
    partial = _PARTIAL_ENTITY.sub("", cut.group(2))
    closed += f'<Data Name="{cut.group(1)}">{partial}</Data>'
    return closed + "</EventData></Event>", cut.group(1)
