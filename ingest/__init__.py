"""Telemetry parsers: raw records in, normalised `Event`s (and dead letters) out.

Nothing here knows Neo4j. Entry points: `ingest.reader.iter_events` for files and streams,
`ingest.detect.detect` for format detection, one `parse_*` function per source module.
"""
