from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path, Query
from fastapi.responses import Response
from provgraph.api.deps import GraphDep, Reader
from provgraph.api.problems import Problem, responses
from provgraph.api.routing import secured_router
from provgraph.queries import accounts, provenance
from provgraph.queries.accounts import AccountActivityList
from provgraph.queries.provenance import Contacts, FileProvenanceList, ProcessLineage, Timeline
from pydantic import BaseModel

router = secured_router(prefix="/provenance", tags=["provenance"], responses=responses(404))


def _json(answer: BaseModel) -> Response:
    """The answer encoded by pydantic-core directly: it is a validated model already, and
    FastAPI's response_model path would validate it again and encode it a second time (a
    200-event timeline page spent more CPU there than in reading it). `response_model` still
    documents the shape."""
    return Response(answer.model_dump_json(), media_type="application/json")


@router.get(
    "/processes/{uid:path}",
    response_model=ProcessLineage,
    summary="A process's ancestry, descendants and activity",
    description="Ancestry root first, descendants as trees, and its activity: every kind of "
    "fact counted per process (`facts`: `{WROTE: 24, CONNECTED_TO: 1}`), the first `activity` "
    "of each kind listed.",
)
def process(
    graph: GraphDep,
    _: Reader,
    uid: Annotated[str, Path(description="the process's stable uid")],
    depth: Annotated[int, Query(ge=0, le=10)] = 3,
    ancestry: Annotated[int, Query(ge=0, le=64)] = 64,
    limit: Annotated[int, Query(ge=1, le=5000, description="descendants at most")] = 500,
    activity: Annotated[
        int,
        Query(
            ge=0,
            le=5000,
            description="files written, connections, runs listed per kind at most; `facts` "
            "counts them all and `/graph/facts` pages through one kind",
        ),
    ] = 50,
) -> Response:
    return _json(
        provenance.process_lineage(
            graph, uid=uid, depth=depth, ancestry=ancestry, limit=limit, activity=activity
        )
    )


@router.get(
    "/files",
    response_model=FileProvenanceList,
    summary="Who wrote a file, from which process tree, and what ran it",
    description="`path` as logged; with `host` the one file on that host, else the "
    "file of that path on every host.",
)
def file(
    graph: GraphDep,
    _: Reader,
    path: Annotated[str, Query(min_length=1, max_length=4096)],
    host: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> Response:
    return _json(
        FileProvenanceList(
            files=provenance.file_provenance(graph, path=path, host=host, limit=limit)
        )
    )


@router.get(
    "/hosts/{host}/timeline",
    response_model=Timeline,
    summary="A host's events in time order, paged",
    responses=responses(400),
)
def timeline(
    graph: GraphDep,
    _: Reader,
    host: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    cursor: str | None = None,
) -> Response:
    for value in (since, until):
        if value is not None and value.tzinfo is None:
            raise Problem(
                422, "times need a timezone (e.g. 2024-05-01T10:00:00Z)", slug="validation"
            )
    return _json(
        provenance.host_timeline(
            graph, host=host, since=since, until=until, limit=limit, cursor=cursor
        )
    )


@router.get(
    "/contacts",
    response_model=Contacts,
    summary="Who contacted an IP address or a host name",
    description="Connections to the address (or to a name, and to every address the "
    "name resolved to), with the processes that made them.",
    responses=responses(400),
)
def contacts(
    graph: GraphDep,
    _: Reader,
    ip: Annotated[str | None, Query(max_length=64)] = None,
    hostname: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> Response:
    if not ip and not hostname:
        raise Problem(400, "give `ip` or `hostname`", slug="missing-parameter")
    return _json(provenance.contacts(graph, ip=ip, hostname=hostname, limit=limit))


@router.get(
    "/accounts/{account:path}",
    response_model=AccountActivityList,
    summary="What an account did, on which hosts, from which logon",
    description="`account` is a SID (S-1-5-21-…), DOMAIN\\name or a bare name, any case. "
    "Per account: its logon sessions by host with the processes that ran in each and what "
    "the session did (shares, service installs, scheduled tasks), processes that ran as it "
    "outside a known session, its failed logons and who used its credentials (4648).",
)
def account(
    graph: GraphDep,
    _: Reader,
    account: Annotated[str, Path(max_length=512, description="SID, DOMAIN\\name or name")],
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> AccountActivityList:
    return accounts.account_activity(graph, account=account, limit=limit)
