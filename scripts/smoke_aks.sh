#!/usr/bin/env bash
# Deploy smoke check of the AKS services, after `helm upgrade --atomic --wait` (deploy-executor.yml,
# .gitlab-ci.yml): port-forwards every running (not terminating) executor and ingestor pod of the
# release to the runner and runs scripts/smoke_services.py on them. Usage:
#   bash scripts/smoke_aks.sh NAMESPACE [RELEASE]
# SMOKE_TIMEOUT (s, default 120) bounds the retries; SMOKE_FIRST_PORT (default 18000) the local ports.
# tests/test_smoke_services.py runs it with a stand-in kubectl against the real executor HTTP app.
set -euo pipefail

namespace=$1
release=${2:-marketflow}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
port=${SMOKE_FIRST_PORT:-18000}
forwards=()
args=()

cleanup() {
  for pid in "${forwards[@]}"; do kill "${pid}" 2>/dev/null || true; done
}
trap cleanup EXIT

live='{{range .items}}{{if not .metadata.deletionTimestamp}}{{.metadata.name}}{{"\n"}}{{end}}{{end}}'
for service in executor ingestor; do
  pods=$(kubectl -n "${namespace}" get pods -o go-template="${live}" \
    -l "app.kubernetes.io/instance=${release},app.kubernetes.io/name=${service}")
  for pod in ${pods}; do
    kubectl -n "${namespace}" port-forward "pod/${pod}" "${port}:8000" >/dev/null 2>&1 &
    forwards+=("$!")
    args+=("--${service}" "http://127.0.0.1:${port}")
    port=$((port + 1))
  done
done
if [[ ${#args[@]} -eq 0 ]]; then
  echo "smoke: FAILED: no running executor or ingestor pod of release ${release} in ${namespace}" >&2
  exit 1
fi
python3 "${here}/smoke_services.py" "${args[@]}" --timeout "${SMOKE_TIMEOUT:-120}"
