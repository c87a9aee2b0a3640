"""Routers are authenticated by default: every route built here needs a valid key, and
declares the problem responses that go with it. Health is the one explicit exception."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from provgraph.api.deps import authenticate
from provgraph.api.problems import AUTH_RESPONSES


def secured_router(**kwargs: Any) -> APIRouter:
    return APIRouter(
        dependencies=[Depends(authenticate)],
        responses={**AUTH_RESPONSES, **kwargs.pop("responses", {})},
        **kwargs,
    )
