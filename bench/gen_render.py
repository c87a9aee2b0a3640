"""Raw event tuples -> one JSON line in the source's own shape.

Sysmon lines follow pyevtx-rs (`{"Event": {"#attributes", "System", "EventData"}}`, ints
for ProcessId/ports, bools for Initiated/IsIpv6/IsExecutable, upper-case bare GUIDs).
MDE lines are Advanced Hunting rows with a leading "Table" key naming the table.

Lines are assembled from cached fragments rather than `json.dumps` of dicts: a process's
escaped fields are built once and reused for each of its events, which is what makes
100k+ events/s possible in pure Python. Key order and separators match what
`json.dumps` produces for the real files, so both parse identically.
"""

from __future__ import annotations

import hashlib
import json

from bench.gen_catalog import WIN, WinImage, sysmon_hashes
from bench.gen_core import (
    ACCESS,
    DAY,
    DELETE,
    DNS,
    END,
    FILE,
    HOUR,
    IMAGE,
    LOGOFF,
    LOGON,
    NET,
    PRIVILEGES,
    REG_KEY,
    REG_SET,
    START,
    Endpoint,
    Host,
    Proc,
    iso_us,
    sysmon_utc,
)


def q(s: str) -> str:
    """JSON string literal. Generated text is ASCII; catalog text goes through json.dumps."""
    if s.isascii():
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return json.dumps(s)


# Exact path first (two MSBuild.exe builds differ), then file name for per-user paths.
_PE_BY_PATH: dict[str, WinImage] = {img.path.lower(): img for img in WIN.values()}
_PE_BY_NAME: dict[str, WinImage] = {}
for _img in WIN.values():
    _PE_BY_NAME.setdefault(_img.path.rsplit("\\", 1)[-1].lower(), _img)
_PE_CACHE: dict[str, str] = {}


def _pe_fields(image: str) -> str:
    s = _PE_CACHE.get(image)
    if s is None:
        img = _PE_BY_PATH.get(image.lower()) or _PE_BY_NAME.get(image.rsplit("\\", 1)[-1].lower())
        vals = (
            (img.version, img.description, img.product, img.company, img.original)
            if img
            else ("-",) * 5
        )
        s = (
            f'"FileVersion": {json.dumps(vals[0])}, "Description": {json.dumps(vals[1])}, '
            f'"Product": {json.dumps(vals[2])}, "Company": {json.dumps(vals[3])}, '
            f'"OriginalFileName": {json.dumps(vals[4])}'
        )
        _PE_CACHE[image] = s
    return s


def _file_hashes(path: str) -> str:
    b = path.lower().encode()
    return (
        f"SHA1={hashlib.sha1(b).hexdigest().upper()},MD5={hashlib.md5(b).hexdigest().upper()},"
        f"SHA256={hashlib.sha256(b).hexdigest().upper()},IMPHASH=00000000000000000000000000000000"
    )


_VERSION = {
    START: 5,
    END: 3,
    NET: 5,
    FILE: 2,
    DNS: 5,
    DELETE: 5,
    IMAGE: 3,
    ACCESS: 3,
    REG_KEY: 2,
    REG_SET: 2,
}
_PORT_NAMES = {
    443: "https",
    80: "http",
    445: "microsoft-ds",
    53: "domain",
    88: "kerberos",
    389: "ldap",
    135: "epmap",
    22: "ssh",
    1433: "ms-sql-s",
}


