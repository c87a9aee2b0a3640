"""Reading .evtx files one chunk at a time, so that every record a damaged file loses is counted.

An .evtx file is a 4 KiB file header and then 64 KiB chunks; each chunk's header names the first
and last event record numbers the chunk holds. evtx-rs (the `evtx` package) reads a whole file
well, but on damage it raises once for a chunk of many records, or stops inside a chunk without a
word, and it passes over a chunk the file ends in. Handing it one chunk at a time, behind the
file's own header, lets us hold what came back against what the chunk header promised, and
account for the difference record by record. A chunk cut short by the end of the file keeps its
whole records (the bytes after the last whole one are blanked, so a half record is never read
as a short one) and counts the rest as lost past the cut.

Streams work as well as files: the chunks are read in order, 64 KiB at a time, with no spooling.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

FILE_HEADER_SIZE = 4096
CHUNK_SIZE = 64 * 1024
RECORDS_START = 512  # a chunk's records follow its 128-byte header and its string/template tables
CHUNK_MAGIC = b"ElfChnk\x00"
RECORD_MAGIC = b"\x2a\x2a\x00\x00"
RECORD_HEADER = 24  # magic, size, record id, time; the record ends with a copy of its size
MAX_RECORDS = (CHUNK_SIZE - RECORDS_START) // (RECORD_HEADER + 4)  # more cannot fit in a chunk
LOST_CHUNK = "unreadable EVTX chunk"  # the reasons' leading words: the summary counts by them
LOST_RECORD = "unreadable EVTX record"
CUT_SHORT = "EVTX file cut short"


@dataclass(frozen=True, slots=True)
class Span:
    """The event record numbers a chunk header says its chunk holds."""

    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        return f"event records {self.first}..{self.last}"


@dataclass(frozen=True, slots=True)
class Item:
    """One record of the file, in file order: evtx-rs's JSON item, or why it is missing."""

    record: dict[str, Any] | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Damaged:
    """A chunk whose header cannot be read; its records are counted once its neighbours are."""

    index: int
    why: str
    cut: int | None  # bytes present when the file ends inside this chunk
    blank: bool  # all zeros: space never written, not damage


