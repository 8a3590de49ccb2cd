#!/usr/bin/env bash
# Everything a fresh clone needs, idempotent: Debian packages, npm packages, the Pulumi CLI, the build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/install-system.sh

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
    echo "[setup] npm ci"
    npm ci --no-audit --no-fund
else
    echo "[setup] npm packages present"
fi

bash scripts/install-pulumi.sh
