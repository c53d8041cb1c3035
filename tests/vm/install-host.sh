#!/usr/bin/env bash
# Install the host tools the VM harness needs. Idempotent and quick when already done.
#
# qemu-system-x86 comes from bookworm-backports through a PRIVATE apt source list (/etc/apt is
# left untouched): the machine image ships qemu-utils 10.x from backports, which breaks
# bookworm's qemu-system-common 7.2, so the matching qemu 10.x system emulator is needed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v debootstrap >/dev/null || need+=(debootstrap)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v mksquashfs >/dev/null || need+=(squashfs-tools)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
command -v cpio >/dev/null || need+=(cpio)
command -v zstd >/dev/null || need+=(zstd)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
[ ${#need[@]} -eq 0 ] && { log "host tools present"; exit 0; }

log "installing host packages: ${need[*]}"
apt_dir=$CACHE/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
cat > "$apt_dir/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR bookworm-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR bookworm-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
SRC
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")
export DEBIAN_FRONTEND=noninteractive
# Refresh the private lists at most once a day.
if [ -z "$(find "$apt_dir/lists" -maxdepth 1 -name '*backports*Packages*' -mtime -1 2>/dev/null)" ]; then
  apt-get "${apt_opts[@]}" -q update
fi
plain=()
qemu=0
for p in "${need[@]}"; do
  case $p in qemu-system-x86) qemu=1 ;; *) plain+=("$p") ;; esac
done
# --no-install-recommends: no daemons, no GUI bits.
if [ ${#plain[@]} -gt 0 ]; then
  apt-get "${apt_opts[@]}" -q -y --no-install-recommends install "${plain[@]}"
fi
# qemu and its own dependencies from backports (-t), nothing else.
if [ $qemu = 1 ]; then
  apt-get "${apt_opts[@]}" -q -y --no-install-recommends -t bookworm-backports install qemu-system-x86
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 still missing after install"
