"""Detection: rules as data (YAML holding read-only Cypher), the engine that runs them, and
the alerts they produce. `queries.reference` holds a plain pandas transcription of every rule,
used as the correctness oracle for the Cypher."""
