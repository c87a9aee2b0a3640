"""Reading telemetry: files, folders, .gz, stdin, streams -> normalised events.

`iter_events` is the entry point; `iter_results` is the same walk with every record's outcome
(events, skip reason or dead letter) for callers that want to see them all. Everything is
streamed: memory stays flat however large the input.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from provgraph.ingest.auditd import parse_auditd
from provgraph.ingest.capture import read_records
from provgraph.ingest.deadletter import DeadLetter, DeadLetterWriter, FileSummary, Summary
from provgraph.ingest.detect import FORMATS, describe, detect, detect_record, force
from provgraph.ingest.ecs import parse_ecs
from provgraph.ingest.errors import ParseError, skip_reason
from provgraph.ingest.framing import CHUNK, MAX_LINE, Element, Line, read_json_array, read_lines
from provgraph.ingest.limits import cap_event
from provgraph.ingest.mde import parse_mde
from provgraph.ingest.model import Event, Origin
from provgraph.ingest.security import parse_security
from provgraph.ingest.sources import Source, expand, open_bytes
from provgraph.ingest.sysmon import parse_sysmon
from provgraph.ingest.sysmon_linux import parse_sysmon_linux
from provgraph.ingest.windows import parse_windows

log = logging.getLogger(__name__)

Parser = Callable[[Any, Origin], list[Event]]
PARSERS: dict[str, Parser] = {
    "windows": parse_windows,
    "sysmon": parse_sysmon,
    "security": parse_security,
    "sysmon_linux": parse_sysmon_linux,
    "ecs": parse_ecs,
    "mde": parse_mde,
}


@dataclass(slots=True)
class Result:
    """One record's outcome: events, or a skip reason (irrelevant), or a dead letter."""

    origin: Origin
    events: list[Event] = field(default_factory=list)
    skipped: str | None = None
    dead: DeadLetter | None = None


def iter_events(
    sources: Source | Iterable[Source],
    format: str | None = None,
    *,
    dead_letters: DeadLetterWriter | None = None,
    summary: Summary | None = None,
    default_host: str = "unknown",
) -> Iterator[Event]:
    """Events from every record of every source. Rejected records go to `dead_letters`
    (when given); `summary` (when given) is filled in as the walk goes."""
    for result in iter_results(sources, format, summary=summary, default_host=default_host):
        if result.dead is not None and dead_letters is not None:
            dead_letters.write(result.dead)
        yield from result.events


def iter_results(
    sources: Source | Iterable[Source],
    format: str | None = None,
    *,
    summary: Summary | None = None,
    default_host: str = "unknown",
) -> Iterator[Result]:
    """`format` forces a parser (one of `detect.FORMATS`); otherwise each file is detected.
    `default_host` names the host for auditd lines without `node=`."""
    if format is not None and format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    summary = summary if summary is not None else Summary()
    for name, source in expand(sources):
        stats = summary.file(name)
        try:
            for result in _read_source(name, source, format, stats, default_host):
                _count(summary, stats, result)
                yield result
        except (OSError, EOFError) as exc:  # unreadable file, broken gzip: report it, go on
            log.warning("cannot read %s: %s", name, exc)
            stats.unreadable = f"{type(exc).__name__}: {exc}"
            result = _unreadable(Origin(format or stats.format or "unknown", name, 0), exc)
            _count(summary, stats, result)
            yield result


def _unreadable(origin: Origin, exc: BaseException) -> Result:
    """A whole input that cannot be read: one dead letter at line 0 (the file itself)."""
    reason = f"unreadable input: {type(exc).__name__}: {exc}"
    return Result(origin, dead=DeadLetter(origin, reason, None, ""))


def _count(summary: Summary, stats: FileSummary, result: Result) -> None:
    stats.records += 1
    if result.dead is not None:
        summary.reject(result.dead)
        reason = result.dead.reason.split(":", 1)[0]
        stats.rejected[f"{result.dead.field}: {reason}" if result.dead.field else reason] += 1
    elif result.events:
        stats.accepted += 1
        stats.events += len(result.events)
    else:
        stats.skipped[result.skipped or "irrelevant record"] += 1


