"""provgraph's HTTP API: alerts for SOAR, subgraphs for analysts, provenance for responders.

A thin layer over `graph`, `queries` and `ingest`: one folder per domain, each with
`models.py` (pydantic schemas), `service.py` (keyword-only functions over a `Graph`, shared
with the CLI) and `views.py` (routers). Build the app with `api.app.create_app`.
"""
