"""Defender DeviceLogonEvents and Elastic Defend authentication events become LOGON events
(accounts, part 2); Defender and ECS process rows carry their account's SID and logon.

The rows are generated in Microsoft's documented DeviceLogonEvents / DeviceProcessEvents
column names, flat and in the Streaming API envelope; the ECS records in the field names
Elastic Defend writes (`logs-endpoint.events.security`, `process.Ext.session_info.*`)."""

from __future__ import annotations

from typing import Any

import pytest
from provgraph.ingest.ecs import parse_ecs
from provgraph.ingest.errors import ParseError, Skipped
from provgraph.ingest.mde import parse_mde
from provgraph.ingest.model import Kind, Origin, logon_id_hex, logon_type_number

from tests.records import LOGON_ROW, SID, defender_process_row

ORIGIN = Origin("mde", "<test>", 1)


def test_defender_logon_success() -> None:
    [event] = parse_mde(LOGON_ROW, ORIGIN)
    assert event.kind is Kind.LOGON and event.process is None and event.host == "ws7"
    facts = event.logon
    assert facts is not None and not facts.failed
    assert facts.account is not None and facts.account.key == SID.lower()
    assert facts.account.name_key == "corp\\alice"
    assert facts.logon_id == "0x390178" and facts.logon_type == 10
    assert facts.source_ip == "10.20.0.7" and facts.source_port == 50522
    assert facts.workstation == "jump01" and facts.auth_package == "Negotiate"
    assert facts.elevated is True and facts.failure_reason is None


def test_defender_logon_failed_keeps_its_reason_and_needs_no_logon_id() -> None:
    row = {**LOGON_ROW, "ActionType": "LogonFailed", "LogonType": "Network", "LogonId": None,
           "FailureReason": "InvalidUserNameOrPassword", "IsLocalAdmin": "False"}  # fmt: skip
    [event] = parse_mde(row, ORIGIN)
    assert event.kind is Kind.LOGON and event.logon is not None and event.logon.failed
    assert event.logon.failure_reason == "InvalidUserNameOrPassword"
    assert event.logon.logon_type == 3 and event.logon.logon_id is None
    assert event.logon.elevated is False


def test_defender_logon_csv_cells_are_text() -> None:
    row = {k: ("" if v is None else str(v)) for k, v in LOGON_ROW.items()}
    row["IsLocalAdmin"], row["RemoteIP"], row["RemotePort"] = "0", "-", ""
    [event] = parse_mde(row, ORIGIN)
    assert event.logon is not None and event.logon.logon_id == "0x390178"
    assert event.logon.elevated is False and event.logon.source_ip is None
    assert event.logon.source_port is None


def test_defender_logon_attempted_is_skipped_with_its_reason() -> None:
    skipped = parse_mde({**LOGON_ROW, "ActionType": "LogonAttempted"}, ORIGIN)
    assert isinstance(skipped, Skipped) and "outcome is not logged" in skipped.reason


def test_defender_logon_errors_name_the_field() -> None:
    with pytest.raises(ParseError) as missing_id:
        parse_mde({**LOGON_ROW, "LogonId": ""}, ORIGIN)
    assert missing_id.value.field == "LogonId"
    nobody = {**LOGON_ROW, "AccountName": "-", "AccountSid": "", "AccountDomain": ""}
    with pytest.raises(ParseError) as no_account:
        parse_mde(nobody, ORIGIN)
    assert no_account.value.field == "AccountName"


def test_defender_logon_in_the_streaming_api_envelope() -> None:
    record = {
        "time": "2024-05-01T07:59:59.0000000Z",
        "tenantId": "11111111-2222-3333-4444-555555555555",
        "operationName": "Publish",
        "category": "AdvancedHunting-DeviceLogonEvents",
        "properties": {**LOGON_ROW, "LogonId": "not a number either"},
    }
    with pytest.raises(ParseError) as bad:
        parse_mde(record, ORIGIN)
    assert bad.value.field == "properties.LogonId"
    record["properties"] = LOGON_ROW
    [event] = parse_mde(record, ORIGIN)
    assert event.logon is not None and event.logon.logon_id == "0x390178"
    assert event.raw is not None and event.raw["Table"] == "DeviceLogonEvents"


def test_defender_process_rows_carry_sid_and_logon() -> None:
    row = defender_process_row(InitiatingProcessFolderPath=None, InitiatingProcessLogonId="3735928")
    [event] = parse_mde(row, ORIGIN)
    assert event.process is not None and event.parent is not None
    assert event.process.user_sid == SID.lower() and event.process.logon_id == "0x390178"
    assert event.parent.user_sid == SID.lower() and event.parent.logon_id == "0x390178"
    no_sid = {**row, "AccountSid": "", "LogonId": 0}
    [plain] = parse_mde(no_sid, ORIGIN)
    assert plain.process is not None
    assert plain.process.user_sid is None and plain.process.logon_id is None


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("Network", 3),
        ("RemoteInteractive", 10),
        ("Cached Interactive", 11),
        ("3", 3),
        (5, 5),
        ("NoSuchType", None),
        (True, None),
    ],  # fmt: skip
)
def test_logon_type_names(value: Any, number: int | None) -> None:
    assert logon_type_number(value) == number


@pytest.mark.parametrize(
    ("value", "text"),
    [(999, "0x3e7"), ("999", "0x3e7"), ("0x3E7", "0x3e7"), (0, None), ("-", None), (None, None)],
)
def test_logon_ids_as_security_writes_them(value: Any, text: str | None) -> None:
    assert logon_id_hex(value) == text


