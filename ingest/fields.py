"""Strict readers for raw fields, shared by every source parser.

Required fields go through `req_*` so a missing or mistyped one raises `ParseError` naming
the field; optional ones through `opt_*`, which treat absent, null, "" and "-" alike
(Windows logs "-" for "not applicable").
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from provgraph.ingest.errors import ParseError
from provgraph.ingest.model import normalise_host

_EMPTY = (None, "", "-")
# pids are DWORDs on Windows and far smaller on Linux; anything bigger is garbage
_MAX_PID = 2**32 - 1
# epoch numbers above this are milliseconds (ECS exports both)
_EPOCH_MS_THRESHOLD = 100_000_000_000


def req(record: Mapping[str, Any], key: str) -> Any:
    try:
        value = record[key]
    except KeyError:
        raise ParseError(key, "missing") from None
    if value in _EMPTY:
        raise ParseError(key, "empty")
    return value


def req_str(record: Mapping[str, Any], key: str) -> str:
    return as_str(req(record, key), key)


def opt_str(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value in _EMPTY:
        return None
    return as_str(value, key)


def as_str(value: Any, field: str) -> str:
    # numbers are text that a JSON encoder helpfully typed; containers are a schema error
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ParseError(field, f"expected text, got {type(value).__name__}")


def as_int(value: Any, field: str) -> int:
    """Ints as logged: 1234, "1234", "0x4d2" (Security logs pids and masks in hex)."""
    if isinstance(value, bool):
        raise ParseError(field, "expected an integer, got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            raise ParseError(field, f"not an integer: {text[:40]!r}") from None
    raise ParseError(field, f"expected an integer, got {type(value).__name__}")


def as_pid(value: Any, field: str) -> int:
    pid = as_int(value, field)
    if not 0 <= pid <= _MAX_PID:
        raise ParseError(field, f"pid out of range: {pid}")
    return pid


def opt_pid(record: Mapping[str, Any], key: str) -> int | None:
    value = record.get(key)
    return None if value in _EMPTY else as_pid(value, key)


def as_port(value: Any, field: str) -> int:
    port = as_int(value, field)
    if not 0 <= port <= 65535:
        raise ParseError(field, f"port out of range: {port}")
    return port


def opt_port(record: Mapping[str, Any], key: str) -> int | None:
    value = record.get(key)
    return None if value in _EMPTY else as_port(value, key)


def as_ip(value: Any, field: str) -> str:
    """Validated, canonical text; IPv4-mapped IPv6 (MDE's "::ffff:a.b.c.d") becomes IPv4 so
    one address has one spelling in the graph."""
    text = as_str(value, field).strip()
    canonical = _canonical_ip(text)
    if canonical is None:
        raise ParseError(field, f"not an IP address: {text[:60]!r}")
    return canonical


@functools.lru_cache(maxsize=65536)
def _canonical_ip(text: str) -> str | None:
    # Telemetry repeats the same few thousand addresses; parsing each once saves a large
    # share of the per-event cost (ipaddress is pure Python).
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        return str(addr.ipv4_mapped)
    return str(addr)


def opt_ip(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    return None if value in _EMPTY else as_ip(value, key)


def as_time(value: Any, field: str, *, naive_is_utc: bool = False) -> datetime:
    """Every timestamp shape the sources use, to an aware UTC datetime.

    `naive_is_utc` is for fields documented as UTC without saying so in the text (Sysmon
    `UtcTime`, MDE CSV). A zone-less time anywhere else is rejected rather than guessed:
    Mordor's `EventTime` is local time of an unknown zone.
    """
    if isinstance(value, bool):
        raise ParseError(field, "expected a time, got bool")
    if isinstance(value, (int, float)):
        return _from_epoch(float(value), field)
    if not isinstance(value, str):
        raise ParseError(field, f"expected a time, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ParseError(field, f"unrecognised time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            raise ParseError(field, f"time has no zone: {value[:40]!r}")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _from_epoch(seconds: float, field: str) -> datetime:
    if seconds > _EPOCH_MS_THRESHOLD:
        seconds /= 1000.0
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ParseError(field, f"epoch time out of range: {seconds}") from None


def as_sid(value: Any) -> str | None:
    """A Windows SID, lower-cased (`S-1-5-21-…` -> `s-1-5-21-…`), or None for anything else
    (empty, `-`, or a Linux/macOS numeric uid logged in the same column)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text.lower() if text[:2].upper() == "S-" else None


def host_names(value: Any, field: str) -> tuple[str, str | None]:
    """(host key, fqdn). An address logged as the host name stays whole (normalise_host would
    keep only its first octet)."""
    text = as_str(value, field).strip()
    if not text or text == "-":
        raise ParseError(field, "empty host name")
    names = _host_names(text)
    if names is None:
        raise ParseError(field, f"unusable host name: {text[:60]!r}")
    return names


@functools.lru_cache(maxsize=16384)
def _host_names(text: str) -> tuple[str, str | None] | None:
    """Every event names its host, and an estate has few: cached, this was a tenth of the
    parser's time (ip_address raising ValueError for each ordinary name)."""
    try:
        return str(ipaddress.ip_address(text)), None
    except ValueError:
        pass
    short = normalise_host(text)
    if not short:
        return None
    fqdn = text.rstrip(".").lower()
    return short, fqdn if "." in fqdn else None


def join_user(domain: str | None, name: str | None) -> str | None:
    if not name:
        return None
    return f"{domain}\\{name}" if domain else name


# A registry value's data in Sysmon's words (13 `Details`), whatever the source: Sigma's
# registry rules test Sysmon's spelling ("DWORD (0x00000001)", "Binary Data", "(Empty)").
# Value types as Security 4657 (message ids), Defender (`RegistryValueType`) and Elastic
# (`registry.data.type`) write them.
_REGISTRY_TYPES = {
    **dict.fromkeys(("%%1872", "none", "reg_none"), "none"),
    **dict.fromkeys(("%%1873", "string", "reg_sz"), "string"),
    **dict.fromkeys(("%%1874", "expandstring", "reg_expand_sz"), "string"),
    **dict.fromkeys(("%%1875", "binary", "reg_binary"), "binary"),
    **dict.fromkeys(("%%1876", "dword", "reg_dword", "reg_dword_little_endian"), "dword"),
    **dict.fromkeys(("%%1879", "multistring", "reg_multi_sz"), "multistring"),
    **dict.fromkeys(("%%1883", "qword", "reg_qword", "reg_qword_little_endian"), "qword"),
}


def _number(text: str) -> int | None:
    try:
        return int(text, 16) if text[:2].lower() == "0x" else int(text)
    except ValueError:
        return None


def registry_details(value_type: str | None, data: str | None) -> str | None:
    """`data` (a value as the source logged it) as Sysmon writes it for its type: DWORD and
    QWORD numbers as `DWORD (0x%08x)` / `QWORD (0x<high>-0x<low>)`, binary as `Binary Data`, an
    empty string as `(Empty)`. Anything else, or an unknown type, stays as logged; None when
    there is nothing (no data and no string type)."""
    kind = _REGISTRY_TYPES.get((value_type or "").strip().lower())
    text = (data or "").strip()
    if kind == "string" and text in ("", "-"):
        return "(Empty)"
    if text in ("", "-"):
        return None
    if kind == "binary":
        return "Binary Data"
    if kind in ("dword", "qword") and not text.upper().startswith(("DWORD", "QWORD")):
        number = _number(text)
        if number is not None and kind == "dword" and 0 <= number < 2**32:
            return f"DWORD (0x{number:08x})"
        if number is not None and kind == "qword" and 0 <= number < 2**64:
            return f"QWORD (0x{number >> 32:08x}-0x{number & 0xFFFFFFFF:08x})"
    return data
