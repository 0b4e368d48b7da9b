# The AKS services' image: the executor (`python -m aks_executor`, the default command); the
# ingestor runs from the same image with another command (`python -m aks_ingestor`). The Function
# App deploys from requirements.txt instead: this image installs requirements-executor.txt under
# constraints-executor.txt (every transitive package pinned, wheels only): no azure-functions, no
# pyarrow, no sample data. tests/test_image.py checks this file's structure offline.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# checkov:skip=CKV_DOCKER_7:both stages are FROM ${PYTHON_IMAGE}, pinned to the version tag above; checkov does not resolve ARGs

# --- build: a virtualenv with the pinned dependencies -----------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements-executor.txt constraints-executor.txt /tmp/deps/
RUN /opt/venv/bin/python -m pip install --only-binary=:all: \
        -r /tmp/deps/requirements-executor.txt -c /tmp/deps/constraints-executor.txt \
    && /opt/venv/bin/python -m pip check

# --- runtime: the venv and our code, nothing else ---------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PATH=/opt/venv/bin:$PATH \
    MARKETFLOW_HTTP_PORT=8000 \
    MARKETFLOW_STATE_DIR=/var/lib/marketflow
# Never root: the executor holds exchange credentials (from Key Vault via the workload identity).
# Its state (the SQLite intent store, the file lease) lives in /var/lib/marketflow, the one path
# it writes: mount a persistent volume there.
RUN groupadd --system --gid 10001 marketflow \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin marketflow \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/marketflow
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# .dockerignore keeps shared/samples' data, caches and tests out of the context.
COPY shared/ shared/
COPY aks_executor/ aks_executor/
COPY aks_ingestor/ aks_ingestor/
USER 10001:10001
EXPOSE 8000
# /healthz answers while the process's loop runs (the slim image has no curl: Python's urllib).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('MARKETFLOW_HTTP_PORT', '8000'), timeout=2)"]
# Kubernetes sends SIGTERM to PID 1, which is Python itself here (exec form): it drains,
# checkpoints, releases the lease and exits within MARKETFLOW_SHUTDOWN_GRACE_S.
CMD ["python", "-m", "aks_executor"]
