#!/usr/bin/env bash
# Proves the README's quick start on a fresh Debian 12: builds a minimal root with
# debootstrap in a scratch folder, copies a clean clone of HEAD into it and runs the
# README's two quick-start commands there with chroot. Run by hand (it downloads a few
# hundred MB); exits non-zero if either command fails. Usage: check_fresh_machine.sh [DIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
root="${1:-/var/tmp/bigbatch-fresh-root}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

[ "$(id -u)" -eq 0 ] || { echo "check_fresh_machine.sh: run as root (debootstrap and chroot need it)" >&2; exit 2; }
bash "$repo/scripts/apt_install.sh" debootstrap git

# The two commands exactly as the README's quick start writes them (its first two sh blocks).
mapfile -t commands < <(awk '/^## Quick start/{q=1} q&&/^```sh/{b=1;next} b&&/^```/{b=0;n++;if(n==2)exit;next} b{print}' "$repo/README.md")
[ ${#commands[@]} -eq 2 ] || { echo "check_fresh_machine.sh: README.md's quick start does not hold two sh commands" >&2; exit 2; }

unmount() {
  for m in dev/pts dev proc sys; do umount -l "$root/$m" 2>/dev/null || true; done
}
trap unmount EXIT
unmount
rm -rf "$root"
echo "== debootstrap bookworm into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
  { tail -20 "$root.debootstrap.log"; exit 1; }
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SOURCES
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
# TLS for apt and npm as the host has it: the host's CA bundle (kept apart, so that a
# ca-certificates package installed later cannot replace it) and its resolver.
mkdir -p "$root/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/host-ca.crt"
cp /etc/resolv.conf "$root/etc/resolv.conf"

git clone --quiet --no-local "$repo" "$root/root/bigbatch"
git -C "$root/root/bigbatch" log --oneline -1

run_in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_EXTRA_CA_CERTS=/etc/ssl/host-ca.crt SSL_CERT_FILE=/etc/ssl/host-ca.crt \
    ${CI:+CI=$CI} bash -c "cd /root/bigbatch && $1"
}
status=0
for i in 0 1; do
  echo "== command $((i + 1)): ${commands[$i]}"
  start=$(date +%s)
  if run_in_root "${commands[$i]}"; then
    echo "== command $((i + 1)) passed in $(( $(date +%s) - start )) s"
  else
    echo "== command $((i + 1)) FAILED after $(( $(date +%s) - start )) s"
    status=1
  fi
done
exit $status
