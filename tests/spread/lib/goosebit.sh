# Helpers for the fleet tasks that drive the host's gooseBit (sourced; bash, curl, sed).
#
# tests/vm/goosebit.sh starts gooseBit 0.2.12 on the host's loopback and writes where the guest
# reaches it into tests/spread/.goosebit/env (GOOSEBIT_URL, GOOSEBIT_USER, GOOSEBIT_PASSWORD,
# GOOSEBIT_POLL_TIME). The guest has no JSON tool: gooseBit's compact JSON replies are read with
# sed, one field of one object at a time.

# goosebit_init: read the harness' file and log in (GOOSEBIT_TOKEN). Fails without the file: the
# gooseBit tasks only run where the harness started a gooseBit for them.
goosebit_init() {
    local env="$SPREAD_PATH/tests/spread/.goosebit/env"
    test -f "$env" || { echo "no $env: run these tasks with tests/vm/run, which starts gooseBit" >&2; return 1; }
    . "$env"
    GOOSEBIT_TOKEN=$(curl -sS --fail-with-body -m 30 -XPOST "$GOOSEBIT_URL/login" \
        -d "username=$GOOSEBIT_USER&password=$GOOSEBIT_PASSWORD" | goosebit_field access_token)
    test -n "$GOOSEBIT_TOKEN" || { echo "cannot log in to gooseBit at $GOOSEBIT_URL" >&2; return 1; }
}

# goosebit_api ARGS...: curl on gooseBit's admin API with the token (fails on an HTTP error).
goosebit_api() {
    curl -sS --fail-with-body -m 60 -H "Authorization: Bearer $GOOSEBIT_TOKEN" "$@"
}

# goosebit_field NAME: the first string or number value of "NAME" in the JSON on stdin.
goosebit_field() {
    grep -o "\"$1\": *\(\"[^\"]*\"\|[0-9][0-9]*\)" | head -n 1 | sed 's/^[^:]*: *//; s/"//g'
}

# goosebit_upload FILE: upload a bundle; prints gooseBit's software id.
goosebit_upload() {
    goosebit_api -XPUT "$GOOSEBIT_URL/api/v1/software" -F "file=@$1" | goosebit_field id
}

# goosebit_assign DEVICE SOFTWARE-ID: assign software to a device, forced (a device in Error too).
goosebit_assign() {
    goosebit_api -XPATCH "$GOOSEBIT_URL/api/v1/devices" -H 'Content-Type: application/json' \
        -d "{\"devices\": [\"$1\"], \"software\": \"$2\", \"force_update\": true}" >/dev/null
}

# goosebit_device DEVICE: the device's object from gooseBit's device list, compact JSON on one
# line (empty when unknown). GET /api/v1/devices/ID answers 500 in 0.2.12 once software is
# assigned, so the list is read.
goosebit_device() {
    goosebit_api "$GOOSEBIT_URL/api/v1/devices" | sed 's/},{"id":/}\n{"id":/g' |
        grep -F "\"id\":\"$1\"" | head -n 1
}

# goosebit_log DEVICE: the device's log as gooseBit keeps it (JSON: quotes escaped, \n for lines).
goosebit_log() {
    goosebit_api "$GOOSEBIT_URL/api/v1/devices/$1/log"
}

# goosebit_wait SECONDS WHAT CMD...: run CMD every 2 s until it succeeds; fail at the deadline
# (a liveness bound, not a performance target).
goosebit_wait() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s) + secs))
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "gave up waiting ${secs}s for $what" >&2
            return 1
        fi
        sleep 2
    done
}

# goosebit_registered DEVICE MODEL: gooseBit knows the device, with MODEL from its configData.
goosebit_registered() {
    goosebit_device "$1" | grep -qF "\"model\":\"$2\""
}

# goosebit_state DEVICE STATE: the device's last_state is STATE.
goosebit_state() {
    goosebit_device "$1" | grep -qF "\"last_state\":\"$2\""
}

# goosebit_fleet_config KEY: the daemon polls gooseBit (as device $(fleet status)'s id) and
# trusts KEY, with a TargetToken gooseBit records.
goosebit_fleet_config() {
    snap set pocketses fleet.url="$GOOSEBIT_URL/" fleet.trusted-keys="$1" \
        fleet.token=vm-device-token fleet.enabled=true
}

# goosebit_controller_id: the daemon's controller id, once it has one (fails until then).
goosebit_controller_id() {
    local id
    id=$(pocketses fleet status --json | sed -n 's/.*"controller-id": *"\([^"]*\)".*/\1/p' | head -n 1)
    test -n "$id" && echo "$id"
}

# goosebit_debug: what the daemon and gooseBit saw (for debug sections).
goosebit_debug() {
    pocketses fleet status || true
    pocketses fleet history || true
    journalctl --no-pager -n 40 -u 'snap.pocketses.*' | grep -i fleet || true
}
