"""Multi-chunk .evtx files made from real recordings (SigmaHQ regression data), for tests that
damage or cut them: the chunks are put one after the other and renumbered, with the checksums
Windows would write."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from provgraph.ingest.evtx_file import CHUNK_SIZE, FILE_HEADER_SIZE, RECORDS_START

SHARED = Path(os.environ.get("PROVGRAPH_SHARED", Path(__file__).resolve().parents[4] / "shared"))
REGRESSION = SHARED / "sigmahq" / "regression_data"
# seven Sysmon 11 file creations, six Sysmon 1 process starts (Shai-Hulud's bun execution)
NETEXEC = REGRESSION / (
    "rules/windows/file/file_event/file_event_win_hktl_netexec_file_indicators/"
    "efc21479-9e83-41da-8cf1-122e06ba8db3.evtx"
)
BUN = REGRESSION / (
    "rules-emerging-threats/2025/Malware/Shai-Hulud/"
    "proc_creation_win_mal_shai_hulud_malicious_node_bun_execution/"
    "5299fadf-f228-4526-8274-251db1960be9.evtx"
)


def record_spans(chunk: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each record in a chunk."""
    found, offset = [], RECORDS_START
    free = struct.unpack_from("<I", chunk, 48)[0]
    while offset < free:
        size = struct.unpack_from("<I", chunk, offset + 4)[0]
        found.append((offset, size))
        offset += size
    return found


def _renumbered(chunk: bytes, first: int) -> bytes:
    """The chunk with its records numbered from `first`, and its checksums made right."""
    data = bytearray(chunk)
    spans = record_spans(chunk)
    for n, (offset, _) in enumerate(spans):
        struct.pack_into("<Q", data, offset + 8, first + n)
    last = first + len(spans) - 1
    struct.pack_into("<QQQQ", data, 8, first, last, first, last)
    free = struct.unpack_from("<I", data, 48)[0]
    struct.pack_into("<I", data, 52, zlib.crc32(data[RECORDS_START:free]))
    struct.pack_into("<I", data, 124, zlib.crc32(data[:120] + data[128:RECORDS_START]))
    return bytes(data)


def build(*sources: Path) -> tuple[bytes, list[int]]:
    """One .evtx of the sources' first chunks in order, records numbered 1.. across them;
    and how many records each chunk holds."""
    header = bytearray(NETEXEC.read_bytes()[:FILE_HEADER_SIZE])
    chunks, counts, first = [], [], 1
    for source in sources:
        chunk = source.read_bytes()[FILE_HEADER_SIZE : FILE_HEADER_SIZE + CHUNK_SIZE]
        chunks.append(_renumbered(chunk, first))
        counts.append(len(record_spans(chunk)))
        first += counts[-1]
    struct.pack_into("<QQQ", header, 8, 0, len(chunks) - 1, first)  # chunks, next record
    struct.pack_into("<H", header, 42, len(chunks))
    struct.pack_into("<I", header, 124, zlib.crc32(header[:120]))
    return bytes(header) + b"".join(chunks), counts
