# Helpers shared by the pocketses spread tasks (sourced; POSIX sh + bash's /dev/tcp).
# They need nothing beyond what Ubuntu Core and a minimal Debian have: snap, systemctl,
# grep, sed, awk, timeout and bash.

# Observe plugs that deny auto-connection: connected by hand (a store assertion would do it).
POCKETSES_OBSERVE_PLUGS="system-observe network-observe hardware-observe mount-observe"
POCKETSES_TCP_PORT=${POCKETSES_TCP_PORT:-8888}
POCKETSES_HTTP_PORT=${POCKETSES_HTTP_PORT:-9188}

# The systemd unit of the snap's (only) daemon, e.g. snap.pocketses.daemon.service.
pocketses_unit() {
    snap services pocketses | awk 'NR == 2 {print "snap." $1 ".service"}'
}

# MainPID of the daemon (0 when not running).
pocketses_pid() {
    systemctl show -p MainPID --value "$(pocketses_unit)"
}

# Wait (bounded) until the service is active and the TCP publisher accepts connections.
pocketses_wait_ready() {
    local i
    for i in $(seq 90); do
        if systemctl is-active --quiet "$(pocketses_unit)" &&
            timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$POCKETSES_TCP_PORT" 2>/dev/null; then
            return 0
        fi
        sleep 2
    done
    echo "pocketses daemon not ready after 180s" >&2
    systemctl status --no-pager "$(pocketses_unit)" >&2 || true
    return 1
}

# Wait (bounded) until the HTTP publisher accepts connections.
pocketses_wait_http() {
    local i
    for i in $(seq 60); do
        timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$POCKETSES_HTTP_PORT" 2>/dev/null && return 0
        sleep 2
    done
    echo "pocketses HTTP port $POCKETSES_HTTP_PORT not open after 120s" >&2
    return 1
}

pocketses_connect_observe() {
    local p
    for p in $POCKETSES_OBSERVE_PLUGS; do
        pocketses_snap_retry connect "pocketses:$p"
    done
}

# pocketses_snap_retry ARGS...: `snap ARGS`, tried up to 3 times. For setup steps only: snapd
# 2.57 sometimes fails to update a snap's preserved mount namespace while its service is
# (re)starting ("cannot update mount namespace ..."), which a second attempt gets past.
pocketses_snap_retry() {
    local i
    for i in 1 2 3; do
        snap "$@" && return 0
        echo "snap $* failed (attempt $i)" >&2
        sleep 5
    done
    return 1
}

# The suite's prepare-each: a task that sets POCKETSES_FRESH=1 starts with the snap removed
# (it installs it itself); every other task starts with it installed and the plugs connected.
pocketses_prepare_each() {
    if [ "${POCKETSES_FRESH:-0}" = 1 ]; then
        snap remove --purge pocketses >/dev/null 2>&1 || true
        return 0
    fi
    pocketses_ensure_installed
}

# Install the snap under test unless it is there, connect the observe plugs, wait for the daemon.
pocketses_ensure_installed() {
    if ! snap list pocketses >/dev/null 2>&1; then
        test -f "$POCKETSES_SNAP" || { echo "missing snap file $POCKETSES_SNAP" >&2; return 1; }
        snap install --dangerous "$POCKETSES_SNAP"
    fi
    pocketses_connect_observe
    pocketses_wait_ready
}

# pocketses_lines N [PORT] [SECONDS]: the first N lines a TCP subscriber receives.
pocketses_lines() {
    timeout "${3:-30}" bash -c "exec 3<>/dev/tcp/127.0.0.1/${2:-$POCKETSES_TCP_PORT}; head -n $1 <&3"
}

# pocketses_http_get PATH [PORT]: the body of an HTTP/1.0 GET (headers stripped to stderr-free).
pocketses_http_get() {
    timeout 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/${2:-$POCKETSES_HTTP_PORT}
        printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' '$1' >&3
        cat <&3" | sed '1,/^\r\{0,1\}$/d'
}

