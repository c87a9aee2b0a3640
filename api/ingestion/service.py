"""Ingest over HTTP: the body is spooled (bounded, gunzipped when asked) and handed to the
same pipeline the CLI uses, `provgraph.graph.pipeline.ingest_stream`."""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import asdict, is_dataclass
from typing import IO, Any

from provgraph.graph.tx import Graph

CHUNK = 1024 * 1024


class BodyTooLarge(Exception):
    def __init__(self, limit: int, what: str) -> None:
        super().__init__(f"the {what} is larger than {limit} bytes")
        self.limit = limit
        self.what = what


class BadEncoding(Exception):
    pass


class PipelineUnavailable(RuntimeError):
    pass


class NamedStream:
    """A spooled body the reader sees as one named binary stream."""

    def __init__(self, spool: IO[bytes], name: str) -> None:
        self._spool = spool
        self.name = name

    def read(self, size: int = -1) -> bytes:
        return self._spool.read(size)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._spool.close()


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=8 * CHUNK)  # noqa: SIM115


async def receive(
    chunks: AsyncIterator[bytes], *, gzipped: bool, max_bytes: int, max_decoded: int
) -> tuple[IO[bytes], int, int]:
    """Spool the body, gunzipping on the fly (several gzip members are fine); returns
    (spool at 0, bytes received, bytes decoded). Stops at the first byte over either limit,
    so neither a huge body nor a gzip bomb is ever held whole."""
    spool = _spool()
    received = 0
    sink = _Sink(spool, max_decoded)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if gzipped else None
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > max_bytes:
                raise BodyTooLarge(max_bytes, "request body")
            if inflater is None:
                sink.write(chunk)
                continue
            pending = chunk
            while pending:
                try:
                    sink.write(inflater.decompress(pending, sink.room()))
                except zlib.error as error:
                    raise BadEncoding(f"the body is not valid gzip: {error}") from error
                if inflater.unconsumed_tail:
                    pending = inflater.unconsumed_tail
                elif inflater.eof and inflater.unused_data:
                    pending = inflater.unused_data  # the next gzip member
                    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                else:
                    pending = b""
        if inflater is not None and received and not inflater.eof:
            raise BadEncoding("the gzip body ends before its end marker")
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, received, sink.written


class _Sink:
    def __init__(self, spool: IO[bytes], limit: int) -> None:
        self.spool = spool
        self.limit = limit
        self.written = 0

    def room(self) -> int:
        return self.limit - self.written + 1  # one byte over tells us the limit is passed

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if self.written > self.limit:
            raise BodyTooLarge(self.limit, "decompressed body")
        self.spool.write(data)


def _pipeline() -> Any:
    try:
        from provgraph.graph.pipeline import ingest_sources
    except ImportError as error:
        raise PipelineUnavailable(
            "provgraph.graph.pipeline.ingest_sources is not available in this build"
        ) from error
    return ingest_sources


def _rules_hook() -> tuple[Any, Any]:
    """(rules hook, event observer): single-event Sigma rules stream as the body is parsed
    (`queries.sigma.stream`), the other rules run as Cypher after the write."""
    try:
        from provgraph.queries.engine import run_rules
        from provgraph.queries.sigma.stream import catalog_stream
    except ImportError:
        return None, None
    stream = catalog_stream()
    if stream is not None:
        return stream.hook, stream.observe
    return (lambda graph, since, until: run_rules(graph, since=since, until=until)), None


def ingest_body(
    graph: Graph, *, stream: NamedStream, fmt: str | None, run_rules: bool = True
) -> dict[str, Any]:
    """Run the shared pipeline (the CLI's) over one spooled body; its report as plain JSON.
    With `run_rules`, the rules run over the event-time range just written, as after a CLI
    ingest, so new detections exist when the answer arrives."""
    ingest_sources = _pipeline()
    hook, observer = _rules_hook() if run_rules else (None, None)
    report = ingest_sources(graph, stream, fmt, rules=hook, ensure=False, observer=observer)
    result = summary_dict(report)
    runs = getattr(report, "rules", None)
    if runs:
        result["rules"] = [
            {
                "rule_id": r.rule_id,
                "matches": r.matches,
                "created": r.created,
                "updated": r.updated,
                "error": r.error,
            }
            for r in runs
        ]
    return result


def summary_dict(summary: Any) -> dict[str, Any]:
    if hasattr(summary, "to_dict"):
        return dict(summary.to_dict())
    if is_dataclass(summary):
        return asdict(summary)  # type: ignore[arg-type]
    return dict(summary)
