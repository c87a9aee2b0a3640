# The provgraph API for docker-compose users. Neo4j runs in its own official container there.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY provgraph ./provgraph
COPY ingest ./ingest
COPY graph ./graph
COPY queries ./queries
COPY api ./api
RUN pip install --no-cache-dir . && useradd --system --uid 10001 provgraph
USER provgraph
EXPOSE 8000
CMD ["provgraph", "serve", "--host", "0.0.0.0", "--port", "8000"]
