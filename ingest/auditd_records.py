"""Reading raw auditd lines: `type=SYSCALL msg=audit(1700000000.123:456): k=v ...`.

Kept apart from the event mapping in `auditd` so the tricky text rules (quoting, hex
encoding, the enriched format's 0x1d separator) live in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from provgraph.ingest.errors import ParseError

_HEADER = re.compile(
    r"(?:node=(?P<node>\S+) )?type=(?P<type>\S+) "
    r"msg=audit\((?P<ts>\d+(?:\.\d+)?):(?P<serial>\d+)\):"
)
_FIELD = re.compile(r"([A-Za-z_][\w\[\]-]*)=(\"[^\"]*\"|'[^']*'|\S*)")
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
# the enriched log format appends interpreted fields (UID="root", SYSCALL=execve) after 0x1d
_ENRICHED_SEPARATOR = "\x1d"


@dataclass(slots=True)
class AuditRecord:
    type: str
    serial: int
    ts: float
    node: str | None
    line: int
    raw: str
    fields: dict[str, str] = field(default_factory=dict)  # values as logged (quotes removed)
    interpreted: dict[str, str] = field(default_factory=dict)  # enriched-format fields


def parse_line(text: str, line: int) -> AuditRecord:
    match = _HEADER.search(text)
    if match is None:
        raise ParseError("type", "not an audit record (no 'type=... msg=audit(...):')")
    body = text[match.end() :]
    raw_part, _, enriched_part = body.partition(_ENRICHED_SEPARATOR)
    return AuditRecord(
        type=match["type"],
        serial=int(match["serial"]),
        ts=float(match["ts"]),
        node=match["node"],
        line=line,
        raw=text,
        fields=_fields(raw_part),
        interpreted=_fields(enriched_part),
    )


def _fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in _FIELD.findall(text):
        out.setdefault(key, value)  # first wins: USER records nest msg='...'
    return out


def decode_text(value: str | None) -> str | None:
    """An untrusted-string field: quoted text as is, unquoted hex decoded (auditd hex-encodes
    values with spaces, quotes or control characters), `(null)` as None."""
    if value is None or value in ("(null)", "?", ""):
        return None
    if value[0] in "\"'" and value[-1:] == value[0] and len(value) >= 2:
        return value[1:-1]
    if _HEX.match(value):
        return bytes.fromhex(value).decode("utf-8", errors="replace")
    return value


def as_number(record: AuditRecord, key: str, *, base: int = 10) -> int:
    value = record.fields.get(key)
    if value is None:
        raise ParseError(f"{record.type}.{key}", "missing")
    try:
        return int(value, base)
    except ValueError:
        raise ParseError(f"{record.type}.{key}", f"not a number: {value[:40]!r}") from None
