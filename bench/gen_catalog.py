"""Static vocabulary of the generator: executables, internal and internet names, allow lists.

Every DNS name is under a reserved suffix (.example, .test, .invalid); no real registry or
vendor host name appears anywhere. The allow lists below are the tunables the generated
data assumes; the manifest repeats them so rule authors can configure the same values.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from bench.gen_core import DOMAIN, public_ip_for


class WinImage(NamedTuple):
    path: str  # may contain {user}
    version: str
    description: str
    product: str
    company: str
    original: str


_MS = "Microsoft Corporation"
_WINOS = "Microsoft\u00ae Windows\u00ae Operating System"
_OSV = "10.0.19041.3636 (WinBuild.160101.0800)"
_VS = r"C:\Program Files\Microsoft Visual Studio\2022\Professional"
_BUILD_TOOLS = "Microsoft\u00ae Build Tools\u00ae"


def _w(
    path: str,
    desc: str,
    original: str,
    product: str = _WINOS,
    company: str = _MS,
    version: str = _OSV,
) -> WinImage:
    return WinImage(path, version, desc, product, company, original)


WIN: dict[str, WinImage] = {
    "services": _w(
        r"C:\Windows\System32\services.exe", "Services and Controller app", "services.exe"
    ),
    "svchost": _w(
        r"C:\Windows\System32\svchost.exe", "Host Process for Windows Services", "svchost.exe"
    ),
    "lsass": _w(r"C:\Windows\System32\lsass.exe", "Local Security Authority Process", "lsass.exe"),
    "winlogon": _w(
        r"C:\Windows\System32\winlogon.exe", "Windows Logon Application", "winlogon.exe"
    ),
    "userinit": _w(
        r"C:\Windows\System32\userinit.exe", "Userinit Logon Application", "USERINIT.EXE"
    ),
    "explorer": _w(r"C:\Windows\explorer.exe", "Windows Explorer", "EXPLORER.EXE"),
    "msmpeng": _w(
        r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24010.12-0\MsMpEng.exe",
        "Antimalware Service Executable",
        "MsMpEng.exe",
        version="4.18.24010.12",
    ),
    "mpcmdrun": _w(
        r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24010.12-0\MpCmdRun.exe",
        "Microsoft Malware Protection Command Line Utility",
        "MpCmdRun.exe",
        version="4.18.24010.12",
    ),
    "taskhostw": _w(
        r"C:\Windows\System32\taskhostw.exe", "Host Process for Windows Tasks", "taskhostw.exe"
    ),
    "conhost": _w(r"C:\Windows\System32\conhost.exe", "Console Window Host", "CONHOST.EXE"),
    "wmiprvse": _w(r"C:\Windows\System32\wbem\WmiPrvSE.exe", "WMI Provider Host", "Wmiprvse.exe"),
    "searchindexer": _w(
        r"C:\Windows\System32\SearchIndexer.exe",
        "Microsoft Windows Search Indexer",
        "SearchIndexer.exe",
    ),
    "searchprotocolhost": _w(
        r"C:\Windows\System32\SearchProtocolHost.exe",
        "Microsoft Windows Search Protocol Host",
        "SearchProtocolHost.exe",
    ),
    "runtimebroker": _w(
        r"C:\Windows\System32\RuntimeBroker.exe", "Runtime Broker", "RuntimeBroker.exe"
    ),
    "compattelrunner": _w(
        r"C:\Windows\System32\CompatTelRunner.exe",
        "Microsoft Compatibility Telemetry",
        "CompatTelRunner.exe",
    ),
    "backgroundtaskhost": _w(
        r"C:\Windows\System32\backgroundTaskHost.exe",
        "Background Task Host",
        "backgroundTaskHost.exe",
    ),
    "dllhost": _w(r"C:\Windows\System32\dllhost.exe", "COM Surrogate", "dllhost.exe"),
    "spoolsv": _w(r"C:\Windows\System32\spoolsv.exe", "Spooler SubSystem App", "spoolsv.exe"),
    "tiworker": _w(
        r"C:\Windows\WinSxS\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_10.0.19041.3684_none_7e0e2bbc7b3f1c73\TiWorker.exe",
        "Windows Modules Installer Worker",
        "TiWorker.exe",
    ),
    "msedge": _w(
        r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
        "Microsoft Edge",
        "msedge.exe",
        product="Microsoft Edge",
        version="121.0.2277.83",
    ),
    "winword": _w(
        r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE",
        "Microsoft Word",
        "WinWord.exe",
        product="Microsoft Office",
        version="16.0.17126.20132",
    ),
    "excel": _w(
        r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE",
        "Microsoft Excel",
        "Excel.exe",
        product="Microsoft Office",
        version="16.0.17126.20132",
    ),
    "outlook": _w(
        r"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE",
        "Microsoft Outlook",
        "Outlook.exe",
        product="Microsoft Office",
        version="16.0.17126.20132",
    ),
    "onedrive": _w(
        r"C:\Users\{user}\AppData\Local\Microsoft\OneDrive\OneDrive.exe",
        "Microsoft OneDrive",
        "OneDrive.exe",
        product="Microsoft OneDrive",
        version="24.010.0114.0003",
    ),
    "teams": _w(
        r"C:\Program Files\WindowsApps\MSTeams_24004.1307.2669.7070_x64__8wekyb3d8bbwe\ms-teams.exe",
        "Microsoft Teams",
        "ms-teams.exe",
        product="Microsoft Teams",
        version="24004.1307.2669.7070",
    ),
    "notepad": _w(r"C:\Windows\System32\notepad.exe", "Notepad", "NOTEPAD.EXE"),
    "cmd": _w(r"C:\Windows\System32\cmd.exe", "Windows Command Processor", "Cmd.Exe"),
    "powershell": _w(
        r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
        "Windows PowerShell",
        "PowerShell.EXE",
    ),
    "pwsh": _w(
        r"C:\Program Files\PowerShell\7\pwsh.exe",
        "pwsh",
        "pwsh.dll",
        product="PowerShell",
        version="7.4.1.500",
    ),
    "powershell_ise": _w(
        r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell_ise.exe",
        "Windows PowerShell ISE",
        "powershell_ise.EXE",
    ),
    "wscript": _w(
        r"C:\Windows\System32\wscript.exe",
        "Microsoft \u00ae Windows Based Script Host",
        "wscript.exe",
    ),
    "cscript": _w(
        r"C:\Windows\System32\cscript.exe",
        "Microsoft \u00ae Console Based Script Host",
        "cscript.exe",
    ),
    "mshta": _w(
        r"C:\Windows\System32\mshta.exe",
        "Microsoft (R) HTML Application host",
        "MSHTA.EXE",
        product="Internet Explorer",
        version="11.00.19041.3636",
    ),
    "whoami": _w(
        r"C:\Windows\System32\whoami.exe",
        "whoami - displays logged on user information",
        "whoami.exe",
    ),
    "ipconfig": _w(r"C:\Windows\System32\ipconfig.exe", "IP Configuration Utility", "ipconfig.exe"),
    "net": _w(r"C:\Windows\System32\net.exe", "Net Command", "net.exe"),
    "tasklist": _w(
        r"C:\Windows\System32\tasklist.exe", "Lists the current running tasks", "tasklist.exe"
    ),
    "curl": _w(
        r"C:\Windows\System32\curl.exe",
        "The curl executable",
        "curl.exe",
        product="The curl executable",
        company="curl, https://curl.se/",
        version="8.4.0",
    ),
    "terminal": _w(
        r"C:\Program Files\WindowsApps\Microsoft.WindowsTerminal_1.18.10301.0_x64__8wekyb3d8bbwe\WindowsTerminal.exe",
        "Windows Terminal",
        "WindowsTerminal.exe",
        product="Windows Terminal",
        version="1.18.2401.26001",
    ),
    "devenv": _w(
        _VS + r"\Common7\IDE\devenv.exe",
        "Microsoft Visual Studio 2022",
        "devenv.exe",
        product="Microsoft\u00ae Visual Studio\u00ae",
        version="17.8.34525.116",
    ),
    "msbuild": _w(
        _VS + r"\MSBuild\Current\Bin\amd64\MSBuild.exe",
        "MSBuild.exe",
        "MSBuild.exe",
        product=_BUILD_TOOLS,
        version="17.8.5.5502",
    ),
    "msbuild_fw": _w(
        r"C:\Windows\Microsoft.NET\Framework64\v4.0.30319\MSBuild.exe",
        "MSBuild.exe",
        "MSBuild.exe",
        product="Microsoft\u00ae .NET Framework",
        version="4.8.4084.0",
    ),
    "vbcscompiler": _w(
        _VS + r"\MSBuild\Current\Bin\Roslyn\VBCSCompiler.exe",
        "VBCSCompiler",
        "VBCSCompiler.dll",
        product='Microsoft .NET Compiler Platform ("Roslyn")',
        version="4.8.0-7.23572.1",
    ),
    "csc": _w(
        _VS + r"\MSBuild\Current\Bin\Roslyn\csc.exe",
        "csc",
        "csc.dll",
        product='Microsoft .NET Compiler Platform ("Roslyn")',
        version="4.8.0-7.23572.1",
    ),
    "tracker": _w(
        _VS + r"\MSBuild\Current\Bin\amd64\Tracker.exe",
        "Tracker.exe",
        "Tracker.exe",
        product=_BUILD_TOOLS,
        version="17.8.5.5502",
    ),
    "cl": _w(
        _VS + r"\VC\Tools\MSVC\14.38.33130\bin\HostX64\x64\CL.exe",
        "Microsoft\u00ae C/C++ Compiler Driver for x64",
        "CL.exe",
        product="Microsoft\u00ae Visual Studio\u00ae",
        version="14.38.33134.0",
    ),
    "link": _w(
        _VS + r"\VC\Tools\MSVC\14.38.33130\bin\HostX64\x64\link.exe",
        "Microsoft\u00ae Incremental Linker",
        "LINK.EXE",
        product="Microsoft\u00ae Visual Studio\u00ae",
        version="14.38.33134.0",
    ),
    "vctip": _w(
        _VS + r"\VC\Tools\MSVC\14.38.33130\bin\HostX64\x64\VCTIP.EXE",
        "Microsoft Visual C++ Tooling Telemetry",
        "VCTIP.EXE",
        product="Microsoft\u00ae Visual Studio\u00ae",
        version="14.38.33134.0",
    ),
    "dotnet": _w(
        r"C:\Program Files\dotnet\dotnet.exe",
        ".NET Host",
        ".NET Host",
        product="Microsoft\u00ae .NET",
        version="8.0.124.5707",
    ),
    "testhost": _w(
        r"C:\agent\_work\1\s\tests\bin\Release\net8.0\testhost.exe",
        ".NET Test Host",
        "testhost.dll",
        product="Microsoft\u00ae .NET",
        version="17.8.0",
    ),
    "node": _w(
        r"C:\Program Files\nodejs\node.exe",
        "Node.js JavaScript Runtime",
        "node.exe",
        product="Node.js",
        company="Node.js",
        version="20.11.0",
    ),
    "python": _w(
        r"C:\Program Files\Python312\python.exe",
        "Python",
        "python.exe",
        product="Python",
        company="Python Software Foundation",
        version="3.12.1",
    ),
    "git": _w(
        r"C:\Program Files\Git\cmd\git.exe",
        "Git for Windows",
        "git.exe",
        product="Git",
        company="The Git Development Community",
        version="2.43.0.1",
    ),
    "git_core": _w(
        r"C:\Program Files\Git\mingw64\bin\git.exe",
        "Git for Windows",
        "git.exe",
        product="Git",
        company="The Git Development Community",
        version="2.43.0.1",
    ),
    "git_remote_https": _w(
        r"C:\Program Files\Git\mingw64\libexec\git-core\git-remote-https.exe",
        "Git for Windows",
        "git-remote-https.exe",
        product="Git",
        company="The Git Development Community",
        version="2.43.0.1",
    ),
    "cargo": _w(
        r"C:\Users\{user}\.cargo\bin\cargo.exe", "-", "-", product="-", company="-", version="-"
    ),
    "rustc": _w(
        r"C:\Users\{user}\.rustup\toolchains\stable-x86_64-pc-windows-msvc\bin\rustc.exe",
        "-",
        "-",
        product="-",
        company="-",
        version="-",
    ),
    "code": _w(
        r"C:\Users\{user}\AppData\Local\Programs\Microsoft VS Code\Code.exe",
        "Visual Studio Code",
        "electron.exe",
        product="Visual Studio Code",
        version="1.86.0",
    ),
    "agent_listener": _w(
        r"C:\agent\bin\Agent.Listener.exe",
        "Agent.Listener",
        "Agent.Listener.dll",
        product="Agent.Listener",
        company="Agent.Listener",
        version="3.236.1",
    ),
    "agent_worker": _w(
        r"C:\agent\bin\Agent.Worker.exe",
        "Agent.Worker",
        "Agent.Worker.dll",
        product="Agent.Worker",
        company="Agent.Worker",
        version="3.236.1",
    ),
    "sqlservr": _w(
        r"C:\Program Files\Microsoft SQL Server\MSSQL16.MSSQLSERVER\MSSQL\Binn\sqlservr.exe",
        "SQL Server Windows NT - 64 Bit",
        "sqlservr.exe",
        product="Microsoft SQL Server",
        version="2022.0160.4105.02",
    ),
    "w3wp": _w(
        r"C:\Windows\System32\inetsrv\w3wp.exe",
        "IIS Worker Process",
        "w3wp.exe",
        product="Internet Information Services",
    ),
    "msbuild_renamed": _w(
        r"C:\Users\{user}\AppData\Local\Temp\tmpbuild.exe",
        "MSBuild.exe",
        "MSBuild.exe",
        product="Microsoft\u00ae .NET Framework",
        version="4.8.4084.0",
    ),
    "runner": _w(
        r"C:\Users\{user}\AppData\Local\Temp\runner.exe",
        "-",
        "-",
        product="-",
        company="-",
        version="-",
    ),
    "dropper": _w(
        r"C:\Users\{user}\AppData\Local\Temp\msupd\svcupd.exe",
        "-",
        "-",
        product="-",
        company="-",
        version="-",
    ),
}

# Linux executables: name -> full path. MDE shows FileName (basename) and FolderPath.
LINUX: dict[str, str] = {
    "systemd": "/usr/lib/systemd/systemd",
    "sshd": "/usr/sbin/sshd",
    "bash": "/usr/bin/bash",
    "sh": "/usr/bin/dash",
    "sudo": "/usr/bin/sudo",
    "cron": "/usr/sbin/cron",
    "dockerd": "/usr/bin/dockerd",
    "containerd": "/usr/bin/containerd",
    "shim": "/usr/bin/containerd-shim-runc-v2",
    "runc": "/usr/bin/runc",
    "docker": "/usr/bin/docker",
    "apt": "/usr/bin/apt-get",
    "apt_http": "/usr/lib/apt/methods/http",
    "dpkg": "/usr/bin/dpkg",
    "python3": "/usr/bin/python3",
    "node": "/usr/bin/node",
    "git": "/usr/bin/git",
    "git_remote_https": "/usr/lib/git-core/git-remote-https",
    "cargo": "/home/{user}/.cargo/bin/cargo",
    "rustc": "/home/{user}/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/rustc",
    "go": "/usr/local/go/bin/go",
    "go_compile": "/usr/local/go/pkg/tool/linux_amd64/compile",
    "go_link": "/usr/local/go/pkg/tool/linux_amd64/link",
    "make": "/usr/bin/make",
    "gcc": "/usr/bin/x86_64-linux-gnu-gcc-12",
    "cc1": "/usr/libexec/gcc/x86_64-linux-gnu/12/cc1",
    "gitlab_runner": "/usr/bin/gitlab-runner",
    "java": "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
    "curl": "/usr/bin/curl",
    "wget": "/usr/bin/wget",
    "tar": "/usr/bin/tar",
    "gzip": "/usr/bin/gzip",
    "journald": "/usr/lib/systemd/systemd-journald",
    "rsyslogd": "/usr/sbin/rsyslogd",
    "wdavdaemon": "/opt/microsoft/mdatp/sbin/wdavdaemon",
    "chronyd": "/usr/sbin/chronyd",
    "logrotate": "/usr/sbin/logrotate",
    "systemctl": "/usr/bin/systemctl",
    "ldconfig": "/usr/sbin/ldconfig",
    "ls": "/usr/bin/ls",
    "cat": "/usr/bin/cat",
    "vim": "/usr/bin/vim.basic",
    "journalctl": "/usr/bin/journalctl",
    "ps": "/usr/bin/ps",
    "nginx": "/usr/sbin/nginx",
    "postgres": "/usr/lib/postgresql/16/bin/postgres",
}


_HASH_CACHE: dict[str, str] = {}


def sysmon_hashes(path: str) -> str:
    """Stable fake hashes for an image path, in Sysmon's 'SHA1=..,MD5=..,SHA256=..,IMPHASH=..'."""
    h = _HASH_CACHE.get(path)
    if h is None:
        b = path.lower().encode()
        h = (
            f"SHA1={hashlib.sha1(b).hexdigest().upper()},"
            f"MD5={hashlib.md5(b).hexdigest().upper()},"
            f"SHA256={hashlib.sha256(b).hexdigest().upper()},"
            f"IMPHASH={hashlib.md5(b + b'imp').hexdigest().upper()}"
        )
        _HASH_CACHE[path] = h
    return h


