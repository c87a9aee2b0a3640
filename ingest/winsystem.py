"""Windows providers besides Sysmon and Security that carry provenance (graph v2, part 2):
System `Service Control Manager` 7045 (a service was installed) and PowerShell
(`Microsoft-Windows-PowerShell/Operational`) 4104 script blocks.

Both name the acting account by the record's System.Security UserID (`WinRecord.user_sid`);
4104 names the PowerShell host process by System.Execution ProcessID only, which `graph`
resolves to the process that had that pid then (the pid-only reference of graph.identity).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provgraph.ingest.errors import ParseError, Skipped
from provgraph.ingest.fields import as_int, as_sid, opt_str, req, req_str
from provgraph.ingest.model import (
    SCRIPT_PART_LIMIT,
    Event,
    Kind,
    Origin,
    ProcessRef,
    ScriptFacts,
    ServiceFacts,
    account_ref,
    process_uid,
)
from provgraph.ingest.security import service_image
from provgraph.ingest.winevent import WinRecord, windows_base

SERVICE_CONTROL_MANAGER = "service control manager"
POWERSHELL_PROVIDER = "microsoft-windows-powershell"
PROVIDERS = frozenset({SERVICE_CONTROL_MANAGER, POWERSHELL_PROVIDER})


def from_winrecord(win: WinRecord, origin: Origin, raw: dict[str, Any]) -> list[Event]:
    if win.provider == SERVICE_CONTROL_MANAGER and win.event_id == 7045:
        handler = _service_install
    elif win.provider == POWERSHELL_PROVIDER and win.event_id == 4104:
        handler = _script_block
    else:
        return Skipped(f"{win.provider} EventID {win.event_id} not modelled")
    base = windows_base(win, origin, raw)
    return handler(win, base)


def _dash(data: Mapping[str, Any], key: str) -> str | None:
    value = opt_str(data, key)
    return None if value is None or value.strip() in ("", "-") else value.strip()


def _service_install(win: WinRecord, base: dict[str, Any]) -> list[Event]:
    data = win.data
    image = _dash(data, "ImagePath")
    facts = ServiceFacts(
        service_name=req_str(data, "ServiceName").strip(),
        image_path=image,
        image_file=service_image(image),
        service_type=_dash(data, "ServiceType"),
        start_type=_dash(data, "StartType"),
        service_account=_dash(data, "AccountName"),
        account=account_ref(as_sid(win.user_sid)),
    )
    return [Event(kind=Kind.SERVICE_INSTALL, process=None, service=facts, **base)]


def _script_block(win: WinRecord, base: dict[str, Any]) -> list[Event]:
    data = win.data
    number = as_int(req(data, "MessageNumber"), "MessageNumber")
    total = as_int(req(data, "MessageTotal"), "MessageTotal")
    if not 1 <= number <= total:
        raise ParseError("MessageNumber", f"part {number} of {total}")
    text = opt_str(data, "ScriptBlockText") or ""
    truncated: tuple[str, ...] = ()
    if len(text) > SCRIPT_PART_LIMIT:
        text, truncated = text[:SCRIPT_PART_LIMIT], ("ScriptBlockText",)
    # Mordor (NXLog) also resolves the account: Domain + AccountName beside UserID
    account = account_ref(
        as_sid(win.user_sid), opt_str(data, "Domain"), opt_str(data, "AccountName")
    )
    facts = ScriptFacts(
        block_id=req_str(data, "ScriptBlockId").strip().strip("{}").lower(),
        text=text,
        number=number,
        total=total,
        path=_dash(data, "Path"),
        account=account,
    )
    process = None
    if win.execution_pid not in (None, ""):
        pid = as_int(win.execution_pid, "Execution.ProcessID")
        if pid > 0:
            process = ProcessRef(uid=process_uid(host=base["host"], pid=pid), pid=pid)
    return [
        Event(kind=Kind.SCRIPT_BLOCK, process=process, script=facts, truncated=truncated, **base)
    ]
