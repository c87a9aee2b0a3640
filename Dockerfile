# The provgraph API (and its /ui console) for docker-compose users. Neo4j runs in its own
# official container there.
FROM node:20-slim AS ui
WORKDIR /ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY provgraph ./provgraph
COPY core ./core
COPY ingest ./ingest
COPY graph ./graph
COPY queries ./queries
COPY api ./api
COPY ui/static ./ui/static
COPY ui/docs ./ui/docs
COPY --from=ui /ui/node_modules ./ui/node_modules
RUN pip install --no-cache-dir . && useradd --system --uid 10001 provgraph
ENV PROVGRAPH_UI_DIR=/app/ui
USER provgraph
EXPOSE 8000
CMD ["provgraph", "serve", "--host", "0.0.0.0", "--port", "8000"]
