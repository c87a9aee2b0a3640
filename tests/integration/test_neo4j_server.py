"""The managed Neo4j is a real server, keeps its data, and runs only verified jars."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from provgraph.graph.local import jars, server
from provgraph.graph.target import Neo4jTarget
from provgraph.graph.tx import Graph


def test_server_is_real_neo4j(graph: Graph) -> None:
    rows = graph.read(
        "CALL dbms.components() YIELD name, versions, edition "
        "RETURN name, versions[0] AS version, edition"
    )
    assert rows[0]["name"] == "Neo4j Kernel"
    assert rows[0]["version"].startswith("5.")


def test_managed_instance_keeps_data_across_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVGRAPH_HOME", str(tmp_path))
    instance = server.Instance("restart", heap="512m", pagecache="128m")
    server.start(instance, quiet=True)
    try:
        assert stat.S_IMODE(instance.password_file.stat().st_mode) == 0o600
        first_pid = instance.pid()
        with Graph(_target(instance)) as graph:
            assert graph.ping().startswith("Neo4j Kernel 5.26")
            graph.write("CREATE (:Marker {value: $value})", {"value": "survives"})
            # Old transaction logs are pruned by size, not kept for days.
            setting = graph.read(
                "SHOW SETTINGS YIELD name, value WHERE name = $name RETURN value",
                {"name": "db.tx_log.rotation.retention_policy"},
            )
            assert setting == [{"value": "1G size"}]
        assert server.stop(instance)
        assert not instance.is_running()
        server.start(instance, quiet=True)
        assert instance.pid() != first_pid
        with Graph(_target(instance)) as graph:
            rows = graph.read("MATCH (m:Marker) RETURN m.value AS value")
        assert rows == [{"value": "survives"}]
        # Loopback only: the configuration binds nothing else.
        conf = (instance.conf_dir / "neo4j.conf").read_text()
        assert "server.default_listen_address=127.0.0.1" in conf
    finally:
        server.stop(instance)


def test_stop_without_server_is_a_no_op(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVGRAPH_HOME", str(tmp_path))
    instance = server.Instance("never-started")
    assert server.stop(instance) is False


def test_tampered_jar_is_refused(tmp_path: Path) -> None:
    lib = jars.install(progress=False)
    copy = tmp_path / "lib"
    shutil.copytree(lib, copy)
    jars.verify_dir(copy)  # the pristine copy passes
    victim = copy / "neo4j-kernel-5.26.30.jar"
    with victim.open("ab") as handle:
        handle.write(b"\0tampered")
    with pytest.raises(
        jars.JarVerificationError, match="neo4j-kernel-5.26.30.jar: checksum mismatch"
    ):
        jars.verify_dir(copy)


def test_unpinned_jar_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "lib"
    shutil.copytree(jars.install(progress=False), copy)
    (copy / "evil-1.0.jar").write_bytes(b"PK")
    with pytest.raises(jars.JarVerificationError, match="evil-1.0.jar: not in jars.lock"):
        jars.verify_dir(copy)


def test_wrong_java_version_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    with pytest.raises(server.JavaError, match="Java 11; Neo4j 5.26 runs on Java 17 or 21"):
        server.check_java(str(fake))


def test_explicit_port_in_use_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setenv("PROVGRAPH_HOME", str(tmp_path))
        monkeypatch.setenv("PROVGRAPH_NEO4J_BOLT_PORT", str(port))
        with pytest.raises(server.PortInUseError, match=f"port {port}"):
            server.start(server.Instance("busy"), quiet=True)


def _target(instance: server.Instance) -> Neo4jTarget:
    return Neo4jTarget(uri=instance.uri, user=server.USER, password=instance.password())