# ---- names on the network ----------------------------------------------------------------
# Package registries (the seeds' KQL allow list, mapped onto reserved names). Matching is
# by DNS suffix: a host is allow-listed if it equals an entry or ends with "." + entry.
PACKAGE_REGISTRIES = (
    "registry.example",  # npm
    "pkg.test",  # Python packages (index and files.pkg.test)
    "gems.example",
    "crates.example",
    "nuget.example",
    "go.pkg.test",  # Go packages and module proxy
    "yarn.example",
)
NPM_REGISTRY = "registry.example"
PY_INDEX = "pkg.test"
PY_FILES = "files.pkg.test"
CRATES = "index.crates.example"
CRATES_DL = "static.crates.example"
NUGET = "api.nuget.example"
GO_PROXY = "proxy.go.pkg.test"

# Container registries dockerd may reach (T1612 seed's allow list, mapped likewise).
CONTAINER_REGISTRIES = ("containers.example",)
DOCKER_REGISTRY = "registry-1.containers.example"
DOCKER_AUTH = "auth.containers.example"
DOCKER_CDN = "cdn.containers.example"

# Ordinary internet destinations for background traffic (all reserved names).
WEB_SITES = (
    "www.news.example",
    "cdn.static.example",
    "login.identity.example",
    "mail.saas.example",
    "api.weather.example",
    "docs.vendor.example",
    "images.cdn.example",
    "www.search.example",
    "video.stream.example",
    "fonts.static.example",
    "telemetry.browser.example",
    "www.wiki.example",
    "portal.hr.example",
    "chat.saas.example",
)
OFFICE_HOSTS = (
    "officecdn.saas.example",
    "outlook.saas.example",
    "teams.saas.example",
    "sharepoint.saas.example",
    "onedrive.saas.example",
)
WINDOWS_UPDATE = (
    "update.os.example",
    "download.update.os.example",
    "settings.os.example",
    "wdcp.av.example",
    "definitionupdates.av.example",
)
LINUX_MIRRORS = ("deb.mirror.example", "security.mirror.example")
EDR_CLOUD = "edr.security.example"
NTP_POOL = "ntp.pool.example"
GIT_FORGE_PUBLIC = "code.forge.example"
GIT_INTERNAL = f"git.{DOMAIN}"
ARTIFACTS_INTERNAL = f"artifacts.{DOMAIN}"
DC_HOST = f"dc01.{DOMAIN}"
FILE_SERVER = f"files.{DOMAIN}"

