#!/usr/bin/env bash
# Everything a fresh clone needs, idempotent: Debian packages, npm packages, the Pulumi CLI, the build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/install-system.sh

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
    # `npm install` rather than `npm ci`: registries that serve only this platform's optional
    # packages (biome's per-platform binaries) leave the others out of the lock, which npm ci rejects.
    echo "[setup] npm install"
    npm install --no-audit --no-fund
else
    echo "[setup] npm packages present"
fi

bash scripts/install-pulumi.sh
