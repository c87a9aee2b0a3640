"""The simulated estate: hosts, their users and long-running processes, and `Ctx`, the
small API every activity generator uses to start processes and record what they do."""

from __future__ import annotations

import hashlib
import random

from bench import gen_catalog as C
from bench import gen_realistic
from bench.gen_catalog import FIRST, LAST, LINUX, WIN
from bench.gen_core import (
    DELETE,
    DNS,
    END,
    FILE,
    HOUR,
    NET,
    START,
    US,
    Endpoint,
    Host,
    Proc,
    User,
    seeded,
)

# One of each role first, so even a tiny estate exercises every kind of host.
_ROLE_PATTERN = (
    "win_workstation",
    "win_dev",
    "linux_dev",
    "win_build",
    "linux_build",
    "win_server",
    "linux_server",
    "win_workstation",
    "win_dev",
    "linux_dev",
    "win_workstation",
    "win_dev",
    "linux_server",
    "win_workstation",
    "linux_build",
    "win_server",
    "win_dev",
    "linux_dev",
    "win_workstation",
    "win_workstation",
)
_NAME_PREFIX = {
    "win_workstation": "WS",
    "win_dev": "DEV",
    "win_build": "BLD",
    "win_server": "SRV",
    "linux_dev": "lnx-dev",
    "linux_build": "lnx-bld",
    "linux_server": "lnx-srv",
}
_ROLE_NET = {r: 20 + i for i, r in enumerate(_NAME_PREFIX)}


def build_hosts(n: int, seed: int, range_start: int) -> list[Host]:
    rng = seeded(seed, "hosts")
    mix = (seed * 0x2545F491) & 0xFFFFFFFF
    hosts = []
    for idx in range(n):
        role = _ROLE_PATTERN[idx % len(_ROLE_PATTERN)]
        hosts.append(_make_host(idx, role, rng, mix, seed))
    for h in hosts:
        start_long_lived(h, seeded(seed, "boot", h.idx), range_start)
    return hosts


def _make_host(idx: int, role: str, rng: random.Random, mix: int, seed: int) -> Host:
    prefix = _NAME_PREFIX[role]
    name = f"{prefix}-{idx + 1:04d}" if role.startswith("win") else f"{prefix}-{idx + 1:03d}"
    ip = f"10.{_ROLE_NET[role]}.{idx // 250}.{10 + idx % 250}"
    machine = (idx * 0x9E3779B1 + mix) & 0xFFFFFFFF  # odd multiplier: unique per idx
    windows = role.startswith("win")
    short = name.lower()
    if windows:
        system = User("NT AUTHORITY", "SYSTEM", sid_kind="system")
    else:
        system = User(short, "root", sid_kind="system")
    h = Host(idx=idx, name=name, role=role, ip=ip, machine=machine, users=[], system=system)
    h.device_id = hashlib.sha1(f"device:{seed}:{idx}".encode()).hexdigest()
    h.sysmon_pid = 2000 + 4 * int(rng.random() * 400)
    h.pid_next = 4000 + 4 * int(rng.random() * 500)
    h.users = _users(role, rng, short)
    for n_user, u in enumerate([system] + h.users):
        u.logon = _logon(h, u, n_user, rng)
    return h


def _users(role: str, rng: random.Random, short: str) -> list[User]:
    person = f"{rng.choice(FIRST)}.{rng.choice(LAST)}"
    if role in ("win_workstation", "win_dev"):
        return [User("CORP", person)]
    if role == "win_build":
        return [User("CORP", "svc_build")]
    if role == "win_server":
        return [User("CORP", "svc_sql"), User("CORP", "adm." + person.split(".")[0])]
    if role == "linux_dev":
        return [User(short, person.split(".")[0])]
    if role == "linux_build":
        return [User(short, "gitlab-runner"), User(short, "ci")]
    return [User(short, "www-data"), User(short, "ops")]