def _read_source(
    name: str, source: Source, format: str | None, stats: FileSummary, default_host: str
) -> Iterator[Result]:
    with open_bytes(source) as stream:
        head = stream.read(CHUNK)
        detected = detect(head)
        if format is not None:
            detected = force(detected, format, head)
        stats.format = detected.format
        if detected.framing is None:
            if not head.strip():
                stats.empty = True
                return
            stats.unrecognised = detected.shape
            log.warning("%s: unrecognised input, %s", name, detected.shape)
            return
        if detected.framing == "evtx":
            yield from _evtx(name, stream, head, detected.format or "windows", stats)
        elif detected.framing == "lines" and detected.format == "auditd":
            yield from _auditd(name, read_lines(stream, head), default_host)
        elif detected.framing == "lines":
            yield from _text_lines(name, read_lines(stream, head), detected.format or "")
        elif detected.framing == "csv":
            lines = read_lines(stream, head)
            format = detected.format or "mde"
            yield from _lines_before(name, lines, detected.start, format, "before the CSV header")
            yield from _csv(name, lines, format)
        elif detected.framing == "json_array":
            elements = read_json_array(stream, head)
            yield from _elements(name, elements, detected.format, stats, "JSON array of ")
        elif detected.framing == "records":
            elements = read_records(stream, head)
            yield from _elements(name, elements, detected.format, stats, "records of ")
        else:
            yield from _ndjson(name, read_lines(stream, head), detected.format, stats)


def _lines_before(
    name: str, lines: Iterator[Line], start: int, format: str, where: str
) -> Iterator[Result]:
    """The lines in front of where detection found the records start: each one rejected (or
    skipped when blank), so nothing goes missing without a word."""
    for _ in range(start - 1):
        line = next(lines, None)
        if line is None:
            return
        origin = Origin(format, name, line.number)
        if line.text is None:
            yield _bad_line(origin, line)
        elif not line.text.strip():
            yield Result(origin, skipped="blank line")
        else:
            reason = f"not a {format} record: a line {where}"
            yield Result(origin, dead=DeadLetter(origin, reason, None, line.text))


def run_parser(parser: Parser, record: Any, origin: Origin, raw: str) -> Result:
    """One record through one parser; whatever goes wrong stays with this record."""
    try:
        events = parser(record, origin)
    except ParseError as exc:
        return Result(origin, dead=DeadLetter(origin, exc.reason, exc.field, raw))
    except Exception as exc:  # a parser bug must not sink the other records
        log.exception("parser failed on %s", origin.ref())
        reason = f"internal error: {type(exc).__name__}: {exc}"
        return Result(origin, dead=DeadLetter(origin, reason, None, raw))
    if not events:
        return Result(origin, skipped=skip_reason(events))
    return Result(origin, events=[cap_event(e) for e in events])


def _bad_line(origin: Origin, line: Line) -> Result:
    raw = line.raw.decode("utf-8", errors="backslashreplace")
    return Result(origin, dead=DeadLetter(origin, line.error or "unreadable", None, raw))


def _ndjson(
    name: str, lines: Iterator[Line], format: str | None, stats: FileSummary
) -> Iterator[Result]:
    for line in lines:
        origin = Origin(format or "unknown", name, line.number)
        if line.text is None:
            yield _bad_line(origin, line)
            continue
        if not line.text.strip():
            yield Result(origin, skipped="blank line")
            continue
        try:
            record = orjson.loads(line.text)  # several times faster than json on big records
        except orjson.JSONDecodeError as exc:
            reason = f"malformed JSON: {exc.msg} at column {exc.colno}"
            yield Result(origin, dead=DeadLetter(origin, reason, None, line.text))
            continue
        if format is None:
            format = detect_record(record)
            stats.format = format
            if format is None:
                stats.unrecognised = describe(line.text)
                log.warning("%s: unrecognised input, %s", name, stats.unrecognised)
                return
            origin = Origin(format, name, line.number)
        yield run_parser(PARSERS[format], record, origin, line.text)


def _elements(
    name: str, elements: Iterable[Element], format: str | None, stats: FileSummary, what: str
) -> Iterator[Result]:
    """The elements of a JSON array, or the records of Event Hub documents (see
    provgraph.ingest.capture): a record's line is its number in the file."""
    for element in elements:
        origin = Origin(format or "unknown", name, element.index)
        if element.error is not None:
            yield Result(origin, dead=DeadLetter(origin, element.error, None, element.raw))
            continue
        if format is None:
            format = detect_record(element.value)
            stats.format = format
            if format is None:
                stats.unrecognised = what + describe(element.raw)
                return
            origin = Origin(format, name, element.index)
        yield run_parser(PARSERS[format], element.value, origin, element.raw)


