"""The realistic mix (`--mix realistic`): what Windows hosts record besides process starts,
files, connections and DNS, in proportions a real Sysmon + Security capture has.

Proportions. The one complete public recording we hold, OTRF's Empire MSBuild set
(`tests/data/otrf_empire_msbuild_dcerpc_wmi_smb.mordor.ndjson`, 2 minutes, 3 hosts, Sysmon
logging everything), has per Sysmon process start (EventID 1, 11 of them): 43 image loads
(7, 477), 82 registry events (12/13, 734 + 166), 113 process accesses (10, 1,241), 1.6
connections and 4.3 file creates; and per Security 4688 (11): 1.1 logons 4624 (12), 1.1
logoffs 4634 (12), 1.0 special-privilege logons 4672 (11). Deployed Sysmon configurations filter
most of the image loads and process accesses such a config keeps, so this mix takes a fraction
of those ratios, keeping their order (registry and image loads well above process starts):

    per Windows process start   image loads ~10 (7)   registry ~4.6 (12 CreateKey, 13 SetValue)
                                process access ~1.4 (10)
    per Windows host            network logons (4624 type 3, 4672 for privileged accounts,
                                4634 a few seconds later) as sessions of their own, ~0.27
                                logon sessions per process start

which gives, over the Windows events of a 100k data set (seed 7), 40% image loads, 18%
registry, 5.5% process access, 3.9% process starts, 2.7% logon events (see the manifest's
`counts_by_format_and_kind`). The shares are ours, chosen between the Mordor figures and a
filtered configuration's; the generator keeps the exact `--events` total as today's mix does.

Nothing here touches today's mix: each function runs only on hosts with `realistic` set, so
`--mix today` (the default) produces the same bytes as before.
"""

from __future__ import annotations

import zlib

from bench.gen_core import (
    ACCESS,
    IMAGE,
    LOGOFF,
    LOGON,
    PRIVILEGES,
    REG_KEY,
    REG_SET,
    US,
    Host,
    Proc,
    User,
    seeded,
)

MIXES = ("today", "realistic")

_SYS32 = "C:\\Windows\\System32\\"
_BASE_DLLS = tuple(
    _SYS32 + d
    for d in (
        "ntdll.dll",
        "kernel32.dll",
        "KernelBase.dll",
        "advapi32.dll",
        "msvcrt.dll",
        "sechost.dll",
        "rpcrt4.dll",
        "ucrtbase.dll",
        "combase.dll",
        "user32.dll",
        "win32u.dll",
        "gdi32.dll",
        "ole32.dll",
        "shell32.dll",
        "bcrypt.dll",
    )
)
_NET_DLLS = tuple(_SYS32 + d for d in ("ws2_32.dll", "mswsock.dll", "dnsapi.dll", "winhttp.dll"))
_DOTNET_DLLS = (
    "C:\\Windows\\System32\\mscoree.dll",
    "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\mscoreei.dll",
    "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\clr.dll",
    "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\clrjit.dll",
)
_DOTNET = frozenset(
    n.lower()
    for n in ("MSBuild.exe", "dotnet.exe", "powershell.exe", "pwsh.exe", "VBCSCompiler.exe")
)
_NETWORKED = frozenset(
    n.lower()
    for n in ("msedge.exe", "git-remote-https.exe", "curl.exe", "node.exe", "OneDrive.exe")
)
# Registry values real processes set as they run (RAS tracing, Explorer state, COM caches)
_OWN_VALUES = (
    (
        "HKLM\\SOFTWARE\\Microsoft\\Tracing\\{name}_RASAPI32\\EnableFileTracing",
        "DWORD (0x00000000)",
    ),
    (
        "HKLM\\SOFTWARE\\Microsoft\\Tracing\\{name}_RASMANCS\\EnableConsoleTracing",
        "DWORD (0x00000000)",
    ),
    (
        "HKU\\{sid}\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\FileExts\\.log\\OpenWithList\\a",
        "notepad.exe",
    ),
    ("HKU\\{sid}\\Software\\Classes\\Local Settings\\MuiCache\\{hexname}\\LangID", "Binary Data"),
)
_SERVICE_VALUES = (
    (
        "HKLM\\SYSTEM\\CurrentControlSet\\Services\\W32Time\\Config\\LastKnownGoodTime",
        "QWORD (0x01da5c1e-0x4f2b3c00)",
    ),
    (
        "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Orchestrator\\LastScanTime",
        "QWORD (0x01da5c1e-0x3a10f200)",
    ),
    (
        "HKLM\\SYSTEM\\CurrentControlSet\\Services\\Dnscache\\Parameters\\CacheHashTableSize",
        "DWORD (0x00000180)",
    ),
    ("HKLM\\SOFTWARE\\Microsoft\\Windows Defender\\Signature Updates\\LastCheck", "Binary Data"),
)
_CALL_TRACE = (
    "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\Windows\\System32\\KERNELBASE.dll+2d8e6|"
    "{caller}+{offset:x}|C:\\Windows\\System32\\KERNEL32.DLL+17034|"
    "C:\\Windows\\SYSTEM32\\ntdll.dll+52651"
)
_SIDS: dict[tuple[str, str], str] = {}


def sid(host: Host, user: User) -> str:
    """A stable SID per account: S-1-5-18 for SYSTEM, a domain SID + RID otherwise."""
    if user.sid_kind == "system":
        return "S-1-5-18"
    key = (user.domain, user.name)
    found = _SIDS.get(key)
    if found is None:
        rid = 1100 + int(seeded("sid", user.domain, user.name).random() * 50_000)
        found = f"S-1-5-21-3623811015-3361044348-30300820-{rid}"
        _SIDS[key] = found
    return found


