#!/usr/bin/env bash
# kill -9 in the middle of an overlapped copy + archive (issue 14 item 4): the media worker makes the
# archive copy of file N while file N+1 is copied. evidockd is killed exactly then -- once while the worker
# is held on file 1 (the test build hangs on it) and file 2 is being copied, and at random moments while the
# status says file 2 or later is being copied -- then restarted: the docking completes, every file of the
# volume is stored and recorded exactly once with the hashes the database holds, no file is left in the
# store without a row, no temporary file, no media worker outlives the killed daemon. The same with
# segments long enough (12 MB) that each one's archive copy is made while that same file is copied (its
# index read ahead): killed while the worker holds such a job, and at random moments of it. Prints TAP.
. "$(dirname "$0")/lib.sh"

RUNS=${EVIDOCK_PIPELINE_CRASH_RUNS:-3}
setup_env pipecrash
OFFICER=012345
FAULTY=$EVIDOCK_BUILD_ROOT/tests/e2e/evidock-media-worker-faults
REAL=$EVIDOCK_MEDIA_WORKER
WATCH=$WORK/watch
mkdir -p "$WATCH"
DCONF=$WORK/evidockd.conf
{ cat "$EVIDOCK_CONFIG"; printf '[watch]\ndir = %s\n[usb]\nenabled = no\n[ingest]\narchive_while_copying = yes\n' "$WATCH"; } >"$DCONF"
export EVIDOCK_STATUS_FILE=$WORK/status.json

vol_dev() { printf 'P%06d' "$1"; }
# volume K: 4 videos of 6 s 1080p (several MB each: the archive copy of one takes as long as a copy)
# (long: 2 videos of 12 s, ~12 MB each: archived while each is copied)
make_vol() {
        local dev v
        dev=$(vol_dev "$1"); v=$WORK/vol-$1
        if [ "${2:-}" = long ]; then
                make_volume "$v" "$dev" "$OFFICER" --preset 1080p --videos 2 --duration 12 --seed "$1"
        else
                make_volume "$v" "$dev" "$OFFICER" --preset 1080p --videos 4 --duration 6 --seed "$1"
        fi && enroll "$v" "$dev" "$OFFICER"
}
start_daemon() { EVIDOCK_CONFIG=$DCONF "$EVIDOCKD" >>"$WORK/evidockd.log" 2>&1 & DPID=$!; }
# the status says file N >= 2 is being copied: file N-1 is with the media worker
copying_later_file() { grep -Eq '"state":"copying"[^}]*"file_index":[2-9]' "$EVIDOCK_STATUS_FILE" 2>/dev/null; }
# file 1 is being copied or archived (long volumes: its archive copy is made while it is copied)
on_first_file() { grep -Eq '"state":"(copying|archiving)"[^}]*"file_index":1[,}]' "$EVIDOCK_STATUS_FILE" 2>/dev/null; }
rows() { "$CTL" log --format json --device "$1" | wc -l; }
wait_rows() {
        local end=$(( $(date +%s) + $3 ))
        while [ "$(date +%s)" -lt "$end" ]; do
                [ "$(rows "$1")" -ge "$2" ] && return 0
                sleep 0.2
        done
        return 1
}
workers_of() { ps -e -o pid=,stat=,args= | P="--serve $1" awk '$2 !~ /^Z/ && index($0, ENVIRON["P"])' | wc -l; }

