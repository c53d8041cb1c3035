# Shared helpers for the VM harness (sourced, not run).
# Everything big lives in $CACHE, outside the repository.

: "${POCKETSES_VM_CACHE:=/var/cache/pocketses-vm}"
CACHE=$POCKETSES_VM_CACHE
VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$VM_DIR/../.." && pwd)
SSH_PORT=${POCKETSES_VM_SSH_PORT:-$(cat "$CACHE/run/ssh.port" 2>/dev/null || echo 2222)}
SSH_KEY=$CACHE/ssh/id_ed25519
DEBIAN_MIRROR=${POCKETSES_VM_MIRROR:-http://deb.debian.org/debian}

log() { printf '[vm %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ssh options: throwaway host key, loopback only, never prompt. One multiplexed connection
# (ControlMaster): a key exchange costs 10-20 s in an emulated guest on a busy host.
# ssh_master_stop closes the master; it also dies with the guest.
SSH_OPTS=(-i "$SSH_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=4
  -o ControlMaster=auto -o "ControlPath=$CACHE/run/ssh-%p.sock" -o ControlPersist=600
  -o KexAlgorithms=curve25519-sha256 -o HostKeyAlgorithms=ssh-ed25519)

ssh_master_stop() {
  ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" -O exit root@127.0.0.1 >/dev/null 2>&1 || true
}

# vssh CMD...: run a command in the guest as root. Bounded by $VSSH_TIMEOUT (default 600 s).
# (fd 9, the run lock, is closed so that a persisting ssh master does not hold it)
vssh() { timeout --kill-after=10 "${VSSH_TIMEOUT:-600}" ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" root@127.0.0.1 "$@" 9>&-; }

# vscp SRC... DEST: copy files into the guest (DEST is a guest path).
vscp() {
  local dest=${*: -1} srcs=("${@:1:$#-1}")
  timeout --kill-after=10 600 scp -q "${SSH_OPTS[@]}" -P "$SSH_PORT" "${srcs[@]}" "root@127.0.0.1:$dest" 9>&-
}

# wait_for SECONDS WHAT CMD...: poll CMD every 2 s until it succeeds; fail clearly at the deadline.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for $what"
    sleep 2
  done
}

# children_cpu: sets CHILDREN_CPU to the CPU seconds (user + system) this shell's finished
# children have used so far. (`times` must run in this very shell, not in a $(...) or a pipe's
# subshell, which have children of their own: hence the variable and the file.)
children_cpu() {
  local f=${TMPDIR:-/tmp}/pocketses-vm-times.$BASHPID
  times >"$f"
  CHILDREN_CPU=$(awk 'NR == 2 {
    n = 0
    for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); n += p[1] * 60 + p[2] }
    printf "%d", n
  }' "$f")
  rm -f "$f"
}

# step NAME CMD...: run a build step and print how long it took: wall time, the CPU time of the
# processes it ran (qemu is not among them: vm_stop says its own), and the machine's load
# (a busy machine stretches wall time, not CPU time).
step() {
  local name=$1 t0=$SECONDS c0; shift
  children_cpu
  c0=$CHILDREN_CPU
  log "step $name"
  "$@"
  children_cpu
  log "step $name done in $((SECONDS - t0))s (cpu $((CHILDREN_CPU - c0))s, load $(cut -d' ' -f1 /proc/loadavg))"
}

# bg_step NAME CMD...: `step NAME CMD...` in the background (independent preparation runs side
# by side on the 2 cores); bg_wait NAME waits for it and fails when it failed.
declare -A BG_PIDS=()
# POCKETSES_VM_PARALLEL=0 runs them in turn instead (in a subshell all the same), for measuring.
bg_step() {
  local name=$1; shift
  if [ "${POCKETSES_VM_PARALLEL:-1}" = 0 ]; then
    (step "$name" "$@") || die "step $name failed"
    return 0
  fi
  (step "$name" "$@") &
  BG_PIDS[$name]=$!
}
bg_wait() {
  local pid=${BG_PIDS[$1]:-}
  [ -n "$pid" ] || return 0
  unset "BG_PIDS[$1]"
  wait "$pid" || die "step $1 failed"
}
# bg_kill: stop the background steps still running (on a failure or an interrupt).
bg_kill() {
  local name
  for name in "${!BG_PIDS[@]}"; do
    kill "${BG_PIDS[$name]}" 2>/dev/null || true
  done
}