# pocketses_http_status PATH [PORT]: the status line of an HTTP/1.0 GET.
pocketses_http_status() {
    timeout 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/${2:-$POCKETSES_HTTP_PORT}
        printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' '$1' >&3
        head -n 1 <&3"
}

# Seconds since the epoch of an RFC 3339 "timestamp" in a JSON line (fails without one).
pocketses_line_time() {
    local ts
    ts=$(printf '%s\n' "$1" | sed -n 's/.*"timestamp" *: *"\([^"]*\)".*/\1/p')
    test -n "$ts" || { echo "no \"timestamp\" in: $1" >&2; return 1; }
    date -d "$ts" +%s
}

pocketses_debug() {
    snap list || true
    snap connections pocketses || true
    snap changes | tail -n 5 || true
    snap get -d pocketses || true
    journalctl --no-pager -n 60 -u 'snap.pocketses.*' || true
}

# The remodel suite's inputs (tests/spread/remodel/README.md): a kit for the device's own brand and
# a registered device. Missing either is a failure, not a skip: the suite only runs on systems
# meant to have both.
pocketses_remodel_kit_check() {
    local kit=${POCKETSES_REMODEL_KIT:?POCKETSES_REMODEL_KIT is not set}
    local f
    for f in update.model missing.model slow.model rereg.model; do
        test -f "$kit/$f" || { echo "remodel kit: missing $kit/$f" >&2; return 1; }
    done
    snap model --serial >/dev/null || { echo "the device has no serial: the remodel suite needs a registered device" >&2; return 1; }
}

# pocketses_kit_file NAME: copy a kit file where the strictly confined CLI can read it; print the path.
pocketses_kit_file() {
    mkdir -p /root/snap/pocketses/common
    cp "$POCKETSES_REMODEL_KIT/$1" "/root/snap/pocketses/common/$(basename "$1")"
    echo "/root/snap/pocketses/common/$(basename "$1")"
}

# pocketses_header NAME FILE: the value of a top-level assertion header.
pocketses_header() {
    sed -n "s/^$1: //p" "$2" | head -n 1
}

# pocketses_fleet_snap DIR NAME VERSION [HOOK]: a small test snap DIR/NAME_VERSION.snap made
# with mksquashfs (no store, no assertions) on the snap's own base; with HOOK, an install hook
# whose text that is. Prints the file's path.
pocketses_fleet_snap() {
    local dir=$1 name=$2 version=$3 hook=${4:-} src
    src=$(mktemp -d)
    mkdir -p "$src/meta/hooks"
    # snapd refuses a snap whose root is not 0755 ("snap is unusable due to bad permissions").
    chmod 755 "$src" "$src/meta" "$src/meta/hooks"
    printf 'name: %s\nversion: "%s"\nsummary: fleet bundle test snap\ndescription: installed by pocketses bundle apply\nbase: %s\nconfinement: strict\ngrade: devel\n' \
        "$name" "$version" "$(sed -n 's/^base: *//p' /snap/pocketses/current/meta/snap.yaml)" >"$src/meta/snap.yaml"
    if [ -n "$hook" ]; then
        printf '%s\n' "$hook" >"$src/meta/hooks/install"
        chmod 755 "$src/meta/hooks/install"
    fi
    mksquashfs "$src" "$dir/${name}_$version.snap" -noappend -comp xz -all-root -no-xattrs -no-fragments -no-progress >/dev/null
    rm -rf "$src"
    echo "$dir/${name}_$version.snap"
}

# pocketses_fleet_key NAME: a fresh ed25519 operator key in the snap's key store; prints its public half.
pocketses_fleet_key() {
    rm -f /root/snap/pocketses/*/keys/"$1".pem
    pocketses key create --type ed25519 "$1" >/dev/null
    pocketses key export "$1"
}
