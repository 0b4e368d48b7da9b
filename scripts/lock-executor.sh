#!/usr/bin/env bash
# Regenerate constraints-executor.txt: resolve requirements-executor.txt in a fresh venv (nothing
# installed, `pip install --dry-run --report`) and pin every package the image would install.
# Needs the package index; run it after changing requirements-executor.txt, then run tests/test_image.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3.11}"
tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT
"${PYTHON}" -m venv "${tmp}/venv"
"${tmp}/venv/bin/python" -m pip install --quiet --upgrade pip
"${tmp}/venv/bin/python" -m pip install --quiet --dry-run --ignore-installed --only-binary=:all: \
  --report "${tmp}/report.json" -r requirements-executor.txt
{
  sed -n '1,/^# tests\/test_image.py/p' constraints-executor.txt
  "${tmp}/venv/bin/python" - "${tmp}/report.json" <<'PY'
import json, re, sys
report = json.load(open(sys.argv[1]))
names = sorted(f"{re.sub(r'[-_.]+', '-', i['metadata']['name']).lower()}=={i['metadata']['version']}"
               for i in report["install"])
print("\n".join(names))
PY
} > "${tmp}/constraints.txt"
mv "${tmp}/constraints.txt" constraints-executor.txt
echo "constraints-executor.txt: $(grep -c '==' constraints-executor.txt) pins"
