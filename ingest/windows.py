"""Mixed Windows event streams (a Mordor export, an evtx file, winlogbeat, Sentinel
WindowsEvent) hold Sysmon, Security and other providers side by side: route each record to
its parser by provider, and say which parser it was in the event's origin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provgraph.ingest import security, sysmon, winsystem
from provgraph.ingest.errors import Skipped
from provgraph.ingest.model import Event, Origin
from provgraph.ingest.winevent import SECURITY_PROVIDER, SYSMON_PROVIDERS, unwrap


def parse_windows(record: Mapping[str, Any], origin: Origin) -> list[Event]:
    win = unwrap(record)
    if win.provider in SYSMON_PROVIDERS:
        return sysmon.from_winrecord(win, Origin("sysmon", origin.path, origin.line), dict(record))
    if win.provider == SECURITY_PROVIDER:
        return security.from_winrecord(
            win, Origin("security", origin.path, origin.line), dict(record)
        )
    if win.provider in winsystem.PROVIDERS:  # System 7045, PowerShell 4104
        source = "powershell" if win.provider == winsystem.POWERSHELL_PROVIDER else "system"
        return winsystem.from_winrecord(win, Origin(source, origin.path, origin.line), dict(record))
    return Skipped(f"provider {win.provider or '(none)'} not modelled")
