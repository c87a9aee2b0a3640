"""Background activity: what hosts do when nobody is attacking them.

A *session* is one burst of work started at time `t` (a build, a browsing session, an
`apt-get install`) that spawns a process tree and records its files and connections. A
*single* is one event by a long-running process (a service writing its log, a daemon
polling home), used both for realism and to fill a host's budget exactly.

Invariant that keeps the ground truth clean: background never matches any rule under the
tunables in `TUNABLES` (see generate.py). Concretely: only allow-listed editors write
.cs/.cpp files; MSBuild is never started by a script host (at any depth) and never makes
connections; package managers never start shells or LOLBins and only reach allow-listed
registries (or private/loopback addresses); nothing writes CI definition files, Makefiles
or Dockerfiles in temp folders; `docker build` never has a shell/interpreter parent, never
builds from temp folders; dockerd only reaches allow-listed registries.
"""

from __future__ import annotations

from collections.abc import Callable

from bench import gen_catalog as C
from bench.gen_core import US, Endpoint, Proc, User
from bench.gen_world import Ctx

Session = Callable[[Ctx, int], None]


def _ep(name: str, port: int = 443, proto: str = "tcp") -> Endpoint:
    return Endpoint(C.resolve(name), port, proto, name)


def _lookup(ctx: Ctx, p: Proc, t: int, name: str, port: int = 443) -> int:
    """DNS query then connection, as a client does it. Returns the time after both."""
    ep = _ep(name, port)
    if ctx.win:
        ctx.dns(p, t, name, ep.ip)
        t += ctx.ms(2, 40)
    ctx.net(p, t, ep)
    return t + ctx.ms(5, 200)


def _hex(ctx: Ctx, bits: int = 64) -> str:
    return f"{ctx.rng.getrandbits(bits):0{bits // 4}x}"


# ==== Windows ================================================================================


def _home(ctx: Ctx) -> str:
    return f"C:\\Users\\{ctx.host.users[0].name}"


def win_browse(ctx: Ctx, t: int) -> None:
    rng, ll = ctx.rng, ctx.host.long_lived
    explorer = ll["explorer"]
    exe = C.WIN["msedge"].path
    main = ctx.spawn(explorer, "msedge", f'"{exe}" ', t)
    t += ctx.ms(200, 900)
    kids = [
        ctx.spawn(
            main,
            "msedge",
            f'"{exe}" --type=gpu-process --gpu-preferences=UAAAAAAAAADgAAAEAAAAAAAAAAAAAAAAAABgAAEAAAA4AAAAAAAAAAAAAAAEAAAAAAAAAA --mojo-platform-channel-handle=2004 /prefetch:2',
            t,
        ),
        ctx.spawn(
            main,
            "msedge",
            f'"{exe}" --type=utility --utility-sub-type=network.mojom.NetworkService --lang=en-US --service-sandbox-type=none --mojo-platform-channel-handle=2312 /prefetch:3',
            t + ctx.ms(5, 30),
        ),
    ]
    netsvc = kids[1]
    cache = f"{_home(ctx)}\\AppData\\Local\\Microsoft\\Edge\\User Data\\Default"
    n_pages = 2 + int(rng.random() * 8)
    for i in range(n_pages):
        t += ctx.secs(2, 40)
        kids.append(
            ctx.spawn(
                main,
                "msedge",
                f'"{exe}" --type=renderer --lang=en-US --js-flags=--ms-user-locale= --device-scale-factor=1 --num-raster-threads=4 --renderer-client-id={7 + i} --mojo-platform-channel-handle={3000 + 40 * i} /prefetch:1',
                t,
            )
        )
        for site in rng.sample(C.WEB_SITES, 3 + int(rng.random() * 4)):
            t = _lookup(ctx, netsvc, t, site)
        for _ in range(2 + int(rng.random() * 5)):
            ctx.write(main, t, f"{cache}\\Cache\\Cache_Data\\f_{rng.getrandbits(24):06x}")
            t += ctx.ms(1, 30)
        if rng.random() < 0.5:
            j = f"{cache}\\History-journal"
            ctx.write(main, t, j)
            ctx.delete(main, t + ctx.ms(20, 300), j)
    if rng.random() < 0.2:
        dl = f"{_home(ctx)}\\Downloads\\report-{rng.getrandbits(16):04x}.pdf"
        ctx.write(main, t, dl)
        ctx.write(main, t + ctx.ms(5, 20), dl + ":Zone.Identifier")
    t += ctx.secs(5, 120)
    for k in kids:
        ctx.end(k, t)
        t += ctx.ms(1, 20)
    ctx.end(main, t)


def win_office(ctx: Ctx, t: int) -> None:
    rng, ll = ctx.rng, ctx.host.long_lived
    app, ext = ("winword", "docx") if rng.random() < 0.6 else ("excel", "xlsx")
    doc = f"{_home(ctx)}\\Documents\\{rng.choice(('Q3 plan', 'minutes', 'budget', 'roadmap', 'status'))} {rng.getrandbits(8)}.{ext}"
    p = ctx.spawn(ll["explorer"], app, f'"{C.WIN[app].path}" /n "{doc}"', t)
    t += ctx.ms(400, 2000)
    t = _lookup(ctx, p, t, rng.choice(C.OFFICE_HOSTS))
    lock = doc.rsplit("\\", 1)
    lock_path = f"{lock[0]}\\~${lock[1][2:]}"
    ctx.write(p, t, lock_path)
    tmp = f"{_home(ctx)}\\AppData\\Local\\Temp\\{{{_hex(ctx, 32).upper()}}}.tmp"
    for _ in range(1 + int(rng.random() * 4)):
        t += ctx.secs(10, 200)
        ctx.write(p, t, tmp)
        ctx.write(p, t + ctx.ms(50, 300), doc, op="modify")
        t = _lookup(ctx, p, t + US, rng.choice(C.OFFICE_HOSTS))
    ctx.delete(p, t + ctx.ms(100, 900), tmp)
    ctx.delete(p, t + ctx.ms(1000, 2000), lock_path)
    ctx.end(p, t + ctx.secs(3, 6))


def win_admin_shell(ctx: Ctx, t: int) -> None:
    rng, h = ctx.rng, ctx.host
    parent = h.long_lived.get("explorer") or h.long_lived["services"]
    user = h.users[-1]
    ps = ctx.spawn(
        parent,
        "powershell",
        '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" ',
        t,
        user=user,
        cwd=f"C:\\Users\\{user.name}\\",
        integrity="High",
    )
    con = ctx.spawn(
        ps,
        "conhost",
        "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1",
        t + ctx.ms(5, 20),
    )
    t += ctx.secs(2, 10)
    for key, cmd in rng.sample(
        (
            ("whoami", '"C:\\Windows\\system32\\whoami.exe" /all'),
            ("ipconfig", '"C:\\Windows\\system32\\ipconfig.exe" /all'),
            ("net", '"C:\\Windows\\system32\\net.exe" use'),
            ("tasklist", '"C:\\Windows\\system32\\tasklist.exe" /svc'),
        ),
        2,
    ):
        c = ctx.spawn(ps, key, cmd, t)
        ctx.end(c, t + ctx.ms(80, 900))
        t += ctx.secs(3, 30)
    ctx.net(ps, t, _ep(C.FILE_SERVER, 445))
    hist = f"C:\\Users\\{user.name}\\AppData\\Roaming\\Microsoft\\Windows\\PowerShell\\PSReadLine\\ConsoleHost_history.txt"
    ctx.write(ps, t + US, hist, op="modify")
    ctx.write(
        ps,
        t + 2 * US,
        f"C:\\Users\\{user.name}\\AppData\\Local\\Microsoft\\Windows\\PowerShell\\StartupProfileData-Interactive",
    )
    t += ctx.secs(10, 60)
    ctx.end(con, t)
    ctx.end(ps, t + ctx.ms(1, 5))


