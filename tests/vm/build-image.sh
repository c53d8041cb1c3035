#!/usr/bin/env bash
# Build (once, cached in $CACHE) the Debian 12 guest: debootstrap'ed rootfs with systemd, snapd and
# AppArmor, its kernel and a small initramfs, an ssh key, and a raw ext4 disk image made from the
# rootfs. Every stage leaves a stamp file; delete $CACHE (or one stamp) to rebuild from there.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ROOT=$CACHE/rootfs
# Bump when the package list or the configuration below changes: it invalidates the cached image.
IMAGE_VERSION=4
PACKAGES=systemd,systemd-sysv,dbus,dbus-user-session,udev,kmod,snapd,squashfs-tools,apparmor,\
linux-image-amd64,initramfs-tools,openssh-server,iproute2,procps,curl,less,ca-certificates

mkdir -p "$CACHE/debcache" "$CACHE/boot" "$CACHE/ssh"

# Unmount whatever debootstrap or a chroot left mounted below the rootfs (/proc, /sys, ...)
# before anything deletes or images it.
umount_tree() {
  local m
  for m in $(awk -v r="$ROOT/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" || true
  done
}
trap umount_tree EXIT

debootstrap_stage() {
  [ -e "$ROOT/.stamp-debootstrap-$IMAGE_VERSION" ] && { log "rootfs cached"; return; }
  umount_tree
  rm -rf --one-file-system "$ROOT"
  mkdir -p "$ROOT"
  # minbase + the packages snapd needs to run for real: systemd as PID 1 (snap mounts and
  # services are systemd units), dbus-user-session (snapd's user-session support), AppArmor
  # userspace (snapd loads profiles with apparmor_parser).
  debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$CACHE/debcache" \
    bookworm "$ROOT" "$DEBIAN_MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    { tail -30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
  touch "$ROOT/.stamp-debootstrap-$IMAGE_VERSION"
}

configure_stage() {
  [ -e "$ROOT/.stamp-configure-$IMAGE_VERSION" ] && { log "rootfs configured"; return; }
  [ -e "$SSH_KEY" ] || ssh-keygen -q -t ed25519 -N '' -C pocketses-vm -f "$SSH_KEY"
  echo pocketses-vm >"$ROOT/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 pocketses-vm\n' >"$ROOT/etc/hosts"
  echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$ROOT/etc/fstab"
  # Network: DHCP from qemu's user-mode stack (which has no route to the outside: restrict=on).
  mkdir -p "$ROOT/etc/systemd/network"
  printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n' >"$ROOT/etc/systemd/network/20-wired.network"
  ln -sf /lib/systemd/system/systemd-networkd.service \
    "$ROOT/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
  # Root logs in with the harness key only; the serial console autologins for debugging.
  install -d -m 700 "$ROOT/root/.ssh"
  install -m 600 "$SSH_KEY.pub" "$ROOT/root/.ssh/authorized_keys"
  mkdir -p "$ROOT/etc/systemd/system/serial-getty@ttyS0.service.d"
  printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear %%I 115200 linux\n' \
    >"$ROOT/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf"
  printf 'UseDNS no\nPermitRootLogin prohibit-password\n' >"$ROOT/etc/ssh/sshd_config.d/pocketses.conf"
  # Nothing slow or networked at boot: timers and wait-online would only burn TCG time.
  for u in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer \
    logrotate.timer systemd-networkd-wait-online.service systemd-timesyncd.service \
    snapd.autoimport.service snapd.recovery-chooser-trigger.service; do
    ln -sf /dev/null "$ROOT/etc/systemd/system/$u"
  done
  mkdir -p "$ROOT/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' >"$ROOT/etc/systemd/journald.conf.d/pocketses.conf"
  # Small initramfs: only what mounting an ext4 virtio root needs.
  printf 'MODULES=list\nCOMPRESS=zstd\n' >"$ROOT/etc/initramfs-tools/conf.d/pocketses"
  printf 'virtio_pci\nvirtio_blk\next4\n' >"$ROOT/etc/initramfs-tools/modules"
  chroot "$ROOT" update-initramfs -u -k all >"$CACHE/initramfs.log" 2>&1 ||
    { tail -20 "$CACHE/initramfs.log" >&2; die "update-initramfs failed"; }
  chroot "$ROOT" apt-get clean
  # Host keys: made once here (a throwaway VM; the client ignores them anyway).
  ls "$ROOT"/etc/ssh/ssh_host_*_key >/dev/null 2>&1 || chroot "$ROOT" ssh-keygen -A
  cp "$(ls -1 "$ROOT"/boot/vmlinuz-* | sort -V | tail -1)" "$CACHE/boot/vmlinuz"
  cp "$(ls -1 "$ROOT"/boot/initrd.img-* | sort -V | tail -1)" "$CACHE/boot/initrd.img"
  touch "$ROOT/.stamp-configure-$IMAGE_VERSION"
}

disk_stage() {
  local img=$CACHE/base.img
  [ -e "$img" ] && [ "$img" -nt "$ROOT/.stamp-configure-$IMAGE_VERSION" ] && { log "base disk cached"; return; }
  rm -f "$img" "$CACHE"/seeded*.img
  # Raw ext4 filesystem straight from the directory tree: no partitions, no bootloader
  # (qemu boots the kernel directly with root=/dev/vda).
  umount_tree
  mkfs.ext4 -q -F -L pocketses-root -d "$ROOT" "$img.tmp" 4G >/dev/null
  mv "$img.tmp" "$img"
  # Identity of this base disk, part of the key of the snapshot made from it.
  echo "v$IMAGE_VERSION $(date -u +%s)" >"$img.id"
}

step debootstrap debootstrap_stage
step configure configure_stage
step disk disk_stage
