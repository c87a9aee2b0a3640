"""`provgraph trace process|file|host|ip`: provenance from the terminal, answered by the same
domain reads as the API's provenance endpoints (`provgraph.queries.provenance`).

Human output puts names before ids, prints every time as `2020-09-20 21:39:24.350Z`, leaves
unknown values out and never cuts a name, path or id (only command lines are cut to the
width); `--json` prints what the API's endpoint answers. A lookup that finds nothing exits 5
with one line on stderr."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text
from rich.tree import Tree

from provgraph.cli import terminal
from provgraph.cli.terminal import (
    LOOKUP_EPILOG,
    console,
    emit_json,
    endpoint,
    nothing_found,
    parse_time,
    process_name,
    short,
    span,
    when,
)
from provgraph.queries import accounts, provenance

trace_app = typer.Typer(
    help="Provenance: where a process, file or connection came from.", no_args_is_help=True
)

JsonOut = Annotated[
    bool, typer.Option("--json", help="Print the answer as JSON (the API's shape).")
]

# Timeline kinds as a person reads them; --json keeps the API's names.
VERBS = {
    "process_start": "start",
    "process_end": "end",
    "file_write": "write",
    "network_connect": "connect",
    "network_accept": "accept",
    "dns_query": "dns",
    # -- accounts, logons and Windows system changes (graph v2, part 2) --
    "logon": "logon",
    "logoff": "logoff",
    "failed_logon": "logon failed",
    "share_access": "share",
    "service_install": "service",
    "task_change": "task",
    "script_block": "script",
    "explicit_credentials": "runas",
    # k1
    "image_load": "load",
    "driver_load": "driver",
    "process_access": "access",
    "remote_thread": "inject",
    "registry": "registry",
    "pipe_create": "pipe",
    "pipe_connect": "pipe-open",
    "raw_read": "raw-read",
    "tampering": "tamper",
    "clipboard": "clipboard",
    "wmi": "wmi",
}


def _process_label(p: dict[str, Any], *, indent: int, mark: bool = False) -> Text:
    """`name (pid)  start time`, the uid below it, then the command line cut to what the
    width leaves at this depth (the one thing ever cut: --json has it whole)."""
    label = Text()
    if mark:
        label.append("▶ ", style="bold")
    label.append(process_name(p), style="bold")
    for part in (when(p.get("start_time")), p.get("host") if mark else None):
        if part:
            label.append(f"  {part}")
    if p.get("uid"):
        label.append(f"\n{p['uid']}", style="dim")
    if p.get("command_line"):
        room = max(24, terminal.width() - indent - 4)
        label.append("\n" + short(p["command_line"], room), style="dim")
    return label


@trace_app.command("process", epilog=LOOKUP_EPILOG)
def trace_process(
    uid: Annotated[str, typer.Argument(help="The process's uid, as alerts and traces print it.")],
    depth: Annotated[int, typer.Option(min=0, max=10, help="Levels of descendants.")] = 3,
    json_out: JsonOut = False,
) -> None:
    """Ancestry to the root, the process tree below it, and what the process wrote,
    connected to and executed."""
    with terminal.connect() as graph:
        lineage = provenance.process_lineage(graph, uid=uid, depth=depth)
    if json_out:
        emit_json(lineage)
        return
    chain = [*lineage.ancestry, lineage.process]
    root = Tree(_process_label(chain[0], indent=0, mark=len(chain) == 1))
    node = root
    for level, proc in enumerate(chain[1:], start=1):
        node = node.add(_process_label(proc, indent=4 * level, mark=level == len(chain) - 1))
    here = 4 * len(chain)

    def grow(tree: Tree, children: list[Any], indent: int) -> None:
        for child in children:
            grow(
                tree.add(_process_label(child.process, indent=indent)),
                child.children,
                indent + 4,
            )

    grow(node, lineage.descendants, here)
    if lineage.wrote:
        wrote = node.add(Text(f"wrote {len(lineage.wrote)} file(s)", style="green"))
        for item in lineage.wrote:
            wrote.add(Text(_fact(item.get("first_time"), item.get("count"), item["path"])))
    if lineage.connected:
        connected = node.add(Text(f"connected {len(lineage.connected)} time(s)", style="magenta"))
        for item in lineage.connected:
            connected.add(Text(_fact(item.get("first_time"), item.get("count"), endpoint(item))))
    if lineage.accepted:
        accepted = node.add(Text(f"accepted {len(lineage.accepted)} peer(s)", style="magenta"))
        for item in lineage.accepted:
            ports = ", ".join(str(p) for p in item.get("local_ports") or [])
            what = f"{item['ip']} on port(s) {ports}" if ports else str(item["ip"])
            accepted.add(Text(_fact(item.get("first_time"), item.get("count"), what)))
    if lineage.executed:
        executed = node.add(Text(f"executed {len(lineage.executed)} file(s)", style="cyan"))
        for item in lineage.executed:
            executed.add(Text(_fact(item.get("time"), None, item["path"])))
    console.print(root)
    if lineage.truncated:
        typer.secho("(descendants cut at the limit; --json has the same cut)", err=True)


def _fact(time: Any, count: int | None, what: str) -> str:
    """`time  ×count  what`: fixed-width first, so the (long) name ends the line whole."""
    return "  ".join(x for x in (when(time), f"×{count}" if count else "", what) if x)


@trace_app.command("file", epilog=LOOKUP_EPILOG)
def trace_file(
    path: Annotated[str, typer.Argument(help="The path as logged (Windows paths: any case).")],
    host: Annotated[str | None, typer.Option("--host", help="Only the file on this host.")] = None,
    json_out: JsonOut = False,
) -> None:
    """Who wrote the file, from which process tree, and what ran it. Without --host, every
    host's file of that path."""
    with terminal.connect() as graph:
        answers = provenance.file_provenance(graph, path=path, host=host)
    if json_out:
        emit_json(provenance.FileProvenanceList(files=answers))
        return
    for answer in answers:
        head = Text(str(answer.file.get("path") or path), style="bold")
        if answer.file.get("host"):
            head.append(f" on {answer.file['host']}")
        if answer.written_then_executed:
            head.append("  written, then executed", style="red")
        tree = Tree(head)
        if answer.writers:
            writers = tree.add("written by")
            for writer in answer.writers:
                branch, indent = writers, 8
                for proc in writer.lineage or [writer.process]:
                    branch = branch.add(_process_label(proc, indent=indent))
                    indent += 4
                what = Text(", ".join(writer.ops) or "wrote", style="green")
                if writer.count:
                    what.append(f" ×{writer.count}")
                what.append(f"  {span(writer.first_time, writer.last_time)}")
                for source in writer.sources[:2]:
                    what.append(f"\n{source}", style="dim")
                branch.add(what)
        if answer.executions:
            runs = tree.add("executed as")
            for run in answer.executions:
                label = _process_label(run.process, indent=8)
                facts = [f"at {when(run.time)}"] if run.time else []
                if run.parent:
                    parent_uid = run.parent.get("uid")
                    facts.append(f"parent {process_name(run.parent)} {parent_uid or ''}".rstrip())
                facts.append(f"{run.children} child process(es)")
                label.append("\n" + ", ".join(facts))
                runs.add(label)
        if not answer.writers and not answer.executions:
            tree.add(Text("no write or execution recorded", style="dim"))
        console.print(tree)