def win_scheduled(ctx: Ctx, t: int) -> None:
    rng, ll = ctx.rng, ctx.host.long_lived
    sched = ll["svchost0"]
    pick = rng.random()
    if pick < 0.35:
        p = ctx.spawn(
            sched,
            "mpcmdrun",
            f'"{C.WIN["mpcmdrun"].path}" -SignatureUpdate -ScheduleJob -RestrictPrivileges',
            t,
        )
        t = _lookup(ctx, p, t + ctx.ms(100, 500), "definitionupdates.av.example")
        base = "C:\\ProgramData\\Microsoft\\Windows Defender\\Definition Updates"
        guid = _hex(ctx, 32).upper()
        for f in ("mpasbase.vdm", "mpavbase.vdm", "mpasdlta.vdm", "mpavdlta.vdm", "mpengine.dll"):
            ctx.write(p, t, f"{base}\\{{{guid}}}\\{f}")
            t += ctx.ms(20, 400)
        ctx.write(
            p,
            t,
            "C:\\ProgramData\\Microsoft\\Windows Defender\\Support\\MPLog-20240101-000000.log",
            op="modify",
        )
    elif pick < 0.6:
        p = ctx.spawn(
            sched,
            "compattelrunner",
            "C:\\Windows\\system32\\compattelrunner.exe -m:appraiser.dll -f:DoScheduledTelemetryRun",
            t,
        )
        t = _lookup(ctx, p, t + ctx.secs(1, 5), "settings.os.example")
        for i in range(2 + int(rng.random() * 4)):
            ctx.write(p, t, f"C:\\Windows\\appcompat\\Programs\\Inventory{i}.tmp")
            t += ctx.ms(30, 300)
    elif pick < 0.85:
        p = ctx.spawn(
            sched,
            "taskhostw",
            "taskhostw.exe -RegisterDevice -ProtectionStateChanged -FreeNetworkOnly",
            t,
        )
        t = _lookup(ctx, p, t + ctx.ms(200, 800), "login.identity.example")
    else:
        p = ctx.spawn(
            ll["svchost3"],
            "dllhost",
            "C:\\Windows\\system32\\DllHost.exe /Processid:{AB8902B4-09CA-4BB6-B78D-A8F59079A8D5}",
            t,
        )
        ctx.write(p, t + ctx.ms(50, 200), f"C:\\Windows\\Temp\\{_hex(ctx, 32)}.tmp")
        t += US
    ctx.end(p, t + ctx.secs(1, 20))


def win_update(ctx: Ctx, t: int) -> None:
    rng, ll = ctx.rng, ctx.host.long_lived
    svc = ll["svchost4"]
    t = _lookup(ctx, svc, t, "download.update.os.example")
    tw = ctx.spawn(ll["services"], "tiworker", f"{C.WIN['tiworker'].path} -Embedding", t)
    comp = f"amd64_microsoft-windows-{rng.choice(('ntfs', 'shell32', 'edgehtml', 'mshtml', 'win32k'))}_31bf3856ad364e35_10.0.19041.{3600 + int(rng.random() * 300)}_none_{_hex(ctx, 64)}"
    for i in range(10 + int(rng.random() * 30)):
        t += ctx.ms(10, 200)
        ctx.write(tw, t, f"C:\\Windows\\WinSxS\\{comp}\\f{i}.dll")
    ctx.write(tw, t, "C:\\Windows\\Logs\\CBS\\CBS.log", op="modify")
    ctx.end(tw, t + ctx.secs(5, 60))


def _devenv(ctx: Ctx, t: int) -> tuple[Proc, str, str]:
    """The developer's Visual Studio, started on demand, with its solution and repo dir."""
    ll = ctx.host.long_lived
    proj = C.WIN_PROJECTS[ctx.host.idx % len(C.WIN_PROJECTS)]
    repo = f"{_home(ctx)}\\source\\repos\\{proj}"
    dev = ll.get("devenv")
    if dev is None:
        dev = ctx.spawn(
            ll["explorer"],
            "devenv",
            f'"{C.WIN["devenv"].path}" "{repo}\\{proj}.sln"',
            t - 30 * US,
            cwd=f"{repo}\\",
        )
        ll["devenv"] = dev
    return dev, repo, proj


def win_vs_build(ctx: Ctx, t: int) -> None:
    rng = ctx.rng
    dev, repo, proj = _devenv(ctx, t)
    src = f"{repo}\\{proj}"
    # The developer saves a few files, then builds. Saving from the IDE is allow-listed.
    for _ in range(1 + int(rng.random() * 3)):
        ctx.write(
            dev,
            t,
            f"{src}\\{rng.choice(('Program', 'Startup', 'Models', 'Service', 'Controller', 'Helpers'))}{rng.getrandbits(6)}.cs",
            op="modify",
        )
        t += ctx.ms(300, 4000)
    ctx.write(dev, t, f"{_home(ctx)}\\AppData\\Local\\Temp\\NuGetScratch\\lock\\{_hex(ctx, 160)}")
    t += ctx.ms(100, 600)
    ms = ctx.spawn(
        dev,
        "msbuild",
        f'"{C.WIN["msbuild"].path}" /nologo /nodemode:1 /nodeReuse:true /low:false',
        t,
        cwd=f"{repo}\\",
    )
    t += ctx.ms(300, 1500)
    obj = f"{src}\\obj\\Debug\\net8.0"
    for f in (
        f"{proj}.csproj.AssemblyReference.cache",
        f"{proj}.GeneratedMSBuildEditorConfig.editorconfig",
        f"{proj}.AssemblyInfoInputs.cache",
        f"{proj}.csproj.CoreCompileInputs.cache",
    ):
        ctx.write(ms, t, f"{obj}\\{f}")
        t += ctx.ms(5, 80)
    comp = ctx.spawn(
        ms, "vbcscompiler", f'"{C.WIN["vbcscompiler"].path}" "-pipename:{_hex(ctx, 128)[:26]}"', t
    )
    t += ctx.secs(1, 8)
    for f in (f"{proj}.dll", f"{proj}.pdb", f"ref\\{proj}.dll", f"refint\\{proj}.dll"):
        ctx.write(comp, t, f"{obj}\\{f}")
        t += ctx.ms(5, 60)
    if rng.random() < 0.35:
        t = _cpp_build(ctx, ms, repo, t)
    for f in (
        f"{proj}.dll",
        f"{proj}.pdb",
        f"{proj}.deps.json",
        f"{proj}.runtimeconfig.json",
        f"{proj}.exe",
    ):
        ctx.write(ms, t, f"{src}\\bin\\Debug\\net8.0\\{f}")
        t += ctx.ms(5, 60)
    ctx.write(ms, t, f"{obj}\\{proj}.csproj.FileListAbsolute.txt", op="modify")
    ctx.end(ms, t + ctx.secs(1, 20))
    ctx.end(comp, t + ctx.secs(30, 240))
    # No editor save right after the build: that is exactly the rule's correlation window.


