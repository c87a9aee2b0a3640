"""EVTX files that are damaged or cut short: every lost record is counted, every kept one read.

The files are made at test time from real recordings (see evtx_samples), then corrupted or cut
in tmp_path.
"""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import pytest
from evtx import PyEvtxParser
from provgraph.ingest.deadletter import Summary
from provgraph.ingest.evtx_file import CHUNK_SIZE, FILE_HEADER_SIZE
from provgraph.ingest.model import Kind
from provgraph.ingest.reader import Result, iter_results

from tests.unit.ingest.evtx_samples import BUN, NETEXEC, REGRESSION, build, record_spans

pytestmark = pytest.mark.skipif(
    not NETEXEC.exists(), reason=f"the shared SigmaHQ regression data is not at {REGRESSION}"
)


def read(path: Path) -> tuple[list[Result], Summary]:
    summary = Summary()
    return list(iter_results(path, summary=summary)), summary


def test_the_built_file_is_a_clean_evtx(tmp_path: Path) -> None:
    data, counts = build(NETEXEC, BUN, NETEXEC)
    assert counts == [7, 6, 7]
    path = tmp_path / "clean.evtx"
    path.write_bytes(data)
    ids = [r["event_record_id"] for r in PyEvtxParser(str(path)).records_json()]
    assert ids == list(range(1, 21))  # evtx-rs reads it whole, as we do below
    results, summary = read(path)
    stats = summary.files[str(path)]
    assert (stats.records, stats.accepted, stats.rejected, stats.problem) == (20, 20, {}, None)
    assert [r.origin.line for r in results] == list(range(1, 21))
    starts = [e for r in results for e in r.events if e.kind is Kind.PROCESS_START]
    assert len(starts) == 6 and {r.origin.line for r in results if r.events[0] in starts} == set(
        range(8, 14)
    )


def test_a_corrupt_chunk_counts_every_record_it_lost(tmp_path: Path) -> None:
    data, _ = build(NETEXEC, BUN, NETEXEC)
    broken = bytearray(data)
    middle = FILE_HEADER_SIZE + CHUNK_SIZE
    broken[middle + 600 : middle + 700] = b"\xff" * 100  # the records of chunk 1 (records 8..13)
    path = tmp_path / "corrupt.evtx"
    path.write_bytes(broken)
    results, summary = read(path)
    stats = summary.files[str(path)]
    assert stats.records == 20 and stats.accepted == 14
    assert stats.rejected == {"unreadable EVTX chunk": 6}
    lost = [r for r in results if r.dead is not None]
    assert [r.origin.line for r in lost] == list(range(8, 14))  # the others keep their numbers
    assert all("chunk 1 (event records 8..13) could not be read" in r.dead.reason for r in lost)
    for number, result in zip(range(8, 14), lost, strict=True):
        assert f"record {number} lost" in result.dead.reason
    assert stats.problem is None  # records lost, but the file was read and gave events
    assert summary.to_dict()["rejections"]["total"] == 6


def test_a_chunk_with_no_readable_header_is_counted_from_its_neighbours(tmp_path: Path) -> None:
    data, _ = build(NETEXEC, BUN, NETEXEC)
    broken = bytearray(data)
    broken[FILE_HEADER_SIZE + CHUNK_SIZE : FILE_HEADER_SIZE + CHUNK_SIZE + 8] = b"XXXXXXXX"
    path = tmp_path / "no-magic.evtx"
    path.write_bytes(broken)
    results, summary = read(path)
    stats = summary.files[str(path)]
    assert (stats.records, stats.accepted, sum(stats.rejected.values())) == (20, 14, 6)
    reasons = [r.dead.reason for r in results if r.dead is not None]
    assert all(x.startswith("unreadable EVTX chunk: record ") for x in reasons)
    assert "chunk(s) 1 (no chunk signature)" in reasons[0]


def test_records_that_stop_early_inside_a_chunk_are_counted(tmp_path: Path) -> None:
    """evtx-rs stops a chunk without a word at a record that lost its signature."""
    data, _ = build(NETEXEC)
    broken = bytearray(data)
    offset, _ = record_spans(data[FILE_HEADER_SIZE:])[4]
    broken[FILE_HEADER_SIZE + offset : FILE_HEADER_SIZE + offset + 4] = b"\x00" * 4
    assert len(list(PyEvtxParser(io.BytesIO(bytes(broken))).records_json())) == 4
    path = tmp_path / "stops.evtx"
    path.write_bytes(broken)
    results, summary = read(path)
    stats = summary.files[str(path)]
    assert (stats.accepted, stats.rejected) == (4, {"unreadable EVTX chunk": 3})
    assert [r.origin.line for r in results if r.dead] == [5, 6, 7]
    assert "ends after 4 of 7 records; record 5 is missing" in results[4].dead.reason