class SysmonRenderer:
    """Renders Windows events. Keeps one EventRecordID counter per host (monotonic in output
    order, as in a real channel)."""

    def __init__(self) -> None:
        self._heads: dict[tuple[int, int], str] = {}
        self._tails: dict[int, str] = {}
        self._rid: dict[int, int] = {}

    def _head(self, host: Host, eid: int) -> str:
        key = (host.idx, eid)
        h = self._heads.get(key)
        if h is None:
            h = (
                '{"Event": {"#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"}, '
                '"System": {"Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", '
                '"Guid": "5770385F-C22A-43E0-BF4C-06F5698FFBD9"}}, '
                f'"EventID": {eid}, "Version": {_VERSION[eid]}, "Level": 4, "Task": {eid}, "Opcode": 0, '
                '"Keywords": "0x8000000000000000", "TimeCreated": {"#attributes": {"SystemTime": "'
            )
            self._heads[key] = h
        return h

    def _tail(self, host: Host) -> str:
        t = self._tails.get(host.idx)
        if t is None:
            t = (
                f', "Correlation": null, "Execution": {{"#attributes": {{"ProcessID": {host.sysmon_pid}, '
                f'"ThreadID": {host.sysmon_pid + 1164}}}}}, "Channel": "Microsoft-Windows-Sysmon/Operational", '
                f'"Computer": {q(host.fqdn)}, "Security": {{"#attributes": {{"UserID": "S-1-5-18"}}}}}}, '
                '"EventData": {"RuleName": "-", '
            )
            self._tails[host.idx] = t
        return t

    @staticmethod
    def _frag(p: Proc) -> tuple[str, str, str]:
        f = p.frag
        if f is None:
            f = (
                f'"ProcessGuid": "{p.guid}", "ProcessId": {p.pid}',
                f'"Image": {q(p.image)}',
                f'"User": {q(p.user.qualified)}',
            )
            p.frag = f
        return f

    def render(self, ev: tuple) -> str:
        ts, kind, p, a, b, c = ev
        host = p.host
        rid = self._rid.get(host.idx, 1_000_000 + 7919 * host.idx) + 1
        self._rid[host.idx] = rid
        # The channel writes the record a little after Sysmon stamps UtcTime.
        sys_time = iso_us(ts + 250 + ts % 1500)
        utc = sysmon_utc(ts)
        gp, img, user = self._frag(p)
        if kind in _REALISTIC:
            head = (
                f'{self._head(host, kind)}{sys_time}"}}}}, "EventRecordID": {rid}{self._tail(host)}'
            )
            return head + self._realistic(kind, p, utc, a, b, c) + "}}}"
        pre = f'{self._head(host, kind)}{sys_time}"}}}}, "EventRecordID": {rid}{self._tail(host)}"UtcTime": "{utc}", {gp}, '
        if kind == FILE:
            created = utc if b == "create" else sysmon_utc(ts - DAY - ts % HOUR)  # an older file
            data = f'{img}, "TargetFilename": {q(a)}, "CreationUtcTime": "{created}"'
        elif kind == NET:
            data = f"{img}, {user}, {self._net(host, ts, a, b, c)}"
        elif kind == START:
            data = self._start(p)
        elif kind == END:
            data = img
        elif kind == DNS:
            data = f'"QueryName": {q(a)}, "QueryStatus": "0", "QueryResults": "::ffff:{b};", {img}'
        else:  # DELETE
            exe = a.lower().endswith((".exe", ".dll"))
            data = (
                f'{user}, {img}, "TargetFilename": {q(a)}, "Hashes": "{_file_hashes(a)}", '
                f'"IsExecutable": {"true" if exe else "false"}, "Archived": "false"'
            )
        return pre + data + "}}}"

    def _realistic(self, kind: int, p: Proc, utc: str, a: object, b: object, c: object) -> str:
        """EventData of the realistic mix's kinds (7, 10, 12, 13), in Sysmon's field order."""
        gp, img, user = self._frag(p)
        if kind == IMAGE:
            path = str(a)
            return (
                f'"UtcTime": "{utc}", {gp}, {img}, "ImageLoaded": {q(path)}, '
                f"{_pe_fields(path)}, "
                f'"Hashes": "{_file_hashes(path)}", "Signed": "true", '
                f'"Signature": "Microsoft Windows", "SignatureStatus": "Valid", {user}'
            )
        if kind == ACCESS:
            target = a
            assert isinstance(target, Proc)
            return (
                f'"UtcTime": "{utc}", "SourceProcessGUID": "{p.guid}", '
                f'"SourceProcessId": {p.pid}, "SourceThreadId": {p.pid + 4 + p.pid % 96 * 4}, '
                f'"SourceImage": {q(p.image)}, "TargetProcessGUID": "{target.guid}", '
                f'"TargetProcessId": {target.pid}, "TargetImage": {q(target.image)}, '
                f'"GrantedAccess": "{b}", "CallTrace": {q(str(c))}, '
                f'"SourceUser": {q(p.user.qualified)}, "TargetUser": {q(target.user.qualified)}'
            )
        event_type = str(b) if kind == REG_KEY else "SetValue"
        data = (
            f'"EventType": "{event_type}", "UtcTime": "{utc}", {gp}, {img}, '
            f'"TargetObject": {q(str(a))}'
        )
        if kind == REG_SET:
            data += f', "Details": {q(str(b))}'
        return f"{data}, {user}"

    @staticmethod
    def _net(host: Host, ts: int, ep: Endpoint, lport: int, initiated: bool) -> str:
        if initiated:
            src_ip, src_host, src_port = host.ip, host.fqdn, lport
            dst_ip, dst_host, dst_port = ep.ip, ep.hostname or "-", ep.port
        else:
            src_ip, src_host, src_port = ep.ip, ep.hostname or "-", 49152 + ts % 16000
            dst_ip, dst_host, dst_port = host.ip, host.fqdn, ep.port
        return (
            f'"Protocol": "{ep.proto}", "Initiated": {"true" if initiated else "false"}, '
            f'"SourceIsIpv6": false, "SourceIp": "{src_ip}", "SourceHostname": {q(src_host)}, '
            f'"SourcePort": {src_port}, "SourcePortName": "{_PORT_NAMES.get(src_port, "-") if not initiated else "-"}", '
            f'"DestinationIsIpv6": false, "DestinationIp": "{dst_ip}", "DestinationHostname": {q(dst_host)}, '
            f'"DestinationPort": {dst_port}, "DestinationPortName": "{_PORT_NAMES.get(dst_port, "-")}"'
        )

    def _start(self, p: Proc) -> str:
        gp, img, user = self._frag(p)
        pp = p.parent
        if pp is not None:
            pgp = f'"ParentProcessGuid": "{pp.guid}", "ParentProcessId": {pp.pid}'
            parent = f'{pgp}, "ParentImage": {q(pp.image)}, "ParentCommandLine": {q(pp.cmd)}'
        else:
            parent = '"ParentProcessGuid": "00000000-0000-0000-0000-000000000000", "ParentProcessId": 0, "ParentImage": "-", "ParentCommandLine": "-"'
        session = 0 if p.user.sid_kind == "system" else 1
        logon_guid, logon_id = p.logon
        return (
            f'{img}, {_pe_fields(p.image)}, "CommandLine": {q(p.cmd)}, "CurrentDirectory": {q(p.cwd)}, '
            f'{user}, "LogonGuid": "{logon_guid}", "LogonId": "{logon_id}", "TerminalSessionId": {session}, '
            f'"IntegrityLevel": "{p.integrity}", "Hashes": "{sysmon_hashes(p.image)}", {parent}'
        )


