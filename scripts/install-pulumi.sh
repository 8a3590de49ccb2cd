#!/usr/bin/env bash
# Makes the Pulumi CLI of exactly the installed @pulumi/pulumi version available under .tools/bin:
#   pulumi                          the CLI
#   pulumi-language-nodejs          the Node.js language host: the official one when it can be had,
#                                   else this project's own (tools/languageHost), which the CLI starts
#                                   the same way
#   pulumi-resource-pulumi-nodejs   the dynamic-provider plugin shipped inside @pulumi/pulumi
#
# Sources, in order:
#   1. .tools/bin/pulumi already at that version (a second run takes seconds);
#   2. a `pulumi` on PATH at that version;
#   3. the official installer, when it is reachable;
#   4. a build from Go modules: scripts/pulumi-cli/go.mod pins github.com/pulumi/pulumi/pkg/v3 and
#      sdk/v3 to the same version (with pkg's non-local replace directives) and go.sum pins every
#      module's hash, so no checksum database is needed.
#
# The official language host lives in a Go module without version tags; it is pinned by the
# release commit's pseudo-version. Where the module proxy does not serve that version, this
# project's own host is installed instead: a small script that runs lib/tools/languageHost/main.js
# with node (it serves the same LanguageRuntime gRPC service and runs programs through
# @pulumi/pulumi/cmd/run from the program's node_modules, like the official one). Every run tries
# the official host again while ours is the one installed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/bin"
wrapper="$root/scripts/pulumi-cli"
mkdir -p "$bin"

log() { printf '[install-pulumi] %s\n' "$*"; }

sdk_pkg="$root/node_modules/@pulumi/pulumi/package.json"
if [[ ! -f "$sdk_pkg" ]]; then
    log "node_modules/@pulumi/pulumi is missing: run npm ci first" >&2
    exit 1
fi
version="$(node -p "require('$sdk_pkg').version")"
want="v$version"

cli_version() { "$1" version 2>/dev/null | head -n1 | tr -d '[:space:]'; }

link_dynamic_provider() {
    ln -sf "$root/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs" "$bin/pulumi-resource-pulumi-nodejs"
}

# Release commit of v$version; the language host's pseudo-version is derived from it.
language_host_commit_for() {
    case "$1" in
        3.248.0) echo "a88168d865b7fd428e5a929cc54aeceaf72d203f 20260624120734" ;;
        *) echo "" ;;
    esac
}