def _logon(h: Host, u: User, n: int, rng: random.Random) -> tuple[str, str]:
    lid = 0x3E7 if u.sid_kind == "system" else 0x100000 + int(rng.random() * 0x3FFFFFF) + n
    ts = 0x65000000 + int(rng.random() * 0x01000000)
    guid = f"{h.machine:08X}-{ts & 0xFFFF:04X}-{ts >> 16:04X}-0000-0020{lid & 0xFFFFFFFF:08X}"
    return guid, hex(lid)


# ---- Ctx -------------------------------------------------------------------------------


class Ctx:
    """Appends raw events for one host. Generators call `spawn`, `end`, `write`, `net`..."""

    __slots__ = ("host", "rng", "out", "win")

    def __init__(self, host: Host, rng: random.Random, out: list) -> None:
        self.host = host
        self.rng = rng
        self.out = out
        self.win = host.windows

    # process lifecycle ------------------------------------------------------------------
    def image(self, key: str, user: User | None = None) -> str:
        u = (user or self.host.users[0]).name
        path = WIN[key].path if self.win else LINUX[key]
        return path.replace("{user}", u) if "{" in path else path

    def spawn(
        self,
        parent: Proc,
        key: str,
        cmd: str,
        t: int,
        *,
        user: User | None = None,
        cwd: str | None = None,
        integrity: str | None = None,
        image: str | None = None,
    ) -> Proc:
        user = user or parent.user
        img = image or self.image(key, user)
        if cwd is None:
            cwd = parent.cwd
        if integrity is None:
            integrity = parent.integrity
        p = Proc(self.host, self.host.next_pid(self.rng), img, cmd, user, t, parent, cwd, integrity)
        self.out.append((t, START, p, None, None, None))
        if self.host.realistic and self.win:
            gen_realistic.on_start(self.out, self.rng, p, t)
        return p

    def end(self, p: Proc, t: int) -> None:
        # MDE has no process-termination table: Linux processes simply stop appearing.
        if self.win:
            self.out.append((t, END, p, None, None, None))

    # actions ----------------------------------------------------------------------------
    def write(
        self, p: Proc, t: int, path: str, op: str = "create", prev: str | None = None
    ) -> None:
        self.out.append((t, FILE, p, path, op, prev))

    def delete(self, p: Proc, t: int, path: str) -> None:
        self.out.append((t, DELETE, p, path, None, None))

    def net(self, p: Proc, t: int, ep: Endpoint, initiated: bool = True) -> None:
        lport = 49152 + int(self.rng.random() * 16000) if initiated else ep.port
        self.out.append((t, NET, p, ep, lport, initiated))

    def dns(self, p: Proc, t: int, name: str, ip: str) -> None:
        self.out.append((t, DNS, p, name, ip, None))

    # helpers ------------------------------------------------------------------------------
    def ms(self, lo: float, hi: float) -> int:
        """A random delay in microseconds, between lo and hi milliseconds."""
        return int((lo + (hi - lo) * self.rng.random()) * 1000)

    def secs(self, lo: float, hi: float) -> int:
        return int((lo + (hi - lo) * self.rng.random()) * US)


# ---- long-running processes -------------------------------------------------------------


def _root(
    h: Host,
    key: str,
    cmd: str,
    start: int,
    user: User,
    cwd: str,
    integ: str,
    parent: Proc | None,
    rng: random.Random,
) -> Proc:
    path = (WIN[key].path if h.windows else LINUX[key]).replace("{user}", user.name)
    pid = 4 * (20 + int(rng.random() * 900)) if h.windows else 1 + int(rng.random() * 3000)
    return Proc(h, pid, path, cmd, user, start, parent, cwd, integ)


def start_long_lived(h: Host, rng: random.Random, range_start: int) -> None:
    """Processes already running when capture starts. They emit no start event; they
    appear as parents (and act themselves), which is what a real capture looks like."""
    boot = range_start - int((2 + rng.random() * 200) * HOUR)
    if h.windows:
        _windows_boot(h, rng, boot)
    else:
        _linux_boot(h, rng, boot)