def _cpp_build(ctx: Ctx, ms: Proc, repo: str, t: int) -> int:
    rng = ctx.rng
    native = f"{repo}\\Native"
    tr = ctx.spawn(
        ms,
        "tracker",
        f'"{C.WIN["tracker"].path}" @"{_home(ctx)}\\AppData\\Local\\Temp\\tmp{_hex(ctx, 32)[:8]}.rsp" /c "{C.WIN["cl"].path}"  /c /ZI /JMC /nologo /W3 /WX- /diagnostics:column /sdl /Od /D _DEBUG /D _CONSOLE /D _UNICODE /D UNICODE /Gm- /EHsc /RTC1 /MDd /GS /fp:precise /Zc:wchar_t /Zc:forScope /Zc:inline /permissive- /Fo"x64\\Debug\\\\" /Fd"x64\\Debug\\vc143.pdb" /external:W3 /Gd /TP /FC /errorReport:prompt',
        t,
    )
    cl = ctx.spawn(
        tr,
        "cl",
        f'"{C.WIN["cl"].path}" /c /ZI /JMC /nologo /W3 /WX- /sdl /Od /D _DEBUG /EHsc /RTC1 /MDd /GS /Fo"x64\\Debug\\\\" /Fd"x64\\Debug\\vc143.pdb" /TP /FC',
        t + ctx.ms(20, 80),
    )
    t += ctx.ms(200, 800)
    for i in range(2 + int(rng.random() * 6)):
        ctx.write(cl, t, f"{native}\\x64\\Debug\\unit{i}.obj")
        t += ctx.ms(100, 900)
    ctx.write(cl, t, f"{native}\\x64\\Debug\\vc143.pdb")
    tip = ctx.spawn(cl, "vctip", f'"{C.WIN["vctip"].path}" SetToolInfo "{C.WIN["cl"].path}"', t)
    ctx.end(tip, t + ctx.ms(100, 400))
    ctx.end(cl, t + ctx.ms(50, 200))
    ctx.end(tr, t + ctx.ms(60, 300))
    t += ctx.ms(300, 900)
    ln = ctx.spawn(
        ms,
        "link",
        f'"{C.WIN["link"].path}" /ERRORREPORT:PROMPT /OUT:"{native}\\x64\\Debug\\Native.exe" /INCREMENTAL /NOLOGO',
        t,
    )
    for f in ("Native.exe", "Native.pdb", "Native.ilk"):
        ctx.write(ln, t + ctx.ms(100, 800), f"{native}\\x64\\Debug\\{f}")
    ctx.end(ln, t + ctx.secs(1, 3))
    ctx.write(
        ms,
        t + ctx.secs(1, 2),
        f"{native}\\x64\\Debug\\Native.tlog\\Native.lastbuildstate",
        op="modify",
    )
    return t + ctx.secs(1, 3)


def _terminal_shell(ctx: Ctx, t: int) -> Proc:
    ll = ctx.host.long_lived
    term = ll.get("terminal")
    if term is None:
        term = ctx.spawn(ll["explorer"], "terminal", f'"{C.WIN["terminal"].path}" ', t - 20 * US)
        ll["terminal"] = term
    repo = f"{_home(ctx)}\\source\\repos\\{C.WIN_PROJECTS[ctx.host.idx % len(C.WIN_PROJECTS)]}\\"
    return ctx.spawn(term, "pwsh", f'"{C.WIN["pwsh"].path}" -NoLogo', t, cwd=repo)


def win_dotnet_cli(ctx: Ctx, t: int) -> None:
    rng = ctx.rng
    sh = _terminal_shell(ctx, t)
    repo = sh.cwd.rstrip("\\")
    proj = repo.rsplit("\\", 1)[1]
    t += ctx.secs(1, 5)
    verb = rng.choice(("build", "test", "restore"))
    d = ctx.spawn(sh, "dotnet", f'"C:\\Program Files\\dotnet\\dotnet.exe" {verb}', t)
    t = _lookup(ctx, d, t + ctx.ms(200, 900), C.NUGET)
    nuget = f"{_home(ctx)}\\.nuget\\packages"
    for _ in range(int(rng.random() * 6)):
        pkg = rng.choice(("newtonsoft.json", "serilog", "polly", "dapper", "xunit", "moq"))
        t = _lookup(ctx, d, t, C.NUGET)
        ctx.write(
            d,
            t,
            f"{nuget}\\{pkg}\\{1 + int(rng.random() * 12)}.0.{int(rng.random() * 9)}\\lib\\net8.0\\{pkg}.dll",
        )
    ctx.write(d, t, f"{repo}\\{proj}\\obj\\project.assets.json", op="modify")
    if verb != "restore":
        comp = ctx.spawn(
            d,
            "dotnet",
            f'"C:\\Program Files\\dotnet\\dotnet.exe" exec "C:\\Program Files\\dotnet\\sdk\\8.0.101\\Roslyn\\bincore\\VBCSCompiler.dll" "-pipename:{_hex(ctx, 128)[:26]}"',
            t + US,
        )
        t += ctx.secs(2, 10)
        for f in (f"{proj}.dll", f"{proj}.pdb"):
            ctx.write(comp, t, f"{repo}\\{proj}\\obj\\Debug\\net8.0\\{f}")
            ctx.write(d, t + ctx.ms(10, 90), f"{repo}\\{proj}\\bin\\Debug\\net8.0\\{f}")
        ctx.end(comp, t + ctx.secs(60, 300))
    ctx.end(d, t + ctx.secs(1, 5))
    ctx.end(sh, t + ctx.secs(20, 200))


def win_npm(ctx: Ctx, t: int) -> None:
    rng = ctx.rng
    sh = _terminal_shell(ctx, t)
    t += ctx.secs(1, 5)
    repo = sh.cwd.rstrip("\\") + "\\web"
    args = rng.choice(("install", "ci", f"install {rng.choice(C.NPM_PACKAGES)}"))
    node = ctx.spawn(
        sh,
        "node",
        f'"C:\\Program Files\\nodejs\\\\node.exe"  "C:\\Program Files\\nodejs\\\\node_modules\\npm\\bin\\npm-cli.js" {args}',
        t,
        cwd=repo + "\\",
    )
    t = _lookup(ctx, node, t + ctx.ms(100, 400), C.NPM_REGISTRY)
    for pkg in rng.sample(C.NPM_PACKAGES, 2 + int(rng.random() * 5)):
        t = _lookup(ctx, node, t, C.NPM_REGISTRY) if rng.random() < 0.4 else t
        for f in ("package.json", "index.js", "README.md", "lib\\util.js", "LICENSE"):
            ctx.write(node, t, f"{repo}\\node_modules\\{pkg}\\{f}")
            t += ctx.ms(1, 15)
    if rng.random() < 0.4:
        # A native-ish package's install script: node running node, never a shell.
        kid = ctx.spawn(
            node,
            "node",
            '"C:\\Program Files\\nodejs\\node.exe" install.js',
            t,
            cwd=f"{repo}\\node_modules\\{C.NPM_PACKAGES[0]}\\",
        )
        ctx.write(
            kid, t + ctx.ms(50, 300), f"{repo}\\node_modules\\{C.NPM_PACKAGES[0]}\\bin\\native.node"
        )
        ctx.end(kid, t + ctx.ms(400, 2000))
    ctx.write(node, t + US, f"{repo}\\package-lock.json", op="modify")
    ctx.end(node, t + ctx.secs(2, 4))
    ctx.end(sh, t + ctx.secs(10, 300))


def win_pip(ctx: Ctx, t: int) -> None:
    rng = ctx.rng
    sh = _terminal_shell(ctx, t)
    t += ctx.secs(1, 5)
    pkgs = rng.sample(C.PY_PACKAGES, 1 + int(rng.random() * 3))
    py = ctx.spawn(
        sh,
        "python",
        f'"C:\\Program Files\\Python312\\python.exe" -m pip install {" ".join(pkgs)}',
        t,
    )
    t = _lookup(ctx, py, t + ctx.ms(200, 600), C.PY_INDEX)
    site = f"{_home(ctx)}\\AppData\\Roaming\\Python\\Python312\\site-packages"
    for pkg in pkgs:
        t = _lookup(ctx, py, t, C.PY_FILES)
        mod = pkg.replace("-", "_")
        for f in ("__init__.py", "core.py", "utils.py", "_compat.py"):
            ctx.write(py, t, f"{site}\\{mod}\\{f}")
            t += ctx.ms(1, 20)
        ctx.write(py, t, f"{site}\\{mod}-1.0.0.dist-info\\RECORD")
    ctx.end(py, t + ctx.secs(1, 3))
    ctx.end(sh, t + ctx.secs(10, 200))


