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

# The default stack (Pulumi.yaml here) uses this package by name, as a deployment repository does:
# its dynamic providers require "pulumi-airgap/provider/..." from the provider plugin's process.
if [[ ! -e node_modules/pulumi-airgap ]]; then
    ln -s .. node_modules/pulumi-airgap
fi

bash scripts/install-pulumi.sh
