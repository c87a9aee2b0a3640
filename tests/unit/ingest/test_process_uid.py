"""Process uids are built in one place and read back in one place: what `process_uid` writes,
`parse_process_uid` returns, and `is_pid_only` (the writer's fast question) agrees with it."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st
from provgraph.ingest.model import ProcessKey, is_pid_only, parse_process_uid, process_uid

# Host keys as ingest makes them: short lower-case names, and addresses logged as the host
# name, which stay whole (an IPv6 address brings its colons into the uid).
hosts = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,14}", fullmatch=True),
    st.ip_addresses().map(str),
)
pids = st.integers(min_value=0, max_value=2**32)
starts = st.datetimes(
    min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(host=hosts, pid=pids, start=st.one_of(st.none(), starts))
def test_host_and_pid_uids_read_back(host: str, pid: int, start: datetime | None) -> None:
    uid = process_uid(host=host, pid=pid, start_time=start)
    key = parse_process_uid(uid)
    assert key is not None
    assert (key.scheme, key.value, key.pid) == ("p", host, pid)
    assert key.pid_only is (start is None) is is_pid_only(uid)
    assert key.pid_uid == process_uid(host=host, pid=pid)


def test_guid_and_entity_uids_read_back() -> None:
    guid = process_uid(host="ws1", guid="{D273D0F0-CC0C-5F67-0B08-000000000800}", pid=5)
    assert parse_process_uid(guid) == ProcessKey("g", "d273d0f0-cc0c-5f67-0b08-000000000800")
    entity = process_uid(host="ws1", entity_id="a:b:1234", pid=5)
    key = parse_process_uid(entity)
    assert key == ProcessKey("e", "a:b:1234") and not key.pid_only and key.pid_uid is None
    assert not is_pid_only(guid) and not is_pid_only(entity)


def test_an_ipv6_host_is_still_read_as_host_and_pid() -> None:
    """The writer's old test (`uid.count(":") == 2`) took `p:fe80::1:4321` for a full
    identity, so a creator on such a host was never resolved by pid."""
    uid = process_uid(host="fe80::1", pid=4321)
    assert is_pid_only(uid)
    assert parse_process_uid(uid) == ProcessKey("p", "fe80::1", 4321)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=40), st.text(max_size=20).map(lambda t: "p:" + t)))
@example("p:h:007")
@example("p:fe80::1:12:20240501T100000.000000")
def test_anything_else_is_no_key_and_never_pid_only(text: str) -> None:
    key = parse_process_uid(text)
    assert is_pid_only(text) is (key is not None and key.pid_only)
    if key is not None and key.scheme == "p":
        # the parts are the text's own: host, the pid's digits, the start stamp
        pid_text = text.removesuffix(f":{key.start}") if key.start else text
        assert pid_text.startswith(f"p:{key.value}:") and int(pid_text.rsplit(":", 1)[1]) == key.pid


def test_malformed_uids() -> None:
    for text in ("", "g:", "x:1", "p:5", "p::5", "p:ws1:", "p:ws1:abc", "p:ws1:5:later"):
        assert parse_process_uid(text) is None, text
        assert not is_pid_only(text), text