def win_cargo(ctx: Ctx, t: int) -> None:
    rng = ctx.rng
    sh = _terminal_shell(ctx, t)
    t += ctx.secs(1, 4)
    repo = sh.cwd.rstrip("\\") + "\\tools\\imgconv"
    cargo = ctx.spawn(sh, "cargo", "cargo  build --release", t, cwd=repo + "\\")
    t = _lookup(ctx, cargo, t + ctx.ms(100, 500), C.CRATES)
    t = _lookup(ctx, cargo, t, C.CRATES_DL)
    rustc = ctx.image("rustc")
    for crate in rng.sample(C.CRATE_NAMES, 2 + int(rng.random() * 4)):
        r = ctx.spawn(
            cargo,
            "rustc",
            f"{rustc} --crate-name {crate.replace('-', '_')} --edition=2021 --crate-type lib --emit=dep-info,metadata,link -C opt-level=3",
            t,
        )
        t += ctx.secs(1, 6)
        lib = crate.replace("-", "_")
        ctx.write(r, t, f"{repo}\\target\\release\\deps\\lib{lib}-{_hex(ctx, 64)}.rlib")
        ctx.write(r, t, f"{repo}\\target\\release\\deps\\{lib}-{_hex(ctx, 64)}.d")
        ctx.end(r, t + ctx.ms(10, 100))
    ctx.end(cargo, t + ctx.secs(1, 3))
    ctx.end(sh, t + ctx.secs(5, 100))


def win_git_pull(ctx: Ctx, t: int) -> None:
    rng = ctx.rng
    sh = _terminal_shell(ctx, t)
    repo = sh.cwd.rstrip("\\")
    t += ctx.secs(1, 3)
    g = ctx.spawn(sh, "git", '"C:\\Program Files\\Git\\cmd\\git.exe" pull', t)
    core = ctx.spawn(g, "git_core", "git pull", t + ctx.ms(10, 40))
    rem = ctx.spawn(
        core,
        "git_remote_https",
        f"git-remote-https origin https://{C.GIT_INTERNAL}/team/{repo.rsplit(chr(92), 1)[1]}.git",
        t + ctx.ms(50, 100),
    )
    t = _lookup(ctx, rem, t + ctx.ms(60, 200), C.GIT_INTERNAL)
    ctx.end(rem, t + ctx.secs(1, 3))
    pack = _hex(ctx, 160)
    for f in (
        f"objects\\pack\\pack-{pack}.pack",
        f"objects\\pack\\pack-{pack}.idx",
        "FETCH_HEAD",
        "ORIG_HEAD",
    ):
        ctx.write(core, t, f"{repo}\\.git\\{f}")
        t += ctx.ms(5, 50)
    for f in rng.sample(
        (
            "README.md",
            "appsettings.json",
            "docs\\design.md",
            "global.json",
            "Directory.Build.props",
            "web\\package.json",
        ),
        2,
    ):
        ctx.write(core, t, f"{repo}\\{f}", op="modify")
    ctx.end(core, t + ctx.ms(50, 300))
    ctx.end(g, t + ctx.ms(60, 320))
    ctx.end(sh, t + ctx.secs(5, 100))


def win_code_edit(ctx: Ctx, t: int) -> None:
    rng, ll = ctx.rng, ctx.host.long_lived
    code = ll.get("code") or _devenv(ctx, t)[0]
    repo = f"{_home(ctx)}\\source\\repos\\{C.WIN_PROJECTS[ctx.host.idx % len(C.WIN_PROJECTS)]}"
    for _ in range(2 + int(rng.random() * 5)):
        ext = rng.choice((".cs", ".cs", ".cpp", ".json", ".md", ".ts"))
        ctx.write(code, t, f"{repo}\\src\\File{rng.getrandbits(7)}{ext}", op="modify")
        t += ctx.secs(5, 40)


def win_build_job(ctx: Ctx, t: int) -> None:
    """Azure-Pipelines-style agent: the worker starts git, dotnet and MSBuild directly."""
    rng, ll, u = ctx.rng, ctx.host.long_lived, ctx.host.users[0]
    proj = rng.choice(C.WIN_PROJECTS)
    ws = f"C:\\agent\\_work\\{1 + int(rng.random() * 9)}\\s"
    w = ctx.spawn(
        ll["agent_listener"],
        "agent_worker",
        f'"C:\\agent\\bin\\Agent.Worker.exe" spawnclient {3000 + int(rng.random() * 2000)} {3000 + int(rng.random() * 2000)}',
        t,
        cwd="C:\\agent\\bin\\",
    )
    t = _lookup(ctx, w, t + US, "pipelines.devops.example")
    g = ctx.spawn(
        w,
        "git",
        '"C:\\Program Files\\Git\\cmd\\git.exe" -c http.extraheader="AUTHORIZATION: bearer ***" fetch --force --tags --prune origin',
        t,
        cwd=ws + "\\",
        user=u,
    )
    t = _lookup(ctx, g, t + ctx.ms(100, 400), C.GIT_INTERNAL)
    ctx.write(g, t, f"{ws}\\.git\\FETCH_HEAD")
    ctx.end(g, t + ctx.secs(1, 5))
    t += ctx.secs(2, 6)
    d = ctx.spawn(
        w, "dotnet", f'"C:\\Program Files\\dotnet\\dotnet.exe" restore {ws}\\{proj}.sln', t
    )
    t = _lookup(ctx, d, t + ctx.ms(300, 800), C.NUGET)
    ctx.write(d, t, f"{ws}\\{proj}\\obj\\project.assets.json")
    ctx.end(d, t + ctx.secs(2, 10))
    t += ctx.secs(3, 8)
    ms = ctx.spawn(
        w,
        "msbuild",
        f'"{C.WIN["msbuild"].path}" {ws}\\{proj}.sln /m /p:Configuration=Release /p:Platform="Any CPU" /nologo',
        t,
    )
    comp = ctx.spawn(
        ms,
        "vbcscompiler",
        f'"{C.WIN["vbcscompiler"].path}" "-pipename:{_hex(ctx, 128)[:26]}"',
        t + ctx.secs(1, 3),
    )
    t += ctx.secs(4, 30)
    for sub in ("", ".Core", ".Tests"):
        ctx.write(comp, t, f"{ws}\\{proj}{sub}\\obj\\Release\\net8.0\\{proj}{sub}.dll")
        ctx.write(
            ms, t + ctx.ms(20, 200), f"{ws}\\{proj}{sub}\\bin\\Release\\net8.0\\{proj}{sub}.dll"
        )
        t += ctx.secs(1, 6)
    ctx.end(ms, t + ctx.secs(1, 3))
    ctx.end(comp, t + ctx.secs(60, 180))
    t += ctx.secs(3, 10)
    tst = ctx.spawn(
        w,
        "dotnet",
        f'"C:\\Program Files\\dotnet\\dotnet.exe" test {ws}\\{proj}.Tests\\{proj}.Tests.csproj --no-build -c Release --logger trx',
        t,
    )
    th = ctx.spawn(
        tst,
        "testhost",
        f'"{C.WIN["testhost"].path}" --port {50000 + int(rng.random() * 9000)} --endpoint 127.0.0.1:0{50000 + int(rng.random() * 9000)} --role client --parentprocessid {tst.pid}',
        t + ctx.secs(1, 3),
    )
    ctx.net(
        th, t + ctx.secs(2, 4), Endpoint("127.0.0.1", 50000 + int(rng.random() * 9000), "tcp", "")
    )
    ctx.write(
        tst,
        t + ctx.secs(5, 30),
        f"{ws}\\TestResults\\svc_build_{ctx.host.name}_{_hex(ctx, 32)[:8]}.trx",
    )
    t += ctx.secs(30, 120)
    ctx.end(th, t)
    ctx.end(tst, t + US)
    t = _lookup(ctx, w, t + ctx.secs(1, 3), C.ARTIFACTS_INTERNAL)
    ctx.end(w, t + ctx.secs(1, 5))