def _text_lines(name: str, lines: Iterator[Line], format: str) -> Iterator[Result]:
    """Line-per-record text (Sysmon for Linux XML, optionally after a syslog prefix)."""
    parser = PARSERS[format]
    for line in lines:
        origin = Origin(format, name, line.number)
        if line.text is None:
            yield _bad_line(origin, line)
        elif not line.text.strip():
            yield Result(origin, skipped="blank line")
        else:
            yield run_parser(parser, line.text, origin, line.text)


def _auditd(name: str, lines: Iterator[Line], default_host: str) -> Iterator[Result]:
    bad: list[Result] = []

    def decoded() -> Iterator[tuple[int, str]]:
        for line in lines:
            if line.text is None:
                bad.append(_bad_line(Origin("auditd", name, line.number), line))
            else:
                yield line.number, line.text

    for outcome in parse_auditd(decoded(), name, default_host=default_host):
        yield from bad
        bad.clear()
        if outcome.error is not None:
            error = outcome.error
            letter = DeadLetter(outcome.origin, error.reason, error.field, outcome.raw)
            yield Result(outcome.origin, dead=letter)
        elif not outcome.events:
            yield Result(outcome.origin, skipped=skip_reason(outcome.events or []))
        else:
            yield Result(outcome.origin, events=[cap_event(e) for e in outcome.events])
    yield from bad


def _csv(name: str, lines: Iterator[Line], format: str) -> Iterator[Result]:
    """CSV rows as dicts by header. A row's origin line is the line it ends on."""
    bad: list[Result] = []
    last = [0]

    def decoded() -> Iterator[str]:
        for line in lines:
            last[0] = line.number
            if line.text is None:
                bad.append(_bad_line(Origin(format, name, line.number), line))
            else:
                yield line.text + "\n"

    csv.field_size_limit(MAX_LINE)
    rows = csv.reader(decoded())
    header: list[str] | None = None
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            origin = Origin(format, name, last[0])
            yield Result(origin, dead=DeadLetter(origin, f"malformed CSV: {exc}", None, ""))
            continue
        yield from bad
        bad.clear()
        origin = Origin(format, name, last[0])
        if not row:
            yield Result(origin, skipped="blank line")
        elif header is None:
            header = [c.strip().lstrip("\ufeff") for c in row]
            yield Result(origin, skipped="CSV header")
        else:
            yield _csv_row(header, row, origin, format)
    yield from bad


def _csv_row(header: list[str], row: list[str], origin: Origin, format: str) -> Result:
    raw = ",".join(row)
    if len(row) != len(header):
        reason = f"row has {len(row)} cells, header has {len(header)}"
        return Result(origin, dead=DeadLetter(origin, reason, None, raw))
    return run_parser(PARSERS[format], dict(zip(header, row, strict=True)), origin, raw)


def _evtx(
    name: str, stream: IO[bytes], head: bytes, format: str, stats: FileSummary
) -> Iterator[Result]:
    """An .evtx file or stream, chunk by chunk; records it lost are counted one by one (see
    provgraph.ingest.evtx_file). A record's line is its position in the file, lost ones
    included, so what follows a damaged chunk keeps the numbers of an intact copy."""
    from provgraph.ingest.evtx_file import EvtxFile  # loads the native parser

    evtx = EvtxFile(stream, head)
    for number, item in enumerate(evtx.items(), 1):
        origin = Origin(format, name, number)
        if item.record is None:
            reason = item.reason or "unreadable EVTX record"
            yield Result(origin, dead=DeadLetter(origin, reason, None, ""))
        else:
            yield _evtx_record(item.record, origin, format)
    stats.cut_short = evtx.cut_short


def _evtx_record(item: Mapping[str, Any], origin: Origin, format: str) -> Result:
    data = item.get("data", "")
    try:
        record = json.loads(data)
    except (TypeError, json.JSONDecodeError) as exc:
        return Result(
            origin, dead=DeadLetter(origin, f"malformed EVTX JSON: {exc}", None, str(data))
        )
    return run_parser(PARSERS[format], record, origin, data)
