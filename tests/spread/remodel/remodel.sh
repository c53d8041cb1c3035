# Helpers of the remodel suite (sourced after tests/spread/lib/pocketses.sh). They use only
# snap, curl on snapd's socket, grep and sed: the same on the test brand and on an Ubuntu Core
# device of a real brand.

# remodel_change_json ID: snapd's GET /v2/changes/ID, as it answers it.
remodel_change_json() {
    curl -sS --unix-socket /run/snapd.socket "http://localhost/v2/changes/$1"
}

# remodel_change_status FILE: the change's own status in a GET /v2/changes/ID reply.
remodel_change_status() {
    grep -o '"status":"[A-Za-z]*","tasks"' "$1" | sed 's/"status":"\([A-Za-z]*\)".*/\1/'
}

# remodel_keep ID NAME: keep the change's JSON as an artifact (tests/vm/run copies
# /root/pocketses-artifacts out; tests/fixtures/snapd/ holds the recordings the fast tests use).
remodel_keep() {
    mkdir -p /root/pocketses-artifacts
    remodel_change_json "$1" >"/root/pocketses-artifacts/remodel-$2-change.json"
    cat "/root/pocketses-artifacts/remodel-$2-change.json"
    echo
}

# remodel_check_predicts MODEL-FILE OUT: `pocketses remodel --check` accepts MODEL-FILE and
# starts nothing; its output goes to OUT. On a classic device it must say why the gadget layout
# is not checked.
remodel_check_predicts() {
    local before
    before=$(snap changes 2>&1 | wc -l)
    pocketses remodel --check "$1" >"$2"
    cat "$2"
    MATCH "pre-flight passed" <"$2"
    if snap model --assertion | grep -qx 'classic: true'; then
        MATCH "^gadget layout: not checked \(a classic device's disk is not laid out by its gadget" <"$2"
    fi
    test "$(snap changes 2>&1 | wc -l)" = "$before" || ERROR "--check started a change"
}

# remodel_predicted_summary OUT: the change summary the pre-flight predicted.
remodel_predicted_summary() {
    sed -n 's/^change summary: //p' "$1"
}

# remodel_real_summary FILE: the summary of the change in a GET /v2/changes/ID reply.
remodel_real_summary() {
    sed -n 's/^{"type":"sync".*"result":{"id":"[0-9]*","kind":"[a-z-]*","summary":"\(\([^"\\]\|\\.\)*\)".*/\1/p' "$1" |
        sed 's/\\"/"/g'
}

# remodel_cli_change FILE: the change id in the "attached" event of `pocketses remodel --json`
# output, waited for (bounded).
remodel_cli_change() {
    local i id
    for i in $(seq 150); do
        id=$(grep '"type":"attached"' "$1" 2>/dev/null | sed -n 's/.*"change":"\([0-9]*\)".*/\1/p' | head -n 1)
        if [ -n "$id" ]; then echo "$id"; return 0; fi
        sleep 2
    done
    echo "no change id from pocketses remodel after 300s:" >&2
    cat "$1" >&2
    return 1
}

# remodel_wait_held ID: wait (bounded) until remodel-slow's install hook runs in change ID: the
# kit's slow.model holds its change there until /var/snap/remodel-slow/common/release exists.
remodel_wait_held() {
    local i
    for i in $(seq 300); do
        if remodel_change_json "$1" | grep -qF '"summary":"Run install hook of \"remodel-slow\" snap if present","status":"Doing"'; then
            return 0
        fi
        sleep 2
    done
    echo "change $1 did not reach remodel-slow's install hook in 600s:" >&2
    remodel_change_json "$1" >&2
    return 1
}

# remodel_release: let remodel-slow's install hook finish (when snapd has undone the install,
# there is neither a hook nor its directory any more).
remodel_release() {
    if [ -d /var/snap/remodel-slow/common ]; then
        touch /var/snap/remodel-slow/common/release
    fi
}

# remodel_sse_wait FILE PATTERN [SECONDS]: wait (bounded) until the SSE stream saved in FILE has
# a `remodel` event whose data matches PATTERN (ERE).
remodel_sse_wait() {
    local i
    for i in $(seq "${3:-120}"); do
        if grep '^data: ' "$1" 2>/dev/null | grep '"event":"remodel"' | grep -qE "$2"; then
            return 0
        fi
        sleep 1
    done
    echo "no remodel event matching $2 on the SSE stream in ${3:-120}s; got:" >&2
    grep -A1 '^event: remodel' "$1" >&2 || true
    return 1
}