def _windows_boot(h: Host, rng: random.Random, boot: int) -> None:
    sysu, sys32 = h.system, "C:\\Windows\\system32\\"
    ll = h.long_lived

    def root(
        key: str,
        cmd: str,
        parent: Proc | None,
        t: int,
        user: User = sysu,
        cwd: str = sys32,
        integ: str = "System",
    ) -> Proc:
        p = _root(h, key, cmd, t, user, cwd, integ, parent, rng)
        return p

    wininit = root("services", "wininit.exe", None, boot)
    wininit.image, wininit.name = "C:\\Windows\\System32\\wininit.exe", "wininit.exe"
    ll["services"] = services = root(
        "services", "C:\\Windows\\system32\\services.exe", wininit, boot + 2 * US
    )
    svc_cmds = (
        "-k netsvcs -p -s Schedule",
        "-k NetworkService -p -s Dnscache",
        "-k LocalServiceNetworkRestricted -p",
        "-k DcomLaunch -p",
        "-k wusvcs -p -s WaaSMedicSvc",
        "-k UnistackSvcGroup",
    )
    for i, c in enumerate(svc_cmds):
        ll[f"svchost{i}"] = root(
            "svchost", f"C:\\Windows\\system32\\svchost.exe {c}", services, boot + (5 + i) * US
        )
    ll["msmpeng"] = root("msmpeng", f'"{WIN["msmpeng"].path}"', services, boot + 12 * US)
    ll["searchindexer"] = root(
        "searchindexer",
        "C:\\Windows\\system32\\SearchIndexer.exe /Embedding",
        services,
        boot + 30 * US,
    )
    ll["wmiprvse"] = root(
        "wmiprvse",
        "C:\\Windows\\system32\\wbem\\wmiprvse.exe -Embedding",
        ll["svchost3"],
        boot + 60 * US,
    )
    h.services = [
        ll["svchost0"],
        ll["svchost1"],
        ll["svchost4"],
        ll["msmpeng"],
        ll["searchindexer"],
    ]
    if h.role in ("win_workstation", "win_dev"):
        _windows_desktop(h, rng, boot, root)
    elif h.role == "win_build":
        ll["agent_listener"] = root(
            "agent_listener",
            "C:\\agent\\bin\\Agent.Listener.exe run --startuptype service",
            services,
            boot + 90 * US,
            user=h.users[0],
            cwd="C:\\agent\\",
            integ="High",
        )
        h.services.append(ll["agent_listener"])
    else:
        ll["sqlservr"] = root(
            "sqlservr",
            f'"{WIN["sqlservr"].path}" -sMSSQLSERVER',
            services,
            boot + 80 * US,
            user=h.users[0],
            integ="High",
        )
        ll["w3wp"] = root(
            "w3wp",
            'c:\\windows\\system32\\inetsrv\\w3wp.exe -ap "DefaultAppPool" -v "v4.0"',
            ll["svchost0"],
            boot + 95 * US,
            user=h.users[0],
            integ="High",
        )
        h.services += [ll["sqlservr"], ll["w3wp"]]