# Addresses of internal services (RFC 1918).
INTERNAL_IPS = {
    DC_HOST: "10.0.0.10",
    FILE_SERVER: "10.0.0.20",
    GIT_INTERNAL: "10.0.1.15",
    ARTIFACTS_INTERNAL: "10.0.1.16",
    f"metrics.{DOMAIN}": "10.0.2.30",
    f"proxy.{DOMAIN}": "10.0.0.5",
    f"gitlab.{DOMAIN}": "10.0.1.14",
}


def resolve(name: str) -> str:
    """The address a name resolves to; stable for the whole data set."""
    return INTERNAL_IPS.get(name) or public_ip_for(name)


def allow_listed(host: str, suffixes: tuple[str, ...]) -> bool:
    return any(host == s or host.endswith("." + s) for s in suffixes)


# ---- people ------------------------------------------------------------------------------
FIRST = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "nia",
    "oscar",
    "peggy",
    "quinn",
    "rupert",
    "sybil",
    "trent",
    "uma",
    "victor",
    "wendy",
    "xavier",
    "yara",
    "zoe",
)
LAST = (
    "nguyen",
    "smith",
    "garcia",
    "mueller",
    "rossi",
    "kowalski",
    "silva",
    "tanaka",
    "okafor",
    "larsen",
    "dubois",
    "novak",
    "haddad",
    "kim",
    "patel",
    "moreau",
)

# Projects on developer machines (Windows: C# / C++; Linux: services built into images).
WIN_PROJECTS = (
    "Contoso.Billing",
    "Inventory.Api",
    "Fabrikam.Portal",
    "Telemetry.Agent",
    "Orders.Service",
    "ImageTools",
    "LegacyBridge",
    "Reporting.Core",
)
LINUX_PROJECTS = (
    "orders-api",
    "ingest-worker",
    "web-frontend",
    "auth-service",
    "etl-jobs",
    "metrics-gateway",
    "search-indexer",
    "notification-hub",
)
NPM_PACKAGES = (
    "left-pad-ng",
    "color-util",
    "fast-json-diff",
    "tiny-router",
    "date-kit",
    "http-retry",
    "yaml-lite",
    "ui-buttons",
    "chart-mini",
    "env-loader",
)
PY_PACKAGES = (
    "requests-lite",
    "fastcsv",
    "yamlkit",
    "httpx-mini",
    "numtools",
    "dataframe-lite",
    "retrying2",
    "jinja-lite",
    "clickish",
    "pytzdata",
)
CRATE_NAMES = ("serde-lite", "tokio-mini", "regex-lite", "anyhow2", "clap-mini", "rand-core2")