# -- Elastic Defend authentication -----------------------------------------------------------
ECS_LOGON: dict[str, Any] = {
    "@timestamp": "2024-05-01T07:59:58.120Z",
    "event": {
        "category": ["authentication"],
        "type": ["start"],
        "action": "log_on",
        "outcome": "success",
        "dataset": "endpoint.events.security",
        "kind": "event",
    },
    "host": {"name": "WS7", "os": {"type": "windows"}},
    "user": {"id": SID, "name": "alice", "domain": "CORP"},
    "source": {"ip": "10.20.0.7", "port": 50522, "domain": "JUMP01"},
    "process": {
        "pid": 744,
        "entity_id": "bHNhc3MtNzQ0",
        "executable": "C:\\Windows\\System32\\lsass.exe",
        "name": "lsass.exe",
        "Ext": {
            "session_info": {
                "id": 3735928,
                "logon_type": "RemoteInteractive",
                "authentication_package": "Negotiate",
                "client_address": "10.20.0.7",
                "relative_logon_time": 0.2,
            }
        },
    },
}


def test_ecs_logon_from_session_info() -> None:
    [event] = parse_ecs(ECS_LOGON, ORIGIN)
    assert event.kind is Kind.LOGON and event.process is None and event.os == "windows"
    facts = event.logon
    assert facts is not None and not facts.failed
    assert facts.account is not None and facts.account.key == SID.lower()
    assert facts.logon_id == "0x390178" and facts.logon_type == 10
    assert facts.source_ip == "10.20.0.7" and facts.source_port == 50522
    assert facts.workstation == "JUMP01" and facts.auth_package == "Negotiate"


def test_ecs_failed_logon_and_its_reason() -> None:
    record: dict[str, Any] = {
        "@timestamp": "2024-05-01T07:50:00Z",
        "event.category": "authentication",
        "event.type": ["start"],
        "event.action": "log_on",
        "event.outcome": "failure",
        "event.reason": "Unknown user name or bad password.",
        "host.name": "ws7",
        "user.name": "alice",
        "user.domain": "CORP",
        "winlog.logon.type": "Network",
        "process.Ext.session_info.client_address": "::ffff:10.20.0.9",
    }
    [event] = parse_ecs(record, ORIGIN)
    assert event.logon is not None and event.logon.failed and event.logon.logon_id is None
    assert event.logon.failure_reason == "Unknown user name or bad password."
    assert event.logon.logon_type == 3 and event.logon.source_ip == "10.20.0.9"
    assert event.logon.account is not None and event.logon.account.key == "corp\\alice"


def test_ecs_logoff_needs_its_session() -> None:
    logoff = {**ECS_LOGON, "event": {**ECS_LOGON["event"], "type": ["end"], "action": "log_off"}}
    [event] = parse_ecs(logoff, ORIGIN)
    assert event.kind is Kind.LOGOFF and event.logon is not None
    assert event.logon.logon_id == "0x390178"
    no_session = {**logoff, "process": {"pid": 744}}
    with pytest.raises(ParseError) as missing:
        parse_ecs(no_session, ORIGIN)
    assert missing.value.field == "process.Ext.session_info.id"


def test_ecs_authentication_skips_say_why() -> None:
    linux = {**ECS_LOGON, "process": {"pid": 801, "executable": "/usr/sbin/sshd"},
             "event": {**ECS_LOGON["event"], "action": "ssh_login"}}  # fmt: skip
    skipped = parse_ecs(linux, ORIGIN)
    assert isinstance(skipped, Skipped) and "no logon session to key" in skipped.reason
    other = {**ECS_LOGON, "event": {**ECS_LOGON["event"], "action": "credential_read",
                                    "type": ["access"]}}  # fmt: skip
    skipped = parse_ecs(other, ORIGIN)
    assert isinstance(skipped, Skipped) and "neither a logon nor a logoff" in skipped.reason
    with pytest.raises(ParseError) as bad:
        parse_ecs({**ECS_LOGON, "event": {**ECS_LOGON["event"], "outcome": "maybe"}}, ORIGIN)
    assert bad.value.field == "event.outcome"
    nobody = {**ECS_LOGON, "user": {"name": "-"}}
    with pytest.raises(ParseError) as no_user:
        parse_ecs(nobody, ORIGIN)
    assert no_user.value.field == "user.name"


def test_ecs_process_carries_sid_and_logon() -> None:
    record = {
        "@timestamp": "2024-05-01T08:00:00Z",
        "event": {"category": ["process"], "type": ["start"]},
        "host": {"name": "ws7"},
        "user": {"id": SID, "name": "alice", "domain": "CORP"},
        "process": {
            "entity_id": "Y21kLTQzMTI=",
            "pid": 4312,
            "executable": "C:\\Windows\\System32\\cmd.exe",
            "Ext": {"authentication_id": "0x390178"},
            "parent": {"entity_id": "ZXhwbG9yZXI=", "pid": 2200},
        },
    }
    [event] = parse_ecs(record, ORIGIN)
    assert event.process is not None and event.parent is not None
    assert event.process.user_sid == SID.lower() and event.process.logon_id == "0x390178"
    assert event.parent.user_sid is None and event.parent.logon_id is None
    linux = {**record, "user": {"id": "1000", "name": "runner"}}
    [event] = parse_ecs(linux, ORIGIN)
    assert event.process is not None and event.process.user_sid is None
