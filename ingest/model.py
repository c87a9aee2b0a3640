"""The one normalised event model every source parser produces.

`ingest` knows formats and nothing of Neo4j: parsers turn raw records into
`Event`s, `graph` turns `Event`s into nodes and edges. Keep this module free of
I/O so both sides (and the pandas reference in `queries/`) can share it.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Kind(enum.StrEnum):
    PROCESS_START = "process_start"
    PROCESS_END = "process_end"
    FILE_WRITE = "file_write"  # create, modify, rename, delete: see FileOp
    NETWORK_CONNECT = "network_connect"
    DNS_QUERY = "dns_query"
    # -- accounts, logons and Windows system changes (graph v2, part 2) --
    LOGON = "logon"  # Security 4624/4625, Defender DeviceLogonEvents, ECS authentication
    LOGOFF = "logoff"  # Security 4634/4647
    SPECIAL_LOGON = "special_logon"  # Security 4672: a logon given admin-equivalent rights
    EXPLICIT_CREDENTIALS = "explicit_credentials"  # Security 4648
    SHARE_ACCESS = "share_access"  # Security 5140/5145
    SERVICE_INSTALL = "service_install"  # Security 4697, System 7045
    TASK_CHANGE = "task_change"  # Security 4698/4699/4700/4701/4702
    SCRIPT_BLOCK = "script_block"  # PowerShell 4104
    # -- k1: what a process does to the system (see the k1 block below Event's base fields) --
    IMAGE_LOAD = "image_load"  # a process loaded a module (Sysmon 7, MDE, ECS library)
    DRIVER_LOAD = "driver_load"  # the kernel loaded a driver: no process (Sysmon 6)
    PROCESS_ACCESS = "process_access"  # a handle to another process (Sysmon 10)
    REMOTE_THREAD = "remote_thread"  # a thread started in another process (Sysmon 8)
    RAW_READ = "raw_read"  # a volume read around the file system (Sysmon 9)
    REGISTRY = "registry"  # a key or value created, deleted, set or renamed
    PIPE = "pipe"  # a named pipe created or connected to (Sysmon 17/18)
    WMI = "wmi"  # a WMI event filter, consumer or binding (Sysmon 19/20/21): no process
    CLIPBOARD = "clipboard"  # a process changed the clipboard (Sysmon 24)
    TAMPERING = "tampering"  # a process's image replaced or locked (Sysmon 25)


class FileOp(enum.StrEnum):
    CREATE = "create"
    MODIFY = "modify"
    RENAME = "rename"
    DELETE = "delete"
    # -- k1: file events besides writes, kept on WROTE's ops --
    TIME_CHANGE = "time_change"  # creation time changed (Sysmon 2: timestomping)
    STREAM = "stream"  # an alternate data stream created (Sysmon 15)
    BLOCKED_EXE = "blocked_exe"  # Sysmon 27: writing an executable was blocked
    BLOCKED_SHRED = "blocked_shred"  # Sysmon 28: shredding the file was blocked
    EXE_DETECTED = "exe_detected"  # Sysmon 29: an executable file was written


# The per-record classes (these three, and the framing, Windows and reader records) are plain
# slotted dataclasses, not frozen ones: a frozen dataclass's __init__ sets each field through
# object.__setattr__, which made building an Event 4.7x slower (1.73 µs against 0.37 µs) and
# cost about 18% of parsing time. Treat them as values all the same: nothing mutates them.
@dataclass(slots=True)
class Origin:
    """Where a record came from, so every node and edge can be traced to raw evidence."""

    source: str  # parser name, e.g. "sysmon", "security", "ecs", "mde", "auditd"
    path: str  # file path, "<stdin>" or "<http>"
    line: int  # 1-based line (NDJSON) or record number (EVTX, CSV row, array index)

    def ref(self) -> str:
        return f"{self.source}:{self.path}:{self.line}"


@dataclass(slots=True)
class ImageFacts:
    """What a source tells about a process's image file: PE version information, hashes and
    signature. Hashes are lower-case hex; values a source leaves out stay None."""

    original_file_name: str | None = None  # as logged, e.g. "MSBuild.exe"
    company: str | None = None
    product: str | None = None
    description: str | None = None
    file_version: str | None = None
    product_version: str | None = None
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    imphash: str | None = None
    signed: bool | None = None
    signer: str | None = None  # the signing certificate's subject
    signature_status: str | None = None  # as the source says: "Valid", "trusted", "Expired"…

    def present(self) -> dict[str, Any]:
        """The facts given, by name (None values left out)."""
        return {k: v for k in IMAGE_FACTS if (v := getattr(self, k)) is not None}


IMAGE_FACTS = tuple(ImageFacts.__dataclass_fields__)
HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "imphash": 32}


def normalise_hash(kind: str, value: str | None) -> str | None:
    """Lower-case hex of the expected length, else None (a hash is metadata: a malformed one
    is left out rather than losing the record). All zeros means "not computed" (Sysmon logs
    IMPHASH=000… for images without an import table, e.g. .NET assemblies)."""
    if not value:
        return None
    text = value.strip().lower()
    if len(text) != HASH_LENGTHS[kind] or text.strip("0123456789abcdef") or not text.strip("0"):
        return None
    return text


# Integrity levels in Sysmon's words (Sigma's IntegrityLevel values), from a mandatory label's SID
# (Security 4688 MandatoryLabel) or another source's spelling (Defender, Elastic: "high").
_INTEGRITY_WORDS = ("Untrusted", "Low", "Medium", "MediumPlus", "High", "System", "AppContainer")
_INTEGRITY_SIDS = {
    "s-1-16-0": "Untrusted",
    "s-1-16-4096": "Low",
    "s-1-16-8192": "Medium",
    "s-1-16-8448": "MediumPlus",
    "s-1-16-12288": "High",
    "s-1-16-16384": "System",
}
_INTEGRITY_BY_LOWER = {w.lower(): w for w in _INTEGRITY_WORDS} | _INTEGRITY_SIDS


def integrity_level(text: str | None) -> str | None:
    """`S-1-16-12288`, `Mandatory Label\\High Mandatory Level` (rendered 4688), `high` or
    `High` -> `High`; an unknown spelling is kept as logged."""
    if text is None or not text.strip() or text.strip() == "-":
        return None
    value = text.strip()
    key = value.lower().removeprefix("mandatory label\\").removesuffix(" mandatory level")
    return _INTEGRITY_BY_LOWER.get(key.replace(" ", ""), value)


@dataclass(slots=True)
class ProcessRef:
    """A process as one event sees it. `uid` is the stable identity (see `process_uid`)."""

    uid: str
    pid: int | None = None
    image: str | None = None  # full path as logged
    command_line: str | None = None
    user: str | None = None  # DOMAIN\\user or user name as logged
    start_time: datetime | None = None  # known for the actor of a process_start
    logon_id: str | None = None
    integrity_level: str | None = None  # Sysmon's word: Low, Medium, High, System…
    current_directory: str | None = None  # the working directory it started in, as logged
    image_facts: ImageFacts | None = None  # PE facts of `image`, when the source gives them
    user_sid: str | None = None  # the account's SID when the source gives it (graph v2, k2)

    @property
    def name(self) -> str | None:
        """Executable file name, as logged: lower-casing is left to callers (rules compare
        case-insensitively)."""
        if not self.image:
            return None
        return self.image.replace("\\", "/").rsplit("/", 1)[-1]


# -- k1: what a process does to the system -----------------------------------------------------
# One field on Event per family; each names its target in the source's own terms.
@dataclass(slots=True)
class ImageLoadFacts:
    """A module (Sysmon 7, MDE DeviceImageLoadEvents, ECS library) or a driver (Sysmon 6,
    MDE DriverLoad) loaded: the file and what the source says of it."""

    path: str
    facts: ImageFacts | None = None


@dataclass(slots=True)
class ProcessAccessFacts:
    """One process acting on another: a handle opened (Sysmon 10, MDE OpenProcessApiCall) or
    a thread started in it (Sysmon 8, MDE CreateRemoteThreadApiCall)."""

    target: ProcessRef
    granted_access: str | None = None  # normalised lower-case hex, e.g. "0x1fffff"
    call_trace: str | None = None  # as logged ("ntdll.dll+9c534|…"), capped by the writer
    start_address: str | None = None  # remote thread: where it started
    start_module: str | None = None
    start_function: str | None = None
    action: str | None = None  # the source's name for it when it has several (MDE ActionType)


class RegistryOp(enum.StrEnum):
    CREATE = "create"  # a key created
    DELETE = "delete"  # a key or value deleted
    SET_VALUE = "set_value"
    RENAME = "rename"
    CREATE_OR_DELETE = "create_or_delete"  # Sysmon 12 whose EventType the shipper dropped
    MODIFY = "modify"  # Security 4656/4663: a write right with no more said (ACL, owner)


@dataclass(slots=True)
class RegistryFacts:
    """A registry key or value touched. `path` is the target object (a key, or a key and a
    value name) with the hive spelt as Sysmon does (HKLM, HKU, HKCR), whatever the source."""

    path: str
    op: RegistryOp
    event_type: str | None = None  # as the source names it: CreateKey, SetValue, 4657, …
    details: str | None = None  # the value written (Sysmon Details, 4657 NewValue, …)
    new_name: str | None = None  # rename: the new path
    access_mask: str | None = None  # Security: normalised lower-case hex


@dataclass(slots=True)
class PipeFacts:
    name: str  # as logged, e.g. "\\wkssvc"
    created: bool  # True: created (the server end); False: connected to (a client)


class WmiKind(enum.StrEnum):
    FILTER = "filter"
    CONSUMER = "consumer"
    BINDING = "binding"


@dataclass(slots=True)
class WmiFacts:
    """A permanent WMI event subscription part (Sysmon 19/20/21). A binding names the
    filter and the consumer it links (`filter`, `consumer`: their names)."""

    kind: WmiKind
    operation: str | None = None  # Created, Deleted, Modified
    user: str | None = None
    name: str | None = None  # filter or consumer name
    namespace: str | None = None  # filter: the namespace the query runs in
    query: str | None = None  # filter: the WQL query
    consumer_type: str | None = None  # consumer: "Command Line", "Script", …
    destination: str | None = None  # consumer: the command line or script
    filter: str | None = None  # binding: the filter's name
    consumer: str | None = None  # binding: the consumer's name


@dataclass(slots=True)
class SystemFacts:
    """Sysmon 9, 24, 25 and the file events kept on WROTE: the few fields each adds.
    `hashes` are of the file the event names (Sysmon 15/23/26-29 `Hashes` / `Hash`)."""

    device: str | None = None  # raw read: the volume, e.g. \\Device\HarddiskVolume2
    tamper_type: str | None = None  # tampering: "Image is replaced", …
    clipboard_hashes: str | None = None
    hashes: ImageFacts | None = None
    # Sysmon 15: the stream's text as logged (a Zone.Identifier's ZoneId, ReferrerUrl, HostUrl:
    # where a downloaded file came from)
    contents: str | None = None


# Hive prefixes as Security (\REGISTRY\…), Defender (HKEY_…) and Elastic spell them, to the
# short form Sysmon logs, so one key is one node whichever source saw it.
_HIVES = (
    ("\\registry\\machine", "HKLM"),
    ("\\registry\\user", "HKU"),
    ("hkey_local_machine", "HKLM"),
    ("hkey_users", "HKU"),
    ("hkey_classes_root", "HKCR"),
    ("hkey_current_config", "HKCC"),
    ("hkey_current_user", "HKCU"),
)


def normalise_registry_path(path: str) -> str:
    """`\\REGISTRY\\MACHINE\\SOFTWARE\\x` and `HKEY_LOCAL_MACHINE\\SOFTWARE\\x` ->
    `HKLM\\SOFTWARE\\x`. Defender writes a user's hive as `HKEY_CURRENT_USER\\<SID>\\…`,
    which is `HKU\\<SID>\\…` (Sysmon's spelling). Everything after the hive stays as logged."""
    text = path.strip()
    lower = text.lower()
    for prefix, short in _HIVES:
        if lower == prefix or lower.startswith(prefix + "\\"):
            rest = text[len(prefix) :]
            if short == "HKCU" and rest[1:].upper().startswith("S-1-"):
                short = "HKU"
            return short + rest
    return text


@dataclass(slots=True)
class Event:
    kind: Kind
    ts: datetime  # timezone-aware UTC
    host: str  # normalised: lower-case short name (see normalise_host)
    # the acting process (for process_start: the new process); None for what no process did,
    # or no source names (a driver load, a logon, a share access, a service or task install)
    process: ProcessRef | None
    origin: Origin
    parent: ProcessRef | None = None  # for process_start, the creator
    host_fqdn: str | None = None
    # the host's operating system when the source says ("windows", "linux", "macos"); else
    # `platform_of` reads it off the paths (Sigma rules are per product: see queries.sigma)
    os: str | None = None
    # file target
    file_path: str | None = None
    file_op: FileOp | None = None
    previous_path: str | None = None  # rename source
    access_mask: str | None = None  # Security 4663, normalised lower-case hex, e.g. "0x6"
    # network target
    remote_ip: str | None = None
    remote_port: int | None = None
    protocol: str | None = None  # lower-case: tcp, udp
    remote_hostname: str | None = None
    local_ip: str | None = None
    local_port: int | None = None
    direction: str | None = None  # "outbound" / "inbound" when the source says
    # dns
    query_name: str | None = None
    query_results: tuple[str, ...] = ()
    # -- accounts, logons and Windows system changes (graph v2, part 2) --
    logon: LogonFacts | None = None  # LOGON, LOGOFF, SPECIAL_LOGON, EXPLICIT_CREDENTIALS
    share: ShareFacts | None = None  # SHARE_ACCESS
    service: ServiceFacts | None = None  # SERVICE_INSTALL
    task: TaskFacts | None = None  # TASK_CHANGE
    script: ScriptFacts | None = None  # SCRIPT_BLOCK
    # names of raw fields whose value was cut, by the source (e.g. syslog's 2 KiB limit) or by
    # ingest's length caps; a rule matching on a cut field should know its value is partial
    truncated: tuple[str, ...] = ()
    # -- k1: what a process does to the system (one field per family) --
    image_load: ImageLoadFacts | None = None  # IMAGE_LOAD, DRIVER_LOAD
    access: ProcessAccessFacts | None = None  # PROCESS_ACCESS, REMOTE_THREAD
    registry: RegistryFacts | None = None  # REGISTRY
    pipe: PipeFacts | None = None  # PIPE
    wmi: WmiFacts | None = None  # WMI
    system: SystemFacts | None = None  # RAW_READ, CLIPBOARD, TAMPERING, file hashes
    # the raw record, for evidence; parsers pass the decoded object they read
    raw: dict[str, Any] | None = field(default=None, compare=False, repr=False)


PLATFORMS = ("windows", "linux", "macos")
_WINDOWS_PATH = re.compile(r"^(?:[a-zA-Z]:[\\/]|\\\\|\\)")


def platform_of(event: Event) -> str | None:
    """The event's host operating system: what the source said, else what its paths say (a
    drive letter or a backslash root is Windows; a slash root is a POSIX system, taken as
    Linux unless the source said macOS). None when nothing tells."""
    if event.os is not None:
        return event.os
    for path in (
        event.process.image if event.process is not None else None,
        event.parent.image if event.parent is not None else None,
        event.file_path,
    ):
        if path:
            if _WINDOWS_PATH.match(path):
                return "windows"
            if path.startswith("/"):
                return "linux"
    return None


def normalise_os(value: str | None) -> str | None:
    """ECS host.os.type / family and similar spellings onto PLATFORMS (None if unknown)."""
    if not value:
        return None
    text = value.strip().lower()
    if text.startswith("win"):
        return "windows"
    if text in ("macos", "darwin", "mac", "osx", "mac os x"):
        return "macos"
    if text in ("linux", "debian", "ubuntu", "rhel", "redhat", "centos", "fedora", "suse"):
        return "linux"
    return None


# -- accounts, logons and Windows system changes (graph v2, part 2) ---------------------------
# Well-known local SIDs and the one name each has on every Windows host. A record may name
# S-1-5-18 as "THESHIRE\\WORKSTATION6$" (4688's subject), Sysmon as "NT AUTHORITY\\SYSTEM":
# both are the one SYSTEM account. The machine-account name is never taken as SYSTEM's name.
WELL_KNOWN_SIDS = {
    "s-1-5-18": ("nt authority", "system"),
    "s-1-5-19": ("nt authority", "local service"),
    "s-1-5-20": ("nt authority", "network service"),
    # an anonymous session is an account Sigma rules name ("TargetUserName: ANONYMOUS LOGON");
    # by name alone it is nobody (_NOBODY_NAMES), by its SID it is this one
    "s-1-5-7": ("nt authority", "anonymous logon"),
}
# The fixed logon sessions of those accounts: a process in one runs as its account, whatever
# name a record gives (4688 names a NETWORK SERVICE process's target "THESHIRE\\WS6$").
WELL_KNOWN_LOGONS = {"0x3e7": "s-1-5-18", "0x3e5": "s-1-5-19", "0x3e4": "s-1-5-20"}
WELL_KNOWN_NAMES = {f"{d}\\{n}": sid for sid, (d, n) in WELL_KNOWN_SIDS.items()}
# SIDs that name nobody: "S-1-0-0" (NULL SID, 4624's subject of a network logon)
_NOBODY_SIDS = frozenset({"s-1-0-0", "-", ""})
_NOBODY_NAMES = frozenset({"-", "", "anonymous logon"})


@dataclass(slots=True)
class AccountRef:
    """An account as one record names it: SID and/or domain and name, as logged."""

    sid: str | None = None
    domain: str | None = None
    name: str | None = None

    @property
    def name_key(self) -> str | None:
        """Lower-case `domain\\name` (a DNS domain reduced to its first label: 4624 logs
        "THESHIRE.LOCAL" where Sysmon logs "THESHIRE"), or the bare name."""
        if not self.name:
            return None
        name = self.name.strip().lower()
        domain = (self.domain or "").strip().lower().split(".", 1)[0]
        return f"{domain}\\{name}" if domain and domain != "-" else name

    @property
    def key(self) -> str | None:
        """The Account node's key: the lower-case SID when known, else `name_key`."""
        if self.sid:
            return self.sid
        key = self.name_key
        return WELL_KNOWN_NAMES.get(key, key) if key else None


def account_ref(
    sid: str | None = None, domain: str | None = None, name: str | None = None
) -> AccountRef | None:
    """An AccountRef from logged fields, or None when they name nobody (NULL SID, "-")."""
    sid_text = (sid or "").strip().lower()
    sid_text = "" if sid_text in _NOBODY_SIDS or not sid_text.startswith("s-") else sid_text
    name_text = (name or "").strip()
    if name_text.lower() in _NOBODY_NAMES:
        name_text = ""
    domain_text = (domain or "").strip()
    if not name_text and "\\" in domain_text:  # a joined DOMAIN\\name in one field
        domain_text, _, name_text = domain_text.rpartition("\\")
    if not sid_text and not name_text:
        return None
    if sid_text in WELL_KNOWN_SIDS:
        domain_text, name_text = WELL_KNOWN_SIDS[sid_text]
    return AccountRef(sid=sid_text or None, domain=domain_text or None, name=name_text or None)


def split_user(user: str | None, sid: str | None = None) -> AccountRef | None:
    """An AccountRef from a joined "DOMAIN\\name" (Sysmon `User`, ProcessRef.user)."""
    if not user and not sid:
        return None
    domain, sep, name = (user or "").rpartition("\\")
    return account_ref(sid, domain if sep else None, name)


@dataclass(slots=True)
class LogonFacts:
    """A logon session and the accounts around it. `account` is the one logged on (4624's
    Target, 4648's credentials used), `subject` the one that asked (4624/4648 Subject)."""

    account: AccountRef | None = None
    logon_id: str | None = None  # lower-case hex, "0x3e7"
    logon_type: int | None = None
    failed: bool = False  # 4625, LogonFailed
    status: str | None = None  # lower-case hex, 4625
    failure_reason: str | None = None  # Defender FailureReason, ECS event.reason (as logged)
    sub_status: str | None = None
    source_ip: str | None = None
    source_port: int | None = None
    workstation: str | None = None
    auth_package: str | None = None
    logon_process: str | None = None
    logon_guid: str | None = None
    elevated: bool | None = None  # 4624 ElevatedToken, or a 4672 for the logon
    privileges: tuple[str, ...] = ()  # 4672 PrivilegeList
    subject: AccountRef | None = None
    target_server: str | None = None  # 4648
    target_info: str | None = None  # 4648
    # 4624's facts of the logon request (Sigma rules read them): the process that asked for
    # it, the subject's SID, the NTLM key length, the impersonation level (as logged, e.g.
    # "%%1833") and, for a NewCredentials logon (type 9), the user its network access runs as
    process_name: str | None = None
    key_length: int | None = None
    impersonation_level: str | None = None
    outbound_user: str | None = None
    subject_sid: str | None = None  # as logged, the NULL SID of an anonymous request included


# -- accounts, part 2: Defender and Elastic logons (graph v2, k2b) ---------------------------
# Logon type names as Defender (`LogonType`), winlogbeat (`winlog.logon.type`) and Elastic
# Defend (`process.Ext.session_info.logon_type`) write them, onto the Windows numbers 4624
# logs, so one `logon_type` property holds every source's answer.
LOGON_TYPES = {
    "system": 0,
    "interactive": 2,
    "network": 3,
    "batch": 4,
    "service": 5,
    "proxy": 6,
    "unlock": 7,
    "networkcleartext": 8,
    "newcredentials": 9,
    "remoteinteractive": 10,
    "cachedinteractive": 11,
    "cachedremoteinteractive": 12,
    "cachedunlock": 13,
}


def logon_type_number(value: Any) -> int | None:
    """A logon type as logged (a number, "3", "Network", "RemoteInteractive", "Cached
    Interactive") as the Windows number; None when it is neither."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    text = str(value).strip().lower().replace(" ", "").replace("_", "")
    if text.isdecimal():
        return int(text)
    return LOGON_TYPES.get(text)


def logon_id_hex(value: Any) -> str | None:
    """A logon id as logged (Defender's decimal `LogonId` 999, Elastic's session id, Windows'
    "0x3E7") as the lower-case hex Security writes ("0x3e7"); None for 0, "-" or junk."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().lower()
        try:
            number = int(text, 16) if text.startswith("0x") else int(text)
        except ValueError:
            return None
    return hex(number) if number > 0 else None


SHARE_NAME_LIMIT = 1024  # characters of a 5145 relative target name kept


@dataclass(slots=True)
class ShareFacts:
    """5140/5145: a network share accessed, by whom (account + logon) and from where."""

    share_name: str  # as logged, "\\\\*\\C$"
    account: AccountRef | None = None
    logon_id: str | None = None
    share_path: str | None = None  # ShareLocalPath
    relative_target: str | None = None  # 5145 RelativeTargetName, capped
    access_mask: str | None = None  # lower-case hex
    source_ip: str | None = None
    source_port: int | None = None


@dataclass(slots=True)
class ServiceFacts:
    """4697 / System 7045: a service installed."""

    service_name: str
    image_path: str | None = None  # ImagePath / ServiceFileName as logged (a command line)
    image_file: str | None = None  # the executable path read out of it, when there is one
    service_type: str | None = None
    start_type: str | None = None
    service_account: str | None = None
    account: AccountRef | None = None  # who installed it (4697 Subject, 7045 UserID)
    logon_id: str | None = None


TASK_CONTENT_LIMIT = 16384  # characters of a task's XML kept


@dataclass(slots=True)
class TaskFacts:
    """4698-4702: a scheduled task created, deleted, enabled, disabled or updated."""

    task_name: str
    op: str  # "created", "deleted", "enabled", "disabled", "updated"
    content: str | None = None  # TaskContent / TaskContentNew, capped
    account: AccountRef | None = None
    logon_id: str | None = None


SCRIPT_PART_LIMIT = 65536  # characters of one 4104 part kept


@dataclass(slots=True)
class ScriptFacts:
    """4104: one part of a PowerShell script block."""

    block_id: str  # ScriptBlockId, lower-case
    text: str
    number: int = 1  # MessageNumber
    total: int = 1  # MessageTotal
    path: str | None = None
    account: AccountRef | None = None  # System.Security UserID


def normalise_host(name: str) -> str:
    """WORKSTATION6.theshire.local -> workstation6. Hosts are keyed by short name, lower-case."""
    short = name.strip().rstrip(".").split(".", 1)[0]
    return short.lower()


def normalise_guid(guid: str) -> str:
    """Sysmon GUIDs come braced lower-case (NXLog) or bare upper-case (evtx-rs): one form for
    both."""
    return guid.strip().strip("{}").lower()


def process_uid(
    *,
    host: str,
    guid: str | None = None,
    entity_id: str | None = None,
    pid: int | None = None,
    start_time: datetime | None = None,
) -> str:
    """Stable process identity: Sysmon ProcessGuid, ECS entity_id or MDE id when present,
    else host + pid + start time (pids are reused, so the start time is part of the key).

    A process known only by host and pid (e.g. the creator in a 4688 event) gets the key
    without start time; `graph` resolves such references to the latest matching process.
    """
    if guid:
        return "g:" + normalise_guid(guid)
    if entity_id:
        return "e:" + entity_id
    if pid is None:
        raise ValueError("a process needs a guid, an entity id or a pid")
    if start_time is None:
        return f"p:{host}:{pid}"
    return f"p:{host}:{pid}:{start_time.strftime(_START_STAMP)}"


_START_STAMP = "%Y%m%dT%H%M%S.%f"
_START_STAMP_SHAPE = re.compile(r"\d+T\d{6}\.\d{6}")


@dataclass(frozen=True, slots=True)
class ProcessKey:
    """What a process uid says, read back (see `process_uid`, which builds it)."""

    scheme: str  # "g" Sysmon ProcessGuid, "e" entity id, "p" host and pid
    value: str  # the guid or entity id; for "p", the host
    pid: int | None = None  # "p" only
    start: str | None = None  # "p" only: the start time as the uid spells it, if known

    @property
    def pid_only(self) -> bool:
        """Known by host and pid alone (a creator in a 4688 event): `graph` resolves it to the
        latest process with that pid."""
        return self.scheme == "p" and self.start is None

    @property
    def pid_uid(self) -> str | None:
        """The pid-only uid ("p:host:pid") of a host-and-pid identity, with or without start."""
        return f"p:{self.value}:{self.pid}" if self.scheme == "p" else None


def parse_process_uid(uid: str) -> ProcessKey | None:
    """The parts of a uid `process_uid` built, or None for anything else. Read from the right:
    a host may hold colons itself (an IPv6 address logged as the host name)."""
    scheme, sep, rest = uid.partition(":")
    if not sep or not rest:
        return None
    if scheme in ("g", "e"):
        return ProcessKey(scheme, rest)
    if scheme != "p":
        return None
    head, _, last = rest.rpartition(":")
    start = None
    if _START_STAMP_SHAPE.fullmatch(last):
        start = last
        head, _, last = head.rpartition(":")
    if not head or not last.isdecimal():
        return None
    return ProcessKey("p", head, int(last), start)


def is_pid_only(uid: str) -> bool:
    """`parse_process_uid(uid).pid_only`, without building the key: the writer asks it of
    every creator it meets. A "p:" uid ending in digits is "p:host:pid" (a start stamp always
    holds a "T")."""
    if not uid.startswith("p:"):
        return False
    head, _, pid = uid.rpartition(":")
    return len(head) > 2 and pid.isdecimal()


# The kinds of process key, best first: a Sysmon ProcessGuid names one process for good, an
# ECS entity id likewise; host + pid + start time is derived, and host + pid alone is only a
# reference to be resolved (see graph.identity).
def uid_rank(uid: str) -> int:
    """3 for a GUID (g:), 2 for an entity id (e:), 1 for host + pid + start, 0 for host + pid."""
    kind = uid[:2]
    if kind == "g:":
        return 3
    if kind == "e:":
        return 2
    return 0 if is_pid_only(uid) else 1


@functools.lru_cache(maxsize=65536)
def classify_ip(ip: str) -> tuple[bool, bool]:
    """(is_public, is_loopback) of a remote address. Unparseable addresses count as neither;
    IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False, False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global, address.is_loopback
