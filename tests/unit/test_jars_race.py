"""Two first runs on one machine fetch Neo4j's jars at once: the one that finishes second uses
the copy already moved into the cache instead of failing with a traceback."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from provgraph.graph.local import jars


def _racing_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other_run: Callable[[Path, Path], None]
) -> Path:
    """A fetch of one locked jar during which `other_run(source, lib)` fills the cache first;
    returns the cache's lib directory."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.jar").write_bytes(b"jar a")
    lock = [
        jars.LockedJar(
            sha256=jars.sha256_of(source / "a.jar"), coordinate="g:a:1", filename="a.jar"
        )
    ]
    monkeypatch.setenv("PROVGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(jars, "read_lock", lambda: lock)
    lib = jars.lib_dir()

    def fetch(args: list[str]) -> None:
        shutil.copytree(source, Path(args[-1].split("=", 1)[1]))
        other_run(source, lib)  # the other run wins the race while this one is still fetching

    monkeypatch.setattr(jars, "_run_maven", fetch)
    return lib


def test_install_uses_the_copy_another_run_moved_in_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = _racing_install(tmp_path, monkeypatch, shutil.copytree)
    assert jars.install(progress=False) == lib
    assert sorted(p.name for p in lib.iterdir()) == ["a.jar"]
    assert not [p for p in lib.parent.iterdir() if p.name.startswith("staging-")]


def _tampered(source: Path, lib: Path) -> None:
    lib.mkdir(parents=True)
    (lib / "a.jar").write_bytes(b"tampered")


def test_install_still_refuses_a_bad_copy_moved_in_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _racing_install(tmp_path, monkeypatch, _tampered)
    with pytest.raises(jars.JarVerificationError, match="a.jar"):
        jars.install(progress=False)
