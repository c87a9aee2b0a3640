"""Ingest end to end: read and parse (ingest/), write (graph/), then run the rules (queries/).

The CLI's `provgraph ingest` and the API's ingest endpoint both call `ingest_sources`, so
a file and an HTTP body are treated exactly alike.
"""

from __future__ import annotations

import enum
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from provgraph.graph.loader import Loader
from provgraph.graph.parallel import Remote, folded_batches
from provgraph.graph.parallel import worth_it as parallel_worth_it
from provgraph.graph.schema import ensure_schema
from provgraph.graph.tx import Graph
from provgraph.graph.writer import BATCH_SIZE
from provgraph.ingest.deadletter import DeadLetterWriter, Summary
from provgraph.ingest.model import Event
from provgraph.ingest.reader import iter_events
from provgraph.ingest.sources import Source

RulesHook = Callable[[Graph, datetime, datetime], Any]
EventObserver = Callable[[Event], None]


class Evidence(enum.StrEnum):
    """What each edge keeps of the records it came from."""

    RAW = "raw"  # its first raw record, for alert evidence
    REFS = "refs"  # only "source:path:line" references: faster, smaller


@dataclass
class IngestReport:
    summary: Summary
    written: int
    seconds: float
    first_ts: datetime | None
    last_ts: datetime | None
    dead_letters: str | None = None
    rules: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    @property
    def problems(self) -> dict[str, str]:
        """Inputs that failed as a whole (unreadable, unrecognised, cut short, no events from
        records that had some), path -> why: what `provgraph ingest` exits 3 for."""
        return self.summary.problems

    def to_dict(self) -> dict[str, Any]:
        counts = self.summary.to_dict()
        return {
            "accepted": counts["accepted"],
            "events": counts["events"],
            "written": self.written,
            "skipped": counts["skipped"],
            "rejected": counts["rejected"],
            "problems": counts["problems"],
            "rejections": counts["rejections"],
            "files": counts["files"],
            "dead_letters": self.dead_letters,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
            "first_event": self.first_ts.isoformat() if self.first_ts else None,
            "last_event": self.last_ts.isoformat() if self.last_ts else None,
        }


def ingest_sources(
    graph: Graph,
    sources: Source | Iterable[Source],
    fmt: str | None = None,
    *,
    dead_letters: str | Path | None = None,
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
    rules: RulesHook | None = None,
    ensure: bool = True,
    parallel: bool | None = None,
    evidence: Evidence | str = Evidence.RAW,
    observer: EventObserver | None = None,
) -> IngestReport:
    """Stream every record into the graph; rejected records go to `dead_letters` (NDJSON).

    `rules`, when given, is called with the time range just written so detections see the
    new events at once (the engine's `run_rules`). `parallel` parses in a second process
    (default: for files on disk large enough to pay for it; see provgraph.graph.parallel).
    `evidence` (an `Evidence`, or its value) says what each edge keeps of its records.
    `observer`, when given, sees every event as it is parsed (queries/ supplies it: Sigma
    rules evaluated as events stream, `queries.sigma.stream`); events are then parsed here,
    not in a second process, unless `parallel=True` and the observer's owner can be rebuilt
    in the parser process (`graph.parallel.Remote`: the stream's bound `observe`), where it
    then runs beside the parsing, its owner absorbing what it saw. Not the default: on two
    shared cores the parser process, parsing and matching, became the slower side (the Sigma
    bench's ingest 31.1 s against 17.5 s in-process at 100k events, 491 s against 307 s at
    1M, under loads of 4 to 9).
    """
    if evidence not in set(Evidence):
        raise ValueError(f"evidence must be one of {', '.join(Evidence)}")
    keep_raw = Evidence(evidence) is Evidence.RAW
    if ensure:
        ensure_schema(graph)
    summary = Summary()
    started = time.perf_counter()
    bar = _progress_bar() if progress else None
    existed = bool(dead_letters) and Path(str(dead_letters)).exists()
    listed: list[Source] = (
        [sources]  # type: ignore[list-item]
        if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "read")
        else list(sources)
    )
    remote: Remote | None = None
    if observer is None:
        in_parallel = parallel if parallel is not None else parallel_worth_it(listed)
    else:
        owner = getattr(observer, "__self__", None)
        if parallel is True and isinstance(owner, Remote) and owner.remote() is not None:
            remote = owner
        in_parallel = remote is not None
    # In parallel the parser process owns the dead-letter file; here, this process does.
    writer = DeadLetterWriter(dead_letters) if dead_letters and not in_parallel else None
    try:
        with Loader(
            graph,
            batch_size=batch_size,
            keep_raw=keep_raw,
            on_commit=(lambda s: bar.set_postfix(written=s.events)) if bar is not None else None,
        ) as load:
            if in_parallel:
                for folded in folded_batches(
                    [str(p) for p in listed],
                    fmt,
                    batch_size,
                    str(dead_letters) if dead_letters else None,
                    summary,
                    keep_raw=keep_raw,
                    observer=remote,
                ):
                    load.add_folded(folded)
                    if bar is not None:
                        bar.update(folded.events)
            else:
                for event in iter_events(listed, fmt, dead_letters=writer, summary=summary):
                    if observer is not None:
                        observer(event)
                    load.add(event)
                    if bar is not None:
                        bar.update(1)
    finally:
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.close()
    rejected = sum(summary.rejected.values())
    if dead_letters and not rejected and not existed:  # no rejects: leave no empty file behind
        Path(str(dead_letters)).unlink(missing_ok=True)
    report = IngestReport(
        summary=summary,
        written=load.stats.events,
        seconds=time.perf_counter() - started,
        first_ts=load.stats.first_ts,
        last_ts=load.stats.last_ts,
        dead_letters=str(dead_letters) if dead_letters and rejected else None,
    )
    if rules is not None and report.first_ts and report.last_ts:
        report.rules = rules(graph, report.first_ts, report.last_ts)
    return report


def _progress_bar() -> Any:
    from tqdm import tqdm

    return tqdm(
        unit=" ev",
        unit_scale=True,
        desc="ingest",
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
        smoothing=0.1,
    )


def format_report(report: IngestReport) -> str:
    """The end-of-run summary a person reads."""
    s = report.summary
    lines = [
        f"records accepted {s.accepted:,}, events written {report.written:,} "
        f"in {report.seconds:.1f}s ({report.events_per_second:,.0f} events/s)",
    ]
    if s.skipped:
        lines.append("skipped as irrelevant: " + _counter(s.skipped))
    if s.rejected:
        lines.append("rejected: " + _counter(s.rejected))
        if report.dead_letters:
            lines.append(f"dead letters (with file, line and reason): {report.dead_letters}")
    for path, f in s.files.items():
        if f.problem:
            lines.append(f"{path}: {f.problem}")
        elif f.empty:
            lines.append(f"{path}: empty")
    if report.problems:
        failed, total = len(report.problems), len(s.files)
        others = "; the others went in" if failed < total else ""
        lines.append(f"{failed} of {total} input(s) failed as a whole{others}")
    return "\n".join(lines)


def _counter(counts: Any, limit: int = 8) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{reason} ×{n:,}" for reason, n in items[:limit])
    return text + (f", … {len(items) - limit} more reasons" if len(items) > limit else "")
