"""A Neo4j Community server that provgraph provisions and runs itself, from verified jars.

No Docker engine is needed: the server runs as a plain `java` process bound to loopback,
with its own configuration, data, logs and a generated password kept beside them.
Several named instances can coexist (the demo uses "default", tests use "test").
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from provgraph.core.errors import ProvgraphError
from provgraph.graph.local import jars
from provgraph.graph.local.instance import MAIN_CLASS, USER, Instance

ADMIN_CLASS = "org.neo4j.cli.AdminTool"

# What bin/neo4j would pass from the default neo4j.conf (server.jvm.additional): a server
# started with `java` directly needs these itself, or Netty and the page cache misbehave.
JVM_FLAGS = [
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Djdk.tls.rejectClientInitiatedRenegotiation=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
]

SUPPORTED_JAVA = (17, 21)


class JavaError(ProvgraphError):
    pass


class PortInUseError(ProvgraphError):
    pass


class StartError(ProvgraphError):
    pass


# -- Java -------------------------------------------------------------------------------------
def find_java() -> str:
    candidates = [os.environ.get("PROVGRAPH_JAVA")]
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    candidates.append(shutil.which("java"))
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            check_java(candidate)
            return candidate
    raise JavaError(
        "No Java found: Neo4j 5.26 needs Java 17 or 21. Install a JDK (Debian: apt-get install "
        "openjdk-17-jre-headless), or set JAVA_HOME or PROVGRAPH_JAVA."
    )


def check_java(java: str) -> int:
    result = subprocess.run([java, "-version"], capture_output=True, text=True)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        raise JavaError(f"{java}: could not read its version from `java -version`")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major not in SUPPORTED_JAVA:
        raise JavaError(
            f"{java} is Java {major}; Neo4j 5.26 runs on Java 17 or 21. "
            "Set JAVA_HOME or PROVGRAPH_JAVA to a supported JDK."
        )
    return major


# -- ports ------------------------------------------------------------------------------------
def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _choose_ports(instance: Instance) -> dict[str, int]:
    """Explicit ports must be free; remembered ones are kept while free, else replaced."""
    state = instance._state()
    chosen: dict[str, int] = {}
    for key, env in (
        ("bolt_port", "PROVGRAPH_NEO4J_BOLT_PORT"),
        ("http_port", "PROVGRAPH_NEO4J_HTTP_PORT"),
    ):
        wanted = os.environ.get(env)
        if wanted:
            port = int(wanted)
            if not port_is_free(port):
                raise PortInUseError(
                    f"port {port} ({env}) is already in use on 127.0.0.1: stop what holds it "
                    f"(`ss -ltnp 'sport = :{port}'`) or choose another port"
                )
        else:
            port = state.get(key) or 0
            if not port or not port_is_free(port):
                port = free_port()
                while port in chosen.values():
                    port = free_port()
        chosen[key] = port
    return chosen


# -- configuration ----------------------------------------------------------------------------
def _write_config(instance: Instance, ports: dict[str, int]) -> None:
    instance.conf_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("data", "logs", "run", "plugins", "import"):
        (instance.home / sub).mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by provgraph on every start; edit provgraph's settings, not this file.",
        "server.default_listen_address=127.0.0.1",
        "server.default_advertised_address=127.0.0.1",
        f"server.bolt.listen_address=127.0.0.1:{ports['bolt_port']}",
        f"server.bolt.advertised_address=127.0.0.1:{ports['bolt_port']}",
        "server.http.enabled=true",
        f"server.http.listen_address=127.0.0.1:{ports['http_port']}",
        f"server.http.advertised_address=127.0.0.1:{ports['http_port']}",
        "server.https.enabled=false",
        f"server.memory.heap.initial_size={instance.heap}",
        f"server.memory.heap.max_size={instance.heap}",
        f"server.memory.pagecache.size={instance.pagecache}",
        f"server.directories.import={instance.home / 'import'}",
        "dbms.security.auth_enabled=true",
        "dbms.usage_report.enabled=false",
        "db.transaction.timeout=0",
        # Rule runs and ad-hoc analyst queries are bounded per transaction by the API instead.
        "db.logs.query.enabled=OFF",
        # Community has no online backup to feed, so old transaction logs only cost disk: the
        # default (keep two days) let a benchmark instance that is wiped and rebuilt grow 30 GB
        # of them. Keep the newest 1 GB; recovery needs only what follows the last checkpoint.
        "db.tx_log.rotation.retention_policy=1G size",
    ]
    (instance.conf_dir / "neo4j.conf").write_text("\n".join(lines) + "\n")
    instance.state_file.write_text(json.dumps(ports))


def _java_env(instance: Instance) -> dict[str, str]:
    env = dict(os.environ)
    env["NEO4J_HOME"] = str(instance.home)
    env["NEO4J_CONF"] = str(instance.conf_dir)
    return env


def _ensure_password(instance: Instance, java: str, lib: Path) -> None:
    if (instance.home / "data" / "dbms" / "auth.ini").exists() or _has_auth_db(instance):
        return
    # Hex, so it never starts with '-' (which neo4j-admin would read as an option).
    password = secrets.token_hex(24)
    old_umask = os.umask(0o077)
    try:
        instance.password_file.write_text(password + "\n")
    finally:
        os.umask(old_umask)
    os.chmod(instance.password_file, 0o600)
    result = subprocess.run(
        [java, "-cp", f"{lib}/*", ADMIN_CLASS, "dbms", "set-initial-password", password],
        env=_java_env(instance),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StartError(f"could not set the initial password: {result.stdout}{result.stderr}")


def _has_auth_db(instance: Instance) -> bool:
    # Once started, the password lives in the system database and auth.ini is consumed.
    return (instance.home / "data" / "databases" / "system").exists()


# -- lifecycle --------------------------------------------------------------------------------
def start(instance: Instance, timeout: float = 180.0, quiet: bool = False) -> Instance:
    if instance.is_running():
        return instance
    java = find_java()
    lib = jars.install(progress=not quiet)
    ports = _choose_ports(instance)
    _write_config(instance, ports)
    _ensure_password(instance, java, lib)
    console = instance.log_dir / "console.log"
    command = [
        java,
        f"-Xms{instance.heap}",
        f"-Xmx{instance.heap}",
        *JVM_FLAGS,
        "-cp",
        f"{lib}/*",
        MAIN_CLASS,
        f"--home-dir={instance.home}",
        f"--config-dir={instance.conf_dir}",
    ]
    with console.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_java_env(instance),
            start_new_session=True,  # survives the CLI that started it; stop() ends it
        )
    instance.pid_file.write_text(str(process.pid))
    if not quiet:
        print(
            f"Starting Neo4j {jars.neo4j_version()} (pid {process.pid}) on {instance.uri} …",
            flush=True,
        )
    _wait_for_bolt(instance, process, timeout)
    return instance


def _wait_for_bolt(instance: Instance, process: subprocess.Popen[bytes], timeout: float) -> None:
    from neo4j import GraphDatabase
    from neo4j.exceptions import AuthError, ServiceUnavailable, SessionExpired

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartError(
                f"Neo4j exited with code {process.returncode} while starting.\n{log_tail(instance)}"
            )
        try:
            with GraphDatabase.driver(instance.uri, auth=(USER, instance.password())) as driver:
                driver.verify_connectivity()
                driver.execute_query("RETURN 1")
            return
        except AuthError as error:
            raise StartError(
                f"Neo4j answers but refuses the password in {instance.password_file}: {error}"
            ) from error
        except (ServiceUnavailable, SessionExpired, OSError) as error:
            last_error = error
            time.sleep(0.5)
    stop(instance)
    raise StartError(
        f"Neo4j did not answer on {instance.uri} within {timeout:.0f}s ({last_error}).\n"
        f"{log_tail(instance)}"
    )


def stop(instance: Instance, timeout: float = 60.0) -> bool:
    """End exactly the process this instance started. Returns False if none was running."""
    pid = instance.pid()
    if pid is None:
        instance.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if instance.pid() is None or _is_zombie(pid):
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    instance.pid_file.unlink(missing_ok=True)
    return True


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def log_tail(instance: Instance, lines: int = 30) -> str:
    parts = []
    for name in ("neo4j.log", "console.log"):
        path = instance.log_dir / name
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- last lines of {path} ---\n" + "\n".join(tail))
    return "\n".join(parts) or f"(no logs in {instance.log_dir})"


def server_version(instance: Instance) -> str | None:
    from neo4j import GraphDatabase

    try:
        with GraphDatabase.driver(instance.uri, auth=(USER, instance.password())) as driver:
            records, _, _ = driver.execute_query(
                "CALL dbms.components() YIELD name, versions, edition"
            )
            row = records[0]
            return f"{row['name']} {row['versions'][0]} {row['edition']}"
    except Exception:  # status reports "not answering" rather than failing
        return None
