#!/usr/bin/env bash
# Host tools for the VM tests (qemu from bookworm-backports through a private apt list,
# debootstrap, busybox-static, squashfs-tools, python3-yaml, ...). Idempotent; fast when done.
set -euo pipefail
bash "$(dirname "$0")/../../tests/vm/install-host.sh"