build_language_host() {
    local pin commit stamp pseudo mod tmp
    pin="$(language_host_commit_for "$version")"
    if [[ -z "$pin" ]]; then
        log "no pinned language-host commit for $version: skipping pulumi-language-nodejs"
        return 0
    fi
    read -r commit stamp <<<"$pin"
    pseudo="v3.0.0-$stamp-${commit:0:12}"
    mod="github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3"
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" RETURN
    if ! (cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$mod@$pseudo" >"$tmp/dl.json" 2>&1); then
        log "pulumi-language-nodejs $pseudo is not served by the Go module proxy here:"
        log "  $(grep -o '"Error": "[^"]*' "$tmp/dl.json" | head -c 300 || true)"
        return 1
    fi
    log "building pulumi-language-nodejs $pseudo"
    cp "$wrapper/go.mod" "$wrapper/go.sum" "$tmp/"
    (
        cd "$tmp"
        GOFLAGS=-mod=mod go get "$mod@$pseudo" "github.com/pulumi/pulumi/pkg/v3@$want" "github.com/pulumi/pulumi/sdk/v3@$want"
        GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$want" \
            -o "$bin/pulumi-language-nodejs.tmp" "$mod"
    ) || return 1
    mv "$bin/pulumi-language-nodejs.tmp" "$bin/pulumi-language-nodejs"
}

own_host_marker="pulumi-airgap language host"

install_own_language_host() {
    local main_js="$root/lib/tools/languageHost/main.js"
    if [[ ! -f "$main_js" ]]; then
        log "building the project (the language host runs from lib/)"
        (cd "$root" && npx tsc -p tsconfig.json) || true
    fi
    if [[ ! -f "$main_js" ]]; then
        log "$main_js is missing after the build: cannot install a language host" >&2
        exit 1
    fi
    cat >"$bin/pulumi-language-nodejs.tmp" <<EOF
#!/bin/sh
# $own_host_marker (tools/languageHost), installed because the official
# pulumi-language-nodejs could not be had on this machine.
exec node "$main_js" "\$@"
EOF
    chmod 755 "$bin/pulumi-language-nodejs.tmp"
    mv "$bin/pulumi-language-nodejs.tmp" "$bin/pulumi-language-nodejs"
    log "installed this project's Node.js language host: $bin/pulumi-language-nodejs -> $main_js"
}

install_language_host() {
    local present="$bin/pulumi-language-nodejs"
    if [[ -x "$present" ]] && ! grep -qs "$own_host_marker" "$present"; then
        log "official pulumi-language-nodejs already in .tools/bin"
        return 0
    fi
    if build_language_host; then
        log "installed the official pulumi-language-nodejs"
        return 0
    fi
    install_own_language_host
}

build_cli_from_go_modules() {
    local pinned
    pinned="$(awk '$1=="github.com/pulumi/pulumi/pkg/v3" {print $2}' "$wrapper/go.mod")"
    if [[ "$pinned" != "$want" ]]; then
        log "scripts/pulumi-cli/go.mod pins pkg/v3 $pinned but @pulumi/pulumi is $version." >&2
        log "Update it: set both pulumi requirements to $want, copy pkg's non-local replace directives, run 'go mod tidy'." >&2
        exit 1
    fi
    command -v go >/dev/null || { log "go is not installed: cannot build the Pulumi CLI" >&2; exit 1; }
    log "building pulumi $want from Go modules (a cold build takes several minutes)"
    local start=$SECONDS
    (
        cd "$wrapper"
        GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath \
            -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$want" \
            -o "$bin/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    )
    mv "$bin/pulumi.tmp" "$bin/pulumi"
    log "built pulumi $want in $((SECONDS - start))s"
}

install_with_official_installer() {
    local script
    script="$(mktemp)"
    if ! curl -fsSL --max-time 10 -o "$script" https://get.pulumi.com/install.sh 2>/dev/null; then
        rm -f "$script"
        return 1
    fi
    log "installing pulumi $version with the official installer"
    if ! sh "$script" --version "$version" --install-root "$root/.tools/pulumi" --no-edit-path >/dev/null; then
        rm -f "$script"
        return 1
    fi
    rm -f "$script"
    for f in "$root"/.tools/pulumi/bin/*; do ln -sf "$f" "$bin/$(basename "$f")"; done
    return 0
}

if [[ -x "$bin/pulumi" && "$(cli_version "$bin/pulumi")" == "$want" ]]; then
    log "pulumi $want already in .tools/bin"
elif command -v pulumi >/dev/null && [[ "$(cli_version "$(command -v pulumi)")" == "$want" ]]; then
    onpath="$(command -v pulumi)"
    log "using pulumi $want from $onpath"
    ln -sf "$onpath" "$bin/pulumi"
    if [[ -x "$(dirname "$onpath")/pulumi-language-nodejs" ]]; then
        ln -sf "$(dirname "$onpath")/pulumi-language-nodejs" "$bin/pulumi-language-nodejs"
    fi
elif [[ "${PULUMI_AIRGAP_NO_INSTALLER:-}" != "1" ]] && install_with_official_installer; then
    :
else
    build_cli_from_go_modules
fi

install_language_host
link_dynamic_provider

got="$(cli_version "$bin/pulumi")"
if [[ "$got" != "$want" ]]; then
    log "pulumi in .tools/bin reports '$got', expected $want" >&2
    exit 1
fi
host_kind="official"
grep -qs "$own_host_marker" "$bin/pulumi-language-nodejs" && host_kind="this project's"
log "ready: $bin/pulumi $got + pulumi-language-nodejs ($host_kind) + pulumi-resource-pulumi-nodejs"
