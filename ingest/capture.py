"""Event Hub documents: `{"records": [ {…}, {…} ]}`, one or several in a row, read record by
record without holding the document.

The Defender Streaming API sends each Event Hub message as one such document (Azure Monitor
diagnostic exports use the same envelope); captured or dumped, a file holds one document,
pretty-printed or on one line, or several of them one after the other. Records are numbered
from 1 across the whole file: that number is a record's "line" in errors and evidence.

A record that is not valid JSON loses only itself: its end is found by matching brackets
outside strings, and reading goes on after it. Only what leaves the brackets themselves in
doubt (an unterminated string at the end of the file, a record longer than `MAX_LINE`, junk
between records) ends the file, with one error element saying where.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Generator, Iterator
from typing import IO

from provgraph.ingest.framing import CHUNK, MAX_LINE, Element

RECORDS_DOCUMENT = re.compile(r'\s*\{\s*"records"\s*:\s*\[')
# a string (closed, or running to the end of the text), or one structural character
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*("|\\?\Z)|[{}\[\],]', re.DOTALL)
_SPACE = re.compile(r"\s*")
_DOCUMENT_END = re.compile(r"\s*\}")
_SNIPPET = 200


class _Text:
    """Decoded text of a byte stream, read in chunks; `pos` is the reading position."""

    def __init__(self, stream: IO[bytes], head: bytes) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._pending = head
        self.text = ""
        self.pos = 0
        self.eof = False

    def more(self) -> bool:
        """Read another chunk; False at the end of the stream. Drops what was consumed."""
        if self.eof:
            return False
        data, self._pending = self._pending or self._stream.read(CHUNK), b""
        self.text = self.text[self.pos :]
        self.pos = 0
        if not data:
            self.eof = True
            self.text += self._decoder.decode(b"", final=True)
            return False
        self.text += self._decoder.decode(data)
        return True

    def skip_space(self) -> bool:
        """Skip white space; False when only white space was left."""
        while True:
            match = _SPACE.match(self.text, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.text):
                return True
            if not self.more():
                return False

    def ensure(self, n: int) -> None:
        """At least `n` characters ahead of `pos`, unless the stream ends first."""
        while len(self.text) - self.pos < n and self.more():
            pass

    def snippet(self) -> str:
        return self.text[self.pos : self.pos + _SNIPPET]


def value_end(text: str, start: int) -> int | None:
    """Where the JSON value (well-formed or not) starting at `start` ends: after its closing
    bracket, or before the `,` / `]` that follows a bare value. None when the text ends
    first (more may come)."""
    depth = 0
    for match in _TOKEN.finditer(text, start):
        token = match.group(0)
        if token[0] == '"':
            if match.group(1) != '"':
                return None  # a string still open at the end of the text
        elif token in "{[":
            depth += 1
        elif token in "}]":
            if depth == 0:
                return match.start()  # closes the enclosing array: the value ended before it
            depth -= 1
            if depth == 0:
                return match.end()
        elif depth == 0:  # a comma after a bare value
            return match.start()
    return None


def read_records(stream: IO[bytes], head: bytes = b"") -> Iterator[Element]:
    """The records of every `{"records": [...]}` document in the stream, in order."""
    reader = _Text(stream, head)
    decoder = json.JSONDecoder()
    index = 0
    while reader.skip_space():
        reader.ensure(64)
        start = RECORDS_DOCUMENT.match(reader.text, reader.pos)
        if start is None:
            reason = 'expected a {"records": [...]} document'
            yield Element(index + 1, None, reason, reader.snippet())
            return
        reader.pos = start.end()
        while True:
            if not reader.skip_space():
                yield Element(index + 1, None, "the document ends inside its records", "")
                return
            if reader.text[reader.pos] == "]":
                reader.pos += 1
                break
            index += 1
            error = yield from _one(reader, decoder, index)
            if error:
                return
            if not reader.skip_space():
                yield Element(index + 1, None, "the document ends inside its records", "")
                return
            if reader.text[reader.pos] == ",":
                reader.pos += 1
            elif reader.text[reader.pos] != "]":
                reason = "expected ',' or ']' between records"
                yield Element(index + 1, None, reason, reader.snippet())
                return
        reader.ensure(1)
        end = _DOCUMENT_END.match(reader.text, reader.pos)
        if end is None:
            reason = 'expected "}" after the records (other keys are not read)'
            yield Element(index + 1, None, reason, reader.snippet())
            return
        reader.pos = end.end()


def _one(reader: _Text, decoder: json.JSONDecoder, index: int) -> Generator[Element, None, bool]:
    """Yield record `index` (or its error) and return True when reading cannot go on."""
    while True:
        start = reader.pos
        try:
            value, end = decoder.raw_decode(reader.text, start)
        except json.JSONDecodeError as exc:
            end_at = value_end(reader.text, start)
            if end_at is not None and (end_at < len(reader.text) or reader.eof):
                raw = reader.text[start:end_at]
                reader.pos = end_at
                yield Element(index, None, f"malformed JSON: {exc.msg}", raw[:4096])
                return False
            if reader.eof:
                raw = reader.text[start : start + 4096]
                yield Element(index, None, f"malformed JSON: {exc.msg} (the file ends)", raw)
                return True
        else:
            # a value ending exactly at the buffer's end may go on in the next chunk
            if end < len(reader.text) or reader.eof:
                reader.pos = end
                yield Element(index, value, None, reader.text[start:end])
                return False
        if len(reader.text) - start > MAX_LINE:
            reason = f"record longer than {MAX_LINE} bytes"
            yield Element(index, None, reason, reader.text[start : start + 4096])
            return True
        reader.more()
        # more() moved the text: what was at `start` is now at 0