_REALISTIC = frozenset((IMAGE, ACCESS, REG_KEY, REG_SET))


# ---- Security (realistic mix) ---------------------------------------------------------------

_SECURITY = {  # event id: (version, task)
    LOGON: (2, 12544),
    LOGOFF: (0, 12545),
    PRIVILEGES: (0, 12548),
}
_PRIVILEGES = "\\r\\n\\t\\t\\t".join(
    (
        "SeSecurityPrivilege",
        "SeBackupPrivilege",
        "SeRestorePrivilege",
        "SeTakeOwnershipPrivilege",
        "SeDebugPrivilege",
        "SeSystemEnvironmentPrivilege",
        "SeLoadDriverPrivilege",
        "SeImpersonatePrivilege",
    )
)


class SecurityRenderer:
    """Renders the logon kinds as Security-Auditing records in the evtx-rs JSON shape
    (numbers where the event's template has integers: LogonType, KeyLength)."""

    def __init__(self) -> None:
        self._rid: dict[int, int] = {}

    def render(self, ev: tuple) -> str:
        from bench.gen_realistic import sid

        ts, kind, lsass, info, logon_type, _ = ev
        host = lsass.host
        rid = self._rid.get(host.idx, 5_000_000 + 7919 * host.idx) + 1
        self._rid[host.idx] = rid
        user, logon_id, source_ip, source_port = info
        version, task = _SECURITY[kind]
        head = (
            '{"Event": {"#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"}, '
            '"System": {"Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing", '
            '"Guid": "54849625-5478-4994-A5BA-3E3B0328C30D"}}, '
            f'"EventID": {kind}, "Version": {version}, "Level": 0, "Task": {task}, "Opcode": 0, '
            '"Keywords": "0x8020000000000000", "TimeCreated": {"#attributes": {"SystemTime": '
            f'"{iso_us(ts)}"}}}}, "EventRecordID": {rid}, "Correlation": null, '
            f'"Execution": {{"#attributes": {{"ProcessID": {lsass.pid}, "ThreadID": {lsass.pid + 88}}}}}, '
            f'"Channel": "Security", "Computer": {q(host.fqdn)}, "Security": null}}, "EventData": {{'
        )
        target_sid = sid(host, user)
        domain = user.domain
        if kind == LOGON:
            guid = f"{{{host.machine:08x}-{int(logon_id, 16) & 0xFFFF:04x}-0000-0000-000000000000}}"
            data = (
                f'"SubjectUserSid": "S-1-0-0", "SubjectUserName": "-", "SubjectDomainName": "-", '
                f'"SubjectLogonId": "0x0", "TargetUserSid": "{target_sid}", '
                f'"TargetUserName": {q(user.name)}, "TargetDomainName": "{domain}", '
                f'"TargetLogonId": "{logon_id}", "LogonType": {logon_type}, '
                '"LogonProcessName": "Kerberos", "AuthenticationPackageName": "Kerberos", '
                f'"WorkstationName": "-", "LogonGuid": "{guid}", "TransmittedServices": "-", '
                '"LmPackageName": "-", "KeyLength": 0, "ProcessId": "0x0", "ProcessName": "-", '
                f'"IpAddress": "{source_ip}", "IpPort": "{source_port}", '
                '"ImpersonationLevel": "%%1833", "RestrictedAdminMode": "-", '
                '"TargetOutboundUserName": "-", "TargetOutboundDomainName": "-", '
                '"VirtualAccount": "%%1843", "TargetLinkedLogonId": "0x0", '
                '"ElevatedToken": "%%1842"'
            )
        elif kind == LOGOFF:
            data = (
                f'"TargetUserSid": "{target_sid}", "TargetUserName": {q(user.name)}, '
                f'"TargetDomainName": "{domain}", "TargetLogonId": "{logon_id}", '
                f'"LogonType": {logon_type}'
            )
        else:
            data = (
                f'"SubjectUserSid": "{target_sid}", "SubjectUserName": {q(user.name)}, '
                f'"SubjectDomainName": "{domain}", "SubjectLogonId": "{logon_id}", '
                f'"PrivilegeList": "{_PRIVILEGES}"'
            )
        return head + data + "}}}"


