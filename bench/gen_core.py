"""Core objects of the telemetry generator: hosts, processes, raw events, and time.

Everything here is format-agnostic. Generators build `Proc`s and append event tuples
to a list; `gen_render` turns the tuples into Sysmon or MDE lines. Times are integer
microseconds since the Unix epoch (UTC): integer arithmetic keeps output byte-identical
across platforms and is much cheaper than `datetime` on the hot path.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

US = 1_000_000  # microseconds per second
MINUTE = 60 * US
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# Event kinds. Values are the Sysmon EventIDs so the Sysmon renderer can use them as is.
START, END, NET, FILE, DNS, DELETE = 1, 5, 3, 11, 22, 23
# The realistic mix (bench.gen_realistic) adds these; Security event IDs for the logon kinds.
IMAGE, ACCESS, REG_KEY, REG_SET = 7, 10, 12, 13
LOGON, LOGOFF, PRIVILEGES = 4624, 4634, 4672
SECURITY_KINDS = frozenset((LOGON, LOGOFF, PRIVILEGES))

WINDOWS_ROLES = ("win_workstation", "win_dev", "win_build", "win_server")
LINUX_ROLES = ("linux_dev", "linux_build", "linux_server")

DOMAIN = "corp.example"  # reserved example domain for every internal name


class Proc:
    """One process instance. Identity is (host, guid) on Windows, (host, uid) on Linux."""

    __slots__ = (
        "host",
        "pid",
        "guid",
        "uid",
        "image",
        "name",
        "cmd",
        "cwd",
        "user",
        "start",
        "parent",
        "integrity",
        "logon",
        "frag",
    )

    def __init__(
        self,
        host: Host,
        pid: int,
        image: str,
        cmd: str,
        user: User,
        start: int,
        parent: Proc | None,
        cwd: str,
        integrity: str,
    ) -> None:
        self.host = host
        self.pid = pid
        self.image = image
        sep = "\\" if host.windows else "/"
        self.name = image.rsplit(sep, 1)[-1]
        self.cmd = cmd
        self.cwd = cwd
        self.user = user
        self.start = start
        self.parent = parent
        self.integrity = integrity
        self.guid = host.next_guid(start) if host.windows else ""
        self.uid = host.next_uid()
        self.logon = user.logon
        self.frag: str | None = None  # renderer cache: the process's escaped JSON fields


@dataclass(slots=True)
class User:
    domain: str  # NetBIOS domain on Windows, the short host name for local Linux users
    name: str
    logon: tuple[str, str] = ("", "")  # (LogonGuid, LogonId) for Sysmon; set per host
    sid_kind: str = "user"  # "user" or "system": system accounts run at System integrity

    @property
    def qualified(self) -> str:
        return f"{self.domain}\\{self.name}"


@dataclass(slots=True)
class Host:
    idx: int
    name: str  # short name as the source shows it (upper-case on Windows)
    role: str
    ip: str
    machine: int  # 32-bit Sysmon machine prefix, unique per host (bijective in idx)
    users: list[User]
    system: User
    device_id: str = ""
    sysmon_pid: int = 0
    guid_ctr: int = 0
    uid_ctr: int = 0
    pid_next: int = 0
    long_lived: dict[str, Proc] = field(default_factory=dict)
    services: list[Proc] = field(default_factory=list)  # background actors for single events
    realistic: bool = False  # the realistic mix: image loads, registry, access, logons

    @property
    def windows(self) -> bool:
        return self.role.startswith("win")

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{DOMAIN}"

    @property
    def short(self) -> str:
        """The normalised host key (lower-case short name), as ingest keys hosts."""
        return self.name.lower()

    def next_guid(self, start_us: int) -> str:
        # Sysmon lays out ProcessGuid as machine id, process start time (seconds, split in
        # two words), then a per-boot counter; the counter is what makes it unique here.
        self.guid_ctr += 1
        ts = (start_us // US) & 0xFFFFFFFF
        c = self.guid_ctr
        return (
            f"{self.machine:08X}-{ts & 0xFFFF:04X}-{ts >> 16:04X}-"
            f"{c & 0xFFFF:04X}-{c >> 16:08X}0D00"
        )

    def next_uid(self) -> int:
        # MDE's ProcessUniqueId: a per-device increasing number.
        self.uid_ctr += 1
        return 0x2000000 + self.uid_ctr

    def next_pid(self, rng: random.Random) -> int:
        # Windows pids are multiples of 4 handed out all over the range; Linux pids climb.
        # Long-lived processes sit below 4000, so short-lived ones never collide with them.
        if self.windows:
            self.pid_next += 4 * (1 + int(rng.random() * 24))
            if self.pid_next > 65000:
                self.pid_next = 4000 + 4 * int(rng.random() * 100)
        else:
            self.pid_next += 1 + int(rng.random() * 6)
            if self.pid_next > 4_000_000:
                self.pid_next = 4000
        return self.pid_next


# A raw event: (time_us, kind, actor, a, b, c). Meaning of a/b/c by kind:
#   START  a=None                 (actor is the new process, actor.parent the creator)
#   END    a=None
#   FILE   a=path, b=op ("create" | "modify" | "rename"), c=previous path for renames
#   DELETE a=path
#   NET    a=Endpoint, b=local port, c=initiated (bool)
#   DNS    a=query name, b=answer ip
#   IMAGE  a=loaded image path                        (realistic mix only, as the rest below)
#   REG_KEY a=key path, b="CreateKey" | "DeleteKey";   REG_SET a=value path, b=details
#   ACCESS a=target Proc, b=granted access ("0x1410"), c=call trace
#   LOGON / LOGOFF / PRIVILEGES (actor lsass) a=(User, logon id, source ip, source port),
#          b=logon type
RawEvent = tuple


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    port: int
    proto: str = "tcp"
    hostname: str = ""  # "" when the source would not know it

    @property
    def ip_type(self) -> str:
        return ip_type(self.ip)


def ip_type(ip: str) -> str:
    """MDE's RemoteIPType vocabulary, decided the way the seeds' KQL does (RFC 1918)."""
    if ip.startswith("127.") or ip == "::1":
        return "Loopback"
    a, b = ip.split(".", 2)[:2]
    if a == "10" or (a == "192" and b == "168") or (a == "172" and 16 <= int(b) <= 31):
        return "Private"
    return "Public"


# Public-looking first octets: none falls in a special-purpose block, so both RFC 1918
# tests and `ipaddress.is_global` agree the addresses are public.
_PUBLIC_FIRST = (23, 34, 45, 52, 64, 81, 91, 93, 104, 146, 151, 185, 195, 212)


def public_ip_for(name: str) -> str:
    """A stable public-looking address for a DNS name (same name, same address, any seed)."""
    h = hashlib.sha256(name.encode()).digest()
    return f"{_PUBLIC_FIRST[h[0] % len(_PUBLIC_FIRST)]}.{h[1]}.{h[2]}.{1 + h[3] % 254}"


def public_ip(rng: random.Random) -> str:
    r = rng.getrandbits(32)
    first = _PUBLIC_FIRST[r % len(_PUBLIC_FIRST)]
    return f"{first}.{(r >> 8) & 0xFF}.{(r >> 16) & 0xFF}.{1 + ((r >> 24) % 254)}"


def seeded(*parts: object) -> random.Random:
    """An independent RNG per purpose. String seeds hash with SHA-512 inside `random`,
    so the stream does not depend on PYTHONHASHSEED."""
    return random.Random(":".join(str(p) for p in parts))


# ---- time formatting ------------------------------------------------------------------

_DAY_CACHE: dict[int, str] = {}


def _day(day_index: int) -> str:
    s = _DAY_CACHE.get(day_index)
    if s is None:
        import datetime as _dt

        d = _dt.date(1970, 1, 1) + _dt.timedelta(days=day_index)
        s = d.isoformat()
        _DAY_CACHE[day_index] = s
    return s


_MIN_CACHE: dict[int, tuple[str, str]] = {}


def _minute(ts: int) -> tuple[str, str, int]:
    """('YYYY-MM-DD HH:MM:', 'YYYY-MM-DDTHH:MM:', microseconds into the minute), cached per
    minute: output is time-sorted, so consecutive events nearly always share the minute."""
    m, rest = divmod(ts, MINUTE)
    pre = _MIN_CACHE.get(m)
    if pre is None:
        if len(_MIN_CACHE) > 8192:
            _MIN_CACHE.clear()
        day, mins = divmod(m, 24 * 60)
        d = _day(day)
        hm = f"{mins // 60:02d}:{mins % 60:02d}:"
        pre = (f"{d} {hm}", f"{d}T{hm}")
        _MIN_CACHE[m] = pre
    return pre[0], pre[1], rest


def sysmon_utc(ts: int) -> str:
    """Sysmon UtcTime: 'YYYY-MM-DD HH:MM:SS.mmm' (milliseconds, no zone)."""
    a, _, rest = _minute(ts)
    s, us = divmod(rest, US)
    return f"{a}{s:02d}.{us // 1000:03d}"


def iso_us(ts: int) -> str:
    """ISO-8601 UTC with microseconds and 'Z' (evtx SystemTime, MDE Timestamp)."""
    _, b, rest = _minute(ts)
    s, us = divmod(rest, US)
    return f"{b}{s:02d}.{us:06d}Z"
