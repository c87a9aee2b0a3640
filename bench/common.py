"""Shared plumbing for the benchmarks: the bench Neo4j, generated data, machine facts."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
DATA = OUT / "data"
BENCH_INSTANCE = os.environ.get("PROVGRAPH_BENCH_INSTANCE", "bench")


def machine() -> dict[str, Any]:
    import psutil

    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_graph() -> Any:
    """A connected Graph on the bench Neo4j: NEO4J_URI if set, else the managed 'bench'
    instance."""
    from provgraph.graph.target import Neo4jTarget
    from provgraph.graph.tx import Graph

    if os.environ.get("NEO4J_URI"):
        return Graph.connect()
    from provgraph.graph.local import server

    instance = server.Instance(
        BENCH_INSTANCE,
        heap=os.environ.get("PROVGRAPH_NEO4J_HEAP", "4g"),
        pagecache=os.environ.get("PROVGRAPH_NEO4J_PAGECACHE", "4g"),
    )
    server.start(instance, quiet=True)
    return Graph(
        Neo4jTarget(
            uri=instance.uri,
            user=server.USER,
            password=instance.password(),
            managed_instance=instance.name,
        )
    )


def wipe(graph: Any) -> None:
    """Empty the bench database in bounded transactions: relationships first, so no single
    inner transaction has to detach a host node holding a million ON_HOST edges."""
    graph.write_autocommit("MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 50000 ROWS")
    graph.write_autocommit("MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 50000 ROWS")


def generated(events: int, seed: int = 7, mix: str = "today") -> Path:
    """A generated data set of `events` events, made once and reused (bench/out/data).
    `mix`: the generator's event mix (`bench.generate --mix`)."""
    target = DATA / (f"gen-{events}-s{seed}" + ("" if mix == "today" else f"-{mix}"))
    if (target / "manifest.json").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.generate",
            "--events",
            str(events),
            "--seed",
            str(seed),
            "--out",
            str(target),
            "--mix",
            mix,
        ],
        check=True,
        cwd=ROOT,
    )
    return target


def telemetry_files(folder: Path) -> list[Path]:
    """The telemetry in a generated folder (not its manifest or ground truth)."""
    skip = {"manifest.json", "ground_truth.ndjson"}
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name not in skip)


def neo4j_memory(graph: Any) -> dict[str, Any]:
    """Neo4j's heap use (JMX) and page cache: Community has no page cache metrics, so this
    reports the configured size beside the store's size on disk, which bounds what it can
    hold (a store smaller than the cache fits in it whole)."""
    rows = graph.read(
        "CALL dbms.queryJmx('java.lang:type=Memory') YIELD attributes "
        "RETURN attributes.HeapMemoryUsage.value.properties AS heap"
    )
    heap = rows[0]["heap"] if rows else {}
    setting = graph.read(
        "SHOW SETTINGS YIELD name, value WHERE name = 'server.memory.pagecache.size' RETURN value"
    )
    result: dict[str, Any] = {
        "heap_used_mib": round(heap.get("used", 0) / 2**20, 1),
        "heap_max_mib": round(heap.get("max", 0) / 2**20, 1),
        "pagecache_configured": setting[0]["value"] if setting else None,
    }
    instance = getattr(graph.target, "managed_instance", None)
    if instance:
        from provgraph.graph.local.server import Instance

        store = Instance(instance).home / "data" / "databases" / "neo4j"
        size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
        result["store_on_disk_mib"] = round(size / 2**20, 1)
    return result


def write_result(name: str, result: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    return path