def test_a_record_evtx_rs_cannot_read_is_one_rejection(tmp_path: Path) -> None:
    data, _ = build(NETEXEC)
    broken = bytearray(data)
    offset, _ = record_spans(data[FILE_HEADER_SIZE:])[4]
    start = FILE_HEADER_SIZE + offset + 24  # the record's BinXML
    broken[start : start + 36] = b"\xee" * 36
    path = tmp_path / "one-bad.evtx"
    path.write_bytes(broken)
    results, summary = read(path)
    stats = summary.files[str(path)]
    assert (stats.accepted, stats.rejected) == (6, {"unreadable EVTX record": 1})
    assert results[4].dead is not None and "record number 5" in results[4].dead.reason


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_file_cut_inside_its_first_chunk_says_so(tmp_path: Path, gzipped: bool) -> None:
    data, _ = build(NETEXEC)
    spans = record_spans(data[FILE_HEADER_SIZE:])
    cut = FILE_HEADER_SIZE + spans[3][0] + 100  # in the middle of the fourth record
    path = tmp_path / "cut.evtx"
    path.write_bytes(gzip.compress(data[:cut]) if gzipped else data[:cut])
    assert list(PyEvtxParser(io.BytesIO(data[:cut])).records_json()) == []  # evtx-rs: silence
    results, summary = read(path)
    stats = summary.files[str(path)]
    assert (stats.records, stats.accepted) == (7, 3)  # the whole records before the cut
    assert stats.rejected == {"EVTX file cut short": 4}
    assert [r.origin.line for r in results if r.dead] == [4, 5, 6, 7]
    assert stats.cut_short is not None and "3 record(s) read, 4 lost" in stats.cut_short
    assert stats.problem is not None and stats.problem.startswith("cut short: the file ends")
    assert "record 4 is past it" in (results[3].dead.reason if results[3].dead else "")


def test_a_file_cut_inside_a_chunk_header_counts_from_the_file_header(tmp_path: Path) -> None:
    data, _ = build(NETEXEC, BUN)
    path = tmp_path / "cut-header.evtx"
    path.write_bytes(data[: FILE_HEADER_SIZE + CHUNK_SIZE + 20])  # 20 bytes of chunk 1
    results, summary = read(path)
    stats = summary.files[str(path)]
    assert (stats.accepted, stats.rejected) == (7, {"EVTX file cut short": 6})
    assert stats.cut_short == "the file ends 20 bytes into chunk 1, inside its header: 6 lost"


def test_a_file_cut_inside_its_file_header_is_a_failed_input(tmp_path: Path) -> None:
    data, _ = build(NETEXEC)
    path = tmp_path / "stub.evtx"
    path.write_bytes(data[:1000])
    results, summary = read(path)
    stats = summary.files[str(path)]
    assert stats.records == 1 and stats.accepted == 0
    assert results[0].dead is not None
    assert results[0].dead.reason.startswith("EVTX file cut short: the file ends 1000 bytes")
    assert stats.problem is not None and "cut short" in stats.problem


def test_blank_space_after_the_last_chunk_is_not_a_loss(tmp_path: Path) -> None:
    data, _ = build(NETEXEC)
    path = tmp_path / "padded.evtx"
    path.write_bytes(data + b"\x00" * CHUNK_SIZE)
    _, summary = read(path)
    stats = summary.files[str(path)]
    assert (stats.accepted, stats.rejected, stats.problem) == (7, {}, None)


def test_every_real_recording_reads_as_evtx_rs_reads_it_whole() -> None:
    """Chunk by chunk changes nothing on intact files: the same records, none lost."""
    files = sorted(REGRESSION.rglob("*.evtx"))
    assert len(files) > 100
    for path in files:
        whole = [r["event_record_id"] for r in PyEvtxParser(str(path)).records_json()]
        results, summary = read(path)
        stats = summary.files[str(path)]
        assert stats.records == len(whole) and not stats.rejected, (path, stats)
        assert stats.problem is None and stats.cut_short is None, path
        assert [r.origin.line for r in results] == list(range(1, len(whole) + 1))


def test_a_cut_through_a_chunks_free_space_loses_nothing(tmp_path: Path) -> None:
    data, _ = build(NETEXEC)
    free = struct.unpack_from("<I", data, FILE_HEADER_SIZE + 48)[0]  # where the records end
    path = tmp_path / "cut-in-free-space.evtx"
    path.write_bytes(data[: FILE_HEADER_SIZE + free + 1000])
    _, summary = read(path)
    stats = summary.files[str(path)]
    assert (stats.accepted, stats.rejected, stats.cut_short, stats.problem) == (7, {}, None, None)
