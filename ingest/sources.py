"""Turning what the user named (paths, folders, "-", open streams) into byte streams."""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Union, cast

from provgraph.ingest.detect import GZIP_MAGIC

Source = Union[str, "os.PathLike[str]", IO[bytes], IO[str]]


def expand(sources: Source | Iterable[Source]) -> Iterator[tuple[str, Source]]:
    """(display name, source) per input file; folders are walked recursively in name order,
    skipping hidden files."""
    if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "read"):
        listed: list[Source] = [cast(Source, sources)]
    else:
        listed = list(sources)
    for source in listed:
        if hasattr(source, "read"):
            yield getattr(source, "name", "<stream>"), source
        elif str(source) == "-":
            yield "<stdin>", sys.stdin.buffer
        elif Path(source).is_dir():
            for path in sorted(Path(source).rglob("*")):
                if path.is_file() and not any(p.startswith(".") for p in path.parts[-1:]):
                    yield str(path), path
        else:
            yield str(source), source


@contextmanager
def open_bytes(source: Source) -> Iterator[IO[bytes]]:
    """A binary stream, gunzipped when the content is gzip (by magic, not by name)."""
    if hasattr(source, "read"):
        stream = _binary(cast("IO[bytes] | IO[str]", source))
        yield _maybe_gunzip(_Rewindable(stream))
        return
    with open(source, "rb") as handle:
        yield _maybe_gunzip(_Rewindable(handle))


def _binary(stream: IO[bytes] | IO[str]) -> IO[bytes]:
    if isinstance(stream, io.TextIOBase):
        return stream.buffer if hasattr(stream, "buffer") else _encode(stream)
    return cast(IO[bytes], stream)


def _encode(stream: IO[str]) -> IO[bytes]:
    return io.BytesIO(stream.read().encode("utf-8"))  # StringIO has its text in memory anyway


def _maybe_gunzip(stream: _Rewindable) -> IO[bytes]:
    # buffered so that read(n) returns n bytes unless the stream ends
    buffered = io.BufferedReader(stream)
    if stream.peek_bytes(2) == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered


class _Rewindable(io.RawIOBase):
    """A read-only stream whose first bytes can be looked at before reading (stdin can't seek)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._head = b""

    def readable(self) -> bool:
        return True

    def peek_bytes(self, n: int) -> bytes:
        while len(self._head) < n:
            chunk = self._stream.read(n - len(self._head))
            if not chunk:
                break
            self._head += chunk
        return self._head[:n]

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
