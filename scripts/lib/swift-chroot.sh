#!/usr/bin/env bash
# Swift toolchain for the Linux-side Swift tests: Debian trixie's `swiftlang` (Swift 6.0.3, with
# Foundation and XCTest) in a debootstrap chroot kept under a cache folder, so the host (bookworm,
# which has no Swift package) is left untouched. Sourced by scripts/test-swift.
#
#   swift_chroot_ensure            creates the chroot once (idempotent; reuses the cache)
#   swift_chroot_run REPO CMD...   runs CMD inside it with /proc mounted and REPO bind-mounted at
#                                  /repo; everything is unmounted again when CMD returns
#
# Environment: JOULE_SWIFT_CHROOT (default /var/cache/joule/swift-trixie when root, else
# ~/.cache/joule/swift-trixie; debootstrap needs root either way), JOULE_DEBIAN_MIRROR (default:
# the mirror the host's apt sources use, else http://deb.debian.org/debian).

swift_chroot_dir() {
  if [ -n "${JOULE_SWIFT_CHROOT:-}" ]; then echo "$JOULE_SWIFT_CHROOT"
  elif [ "$(id -u)" -eq 0 ]; then echo /var/cache/joule/swift-trixie
  else echo "$HOME/.cache/joule/swift-trixie"; fi
}

swift_sudo() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# The host's own Debian mirror (first deb.debian.org-style URI in its apt sources).
swift_host_mirror() {
  if [ -n "${JOULE_DEBIAN_MIRROR:-}" ]; then echo "$JOULE_DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -rhoE '(URIs:[[:space:]]*|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | grep -oE 'https?://[^[:space:]]+/debian' | head -n 1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

swift_chroot_ensure() {
  local dir; dir=$(swift_chroot_dir)
  if [ -x "$dir/usr/bin/swift" ] && [ -f "$dir/.joule-swift-ready" ]; then return 0; fi
  if [ "$(uname -s)" != Linux ]; then
    echo "swift-chroot: the chroot is for Linux hosts; on macOS run 'swift test' in ios/JouleKit directly" >&2
    return 1
  fi
  if ! command -v debootstrap >/dev/null; then
    echo "swift-chroot: installing debootstrap on the host" >&2
    swift_sudo apt-get update -qq
    swift_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
  fi
  local mirror; mirror=$(swift_host_mirror)
  echo "swift-chroot: building $dir from $mirror (trixie, once; several minutes)" >&2
  swift_sudo mkdir -p "$dir"
  if [ ! -x "$dir/usr/bin/apt-get" ]; then
    # A partial earlier attempt leaves debootstrap state behind; start clean, but never
    # delete through a mount left by an interrupted run (it could be the repository).
    if grep -q " $dir/" /proc/mounts; then
      echo "swift-chroot: something is still mounted under $dir; unmount it first" >&2
      return 1
    fi
    swift_sudo rm -rf "$dir"; swift_sudo mkdir -p "$dir"
    swift_sudo nice -n 10 debootstrap --variant=minbase trixie "$dir" "$mirror"
  fi
  swift_sudo mount -t proc proc "$dir/proc"
  local rc=0
  swift_sudo nice -n 10 chroot "$dir" /bin/sh -c '
    set -e
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends swiftlang libc6-dev libstdc++-14-dev \
      ca-certificates >/dev/null
    apt-get clean
    swift --version' || rc=$?
  swift_sudo umount "$dir/proc" || true
  [ "$rc" -eq 0 ] || { echo "swift-chroot: installing swiftlang failed (rc=$rc)" >&2; return "$rc"; }
  swift_sudo touch "$dir/.joule-swift-ready"
}

# Runs "$@" inside the chroot with $1 bind-mounted at /repo and, when SWIFT_CHROOT_MODELS names
# a host folder, that folder read-only at /models. Unmounts on any exit path.
swift_chroot_run() {
  local repo=$1; shift
  local dir; dir=$(swift_chroot_dir)
  swift_sudo mkdir -p "$dir/repo" "$dir/models"
  _swift_chroot_cleanup() {
    local d; d=$(swift_chroot_dir)
    mountpoint -q "$d/models" && swift_sudo umount "$d/models"
    mountpoint -q "$d/repo" && swift_sudo umount "$d/repo"
    mountpoint -q "$d/dev" && swift_sudo umount "$d/dev"
    mountpoint -q "$d/proc" && swift_sudo umount "$d/proc"
    return 0
  }
  trap _swift_chroot_cleanup EXIT INT TERM
  swift_sudo mount -t proc proc "$dir/proc"
  swift_sudo mount --bind /dev "$dir/dev"
  swift_sudo mount --bind "$repo" "$dir/repo"
  if [ -n "${SWIFT_CHROOT_MODELS:-}" ]; then
    swift_sudo mount --bind "$SWIFT_CHROOT_MODELS" "$dir/models"
    swift_sudo mount -o remount,bind,ro "$dir/models"
  fi
  local rc=0
  swift_sudo nice -n 10 chroot "$dir" /usr/bin/env -i HOME=/root PATH=/usr/bin:/bin \
    LANG=C.UTF-8 "$@" || rc=$?
  _swift_chroot_cleanup
  trap - EXIT INT TERM
  return "$rc"
}