def _windows_desktop(h: Host, rng: random.Random, boot: int, root) -> None:  # noqa: ANN001
    ll, u = h.long_lived, h.users[0]
    logon = boot + int((0.05 + rng.random()) * HOUR)
    home = f"C:\\Users\\{u.name}\\"
    winlogon = root("winlogon", "winlogon.exe", None, boot + 20 * US)
    userinit = root("userinit", "C:\\Windows\\system32\\userinit.exe", winlogon, logon)
    ll["explorer"] = explorer = root(
        "explorer",
        "C:\\Windows\\Explorer.EXE",
        userinit,
        logon + US,
        user=u,
        cwd="C:\\Windows\\system32\\",
        integ="Medium",
    )
    ll["onedrive"] = root(
        "onedrive",
        f'"{WIN["onedrive"].path.replace("{user}", u.name)}" /background',
        explorer,
        logon + 9 * US,
        user=u,
        cwd=home,
        integ="Medium",
    )
    ll["teams"] = root(
        "teams",
        f'"{WIN["teams"].path}" msteams:system-initiated',
        explorer,
        logon + 11 * US,
        user=u,
        cwd=home,
        integ="Medium",
    )
    ll["outlook"] = root(
        "outlook",
        f'"{WIN["outlook"].path}" ',
        explorer,
        logon + 40 * US,
        user=u,
        cwd=home,
        integ="Medium",
    )
    h.services += [explorer, ll["onedrive"], ll["teams"], ll["outlook"]]
    if h.role == "win_dev":
        # Started at logon, not lazily: a scenario's dry run must see the same tree as its real run.
        proj = C.WIN_PROJECTS[h.idx % len(C.WIN_PROJECTS)]
        repo = f"{home}source\\repos\\{proj}"
        ll["code"] = root(
            "code",
            f'"{WIN["code"].path.replace("{user}", u.name)}"',
            explorer,
            logon + 70 * US,
            user=u,
            cwd=home,
            integ="Medium",
        )
        ll["devenv"] = root(
            "devenv",
            f'"{WIN["devenv"].path}" "{repo}\\{proj}.sln"',
            explorer,
            logon + 95 * US,
            user=u,
            cwd=f"{repo}\\",
            integ="Medium",
        )
        ll["terminal"] = root(
            "terminal",
            f'"{WIN["terminal"].path}" ',
            explorer,
            logon + 120 * US,
            user=u,
            cwd=home,
            integ="Medium",
        )
        h.services.append(ll["code"])


def _linux_boot(h: Host, rng: random.Random, boot: int) -> None:
    root_u, ll = h.system, h.long_lived

    def root(key: str, cmd: str, parent: Proc | None, t: int, user: User = root_u) -> Proc:
        return _root(h, key, cmd, t, user, "/", "", parent, rng)

    systemd = root("systemd", "/sbin/init splash", None, boot)
    systemd.pid = 1
    ll["systemd"] = systemd
    for i, (k, c) in enumerate(
        (
            ("journald", "/lib/systemd/systemd-journald"),
            ("rsyslogd", "/usr/sbin/rsyslogd -n -iNONE"),
            ("cron", "/usr/sbin/cron -f -P"),
            ("sshd", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"),
            ("chronyd", "/usr/sbin/chronyd -F 1"),
            ("wdavdaemon", "/opt/microsoft/mdatp/sbin/wdavdaemon"),
            ("containerd", "/usr/bin/containerd"),
            ("dockerd", "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock"),
        )
    ):
        ll[k] = root(k, c, systemd, boot + (3 + i) * US)
    h.services = [
        ll["journald"],
        ll["rsyslogd"],
        ll["wdavdaemon"],
        ll["chronyd"],
        ll["dockerd"],
        ll["containerd"],
        ll["sshd"],
    ]
    if h.role == "linux_build":
        ll["gitlab_runner"] = root(
            "gitlab_runner",
            "/usr/bin/gitlab-runner run --working-directory /home/gitlab-runner "
            "--config /etc/gitlab-runner/config.toml --service gitlab-runner "
            "--user gitlab-runner",
            systemd,
            boot + 20 * US,
        )
        h.services.append(ll["gitlab_runner"])
    elif h.role == "linux_server":
        ll["nginx"] = root(
            "nginx",
            "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;",
            systemd,
            boot + 15 * US,
        )
        ll["postgres"] = root(
            "postgres",
            "/usr/lib/postgresql/16/bin/postgres -D /var/lib/postgresql/16/main "
            "-c config_file=/etc/postgresql/16/main/postgresql.conf",
            systemd,
            boot + 16 * US,
            user=h.users[0],
        )
        h.services += [ll["nginx"], ll["postgres"]]
