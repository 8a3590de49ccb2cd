#!/usr/bin/env bash
# The main job: `pulumi up` of the default stack (Pulumi.yaml) on a local file backend under
# .pulumi-state/, passphrase secrets, data under .data/. Arguments: up (default), preview,
# refresh, destroy.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh >&2
npx tsc -p tsconfig.json
node lib/tools/main.js "$@"
