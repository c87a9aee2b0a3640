"""Fetch Neo4j's server jars with Maven and refuse any jar not pinned in jars.lock.

This is a supply-chain security product: it runs nothing unverified. Maven resolves
and downloads (from whatever repositories the user's Maven settings name); we then
check every jar's SHA-256 against the committed lock file before it reaches a class
path, and keep the verified set in a cache outside the repository so a second start
downloads nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from provgraph.core.errors import ProvgraphError

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LOCK = HERE / "jars.lock"


class JarVerificationError(ProvgraphError):
    """A jar is missing, unexpected, or its checksum does not match jars.lock."""


class DownloadError(ProvgraphError):
    """Maven could not fetch the server jars."""


@dataclass(frozen=True)
class LockedJar:
    sha256: str
    coordinate: str  # group:artifact:version[:classifier]
    filename: str


def neo4j_version() -> str:
    for line in LOCK.read_text().splitlines():
        if line.startswith("# neo4j "):
            return line.split()[2]
    raise ProvgraphError(f"{LOCK}: no '# neo4j <version>' header line")


def read_lock(path: Path = LOCK) -> list[LockedJar]:
    jars = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or len(parts[0]) != 64:
            raise ProvgraphError(f"{path}:{number}: expected '<sha256> <coordinate> <file>'")
        jars.append(LockedJar(*parts))
    return jars


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_dir(lib: Path, lock: list[LockedJar] | None = None) -> None:
    """Every locked jar present with its pinned checksum, and nothing else on the class path."""
    lock = read_lock() if lock is None else lock
    expected = {jar.filename: jar for jar in lock}
    present = {p.name for p in lib.glob("*.jar")}
    problems = []
    for name in sorted(present - expected.keys()):
        problems.append(f"{name}: not in jars.lock (refusing an unpinned jar)")
    for name in sorted(expected.keys() - present):
        problems.append(f"{name}: missing")
    for name in sorted(present & expected.keys()):
        actual = sha256_of(lib / name)
        if actual != expected[name].sha256:
            problems.append(
                f"{name}: checksum mismatch (sha256 {actual}, jars.lock pins "
                f"{expected[name].sha256} for {expected[name].coordinate})"
            )
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise JarVerificationError(
            f"Neo4j jars in {lib} failed verification against {LOCK.name}:\n  {shown}{more}"
        )


def cache_dir() -> Path:
    base = os.environ.get("PROVGRAPH_CACHE") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    if not os.environ.get("PROVGRAPH_CACHE"):
        root = root / "provgraph"
    return root


def lib_dir() -> Path:
    return cache_dir() / f"neo4j-{neo4j_version()}" / "lib"


def _mvn() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise DownloadError(
            "Maven ('mvn') is needed once to fetch Neo4j's jars and was not found on PATH. "
            "Install it (Debian: apt-get install maven) or point NEO4J_URI at an existing Neo4j."
        )
    return mvn


def _run_maven(goal_args: list[str]) -> None:
    command = [_mvn(), "-B", "-q", "-f", str(POM), *goal_args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise DownloadError(
            "Maven could not fetch the Neo4j server jars (check the network and the "
            f"repositories in your Maven settings). Last lines:\n{tail}"
        )


def install(progress: bool = True) -> Path:
    """Return a verified lib directory, fetching with Maven only when the cache lacks it."""
    lib = lib_dir()
    if lib.is_dir():
        verify_dir(lib)
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    if progress:
        print(
            f"Fetching Neo4j {neo4j_version()} server jars with Maven (first run only)…", flush=True
        )
    with tempfile.TemporaryDirectory(dir=lib.parent, prefix="staging-") as staging:
        staged = Path(staging) / "lib"
        _run_maven(["dependency:copy-dependencies", f"-DoutputDirectory={staged}"])
        verify_dir(staged)  # refuse before anything is moved into the cache
        try:
            staged.rename(lib)
        except OSError:
            # Another provgraph on this machine (`make demo` beside `make test`) fetched them
            # first and moved its copy in while ours was downloading: use that one, verified.
            if not lib.is_dir():
                raise
            verify_dir(lib)
    return lib


def write_lock() -> Path:
    """Maintainers: pin the jars Maven resolves for pom.xml. Review the diff before committing."""
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "deps.txt"
        _run_maven(
            ["dependency:list", f"-DoutputFile={listing}", "-DoutputAbsoluteArtifactFilename=true"]
        )
        lines = []
        for raw in listing.read_text().splitlines():
            raw = raw.strip()
            if raw.count(":") < 5:
                continue
            fields = raw.split(":")
            path = Path(":".join(fields[5 if len(fields) == 6 else 6 :]))
            group, artifact = fields[0], fields[1]
            if len(fields) == 6:  # group:artifact:type:version:scope:path
                version, classifier = fields[3], ""
            else:  # group:artifact:type:classifier:version:scope:path
                classifier, version = fields[3], fields[4]
            coordinate = ":".join(filter(None, [group, artifact, version, classifier]))
            lines.append(f"{sha256_of(path)} {coordinate} {path.name}")
    version = _pom_version()
    header = [
        f"# neo4j {version}",
        "# SHA-256 of every jar on the managed Neo4j server's class path.",
        "# Generated by `provgraph neo4j lock` from pom.xml; verified before every start.",
    ]
    LOCK.write_text("\n".join(header + sorted(lines, key=lambda line: line.split()[2])) + "\n")
    return LOCK


def _pom_version() -> str:
    text = POM.read_text()
    start = text.index("<neo4j.version>") + len("<neo4j.version>")
    return text[start : text.index("</neo4j.version>")]
