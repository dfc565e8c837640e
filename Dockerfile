# syntax=docker/dockerfile:1
# Kairos worker and dispatcher image (one image, two commands):
#   docker build -t kairos .
#   docker run kairos                    # kairos worker
#   docker run kairos kairos dispatcher

# --- build: compilers stay in this stage ------------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python - <<'PY'
import subprocess, sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
subprocess.check_call([sys.executable, "-m", "pip", "install", *deps])
PY
COPY . .
RUN pip install '.[rocksdb]'

# --- runtime -----------------------------------------------------------------
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KAIROS_METRICS_PORT=9100 \
    KAIROS_CONFIG=/app/config/triggers.yaml
RUN useradd --create-home --uid 10001 kairos
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# A default config; docker-compose.yml mounts ./config over it for hot reload.
COPY --chown=kairos:kairos config/ /app/config/
# Faust keeps its table data under the working directory.
RUN chown kairos:kairos /app
USER kairos
EXPOSE 9100 9101
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('KAIROS_METRICS_PORT', '9100'), timeout=3)" || exit 1
CMD ["kairos", "worker"]
