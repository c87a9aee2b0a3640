"""Line framing against a plain reference split, with chunks small enough that lines and
over-long lines straddle chunk boundaries."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from provgraph.ingest import framing

MAX_LINE = 40


def reference(data: bytes) -> list[tuple[int, str | None]]:
    """(line number, text or None when over-long), split the obvious way."""
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    return [
        (n, None if len(line) > MAX_LINE else line.decode().rstrip("\r\n"))
        for n, line in enumerate(lines, 1)
    ]


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="ab\r", max_size=2 * MAX_LINE), max_size=12),
    final_newline=st.booleans(),
)
def test_lines_match_a_plain_split(chunk: int, lines: list[str], final_newline: bool) -> None:
    data = "\n".join(lines).encode() + (b"\n" if final_newline and lines else b"")
    original, framing.CHUNK = framing.CHUNK, chunk
    try:
        got = [
            (line.number, line.text)
            for line in framing.read_lines(io.BytesIO(data), max_line=MAX_LINE)
        ]
    finally:
        framing.CHUNK = original
    assert got == reference(data)


def test_head_bytes_come_first_and_over_long_lines_say_why() -> None:
    stream = io.BytesIO(b"cd\n" + b"x" * 100 + b"\nlast")
    lines = list(framing.read_lines(stream, head=b"\xef\xbb\xbfab", max_line=MAX_LINE))
    assert [(line.number, line.text) for line in lines] == [(1, "abcd"), (2, None), (3, "last")]
    assert lines[1].error == f"record longer than {MAX_LINE} bytes"
    assert lines[1].raw.startswith(b"x" * MAX_LINE)  # kept (cut) for the dead letter
