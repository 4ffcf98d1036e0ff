# rebalance-bot as a daemon container. `docker run IMAGE` rehearses the paper portfolio: the
# embedded exchange simulator, dry-run, status page and metrics on :8080. Live trading needs
# a config with mode = "live", `--live` on the command line and keys from env or *_FILE secrets
# (docs/operations.md).

# -- build: the locked dependencies, then the bot, into a virtual environment ----------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /venv
ENV PATH=/venv/bin:$PATH
WORKDIR /src
# Dependencies first, so a code change rebuilds only the last layers.
COPY deploy/requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY rebalance_sim ./rebalance_sim
RUN pip install --no-deps . && python -m compileall -q /venv

# -- runtime: the environment, the example configs, a non-root user, /data --------------------
FROM python:3.11-slim
LABEL org.opencontainers.image.title="rebalance-bot" \
      org.opencontainers.image.description="Crypto portfolio rebalancer: spot and perpetuals, dry-run first, audited" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --gid 10001 bot \
 && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin bot \
 && mkdir -p /data \
 && chown 10001:10001 /data
COPY --from=build /venv /venv
WORKDIR /app
COPY config ./config
# The bot writes only to /data (state, audit log, kill switch) and /tmp (matplotlib's cache for
# audit reports), so the root filesystem may be mounted read-only. The status server listens on every interface inside
# the container; publish the port to 127.0.0.1 on the host unless a proxy guards it.
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    REBALANCE_DATA_DIR=/data \
    REBALANCE_SERVER__HOST=0.0.0.0
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('REBALANCE_SERVER__PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]
# Exec form: the bot is PID 1 and receives SIGTERM itself (a clean stop exits 0).
ENTRYPOINT ["rebalance-bot"]
CMD ["run", "--config", "config/paper.toml"]