def win_server_work(ctx: Ctx, t: int) -> None:
    rng, ll = ctx.rng, ctx.host.long_lived
    if rng.random() < 0.5:
        w3 = ll["w3wp"]
        for _ in range(3 + int(rng.random() * 12)):
            client = f"10.{20 + int(rng.random() * 2)}.0.{10 + int(rng.random() * 200)}"
            ctx.net(w3, t, Endpoint(client, 443, "tcp", "-"), initiated=False)
            ctx.net(w3, t + ctx.ms(2, 30), Endpoint(ctx.host.ip, 1433, "tcp", ctx.host.fqdn))
            t += ctx.ms(50, 4000)
        ctx.write(
            w3,
            t,
            f"C:\\inetpub\\logs\\LogFiles\\W3SVC1\\u_ex{rng.getrandbits(12)}.log",
            op="modify",
        )
    else:
        sql = ll["sqlservr"]
        for i in range(2 + int(rng.random() * 5)):
            ctx.write(sql, t, f"D:\\Backup\\Sales_LOG_{_hex(ctx, 32)[:10]}_{i}.trn")
            t += ctx.secs(1, 20)
        ctx.write(sql, t, "D:\\MSSQL\\DATA\\Sales_log.ldf", op="modify")


# ==== Linux ==================================================================================


def _lhome(ctx: Ctx, user: User | None = None) -> str:
    u = user or ctx.host.users[0]
    return "/root" if u.name == "root" else f"/home/{u.name}"


def _login_shell(ctx: Ctx, t: int, user: User | None = None) -> Proc:
    """An ssh login: sshd forks a privileged child, then the user's bash."""
    ll = ctx.host.long_lived
    user = user or ctx.host.users[-1]
    client = f"10.{20 + int(ctx.rng.random() * 2)}.0.{10 + int(ctx.rng.random() * 200)}"
    ctx.net(ll["sshd"], t, Endpoint(client, 22, "tcp", ""), initiated=False)
    priv = ctx.spawn(ll["sshd"], "sshd", f"sshd: {user.name} [priv]", t + ctx.ms(10, 50))
    return ctx.spawn(priv, "bash", "-bash", t + ctx.ms(300, 900), user=user, cwd=_lhome(ctx, user))


def linux_admin(ctx: Ctx, t: int) -> None:
    rng = ctx.rng
    sh = _login_shell(ctx, t)
    t += ctx.secs(2, 10)
    for key, cmd in rng.sample(
        (
            ("ls", "ls -la /var/log"),
            ("ps", "ps aux"),
            ("cat", "cat /etc/os-release"),
            ("journalctl", "journalctl -u nginx --since today"),
            ("systemctl", "systemctl status docker"),
        ),
        3,
    ):
        ctx.spawn(sh, key, cmd, t)
        t += ctx.secs(2, 40)
    if rng.random() < 0.5:
        target = rng.choice(
            ("/etc/nginx/conf.d/app.conf", f"{_lhome(ctx, sh.user)}/.bashrc", "/etc/hosts")
        )
        v = ctx.spawn(sh, "vim", f"vim {target}", t)
        d, b = target.rsplit("/", 1)
        ctx.write(v, t + US, f"{d}/.{b}.swp")
        t += ctx.secs(10, 120)
        ctx.write(v, t, target, op="modify")
        ctx.delete(v, t + ctx.ms(5, 40), f"{d}/.{b}.swp")
    ctx.write(sh, t + ctx.secs(1, 20), f"{_lhome(ctx, sh.user)}/.bash_history", op="modify")


def linux_apt(ctx: Ctx, t: int) -> None:
    rng = ctx.rng
    sh = _login_shell(ctx, t)
    t += ctx.secs(3, 15)
    pkg = rng.choice(
        ("jq", "htop", "libssl3", "tzdata", "curl", "openssh-client", "ca-certificates", "git")
    )
    sudo = ctx.spawn(sh, "sudo", f"sudo apt-get install -y {pkg}", t)
    apt = ctx.spawn(
        sudo, "apt", f"apt-get install -y {pkg}", t + ctx.ms(30, 100), user=ctx.host.system
    )
    t += ctx.ms(200, 800)
    for mirror in C.LINUX_MIRRORS:
        m = ctx.spawn(apt, "apt_http", "/usr/lib/apt/methods/http", t)
        ctx.net(m, t + ctx.ms(5, 50), _ep(mirror, 80))
        t += ctx.ms(300, 2000)
    ver = f"{1 + int(rng.random() * 3)}.{int(rng.random() * 20)}-{1 + int(rng.random() * 4)}"
    deb = f"/var/cache/apt/archives/{pkg}_{ver}_amd64.deb"
    ctx.write(m, t, deb)
    dpkg = ctx.spawn(
        apt,
        "dpkg",
        f"/usr/bin/dpkg --status-fd 35 --no-triggers --unpack --auto-deconfigure {deb}",
        t + US,
    )
    t += US
    for f in (
        f"/usr/bin/{pkg}",
        f"/usr/share/doc/{pkg}/copyright",
        f"/usr/share/doc/{pkg}/changelog.Debian.gz",
        f"/usr/share/man/man1/{pkg}.1.gz",
        f"/var/lib/dpkg/info/{pkg}.list",
        f"/var/lib/dpkg/info/{pkg}.md5sums",
    ):
        ctx.write(dpkg, t, f)
        t += ctx.ms(2, 50)
    cfg = ctx.spawn(
        apt, "dpkg", "/usr/bin/dpkg --status-fd 35 --configure --pending", t + ctx.ms(50, 200)
    )
    post = ctx.spawn(
        cfg,
        "sh",
        f"/bin/sh /var/lib/dpkg/info/{pkg}.postinst configure",
        t + ctx.ms(100, 300),
        image="/usr/bin/dash",
    )
    ctx.spawn(post, "ldconfig", "/sbin/ldconfig", t + ctx.ms(300, 600))
    ctx.write(cfg, t + US, "/var/lib/dpkg/status", op="modify")
    ctx.write(apt, t + 2 * US, "/var/log/apt/history.log", op="modify")


