#!/usr/bin/env bash
# Installs, when missing, the Debian packages the tests use as real parts and judges:
# the registry and image client, aptly and the APT tools, disk-image tools, a KVM virtual machine
# and debootstrap for its base image, and an SSH server.
set -euo pipefail

packages=(
    docker-registry skopeo aptly
    qemu-utils qemu-system-x86 e2fsprogs fdisk xorriso genisoimage debootstrap
    dpkg-dev apt-utils apt-file dctrl-tools gnupg xz-utils openssl apache2-utils
    openssh-server openssh-client sudo
    containerd docker.io
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "[install-system] all ${#packages[@]} Debian packages present"
    exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "[install-system] need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
echo "[install-system] installing: ${missing[*]}"
"${sudo[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