def add_lsass(h: Host) -> None:
    """The Local Security Authority, which writes the logon events (realistic mix only)."""
    rng = seeded("lsass", h.idx)
    services = h.long_lived["services"]
    lsass = Proc(
        h,
        4 * (20 + int(rng.random() * 200)),
        _SYS32 + "lsass.exe",
        _SYS32 + "lsass.exe",
        h.system,
        services.start,
        services.parent,
        _SYS32,
        "System",
    )
    h.long_lived["lsass"] = lsass


def on_start(out: list[tuple], rng: object, p: Proc, t: int) -> None:
    """What follows a Windows process start: its image loads, the BAM value svchost records
    for it, Defender opening it, and a few registry values of its own."""
    r = rng.random  # type: ignore[attr-defined]
    name = p.name.lower()
    dlls: list[str] = list(_BASE_DLLS[: 5 + int(r() * 6)])
    if name in _DOTNET:
        dlls += _DOTNET_DLLS
    if name in _NETWORKED or r() < 0.25:
        dlls += _NET_DLLS[: 1 + int(r() * 4)]
    at = t + 300
    for dll in dlls:
        at += 150 + int(r() * 2500)
        out.append((at, IMAGE, p, dll, None, None))
    host = p.host
    user_sid = sid(host, p.user)
    if r() < 0.8:
        bam = host.long_lived["svchost3"]
        device = "\\Device\\HarddiskVolume3\\" + p.image.split("\\", 1)[-1]
        key = f"HKLM\\System\\CurrentControlSet\\Services\\bam\\State\\UserSettings\\{user_sid}"
        out.append((at + 1000, REG_SET, bam, f"{key}\\{device}", "Binary Data", None))
    if r() < 0.9:
        defender = host.long_lived["msmpeng"]
        trace = _CALL_TRACE.format(caller=defender.image, offset=0x1A000 + int(r() * 0xFFF))
        out.append((t + 50 + int(r() * 900), ACCESS, defender, p, "0x101000", trace))
    if r() < 0.5:
        parent = p.parent
        if parent is not None:
            trace = _CALL_TRACE.format(caller=parent.image, offset=0x2000 + int(r() * 0xFFF))
            out.append((t + 20, ACCESS, parent, p, "0x1fffff", trace))
    for _ in range(int(r() * 7)):
        at += 1000 + int(r() * 400_000)
        target, details = _OWN_VALUES[int(r() * len(_OWN_VALUES))]
        base = p.name.rsplit(".", 1)[0]
        target = target.format(
            name=base, sid=user_sid, hexname=f"{zlib.crc32(base.encode()) & 0xFFFF:04x}"
        )
        if r() < 0.25:
            out.append((at, REG_KEY, p, target.rsplit("\\", 1)[0], "CreateKey", None))
        out.append((at + 200, REG_SET, p, target, details, None))


def single(out: list[tuple], rng: object, h: Host, t: int) -> bool:
    """A registry write or process access by a service, instead of a today's single: True
    when one was emitted (about a third of the time)."""
    r = rng.random  # type: ignore[attr-defined]
    x = r()
    if x < 0.22:
        svc = h.long_lived[("svchost0", "svchost1", "svchost4")[int(r() * 3)]]
        target, details = _SERVICE_VALUES[int(r() * len(_SERVICE_VALUES))]
        out.append((t, REG_SET, svc, target, details, None))
        return True
    if x < 0.3 and h.services:
        target = h.services[int(r() * len(h.services))]
        defender = h.long_lived["msmpeng"]
        if target is defender:
            return False
        trace = _CALL_TRACE.format(caller=defender.image, offset=0x1A000 + int(r() * 0xFFF))
        out.append((t, ACCESS, defender, target, "0x1000", trace))
        return True
    return False


def network_logon(out: list[tuple], rng: object, h: Host, t: int) -> None:
    """An account reaching this host over the network: 4624 type 3, 4672 when the account
    is privileged, 4634 when the session closes."""
    r = rng.random  # type: ignore[attr-defined]
    lsass = h.long_lived["lsass"]
    user = h.users[int(r() * len(h.users))]
    logon_id = 0x1000000 + int(r() * 0xEFFFFFF)
    source = f"10.{20 + int(r() * 7)}.0.{10 + int(r() * 200)}"
    privileged = user.name.startswith(("adm.", "svc_"))
    info = (user, hex(logon_id), source, 49152 + int(r() * 16000))
    out.append((t, LOGON, lsass, info, 3, None))
    if privileged:
        out.append((t + 30, PRIVILEGES, lsass, info, None, None))
    out.append((t + int((0.5 + r() * 30) * US), LOGOFF, lsass, info, 3, None))


def logon_session(ctx: object, t: int) -> None:
    """`network_logon` as a session of the host's menu (sessions are sized against the
    host's budget; singles are one event each)."""
    network_logon(ctx.out, ctx.rng, ctx.host, t)  # type: ignore[attr-defined]


# Network logon sessions per role, as menu weight beside the role's other sessions (a file or
# SQL server is reached over the network far more often than a workstation).
LOGON_WEIGHT = {"win_workstation": 8.0, "win_dev": 10.0, "win_build": 6.0, "win_server": 24.0}