def _docker_build(ctx: Ctx, parent: Proc, t: int, ctx_dir: str, tag: str, no_cache: bool) -> int:
    """`docker build` from a project directory; dockerd pulls from the allow-listed registry
    and runs the RUN steps in a container (containerd-shim -> sh -> package manager)."""
    rng, ll = ctx.rng, ctx.host.long_lived
    flags = "--no-cache " if no_cache else ""
    cli = ctx.spawn(parent, "docker", f"docker build {flags}-t {tag} .", t, cwd=ctx_dir)
    dd = ll["dockerd"]
    t += ctx.ms(100, 400)
    for name in (C.DOCKER_AUTH, C.DOCKER_REGISTRY, C.DOCKER_CDN):
        ctx.net(dd, t, _ep(name))
        t += ctx.ms(20, 400)
    for _ in range(3 + int(rng.random() * 8)):
        ctx.write(
            dd,
            t,
            f"/var/lib/docker/overlay2/{_hex(ctx, 256)}/diff/{rng.choice(('usr/lib', 'etc', 'app', 'usr/local/lib'))}/{_hex(ctx, 32)[:8]}",
        )
        t += ctx.ms(5, 200)
    cid = _hex(ctx, 256)
    shim = ctx.spawn(
        ll["containerd"],
        "shim",
        f"/usr/bin/containerd-shim-runc-v2 -namespace moby -id {cid} -address /run/containerd/containerd.sock",
        t,
    )
    runc = ctx.spawn(
        shim,
        "runc",
        f"runc --root /var/run/docker/runtime-runc/moby --log /run/containerd/io.containerd.runtime.v2.task/moby/{cid}/log.json --log-format json create --bundle /run/containerd/io.containerd.runtime.v2.task/moby/{cid} {cid}",
        t + ctx.ms(5, 30),
    )
    del runc
    t += ctx.ms(50, 300)
    if rng.random() < 0.5:
        sh = ctx.spawn(shim, "sh", "/bin/sh -c npm ci --omit=dev", t, image="/bin/sh", cwd="/app")
        pm = ctx.spawn(
            sh, "node", "npm ci --omit=dev", t + ctx.ms(10, 50), image="/usr/local/bin/node"
        )
        reg, files = C.NPM_REGISTRY, ("node_modules/{p}/package.json", "node_modules/{p}/index.js")
        pkgs = rng.sample(C.NPM_PACKAGES, 3)
    else:
        sh = ctx.spawn(
            shim,
            "sh",
            "/bin/sh -c pip install --no-cache-dir -r requirements.txt",
            t,
            image="/bin/sh",
            cwd="/app",
        )
        pm = ctx.spawn(
            sh,
            "python3",
            "/usr/local/bin/python3 -m pip install --no-cache-dir -r requirements.txt",
            t + ctx.ms(10, 50),
            image="/usr/local/bin/python3",
        )
        reg, files = C.PY_FILES, ("usr/local/lib/python3.12/site-packages/{p}/__init__.py",)
        pkgs = rng.sample(C.PY_PACKAGES, 3)
    t = _lookup(ctx, pm, t + ctx.ms(200, 600), reg)
    for p in pkgs:
        for f in files:
            ctx.write(
                pm,
                t,
                "/app/" + f.format(p=p.replace("-", "_"))
                if "node" not in f
                else "/app/" + f.format(p=p),
            )
            t += ctx.ms(5, 80)
    t += ctx.secs(2, 20)
    ctx.write(dd, t, f"/var/lib/docker/image/overlay2/imagedb/content/sha256/{_hex(ctx, 256)}")
    ctx.write(
        cli,
        t + ctx.ms(5, 40),
        f"{_lhome(ctx, cli.user)}/.docker/buildx/activity/default",
        op="modify",
    )
    return t + US


def linux_dev_docker(ctx: Ctx, t: int) -> None:
    sh = _login_shell(ctx, t, ctx.host.users[0])
    proj = C.LINUX_PROJECTS[ctx.host.idx % len(C.LINUX_PROJECTS)]
    d = f"{_lhome(ctx, sh.user)}/src/{proj}"
    mk = ctx.spawn(sh, "make", "make image", t + ctx.secs(2, 10), cwd=d)
    _docker_build(ctx, mk, mk.start + ctx.ms(20, 80), d, f"{proj}:dev", no_cache=False)


def linux_dev_pkg(ctx: Ctx, t: int) -> None:
    rng = ctx.rng
    sh = _login_shell(ctx, t, ctx.host.users[0])
    proj = C.LINUX_PROJECTS[ctx.host.idx % len(C.LINUX_PROJECTS)]
    d = f"{_lhome(ctx, sh.user)}/src/{proj}"
    t += ctx.secs(2, 10)
    pick = rng.random()
    if pick < 0.4:
        py = ctx.spawn(
            sh,
            "python3",
            "python3 -m pip install -r requirements.txt",
            t,
            cwd=d,
            image=f"{d}/.venv/bin/python3",
        )
        t = _lookup(ctx, py, t + ctx.ms(200, 600), C.PY_INDEX)
        for p in rng.sample(C.PY_PACKAGES, 2 + int(rng.random() * 4)):
            t = _lookup(ctx, py, t, C.PY_FILES)
            for f in ("__init__.py", "core.py", "py.typed"):
                ctx.write(
                    py, t, f"{d}/.venv/lib/python3.11/site-packages/{p.replace('-', '_')}/{f}"
                )
                t += ctx.ms(1, 30)
        if rng.random() < 0.3:
            wheel = ctx.spawn(
                py,
                "python3",
                f"{d}/.venv/bin/python3 {d}/.venv/lib/python3.11/site-packages/pip/_vendor/pyproject_hooks/_in_process/_in_process.py build_wheel /tmp/tmp{_hex(ctx, 32)[:8]}",
                t,
                image=f"{d}/.venv/bin/python3",
            )
            cc = ctx.spawn(
                wheel,
                "gcc",
                "x86_64-linux-gnu-gcc -Wsign-compare -DNDEBUG -g -fwrapv -O2 -Wall -fPIC -I/usr/include/python3.11 -c src/_speedups.c -o build/temp.linux-x86_64-cpython-311/src/_speedups.o",
                t + US,
            )
            ctx.write(
                cc,
                t + 2 * US,
                f"/tmp/pip-install-{_hex(ctx, 32)[:8]}/fastcsv/build/temp.linux-x86_64-cpython-311/src/_speedups.o",
            )
    elif pick < 0.75:
        node = ctx.spawn(
            sh,
            "node",
            rng.choice(("npm install", "npm ci", f"npm install {rng.choice(C.NPM_PACKAGES)}")),
            t,
            cwd=d,
        )
        t = _lookup(ctx, node, t + ctx.ms(100, 400), C.NPM_REGISTRY)
        for p in rng.sample(C.NPM_PACKAGES, 2 + int(rng.random() * 5)):
            for f in ("package.json", "index.js", "lib/util.js"):
                ctx.write(node, t, f"{d}/node_modules/{p}/{f}")
                t += ctx.ms(1, 20)
        if rng.random() < 0.3:
            kid = ctx.spawn(
                node, "node", "node install.js", t, cwd=f"{d}/node_modules/{C.NPM_PACKAGES[2]}"
            )
            ctx.write(
                kid, t + ctx.ms(100, 400), f"{d}/node_modules/{C.NPM_PACKAGES[2]}/bin/native.node"
            )
        ctx.write(node, t + US, f"{d}/package-lock.json", op="modify")
    else:
        cargo = ctx.spawn(
            sh, "cargo", "cargo build --release", t, cwd=d, image=ctx.image("cargo", sh.user)
        )
        t = _lookup(ctx, cargo, t + ctx.ms(100, 400), C.CRATES)
        rustc = ctx.image("rustc", sh.user)
        for crate in rng.sample(C.CRATE_NAMES, 2 + int(rng.random() * 3)):
            r = ctx.spawn(
                cargo,
                "rustc",
                f"{rustc} --crate-name {crate.replace('-', '_')} --edition=2021 --crate-type lib -C opt-level=3",
                t,
                image=rustc,
            )
            t += ctx.secs(1, 5)
            ctx.write(
                r, t, f"{d}/target/release/deps/lib{crate.replace('-', '_')}-{_hex(ctx, 64)}.rlib"
            )