# ---- MDE ------------------------------------------------------------------------------------

_FILE_ACTION = {"create": "FileCreated", "modify": "FileModified", "rename": "FileRenamed"}


class MdeRenderer:
    """Renders Linux events as Advanced Hunting rows (DeviceProcessEvents, DeviceFileEvents,
    DeviceNetworkEvents). ReportId is a per-device counter in output order."""

    def __init__(self) -> None:
        self._dev: dict[int, str] = {}
        self._rid: dict[int, int] = {}

    def _device(self, host: Host) -> str:
        d = self._dev.get(host.idx)
        if d is None:
            d = f'"DeviceId": "{host.device_id}", "DeviceName": {q(host.fqdn.lower())}'
            self._dev[host.idx] = d
        return d

    @staticmethod
    def _initiating(p: Proc) -> str:
        """The InitiatingProcess* columns for p as the acting process (cached on p)."""
        f = p.frag
        if f is None:
            pp = p.parent
            if pp is not None:
                par = (
                    f'"InitiatingProcessParentFileName": {q(pp.name)}, "InitiatingProcessParentId": {pp.pid}, '
                    f'"InitiatingProcessParentCreationTime": "{iso_us(pp.start)}"'
                )
            else:
                par = (
                    '"InitiatingProcessParentFileName": "", "InitiatingProcessParentId": 0, '
                    '"InitiatingProcessParentCreationTime": null'
                )
            f = (
                f'"InitiatingProcessAccountDomain": {q(p.user.domain)}, '
                f'"InitiatingProcessAccountName": {q(p.user.name)}, '
                f'"InitiatingProcessFileName": {q(p.name)}, "InitiatingProcessFolderPath": {q(p.image)}, '
                f'"InitiatingProcessId": {p.pid}, "InitiatingProcessCommandLine": {q(p.cmd)}, '
                f'"InitiatingProcessCreationTime": "{iso_us(p.start)}", '
                f'"InitiatingProcessUniqueId": {p.uid}, {par}'
            )
            p.frag = f
        return f

    def render(self, ev: tuple) -> str:
        ts, kind, p, a, b, c = ev
        host = p.host
        rid = self._rid.get(host.idx, 0) + 1
        self._rid[host.idx] = rid
        head = f'"Timestamp": "{iso_us(ts)}", {self._device(host)}'
        if kind == START:
            pp = p.parent
            assert pp is not None, "a started process always has a parent"
            body = (
                f'{{"Table": "DeviceProcessEvents", {head}, "ActionType": "ProcessCreated", '
                f'"FileName": {q(p.name)}, "FolderPath": {q(p.image)}, "ProcessId": {p.pid}, '
                f'"ProcessCommandLine": {q(p.cmd)}, "ProcessCreationTime": "{iso_us(p.start)}", '
                f'"ProcessUniqueId": {p.uid}, "AccountDomain": {q(p.user.domain)}, '
                f'"AccountName": {q(p.user.name)}, {self._initiating(pp)}'
            )
        elif kind in (FILE, DELETE):
            action = "FileDeleted" if kind == DELETE else _FILE_ACTION[b]
            folder, name = a.rsplit("/", 1)
            if c:
                pf, pn = c.rsplit("/", 1)
                prev = f'"PreviousFileName": {q(pn)}, "PreviousFolderPath": {q(pf + "/")}'
            else:
                prev = '"PreviousFileName": "", "PreviousFolderPath": ""'
            body = (
                f'{{"Table": "DeviceFileEvents", {head}, "ActionType": "{action}", '
                f'"FileName": {q(name)}, "FolderPath": {q(a)}, {prev}, {self._initiating(p)}'
            )
        elif kind == NET:
            body = f'{{"Table": "DeviceNetworkEvents", {head}, {self._net(host, ts, a, b, c)}, {self._initiating(p)}'
        else:
            raise ValueError(f"MDE has no rendering for event kind {kind}")
        return f'{body}, "ReportId": {rid}}}'

    @staticmethod
    def _net(host: Host, ts: int, ep: Endpoint, lport: int, initiated: bool) -> str:
        action = "ConnectionSuccess" if initiated else "InboundConnectionAccepted"
        rport = ep.port if initiated else 49152 + ts % 16000
        return (
            f'"ActionType": "{action}", "RemoteIP": "{ep.ip}", "RemotePort": {rport}, '
            f'"RemoteUrl": {q(ep.hostname if ep.hostname != "-" else "")}, "RemoteIPType": "{ep.ip_type}", '
            f'"LocalIP": "{host.ip}", "LocalPort": {lport}, "LocalIPType": "Private", '
            f'"Protocol": "{ep.proto.capitalize()}"'
        )