@trace_app.command("host", epilog=LOOKUP_EPILOG)
def trace_host(
    host: Annotated[str, typer.Argument(help="Short host name, any case.")],
    since: Annotated[
        str | None, typer.Option(help="ISO time (UTC unless it says) or -2h; default the start.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="ISO time or -0s; default the end.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Events at most.")] = 200,
    json_out: JsonOut = False,
) -> None:
    """The host's events in time order: process starts and ends, file writes, connections
    and DNS queries."""
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    with terminal.connect() as graph:
        timeline = provenance.host_timeline(graph, host=host, since=start, until=end, limit=limit)
        known = bool(timeline.events) or provenance.host_known(graph, host=host)
    if json_out:
        emit_json(timeline)
    if not timeline.events:
        if not known:
            nothing_found(f"no host {host}")
        window = f" between {when(start) or 'the start'} and {when(end) or 'the end'}"
        nothing_found(f"no events on {timeline.host}" + (window if start or end else ""))
    if not json_out:
        rows = [
            (
                when(e.time),
                VERBS.get(e.kind, e.kind),
                process_name(e.process) if e.process else _who(e),
                _target(e),
            )
            for e in timeline.events
        ]
        verb_width = max(len(r[1]) for r in rows)
        name_width = min(24, max(len(r[2]) for r in rows))
        for time, verb, name, target in rows:
            typer.echo(f"{time}  {verb:<{verb_width}}  {name:<{name_width}}  {target}".rstrip())
    if timeline.next_cursor:
        typer.secho(
            f"more than {limit} events: narrow with --since/--until or raise --limit", err=True
        )


def _target(event: provenance.TimelineEvent) -> str:
    """What the event touched, as a person names it."""
    d = event.details
    if event.kind == "network_connect":
        return endpoint(d)
    if event.kind == "network_accept":  # the peer, then the local port(s) it came in on
        ports = ", ".join(f":{p}" for p in d.get("local_ports") or [])
        return f"{endpoint(d)} -> {ports}" if ports else endpoint(d)
    if event.kind == "dns_query":
        answers = ", ".join(str(a) for a in d.get("answers") or [])
        return f"{event.target} -> {answers}" if answers else str(event.target or "")
    if event.kind in ("registry", "file_write") and d.get("ops"):
        return f"{event.target} ({', '.join(d['ops'])})"
    if event.kind in _SESSION_KINDS:
        return _session_target(event)
    if event.kind == "share_access":
        targets = ", ".join(str(t) for t in (d.get("relative_targets") or [])[:3])
        return f"{event.target} {targets}".rstrip()
    if event.kind == "service_install" and d.get("image_path"):
        return f"{event.target}: {d['image_path']}"
    if event.kind == "task_change" and d.get("ops"):
        return f"{event.target} ({', '.join(d['ops'])})"
    return str(event.target or "")


# -- accounts, part 2: rows no process did (graph v2, k2b) ------------------------------------
_SESSION_KINDS = frozenset({"logon", "logoff", "failed_logon"})


def _who(event: provenance.TimelineEvent) -> str:
    """The name column of a row with no process: the account (a logon's is its target)."""
    if event.kind in _SESSION_KINDS:
        return str(event.target or "?")
    return str(event.details.get("who") or event.details.get("account") or "-")


def _session_target(event: provenance.TimelineEvent) -> str:
    """`type 10 from 10.20.0.7 (jump01), elevated, logon 0x3e7`; a failed logon's reasons."""
    d = event.details
    types = d.get("logon_types") if event.kind == "failed_logon" else [d.get("logon_type")]
    parts = []
    named = [str(t) for t in types or [] if t is not None]
    if named:
        parts.append("type " + "/".join(named))
    ips = d.get("source_ips") if event.kind == "failed_logon" else [d.get("source_ip")]
    peers = [str(ip) for ip in ips or [] if ip]
    if peers:
        peer = "from " + ", ".join(peers)
        parts.append(f"{peer} ({d['workstation']})" if d.get("workstation") else peer)
    if d.get("elevated"):
        parts.append("elevated")
    reasons = (d.get("failure_reasons") or []) + (d.get("statuses") or [])
    if reasons:
        parts.append(", ".join(str(r) for r in reasons))
    if d.get("logon_id"):
        parts.append(f"logon {d['logon_id']}")
    head = " ".join(p for p in parts[:2] if p.startswith(("type ", "from ")))
    rest = [p for p in parts if not p.startswith(("type ", "from "))]
    return ", ".join([head, *rest] if head else rest)


@trace_app.command("ip", epilog=LOOKUP_EPILOG)
def trace_ip(
    address: Annotated[str, typer.Argument(help="An IP address, or a host name (DNS too).")],
    json_out: JsonOut = False,
) -> None:
    """Processes that contacted an IP address (or a host name: connections and DNS)."""
    is_name = any(c.isalpha() for c in address) and ":" not in address
    with terminal.connect() as graph:
        found = provenance.contacts(
            graph, ip=None if is_name else address, hostname=address if is_name else None
        )
    if json_out:
        emit_json(found)
    contacted = any(c.contacts for c in found.connections) or any(
        d.resolvers for d in found.domains
    )
    if not contacted:
        nothing_found(f"no process contacted {address}")
    if json_out:
        return
    for conn in found.connections:
        if conn.contacts:
            typer.echo(endpoint(conn.connection))
            for contact in conn.contacts:
                _contact(contact)
    for domain in found.domains:
        if domain.resolvers:
            answers = ", ".join(domain.answers) or "no answer recorded"
            typer.echo(f"DNS {domain.domain.get('name')} -> {answers}")
            for contact in domain.resolvers:
                _contact(contact)


def _contact(contact: provenance.Contact) -> None:
    p = contact.process
    who = "  ".join(str(x) for x in (p.get("host"), process_name(p), p.get("uid")) if x)
    arrow = {"inbound": "accepted by", "outbound": "contacted by"}.get(contact.direction or "", "")
    typer.echo(f"    {arrow + ' ' if arrow else ''}{who}")
    count = f"×{contact.count}  " if contact.count else ""
    typer.echo(f"        {count}{span(contact.first_time, contact.last_time)}".rstrip())


@trace_app.command("account", epilog=LOOKUP_EPILOG)
def trace_account(
    account: Annotated[str, typer.Argument(help="A SID, DOMAIN\\name or a bare name (any case).")],
    limit: Annotated[int, typer.Option(min=1, max=5000, help="Entries per list at most.")] = 200,
    json_out: JsonOut = False,
) -> None:
    """What else the account did, on which hosts, from which logon: its sessions by host
    with their processes, shares, services and tasks, its failed logons, and who used its
    credentials."""
    with terminal.connect() as graph:
        found = accounts.account_activity(graph, account=account, limit=limit)
    if json_out:
        emit_json(found)
        return
    for answer in found.accounts:
        a = answer.account
        head = Text(
            str(a.get("name") and f"{a.get('domain') or ''}\\{a['name']}".lstrip("\\") or a["key"]),
            style="bold",
        )
        if a.get("sid"):
            head.append(f"  {a['sid']}", style="dim")
        tree = Tree(head)
        for host in answer.hosts:
            branch = tree.add(Text(host.host, style="bold"))
            for session in host.logons:
                logon = session.logon
                what = Text(f"logon {logon.get('logon_id')}")
                facts = [
                    f"type {logon['logon_type']}" if logon.get("logon_type") is not None else "",
                    f"from {logon['source_ip']}" if logon.get("source_ip") else "",
                    "elevated" if logon.get("elevated") else "",
                    span(logon.get("start_time"), logon.get("end_time"))
                    if logon.get("start_time")
                    else "",
                ]
                what.append("  " + "  ".join(f for f in facts if f))
                node = branch.add(what)
                for proc in session.processes:
                    node.add(_process_label(proc, indent=12))
                for action in session.actions:
                    node.add(Text(_action(action), style="yellow"))
            if host.processes:
                other = branch.add(Text("processes outside a known logon", style="dim"))
                for proc in host.processes:
                    other.add(_process_label(proc, indent=12))
        for action in answer.actions:
            tree.add(Text(_action(action), style="yellow"))
        for failed in answer.failed_logons:
            tree.add(
                Text(
                    _fact(failed.first_time, failed.count, f"failed logon on {failed.host}")
                    + (f"  status {', '.join(failed.statuses)}" if failed.statuses else ""),
                    style="red",
                )
            )
        for use in answer.credentials_used_by:
            servers = ", ".join(use.target_servers)
            tree.add(
                Text(
                    _fact(
                        use.first_time,
                        use.count,
                        f"credentials used by "
                        f"{process_name(use.process)} {use.process.get('uid', '')}",
                    )
                    + (f" for {servers}" if servers else ""),
                    style="magenta",
                )
            )
        console.print(tree)
    if any(a.truncated for a in found.accounts):
        typer.secho("(lists cut at --limit; --json has the same cut)", err=True)


_ACTION_VERBS = {
    "ACCESSED_SHARE": "share",
    "INSTALLED_SERVICE": "installed service",
    "CHANGED_TASK": "task",
}


def _action(action: dict[str, Any]) -> str:
    verb = _ACTION_VERBS.get(str(action.get("kind")), str(action.get("kind")))
    extra = ", ".join(
        str(x) for x in (action.get("ops") or []) + (action.get("relative_targets") or [])[:3]
    )
    what = f"{verb} {action.get('target')}" + (f" ({extra})" if extra else "")
    return _fact(action.get("first_time"), action.get("count"), what)