def linux_dev_git(ctx: Ctx, t: int) -> None:
    rng = ctx.rng
    sh = _login_shell(ctx, t, ctx.host.users[0])
    proj = C.LINUX_PROJECTS[ctx.host.idx % len(C.LINUX_PROJECTS)]
    d = f"{_lhome(ctx, sh.user)}/src/{proj}"
    t += ctx.secs(2, 8)
    g = ctx.spawn(sh, "git", "git pull --rebase", t, cwd=d)
    forge = C.GIT_INTERNAL if rng.random() < 0.7 else C.GIT_FORGE_PUBLIC
    rem = ctx.spawn(
        g,
        "git_remote_https",
        f"/usr/lib/git-core/git-remote-https origin https://{forge}/team/{proj}.git",
        t + ctx.ms(20, 80),
    )
    t = _lookup(ctx, rem, t + ctx.ms(50, 150), forge)
    pack = _hex(ctx, 160)
    for f in (
        f".git/objects/pack/pack-{pack}.pack",
        f".git/objects/pack/pack-{pack}.idx",
        ".git/FETCH_HEAD",
        ".git/ORIG_HEAD",
    ):
        ctx.write(g, t, f"{d}/{f}")
        t += ctx.ms(2, 40)
    for f in rng.sample(
        (
            "src/main.py",
            "src/handlers.go",
            "web/app.ts",
            "README.md",
            "package.json",
            "requirements.txt",
            "go.mod",
            "docs/api.md",
        ),
        3,
    ):
        ctx.write(g, t, f"{d}/{f}", op="modify")
    if rng.random() < 0.5:
        v = ctx.spawn(sh, "vim", "vim src/main.py", t + ctx.secs(3, 20), cwd=d)
        ctx.write(v, v.start + US, f"{d}/src/.main.py.swp")
        ctx.write(v, v.start + ctx.secs(20, 200), f"{d}/src/main.py", op="modify")
        ctx.delete(v, v.start + ctx.secs(201, 210), f"{d}/src/.main.py.swp")


def linux_ci_job(ctx: Ctx, t: int) -> None:
    """A CI job on a shell executor: clone, build/test with Go, then build an image via make."""
    rng, ll = ctx.rng, ctx.host.long_lived
    proj = rng.choice(C.LINUX_PROJECTS)
    d = f"/home/gitlab-runner/builds/x{_hex(ctx, 32)[:7]}/0/team/{proj}"
    ctx.net(ll["gitlab_runner"], t, _ep(f"gitlab.{C.DOMAIN}"))  # the runner picks up the job
    job = ctx.spawn(
        ll["gitlab_runner"],
        "bash",
        "bash --login",
        t + ctx.ms(50, 200),
        user=ctx.host.users[0],
        cwd=d,
    )
    t += US
    g = ctx.spawn(
        job,
        "git",
        "git fetch origin +refs/heads/main:refs/remotes/origin/main --depth 20 --prune --quiet",
        t,
    )
    rem = ctx.spawn(
        g,
        "git_remote_https",
        f"/usr/lib/git-core/git-remote-https origin https://{C.GIT_INTERNAL}/team/{proj}.git",
        t + ctx.ms(10, 40),
    )
    t = _lookup(ctx, rem, t + ctx.ms(40, 100), C.GIT_INTERNAL)
    ctx.write(g, t, f"{d}/.git/FETCH_HEAD")
    t += ctx.secs(1, 4)
    go = ctx.spawn(job, "go", "go build ./...", t, cwd=d)
    t = _lookup(ctx, go, t + ctx.ms(50, 300), C.GO_PROXY)
    for pkg in ("internal/api", "internal/store", "cmd/server")[: 1 + int(rng.random() * 3)]:
        c = ctx.spawn(
            go,
            "go_compile",
            f'/usr/local/go/pkg/tool/linux_amd64/compile -o $WORK/b0{int(rng.random() * 90) + 10}/_pkg_.a -trimpath "$WORK/b001=>" -p {proj}/{pkg} -lang=go1.22 -complete -buildid {_hex(ctx, 64)} -goversion go1.22.0 -c=4 -nolocalimports -importcfg $WORK/b001/importcfg -pack',
            t,
        )
        ctx.write(
            c,
            t + ctx.ms(100, 900),
            f"/home/gitlab-runner/.cache/go-build/{_hex(ctx, 8)}/{_hex(ctx, 256)}-d",
        )
        t += ctx.secs(1, 3)
    ln = ctx.spawn(
        go,
        "go_link",
        f"/usr/local/go/pkg/tool/linux_amd64/link -o $WORK/b001/exe/a.out -importcfg $WORK/b001/importcfg.link -buildmode=exe -buildid={_hex(ctx, 64)} -extld=gcc $WORK/b001/_pkg_.a",
        t,
    )
    ctx.write(ln, t + ctx.ms(200, 900), f"{d}/server")
    t += ctx.secs(2, 6)
    mk = ctx.spawn(job, "make", "make docker", t, cwd=d)
    t = _docker_build(
        ctx,
        mk,
        t + ctx.ms(20, 80),
        d,
        f"{C.ARTIFACTS_INTERNAL}/team/{proj}:{_hex(ctx, 32)[:8]}",
        no_cache=rng.random() < 0.5,
    )
    ctx.net(
        ll["dockerd"],
        t,
        Endpoint(C.resolve(C.ARTIFACTS_INTERNAL), 443, "tcp", C.ARTIFACTS_INTERNAL),
    )


def linux_ci_direct_build(ctx: Ctx, t: int) -> None:
    """Runner starting `docker build --no-cache` itself: one risk point, under threshold."""
    ll = ctx.host.long_lived
    proj = ctx.rng.choice(C.LINUX_PROJECTS)
    d = f"/home/gitlab-runner/builds/x{_hex(ctx, 32)[:7]}/0/team/{proj}"
    _docker_build(ctx, ll["gitlab_runner"], t, d, f"{proj}:ci", no_cache=True)


def linux_cron(ctx: Ctx, t: int) -> None:
    rng, ll = ctx.rng, ctx.host.long_lived
    c = ctx.spawn(ll["cron"], "cron", "/usr/sbin/CRON -f -P", t)
    pick = rng.random()
    if pick < 0.4:
        sh = ctx.spawn(
            c, "sh", "/bin/sh -c /usr/local/bin/backup.sh", t + ctx.ms(5, 20), image="/usr/bin/dash"
        )
        tar = ctx.spawn(
            sh,
            "tar",
            f"tar czf /var/backups/etc-{rng.getrandbits(20)}.tar.gz /etc",
            t + ctx.ms(30, 80),
        )
        ctx.write(tar, t + ctx.secs(1, 10), f"/var/backups/etc-{rng.getrandbits(20)}.tar.gz")
    elif pick < 0.7:
        sh = ctx.spawn(
            c,
            "sh",
            "/bin/sh -c test -x /usr/sbin/logrotate && /usr/sbin/logrotate /etc/logrotate.conf",
            t + ctx.ms(5, 20),
            image="/usr/bin/dash",
        )
        lr = ctx.spawn(
            sh, "logrotate", "/usr/sbin/logrotate /etc/logrotate.conf", t + ctx.ms(20, 60)
        )
        for f in ("syslog", "auth.log", "kern.log"):
            ctx.write(
                lr, t + ctx.ms(100, 900), f"/var/log/{f}.1", op="rename", prev=f"/var/log/{f}"
            )
            ctx.write(lr, t + ctx.ms(901, 1500), f"/var/log/{f}")
    else:
        sh = ctx.spawn(
            c,
            "sh",
            "/bin/sh -c python3 /opt/scripts/report.py",
            t + ctx.ms(5, 20),
            image="/usr/bin/dash",
        )
        py = ctx.spawn(sh, "python3", "python3 /opt/scripts/report.py", t + ctx.ms(20, 60))
        ctx.net(
            py,
            t + US,
            Endpoint(C.resolve(f"metrics.{C.DOMAIN}"), 9090, "tcp", f"metrics.{C.DOMAIN}"),
        )
        ctx.write(py, t + 2 * US, f"/var/lib/report/report-{rng.getrandbits(16)}.json")