class EvtxFile:
    """The records of one .evtx stream. `head` is what was already read off its start.
    After `items()` is exhausted, `cut_short` says how the file ends early, if it does."""

    def __init__(self, stream: IO[bytes], head: bytes = b"", parser_class: Any = None) -> None:
        if parser_class is None:
            from evtx import PyEvtxParser  # native module: only loaded when an .evtx shows up

            parser_class = PyEvtxParser
        self._parser_class = parser_class
        self._reader = _Exact(stream, head)
        self.cut_short: str | None = None
        self._header = b""  # the file's own header, put in front of every chunk evtx-rs reads
        self._last: int | None = None  # the last record number of the latest readable chunk
        self._next_record = 0  # the file header's next record number (0: unknown)

    def items(self) -> Iterator[Item]:
        header = self._reader.read(FILE_HEADER_SIZE)
        if len(header) < FILE_HEADER_SIZE:
            self.cut_short = (
                f"the file ends {len(header)} bytes into its {FILE_HEADER_SIZE}-byte file header"
            )
            yield Item(None, f"{CUT_SHORT}: {self.cut_short}; no record can be read or counted")
            return
        self._header = header
        self._next_record = struct.unpack_from("<Q", header, 24)[0]
        pending: list[_Damaged] = []
        index = -1
        while True:
            data = self._reader.read(CHUNK_SIZE)
            if not data:
                break
            index += 1
            cut = len(data) if len(data) < CHUNK_SIZE else None
            span, why = _span(data)
            if span is None:
                blank = not data.strip(b"\x00")
                pending.append(_Damaged(index, why, cut, blank))
                continue
            yield from self._lost_between(pending, span.first)
            pending = []
            yield from self._chunk(index, data, span, cut)
            self._last = span.last
        yield from self._lost_between(pending, None)

    # -- one readable chunk ------------------------------------------------------------------
    def _chunk(self, index: int, data: bytes, span: Span, cut: int | None) -> Iterator[Item]:
        where = f"chunk {index} ({span})"
        if cut is not None:
            data = _whole_records(data)
        held: list[str] = []  # errors before any record: errors and no record = the chunk lost
        read = failed = 0
        records: Iterator[dict[str, Any]] = iter(())
        if cut is None or cut >= RECORDS_START:  # else the cut leaves no record to read
            try:
                parser = self._parser_class(io.BytesIO(self._header + data), number_of_threads=1)
                records = iter(parser.records_json())
            except Exception as exc:  # evtx-rs raises its own errors for a header it cannot use
                held, failed = [_message(exc)], 1
        while True:
            try:
                item = next(records)
            except StopIteration:
                break
            except Exception as exc:  # one record (or the rest of the chunk) unreadable
                failed += 1
                if read:
                    yield Item(None, f"{LOST_RECORD}: {_message(exc)}")
                else:
                    held.append(_message(exc))
                continue
            yield from self._record_errors(held)
            read += 1
            yield Item(item)
        if not read and held and len(held) < span.count:
            for number in range(span.first, span.last + 1):
                yield Item(
                    None,
                    f"{LOST_CHUNK}: {where} could not be read, record {number} lost: {held[0]}",
                )
            lost = span.count
        else:
            yield from self._record_errors(held)
            missing = max(0, span.count - read - failed)
            for number in range(span.last - missing + 1, span.last + 1):
                if cut is not None:
                    reason = f"the file ends {cut} bytes into {where}; record {number} is past it"
                    yield Item(None, f"{CUT_SHORT}: {reason}")
                else:
                    reason = f"{where} ends after {read + failed} of {span.count} records"
                    yield Item(None, f"{LOST_CHUNK}: {reason}; record {number} is missing")
            lost = failed + missing
        if cut is not None and lost:  # a cut through the chunk's free space loses nothing
            self.cut_short = (
                f"the file ends {cut} bytes into chunk {index} ({span}; chunks are {CHUNK_SIZE} "
                f"bytes): {read} record(s) read, {lost} lost"
            )

    @staticmethod
    def _record_errors(errors: list[str]) -> Iterator[Item]:
        for error in errors:
            yield Item(None, f"{LOST_RECORD}: {error}")
        errors.clear()

    # -- chunks without a readable header -------------------------------------------------------
    def _lost_between(self, pending: list[_Damaged], next_first: int | None) -> Iterator[Item]:
        """The records of unreadable chunks, counted from the numbers around them: after the
        last readable chunk's and before the next one's (or the file header's next record)."""
        damaged = [d for d in pending if not d.blank]
        if not pending or (next_first is None and not damaged):
            return  # nothing, or blank space at the end of the file
        end = next_first if next_first is not None else self._next_record or None
        gap = None
        if self._last is not None and end is not None and end > self._last:
            gap = end - self._last - 1
            if gap > MAX_RECORDS * len(pending):
                gap = None  # the numbers do not fit: a wrapped log, or a header that lies
        cut = next((d for d in pending if d.cut is not None), None)
        if cut is not None:
            lost = "how many records it held is unknown" if gap is None else f"{gap} lost"
            self.cut_short = (
                f"the file ends {cut.cut} bytes into chunk {cut.index}, inside its header: {lost}"
            )
        if gap is None:
            for d in damaged:
                if d.cut is not None:
                    yield Item(None, f"{CUT_SHORT}: {self.cut_short}")
                else:
                    yield Item(
                        None,
                        f"{LOST_CHUNK}: chunk {d.index} unreadable ({d.why}); "
                        "how many records it held is unknown",
                    )
            return
        assert self._last is not None
        lead = CUT_SHORT if cut is not None else LOST_CHUNK
        names = ", ".join(f"{d.index} ({d.why})" for d in pending)
        for number in range(self._last + 1, self._last + 1 + gap):
            yield Item(
                None,
                f"{lead}: record {number} lost with unreadable chunk(s) {names}, "
                f"counted between the records of the readable chunks around",
            )


def _span(data: bytes) -> tuple[Span | None, str]:
    if len(data) < 24:
        return None, f"only {len(data)} bytes"
    if not data.startswith(CHUNK_MAGIC):
        return None, "no chunk signature"
    first, last = struct.unpack_from("<QQ", data, 8)
    if first < 1 or last < first or last - first >= MAX_RECORDS:
        return None, f"implausible record numbers {first}..{last}"
    return Span(first, last), ""


def _whole_records(data: bytes) -> bytes:
    """A chunk cut short, padded to full size with zeros after its last whole record (evtx-rs
    stops at the zeros; a record cut in two would otherwise parse as a short, wrong one)."""
    end = offset = RECORDS_START
    while offset + RECORD_HEADER <= len(data) and data.startswith(RECORD_MAGIC, offset):
        size = struct.unpack_from("<I", data, offset + 4)[0]
        if size < RECORD_HEADER + 4 or offset + size > len(data):
            break
        if struct.unpack_from("<I", data, offset + size - 4)[0] != size:
            break
        offset += size
        end = offset
    kept = data[:end]
    return kept + b"\x00" * (CHUNK_SIZE - len(kept))


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


class _Exact:
    """read(n) gives n bytes unless the stream ends: what was already read off it comes first."""

    def __init__(self, stream: IO[bytes], head: bytes) -> None:
        self._stream = stream
        self._head = head

    def read(self, n: int) -> bytes:
        parts = [self._head[:n]]
        self._head = self._head[n:]
        have = len(parts[0])
        while have < n:
            data = self._stream.read(n - have)
            if not data:
                break
            parts.append(data)
            have += len(data)
        return b"".join(parts)
