"""Two first runs on one machine fetch Neo4j's jars at once: the one that finishes second uses
the copy already moved into the cache instead of failing with a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from provgraph.graph.local import jars


def _fake_jars(folder: Path) -> list[jars.LockedJar]:
    folder.mkdir(parents=True)
    (folder / "a.jar").write_bytes(b"jar a")
    return [
        jars.LockedJar(
            sha256=jars.sha256_of(folder / "a.jar"), coordinate="g:a:1", filename="a.jar"
        )
    ]


def test_install_uses_the_copy_another_run_moved_in_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = _fake_jars(tmp_path / "source")
    monkeypatch.setenv("PROVGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(jars, "read_lock", lambda: lock)
    lib = jars.lib_dir()

    def fetch(args: list[str]) -> None:
        staged = Path(args[-1].split("=", 1)[1])
        shutil.copytree(tmp_path / "source", staged)
        # The other run wins the race while this one is still fetching.
        shutil.copytree(tmp_path / "source", lib)

    monkeypatch.setattr(jars, "_run_maven", fetch)
    assert jars.install(progress=False) == lib
    assert sorted(p.name for p in lib.iterdir()) == ["a.jar"]
    assert not [p for p in lib.parent.iterdir() if p.name.startswith("staging-")]


def test_install_still_refuses_a_bad_copy_moved_in_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = _fake_jars(tmp_path / "source")
    monkeypatch.setenv("PROVGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(jars, "read_lock", lambda: lock)
    lib = jars.lib_dir()

    def fetch(args: list[str]) -> None:
        staged = Path(args[-1].split("=", 1)[1])
        shutil.copytree(tmp_path / "source", staged)
        lib.mkdir(parents=True)
        (lib / "a.jar").write_bytes(b"tampered")

    monkeypatch.setattr(jars, "_run_maven", fetch)
    with pytest.raises(jars.JarVerificationError, match="a.jar"):
        jars.install(progress=False)
