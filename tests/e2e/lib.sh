# Shared helpers for end-to-end tests: TAP output, a fresh database on the scratch PostgreSQL, a
# config file, and the real binaries from the build tree. Source it from a test script.
set -uo pipefail

: "${EVIDOCK_SOURCE_ROOT:?run through meson test}"
: "${EVIDOCK_BUILD_ROOT:?run through meson test}"
SIM=$EVIDOCK_BUILD_ROOT/daemon/sim/evidock-sim
CTL=$EVIDOCK_BUILD_ROOT/daemon/evidockctl
EVIDOCKD=$EVIDOCK_BUILD_ROOT/daemon/evidockd

T_N=0
T_FAILED=0
T_CUR_FAILED=0
T_NAME=""
WORK=$(mktemp -d /tmp/evidock-e2e.XXXXXX)
T_OWN_PG=""

t_cleanup() {
        [ -n "$T_OWN_PG" ] && "$EVIDOCK_SOURCE_ROOT/scripts/pg-scratch" stop "$T_OWN_PG" >/dev/null 2>&1
        [ -n "$T_OWN_PG" ] && rm -rf "$T_OWN_PG"
        mountpoint -q "$WORK/small" 2>/dev/null && umount "$WORK/small"
        rm -rf "$WORK"
}
trap t_cleanup EXIT

# begin NAME: starts a test case
begin() { T_NAME=$1; T_CUR_FAILED=0; }
# end: prints the TAP line of the current case
end() {
        T_N=$((T_N + 1))
        if [ "$T_CUR_FAILED" -eq 0 ]; then echo "ok $T_N - $T_NAME"; else echo "not ok $T_N - $T_NAME"; T_FAILED=$((T_FAILED + 1)); fi
}
fail() { echo "# $T_NAME: $*"; T_CUR_FAILED=1; }
# check DESCRIPTION COMMAND...: the command must succeed
check() { local d=$1; shift; if ! "$@" >/dev/null 2>&1; then fail "$d (command: $*)"; fi; }
# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() { [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"; }
finish() {
        echo "1..$T_N"
        echo "# $((T_N - T_FAILED)) passed, $T_FAILED failed"
        [ "$T_FAILED" -eq 0 ]
}

# new_db TAG: prints a conninfo for a fresh database on the test cluster
new_db() {
        if [ -z "${EVIDOCK_TEST_PG:-}" ]; then
                T_OWN_PG=$(mktemp -d /tmp/evidock-e2e-pg.XXXXXX)
                EVIDOCK_TEST_PG=$("$EVIDOCK_SOURCE_ROOT/scripts/pg-scratch" start "$T_OWN_PG") || return 1
                export EVIDOCK_TEST_PG
        fi
        local name="e2e_$1_$$_$RANDOM"
        psql "$EVIDOCK_TEST_PG" -qAt -c "CREATE DATABASE $name" >/dev/null || return 1
        echo "$EVIDOCK_TEST_PG dbname=$name"
}

# setup_env TAG [store-root]: a database, a store and a config; exports EVIDOCK_CONFIG and DB
setup_env() {
        DB=$(new_db "$1") || { echo "Bail out! cannot create a test database"; exit 1; }
        STORE=${2:-$WORK/store-$1}
        CONF=$WORK/evidock-$1.conf
        # no spool unless a test asks for one: an outage is then an error, whatever the machine has
        printf '[database]\nurl = %s\nspool_dir =\n[store]\nroot = %s\nreserve = 1M\n' "$DB" "$STORE" >"$CONF"
        export EVIDOCK_CONFIG=$CONF DB STORE
}

# make_volume DIR DEVICE OFFICER [sim options...]: a recorder volume + its enrolled key
make_volume() {
        local dir=$1 dev=$2 officer=$3; shift 3
        "$SIM" --out "$dir" --device "$dev" --officer "$officer" --unit 440300000000 --key "$dir.key" \
               --preset tiny --audios 0 --photos 0 --quiet "$@" >/dev/null
}
enroll() {
        local dir=$1 dev=$2 officer=$3
        "$SIM" --out "$dir" --key "$dir.key" --print-pubkey >"$dir.pub" &&
        "$CTL" device enroll --device "$dev" --officer "$officer" --key "$dir.pub" >/dev/null
}

# snapshot DIR: a listing of every file with size, mtime and SHA-256 (to prove a source untouched)
snapshot() { (cd "$1" && find . -printf '%p %s %T@ %m\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# rows [jq filter]: the ingest log as JSON lines, optionally filtered
log_json() { "$CTL" log --format json; }

# wait_for SECONDS COMMAND...: polls (every 0.1 s) until the command succeeds
wait_for() {
        local t=$(( $1 * 10 )); shift
        while [ $t -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; t=$((t - 1)); done
        return 1
}

# notify_listen SOCKET LOG: a systemd notify socket (NOTIFY_SOCKET=SOCKET) in the background; each datagram
# becomes one line of LOG (newlines as " | "); it ends after 120 s without one. Sets NOTIFY_PID.
notify_listen() {
        python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(120)
with open(sys.argv[2], "a") as f:
    while True:
        try:
            m = s.recv(4096).decode()
        except socket.timeout:
            break
        f.write(m.replace("\n", " | ") + "\n"); f.flush()
' "$1" "$2" &
        NOTIFY_PID=$!
        wait_for 5 test -S "$1"
}