def linux_server_work(ctx: Ctx, t: int) -> None:
    rng, ll = ctx.rng, ctx.host.long_lived
    ng, pg = ll["nginx"], ll["postgres"]
    for _ in range(4 + int(rng.random() * 14)):
        ctx.net(ng, t, Endpoint(public_client(ctx), 443, "tcp", ""), initiated=False)
        if rng.random() < 0.5:
            ctx.net(
                pg,
                t + ctx.ms(1, 20),
                Endpoint(f"10.26.0.{10 + int(rng.random() * 50)}", 5432, "tcp", ""),
                initiated=False,
            )
        t += ctx.ms(20, 3000)
    ctx.write(ng, t, "/var/log/nginx/access.log", op="modify")
    ctx.write(
        pg,
        t + ctx.ms(1, 500),
        f"/var/lib/postgresql/16/main/pg_wal/0000000100000{_hex(ctx, 32)[:3].upper()}000000{_hex(ctx, 8).upper()}",
        op="modify",
    )


def public_client(ctx: Ctx) -> str:
    from bench.gen_core import public_ip

    return public_ip(ctx.rng)


# ==== singles ===============================================================================


def win_single(ctx: Ctx, t: int) -> None:
    rng, h = ctx.rng, ctx.host
    p = h.services[int(rng.random() * len(h.services))]
    n = p.name
    r = rng.random()
    if n == "svchost.exe":
        name = rng.choice(C.WINDOWS_UPDATE) if r < 0.6 else C.DC_HOST
        if r < 0.2:
            ctx.write(
                p,
                t,
                f"C:\\Windows\\System32\\LogFiles\\WMI\\RtBackup\\EtwRT.{rng.choice(('DiagLog', 'EventLog-System', 'Wifi'))}.{_hex(ctx, 32)[:8]}.etl",
            )
        elif r < 0.35:
            ctx.dns(p, t, name, C.resolve(name))
        else:
            ctx.net(p, t, _ep(name, 443 if r < 0.6 else rng.choice((88, 389, 445, 135))))
    elif n == "MsMpEng.exe":
        if r < 0.7:
            ctx.write(
                p,
                t,
                f"C:\\ProgramData\\Microsoft\\Windows Defender\\Scans\\History\\CacheManager\\{_hex(ctx, 64).upper()}-0.bin",
            )
        else:
            ctx.net(p, t, _ep("wdcp.av.example"))
    elif n == "SearchIndexer.exe":
        ctx.write(
            p,
            t,
            f"C:\\ProgramData\\Microsoft\\Search\\Data\\Applications\\Windows\\GatherLogs\\SystemIndex\\SystemIndex.{rng.getrandbits(8)}.Crwl",
        )
    elif n == "EXPLORER.EXE" or n == "explorer.exe":
        ctx.write(
            p,
            t,
            f"{_home(ctx)}\\AppData\\Roaming\\Microsoft\\Windows\\Recent\\{rng.choice(('notes', 'report', 'scan', 'invoice'))}{rng.getrandbits(8)}.lnk",
        )
    elif n in ("OneDrive.exe", "ms-teams.exe", "OUTLOOK.EXE"):
        host = C.OFFICE_HOSTS[int(r * 100) % len(C.OFFICE_HOSTS)]
        if r < 0.3:
            ctx.write(
                p,
                t,
                f"{_home(ctx)}\\AppData\\Local\\Microsoft\\{n.split('.')[0]}\\logs\\{_hex(ctx, 32)[:12]}.odl",
            )
        elif r < 0.45:
            ctx.dns(p, t, host, C.resolve(host))
        else:
            ctx.net(p, t, _ep(host))
    elif n == "Code.exe":
        if r < 0.6:
            ctx.write(
                p,
                t,
                f"{_home(ctx)}\\AppData\\Roaming\\Code\\User\\workspaceStorage\\{_hex(ctx, 128)}\\state.vscdb-journal",
            )
        else:
            ctx.net(p, t, _ep("marketplace.editor.example"))
    elif n == "Agent.Listener.exe":
        ctx.net(p, t, _ep("pipelines.devops.example"))
    elif n == "sqlservr.exe":
        ctx.write(p, t, "D:\\MSSQL\\DATA\\Sales_log.ldf", op="modify")
    else:  # w3wp
        ctx.net(p, t, Endpoint(f"10.20.0.{10 + int(r * 200)}", 443, "tcp", "-"), initiated=False)


def linux_single(ctx: Ctx, t: int) -> None:
    rng, h = ctx.rng, ctx.host
    p = h.services[int(rng.random() * len(h.services))]
    n = p.name
    r = rng.random()
    if n == "systemd-journald":
        ctx.write(p, t, f"/var/log/journal/{h.device_id[:32]}/system.journal", op="modify")
    elif n == "rsyslogd":
        ctx.write(p, t, "/var/log/syslog" if r < 0.7 else "/var/log/auth.log", op="modify")
    elif n == "wdavdaemon":
        if r < 0.7:
            ctx.net(p, t, _ep(C.EDR_CLOUD))
        else:
            ctx.write(p, t, f"/var/opt/microsoft/mdatp/cache/{_hex(ctx, 64)}.bin")
    elif n == "chronyd":
        ctx.net(p, t, Endpoint(C.resolve(C.NTP_POOL), 123, "udp", C.NTP_POOL))
    elif n == "dockerd":
        if r < 0.5:
            ctx.net(p, t, _ep(C.DOCKER_REGISTRY))
        else:
            ctx.write(p, t, "/var/lib/docker/network/files/local-kv.db", op="modify")
    elif n == "containerd":
        ctx.write(p, t, "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db", op="modify")
    elif n == "sshd":
        ctx.net(
            p,
            t,
            Endpoint(f"10.{20 + int(r * 2)}.0.{10 + int(r * 200)}", 22, "tcp", ""),
            initiated=False,
        )
    elif n == "gitlab-runner":
        ctx.net(p, t, _ep(f"gitlab.{C.DOMAIN}"))
    elif n == "nginx":
        ctx.net(p, t, Endpoint(public_client(ctx), 443, "tcp", ""), initiated=False)
    else:  # postgres
        ctx.write(p, t, "/var/lib/postgresql/16/main/pg_stat_tmp/global.stat", op="modify")


# ---- session menus per role: (generator, weight, starts a build process?) -------------------
MENUS: dict[str, list[tuple[Session, float, bool]]] = {
    "win_workstation": [
        (win_browse, 5, False),
        (win_office, 4, False),
        (win_scheduled, 2, False),
        (win_admin_shell, 0.5, False),
        (win_update, 0.5, False),
    ],
    "win_dev": [
        (win_vs_build, 4, True),
        (win_dotnet_cli, 2.5, True),
        (win_npm, 1.5, False),
        (win_pip, 1, False),
        (win_cargo, 0.7, False),
        (win_git_pull, 1.5, False),
        (win_code_edit, 2, False),
        (win_browse, 3, False),
        (win_office, 1, False),
        (win_scheduled, 1, False),
    ],
    "win_build": [(win_build_job, 5, True), (win_scheduled, 1, False), (win_update, 0.3, False)],
    "win_server": [
        (win_server_work, 5, False),
        (win_scheduled, 1.5, False),
        (win_admin_shell, 1, False),
        (win_update, 0.5, False),
    ],
    "linux_dev": [
        (linux_dev_docker, 2, False),
        (linux_dev_pkg, 3, False),
        (linux_dev_git, 3, False),
        (linux_admin, 1, False),
        (linux_cron, 1, False),
        (linux_apt, 0.5, False),
    ],
    "linux_build": [
        (linux_ci_job, 5, False),
        (linux_ci_direct_build, 1, False),
        (linux_cron, 1, False),
        (linux_apt, 0.3, False),
    ],
    "linux_server": [
        (linux_server_work, 5, False),
        (linux_admin, 1.5, False),
        (linux_cron, 2, False),
        (linux_apt, 0.5, False),
    ],
}
