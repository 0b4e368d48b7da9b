#!/usr/bin/env bash
# Regenerate the two lock files, each resolved in a fresh venv with nothing installed
# (`pip install --dry-run --ignore-installed --report`), every package pinned to the exact version:
#   constraints-executor.txt  what the AKS image installs from requirements-executor.txt (wheels only)
#   constraints.txt           the whole .venv `make test` builds (requirements-dev.txt, which includes
#                             the runtime and executor sets), resolved under constraints-executor.txt
#                             so the two agree; `make` and the deploy workflows install with -c it
# Needs the package index. Run it after changing any requirements*.txt, then tests/test_image.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3.11}"
tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT
"${PYTHON}" -m venv "${tmp}/venv"
"${tmp}/venv/bin/python" -m pip install --quiet --upgrade pip

# lock OUT: keep OUT's header (up to its "# tests/test_image.py" line), then one pin per package
# the dry run (the remaining arguments) would install.
lock() {
  local out=$1
  shift
  "${tmp}/venv/bin/python" -m pip install --quiet --dry-run --ignore-installed \
    --report "${tmp}/report.json" "$@"
  {
    sed -n '1,/^# tests\/test_image.py/p' "${out}"
    "${tmp}/venv/bin/python" - "${tmp}/report.json" <<'PY'
import json, re, sys
report = json.load(open(sys.argv[1]))
names = sorted(f"{re.sub(r'[-_.]+', '-', i['metadata']['name']).lower()}=={i['metadata']['version']}"
               for i in report["install"])
print("\n".join(names))
PY
  } > "${tmp}/lock.txt"
  mv "${tmp}/lock.txt" "${out}"
  echo "${out}: $(grep -c '==' "${out}") pins"
}

lock constraints-executor.txt --only-binary=:all: -r requirements-executor.txt
lock constraints.txt -r requirements-dev.txt -c constraints-executor.txt
