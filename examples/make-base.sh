#!/usr/bin/env bash
# Makes a base image from Debian packages and imports it into tsbuild's store, offline:
#   make-base.sh busybox   busybox:latest from busybox-static (2 MB, seconds)
#   make-base.sh debian    debian:bookworm from debootstrap --variant=minbase (200 MB, minutes)
set -euo pipefail
kind=${1:-busybox}
here=$(cd "$(dirname "$0")" && pwd)
tsbuild="node $here/../bin/tsbuild.cjs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case $kind in
  busybox)
    root=$work/rootfs
    mkdir -p "$root"/{bin,etc,root,tmp,proc,sys,dev}
    cp /bin/busybox "$root/bin/"
    for a in $("$root/bin/busybox" --list); do [[ $a == busybox ]] || ln -s busybox "$root/bin/$a"; done
    chmod 1777 "$root/tmp"
    echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
    echo 'root:x:0:' > "$root/etc/group"
    tar --numeric-owner -C "$root" -cf "$work/rootfs.tar" .
    $tsbuild import "$work/rootfs.tar" busybox:latest >/dev/null
    echo "base image busybox:latest ready"
    ;;
  debian)
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    debootstrap --variant=minbase bookworm "$work/rootfs" ${mirror:+"$mirror"} >/dev/null
    tar --numeric-owner -C "$work/rootfs" -cf "$work/rootfs.tar" .
    $tsbuild import "$work/rootfs.tar" debian:bookworm >/dev/null
    echo "base image debian:bookworm ready"
    ;;
  *) echo "usage: $0 busybox|debian" >&2; exit 2 ;;
esac
