#!/usr/bin/env bash
# Installs what bench needs on Debian 12 and skips whatever is already there:
# the workload tools (Debian packages, netperf from the non-free component), a virtual
# environment in .venv, and bench itself with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# shellcheck source=scripts/daemon.sh
. scripts/daemon.sh

# The Debian packages: one list, scripts/packages.txt, which the Ansible roles read too
# ('#' starts a comment; names are separated by spaces or lines).
[ -r scripts/packages.txt ] || { echo "setup: scripts/packages.txt is missing" >&2; exit 1; }
mapfile -t PACKAGES < <(sed 's/#.*//' scripts/packages.txt | tr -s '[:space:]' '\n' | sed '/^$/d')

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    # netperf is in Debian's non-free component, which a default install does not enable
    # (a whole word: Debian 12's default sources name `non-free-firmware`, which is not it).
    if [[ " ${missing[*]} " == *" netperf "* ]] && ! grep -rqsE '(^|[[:space:]])non-free([[:space:]]|$)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        $SUDO tee /etc/apt/sources.list.d/bench-non-free.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    $SUDO apt-get update -q
    # Redis, MariaDB and sshd would start as system services on install: bench starts its own
    # servers, on its own ports and data folders (and the --client-host tests their own sshd),
    # so the packages' services are kept from starting (policy-rc.d 101) unless the machine
    # already has a policy of its own.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy"
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        || { [ -z "$policy" ] || $SUDO rm -f "$policy"; exit 1; }
    [ -z "$policy" ] || $SUDO rm -f "$policy"
fi

# The tools and every package they depend on at the release's current point and security
# updates: the image is built so (bench/image.py), and bench's parity check refuses to compare a
# host whose libraries (libssl, zlib, libkrb5... under sysbench) are older files than the
# image's. Only packages already installed are upgraded, and only within the release.
mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "${PACKAGES[@]}" 2>/dev/null | grep -E '^[a-z0-9]' | sort -u)
# and the base system every image has (debootstrap's Essential, required and important
# packages: bash, which the xz workload runs, is in no tool's dependencies)
mapfile -t -O "${#closure[@]}" closure < <(dpkg-query -W -f='${Package} ${Essential} ${Priority}\n' \
    | awk '$2 == "yes" || $3 == "required" || $3 == "important" { print $1 }')
installed=()
for p in "${closure[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && installed+=("$p")
done
if [ ${#installed[@]} -gt 0 ]; then
    [ ${#missing[@]} -gt 0 ] || $SUDO apt-get update -q >/dev/null
    stale=$(apt list --upgradable 2>/dev/null | cut -d/ -f1 | sort -u | comm -12 - <(printf '%s\n' "${installed[@]}" | sort -u))
    if [ -n "$stale" ]; then
        echo "setup: updating the tools' packages to the release's current versions (as in the image):" $stale
        # shellcheck disable=SC2086
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --only-upgrade --no-install-recommends $stale
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
fi
# Reinstall only when the project's requirements or the extras asked for changed.
EXTRAS="test,docker,libvirt"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $EXTRAS"
stamp=.venv/.bench-installed
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing bench[$EXTRAS] into .venv"
    .venv/bin/pip install -q -e ".[$EXTRAS]"
    echo "$want" > "$stamp"
fi

# dockerd: started here when it is not running (a fresh machine without systemd, or CI).
# On a host where systemd manages docker.io, it is already up and this does nothing.
if ! timeout 10 docker info >/dev/null 2>&1; then
    echo "setup: starting dockerd (log: /var/log/bench-dockerd.log)"
    start_daemon /var/log/bench-dockerd.log dockerd
    for _ in $(seq 60); do timeout 5 docker info >/dev/null 2>&1 && break; sleep 0.5; done
    timeout 10 docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/bench-dockerd.log" >&2; exit 1; }
fi

# /dev/kvm as a normal Debian install has it (udev: root:kvm 0660). Where no udev ran it is
# root-only; libvirt then sees KVM in its QEMU probe but not for the guest user, finds its
# capability cache "outdated" on every domain start and re-probes QEMU: ~50 s per start.
# Before libvirtd starts: its first QEMU probe must see the final permissions.
if [ -c /dev/kvm ] && [ "$(stat -c %G /dev/kvm)" != kvm ] && getent group kvm >/dev/null; then
    echo "setup: giving /dev/kvm Debian's usual owner and mode (root:kvm 0660)"
    $SUDO chgrp kvm /dev/kvm && $SUDO chmod 0660 /dev/kvm
fi

# libvirtd and virtlogd: started here when they are not running (no systemd, or CI).
if ! timeout 10 virsh -c qemu:///system version >/dev/null 2>&1; then
    echo "setup: starting libvirtd and virtlogd"
    pgrep -x virtlogd >/dev/null || start_daemon /var/log/bench-virtlogd.log virtlogd -d
    pgrep -x libvirtd >/dev/null || start_daemon /var/log/bench-libvirtd.log libvirtd -d
    # A fresh libvirtd probes QEMU's capabilities before it answers: up to a minute here.
    for _ in $(seq 240); do timeout 5 virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.5; done
    timeout 10 virsh -c qemu:///system version >/dev/null 2>&1 || { echo "setup: libvirtd did not start" >&2; exit 1; }
fi

