# The executor service image (AKS). The Function App deploys from requirements.txt instead.
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN python -m pip install --upgrade pip && python -m pip install -r requirements.txt

COPY shared/ shared/
COPY aks_executor/ aks_executor/

# Never root: the executor holds exchange credentials (from Key Vault via the pod identity).
RUN useradd --system --uid 10001 --no-create-home marketflow
USER 10001

CMD ["python", "-m", "aks_executor.main"]