# settle K: every file of volume K exactly once, hashes as recorded, nothing else in the store
settle() {
        local k=$1 files=${2:-4} dev v rows out
        dev=$(vol_dev "$k"); v=$WATCH/vol-$k
        rows=$("$CTL" log --format json --device "$dev")
        out=$(awk 'NR == FNR { n[$1]++; next } { c = n[$1] + 0; if (c == 0) print "lost: " $2; else if (c > 1) print "duplicated " c " times: " $2 }' \
                  <(jq -r .sha256 <<<"$rows") <(cd "$v" && find VIDEO -type f -print0 | xargs -0 sha256sum))
        [ -z "$out" ] || fail "$out"
        out=$(jq -r '(.sha256 + "  " + .original_path), (select(.archive_path) | .archive_sha256 + "  " + .archive_path)' <<<"$rows" |
              (cd "$STORE" && sha256sum --quiet -c - 2>&1))
        [ -z "$out" ] || fail "stored files that do not hash as recorded: $out"
        check_eq "archive copies" "$files" "$(jq -r 'select(.archive_path) | .archive_path' <<<"$rows" | wc -l)"
        check_eq "verdicts" "INTACT" "$(jq -r .verdict <<<"$rows" | sort -u | xargs)"
        out=$(comm -23 <(cd "$STORE" && find . -type f -printf '%P\n' | sort) \
                       <("$CTL" log --format json | jq -r '.original_path, (.archive_path // empty)' | sort))
        [ -z "$out" ] || fail "in the store without a row: $(xargs <<<"$out")"
        check_eq "temporary files in the store" 0 "$(find "$STORE" -name '.evd-tmp*' | wc -l)"
}

# kill_run K HOW [long]: HOW = hang (the worker hangs on file 1) or random
kill_run() {
        local k=$1 how=$2 long=${3:-} dev n i files=4
        dev=$(vol_dev "$k")
        [ "$long" = long ] && files=2
        make_vol "$k" "$long" || { fail "cannot make volume $k"; return; }
        rm -f "$EVIDOCK_STATUS_FILE"
        if [ "$how" = hang ]; then
                EVIDOCK_MEDIA_WORKER=$FAULTY EVIDOCK_MEDIA_WORKER_TEST_FAULT="hang:_0001.MP4" start_daemon
        else
                EVIDOCK_MEDIA_WORKER=$REAL start_daemon
        fi
        sleep 0.3
        mv "$WORK/vol-$k" "$WATCH/vol-$k"
        if [ "$long" = long ]; then
                for ((i = 0; i < 3000; i++)); do on_first_file && break; sleep 0.005; done
        else
                for ((i = 0; i < 3000; i++)); do copying_later_file && break; sleep 0.005; done
        fi
        if [ "$how" = random ]; then sleep "0.0$((RANDOM % 10))"; fi
        kill -9 "$DPID"; wait "$DPID" 2>/dev/null
        n=$(rows "$dev")
        echo "# run $k ($how${long:+, long}): killed at $(grep -Eo '"state":"[a-z]*"[^}]*"file_index":[0-9]*' "$EVIDOCK_STATUS_FILE" | sed 's/"file":"[^"]*",//' | head -1), $n of $files files recorded"
        [ "$how" = hang ] && [ "$n" -ne 0 ] && fail "file 1 hung in the worker, yet $n rows"
        for _ in $(seq 40); do [ "$(workers_of "$DPID")" -eq 0 ] && break; sleep 0.05; done
        check_eq "media workers left after the kill" 0 "$(workers_of "$DPID")"
        EVIDOCK_MEDIA_WORKER=$REAL start_daemon
        wait_rows "$dev" "$files" 90 || fail "the restarted evidockd did not finish $dev in 90 s ($(rows "$dev") rows)"
        sleep 0.5
        kill -TERM "$DPID"; wait "$DPID" 2>/dev/null
        settle "$k" "$files"
}

begin "kill -9 of evidockd while file 1 is with the (hung) media worker and file 2 is copied; a restart completes the docking"
kill_run 1 hang
end

begin "kill -9 of evidockd at $RUNS random moments of overlapped copy + archive; a restart completes each docking"
for i in $(seq 2 $((RUNS + 1))); do kill_run "$i" random; done
end

begin "kill -9 of evidockd while the worker holds the archive job of file 1 that is made while file 1 is copied (hung); a restart completes the docking"
kill_run $((RUNS + 2)) hang long
end

begin "kill -9 of evidockd at 2 random moments of a file archived while it is copied; a restart completes each docking"
for i in $((RUNS + 3)) $((RUNS + 4)); do kill_run "$i" random long; done
end

begin "the custody log verifies after the kills"
"$CTL" audit verify >"$WORK/audit" 2>&1; rc=$?
check_eq "audit exit status" 0 "$rc"
[ "$rc" -eq 0 ] || fail "$(tail -3 "$WORK/audit")"
end

finish
