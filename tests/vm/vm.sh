# Boot and stop the guest (sourced by tests/vm/run and tests/vm/adhoc).
#
# One VM at a time per cache directory: $RUN holds its pid file, overlay disk and ports.
# Accelerator: TCG by default (`-accel tcg -cpu max`). Nested KVM on this kind of machine starts
# and then hangs in early boot, so KVM is opt-in only: POCKETSES_VM_ACCEL=kvm.

RUN=$CACHE/run
QEMU_PIDFILE=$RUN/qemu.pid
SERIAL_LOG=$RUN/serial.log

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

qemu_pid() { [ -s "$QEMU_PIDFILE" ] && cat "$QEMU_PIDFILE"; }
qemu_alive() { local p; p=$(qemu_pid) && kill -0 "$p" 2>/dev/null; }

# vm_boot DISK: boot DISK (raw or qcow2) in the background; sets SSH_PORT and HTTP_FWD_PORT.
vm_boot() {
  local disk=$1 fmt=raw accel
  [[ $disk == *.qcow2 ]] && fmt=qcow2
  qemu_alive && die "a VM from this cache is already running (pid $(qemu_pid)); run tests/vm/adhoc discard"
  mkdir -p "$RUN"
  rm -f "$QEMU_PIDFILE" "$SERIAL_LOG"
  SSH_PORT=$(free_port)
  HTTP_FWD_PORT=$(free_port)
  echo "$SSH_PORT" >"$RUN/ssh.port"
  echo "$HTTP_FWD_PORT" >"$RUN/http.port"
  case ${POCKETSES_VM_ACCEL:-tcg} in
    kvm) accel=(-accel kvm -cpu host) ;;
    *) accel=(-accel tcg,thread=multi -cpu max) ;;
  esac
  log "booting $(basename "$disk") (${POCKETSES_VM_ACCEL:-tcg}, ssh on 127.0.0.1:$SSH_PORT)"
  # Guest network: qemu user-mode with restrict=on (no outside access at all); only loopback
  # forwards on the host: ssh, and the daemon's HTTP port for host-side checks. VM_NETDEV_EXTRA
  # adds rules (tests/vm/goosebit.sh: a guestfwd to the host's gooseBit).
  nice -n 10 qemu-system-x86_64 -name pocketses-vm "${accel[@]}" -smp 2 -m 2048 \
    -kernel "$CACHE/boot/vmlinuz" -initrd "$CACHE/boot/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 apparmor=1 security=apparmor net.ifnames=0 quiet systemd.show_status=0" \
    -drive "file=$disk,if=virtio,format=$fmt,cache=unsafe,discard=unmap" \
    -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22,hostfwd=tcp:127.0.0.1:$HTTP_FWD_PORT-:9188${VM_NETDEV_EXTRA:+,$VM_NETDEV_EXTRA}" \
    -device virtio-net-pci,netdev=n0 -device virtio-rng-pci \
    -display none -monitor none -serial "file:$SERIAL_LOG" -no-reboot \
    -daemonize -pidfile "$QEMU_PIDFILE" 9>&- || die "qemu did not start"
}

# vm_wait_ready [SECONDS]: ssh answers, then snapd has seeded. Fails (never hangs) at the deadline.
vm_wait_ready() {
  local secs=${1:-420} t0=$SECONDS
  vm_wait_for "$secs" "ssh in the guest" vssh true
  log "ssh up after $((SECONDS - t0))s"
  VSSH_TIMEOUT=$secs vssh "snap wait system seed.loaded" >/dev/null ||
    { vm_debug; die "snapd did not seed within ${secs}s"; }
  log "snapd seeded after $((SECONDS - t0))s"
}

vm_wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until VSSH_TIMEOUT=20 "$@" >/dev/null 2>&1; do
    qemu_alive || { vm_debug; die "qemu exited while waiting for $what"; }
    ((SECONDS < deadline)) || { vm_debug; die "timed out after ${secs}s waiting for $what"; }
    sleep 3
  done
}

vm_debug() {
  log "last lines of the serial console ($SERIAL_LOG):"
  tail -n 25 "$SERIAL_LOG" 2>/dev/null | sed 's/^/  | /' >&2 || true
}

# vm_stop: clean poweroff over ssh, then wait for qemu to exit; kill it if it does not.
vm_stop() {
  local pid i
  pid=$(qemu_pid) || return 0
  if kill -0 "$pid" 2>/dev/null; then
    VSSH_TIMEOUT=20 vssh 'sync; systemctl poweroff --no-block' >/dev/null 2>&1 || true
    for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
  vm_kill
}

# vm_kill: make sure qemu and the ssh master are gone (used by traps on any failure).
vm_kill() {
  local pid i
  ssh_master_stop
  pid=$(qemu_pid) || return 0
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping qemu (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 10); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$QEMU_PIDFILE"
}
