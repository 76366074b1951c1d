# One image for every Forewarn service; compose.yaml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 curl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY forewarn ./forewarn
COPY ingest ./ingest
COPY models ./models
COPY api ./api
COPY dashboard ./dashboard
COPY simulator ./simulator
COPY connectors ./connectors
RUN pip install .
RUN useradd --create-home forewarn
USER forewarn
ENV FOREWARN_STATE_DIR=/home/forewarn/state
ENTRYPOINT ["forewarn"]
