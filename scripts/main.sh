#!/usr/bin/env bash
# The main job: `pulumi up` of the default stack (Pulumi.yaml, main: lib/index.js) by the real
# Pulumi CLI in this directory, on a local file backend under .pulumi-state/ with passphrase
# secrets (PULUMI_CONFIG_PASSPHRASE, or a fixed local default); data under .data/.
#
#   npm run main                         pulumi up --yes --diff
#   npm run main -- preview [flags]      pulumi preview --diff [flags], e.g. --expect-no-changes
#   npm run main -- refresh | destroy    with --yes
#   npm run main -- <any pulumi command> e.g. config set packages '["hello","jq"]'
#
# AIRGAP_STATE_DIR moves the file backend (default .pulumi-state); AIRGAP_SKIP_SETUP=1 skips the
# install step and the build when both have just run (the end-to-end test of this job).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ "${AIRGAP_SKIP_SETUP:-}" != "1" ]]; then
    bash scripts/setup.sh >&2
    npx tsc -p tsconfig.json >&2
fi

state="${AIRGAP_STATE_DIR:-$root/.pulumi-state}"
mkdir -p "$state"
export PULUMI_BACKEND_URL="file://$state"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-pulumi-airgap-local}"
export PULUMI_HOME="${PULUMI_HOME:-$state/.pulumi-home}"
export PULUMI_SKIP_UPDATE_CHECK=true
export PATH="$root/.tools/bin:$PATH"
stack="${PULUMI_STACK:-dev}"

if ! pulumi stack select "$stack" --non-interactive >/dev/null 2>&1; then
    pulumi stack init "$stack" --secrets-provider passphrase --non-interactive
fi

# The mirror's signing key: made once, kept as a stack secret (encrypted in Pulumi.<stack>.yaml).
if ! pulumi config get signingKey >/dev/null 2>&1; then
    data="$(pulumi config get dataDir 2>/dev/null || echo .data)"
    node scripts/new-signing-key.js "$(cd "$root" && realpath -m "$data")" | pulumi config set --secret signingKey >/dev/null
    echo "[main] made the mirror's signing key: stack secret signingKey" >&2
fi

op="${1:-up}"
shift || true
case "$op" in
    up) exec pulumi up --yes --diff --non-interactive "$@" ;;
    preview) exec pulumi preview --diff --non-interactive "$@" ;;
    refresh | destroy) exec pulumi "$op" --yes --non-interactive "$@" ;;
    *) exec pulumi "$op" "$@" ;;
esac
