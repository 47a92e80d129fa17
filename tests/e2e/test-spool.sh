#!/usr/bin/env bash
# Database outage with a local spool (issue 5): ingest goes on into [database] spool_dir while PostgreSQL
# is down; when it returns, the spool is replayed in order, exactly once. The real evidockctl and evidockd,
# a real PostgreSQL that this test stops and starts (a scratch cluster of its own, never the shared
# EVIDOCK_TEST_PG). Prints TAP, and the counts as comments.
. "$(dirname "$0")/lib.sh"

PGDIR=$(mktemp -d /tmp/evidock-spool-pg.XXXXXX) && chmod 755 "$PGDIR" || { echo "Bail out! mktemp"; exit 1; }
T_OWN_PG=$PGDIR # lib.sh's t_cleanup stops and removes it
EVIDOCK_TEST_PG=$("$EVIDOCK_SOURCE_ROOT/scripts/pg-scratch" start "$PGDIR") || { echo "Bail out! cannot start PostgreSQL in $PGDIR"; exit 1; }
export EVIDOCK_TEST_PG
setup_env spool
SPOOL=$WORK/spool
# the same config with a spool directory of this test's own
printf '[database]\nurl = %s\nspool_dir = %s\n[store]\nroot = %s\nreserve = 1M\n' "$DB" "$SPOOL" "$STORE" >"$EVIDOCK_CONFIG"

pg_stop() { "$EVIDOCK_SOURCE_ROOT/scripts/pg-scratch" stop "$PGDIR" >/dev/null; }
pg_start() { "$EVIDOCK_SOURCE_ROOT/scripts/pg-scratch" start "$PGDIR" >/dev/null; }
sql() { psql "$DB" -qAt -c "$1" 2>/dev/null; }
rows_of() { sql "select count(*) from files where device_id = '$1'" || echo -1; }
rows_at_least() { [ "$(rows_of "$1")" -ge "$2" ]; }
wait_until() {
        local end=$(( $(date +%s) + $1 )); shift
        while [ "$(date +%s)" -lt "$end" ]; do "$@" && return 0; sleep 0.1; done
        return 1
}
spool_entries() { find "$SPOOL/entries" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l; }
spool_files_of() { find "$SPOOL/entries" -maxdepth 1 -type f -name "*-file-$1-*" 2>/dev/null | wc -l; }
append() { # append VOLUME N: N new recordings on the recorder
        "$SIM" --out "$1" --key "$1.key" --append --preset tiny --videos "$2" --audios 0 --photos 0 --duration 1 \
               --start-ago 0.01 --quiet >/dev/null
}

FILES=0 LOST=0 DUPLICATED=0
# settle_check VOLUME DEVICE: every file on the volume exactly once with the right hashes, every stored
# file has a row, no temp files; prints what is wrong
settle_check() {
        local v=$1 dev=$2 rows out
        rows=$("$CTL" log --format json --device "$dev")
        out=$(awk 'NR == FNR { n[$1]++; next } { c = n[$1] + 0; if (c == 0) print "lost: " $2;
                                                 else if (c > 1) print "duplicated " c " times: " $2 }' \
                  <(jq -r .sha256 <<<"$rows") <(cd "$v" && find VIDEO AUDIO PHOTO -type f -print0 2>/dev/null | xargs -0 sha256sum))
        FILES=$((FILES + $(cd "$v" && find VIDEO AUDIO PHOTO -type f 2>/dev/null | wc -l)))
        LOST=$((LOST + $(grep -c '^lost' <<<"$out")))
        DUPLICATED=$((DUPLICATED + $(grep -c '^duplicated' <<<"$out")))
        [ -n "$out" ] && echo "$out"
        out=$(jq -r '(.sha256 + "  " + .original_path), (select(.archive_path) | .archive_sha256 + "  " + .archive_path)' <<<"$rows" |
              (cd "$STORE" && sha256sum --quiet -c - 2>&1))
        [ -n "$out" ] && echo "stored files that do not hash as recorded: $out"
        out=$(comm -23 <(cd "$STORE" && find . -type f -printf '%P\n' | sort) \
                       <("$CTL" log --format json | jq -r '.original_path, (.archive_path // empty)' | sort))
        [ -n "$out" ] && echo "in the store without a row: $(xargs <<<"$out")"
        [ "$(find "$STORE" -name '.evd-tmp*' | wc -l)" -eq 0 ] || echo "temporary files left in the store"
}
# dockings_ok DEVICE N: N docking rows, each finished exactly once
dockings_ok() {
        local n f
        n=$(sql "select count(*) from dockings where device_id = '$1'")
        f=$(sql "select count(*) from docking_results r join dockings d on d.id = r.docking_id where d.device_id = '$1'")
        [ "$n" = "$2" ] && [ "$f" = "$2" ] || echo "$1: $n docking rows, $f finished (expected $2 each)"
}

# Every recorder is enrolled while the database is up; the first online docking caches the enrollments.
for d in 1 2 3 4 5 6; do
        make_volume "$WORK/v$d" "SP00L0$d" "01236$d" --videos 1 --duration 1 --start-ago 0.02
        enroll "$WORK/v$d" "SP00L0$d" "01236$d"
done

begin "an online docking fills the spool's cache (enrollments, chain head)"
"$CTL" ingest --source "$WORK/v1" --quiet 2>"$WORK/err0"; rc=$?
check_eq "exit status" 0 "$rc"
grep -q SP00L05 "$SPOOL/cache/enrollments" || fail "enrollment cache lacks a recorder that was never docked"
[ -s "$SPOOL/cache/head-SP00L01" ] || fail "no cached chain head of SP00L01"
check_eq "spool empty" 0 "$(spool_entries)"
end

begin "database down before the docking: evidockctl ingests into the spool and exits 4"
V=$WORK/v1
append "$V" 4
# evidence for the findings path: one recording corrupted, one deleted from the recorder
victim=$(cd "$V" && ls VIDEO/*.MP4 | sed -n 3p)
head -c 30000 /dev/urandom >"$V/$victim"
rm -f "$V/$(cd "$V" && ls VIDEO/*.MP4 | sed -n 4p)"
pg_stop
"$CTL" ingest --source "$V" --quiet 2>"$WORK/err1"; rc=$?
check_eq "exit status (spooled)" 4 "$rc"
grep -q "spool" "$WORK/err1" || fail "evidockctl does not say it spooled: $(cat "$WORK/err1")"
check_eq "spooled files" 3 "$(spool_files_of SP00L01)"
check_eq "originals in the store" 4 "$(find "$STORE/originals/SP00L01" "$STORE/quarantine/SP00L01" -type f ! -name '*.mkv' 2>/dev/null | wc -l)"
psql "$DB" -qAt -c "select 1" >/dev/null 2>&1 && fail "the database is still reachable: the test proves nothing"
"$CTL" spool list >"$WORK/list1" 2>&1 || fail "spool list failed"
grep -q " begin " "$WORK/list1" && grep -q " end " "$WORK/list1" || fail "spool list: $(cat "$WORK/list1")"
end

begin "database back: evidockctl spool replay records every file exactly once, with its findings"
pg_start
check_eq "rows before the replay" 1 "$(rows_of SP00L01)"
"$CTL" spool replay 2>"$WORK/replay1"; rc=$?
check_eq "exit status" 0 "$rc"
grep -q "replayed" "$WORK/replay1" || fail "replay says nothing: $(cat "$WORK/replay1")"
check_eq "rows" 4 "$(rows_of SP00L01)"
check_eq "spool empty" 0 "$(spool_entries)"
settle_check "$V" SP00L01 >"$WORK/check"; msg=$(cat "$WORK/check"); [ -z "$msg" ] || fail "$msg"
msg=$(dockings_ok SP00L01 2); [ -z "$msg" ] || fail "$msg"
check_eq "quarantined corrupt file" 1 "$(sql "select count(*) from files where device_id='SP00L01' and original_path like 'quarantine/%'")"
[ "$(sql "select count(*) from findings f join files x on x.id = f.file_id where x.device_id='SP00L01'")" -ge 1 ] ||
        fail "no file finding replayed"
[ "$(sql "select count(*) from findings f join dockings d on d.id = f.docking_id where d.device_id='SP00L01' and f.file_id is null")" -ge 1 ] ||
        fail "no docking-level finding (the deleted recording) replayed"
[ "$(sql "select count(*) from custody_events where detail like '%[offline: spooled %'")" -ge 8 ] ||
        fail "custody events do not say they were spooled"
[ "$(sql "select count(*) from chain_heads h join dockings d on d.id = h.docking_id where d.device_id='SP00L01'")" -eq 2 ] ||
        fail "the spooled chain head was not recorded"
end

begin "PostgreSQL stops in the middle of a docking: the rest goes to the spool, the next ingest replays it"
V=$WORK/v2
append "$V" 95
"$CTL" ingest --source "$V" --quiet 2>"$WORK/err2" &
pid=$!
wait_until 30 rows_at_least SP00L02 2 || fail "the ingest recorded nothing in 30 s"
pg_stop
wait "$pid"; rc=$?
pg_start
before=$(rows_of SP00L02)
echo "# $before of 96 files were in the database when it stopped"
check_eq "exit status (spooled)" 4 "$rc"
[ "$before" -lt 96 ] || fail "the outage did not land mid-docking ($before rows)"
[ "$(spool_files_of SP00L02)" -ge 1 ] || fail "nothing spooled"
"$CTL" ingest --source "$V" --quiet 2>"$WORK/err2b"; rc=$?
check_eq "exit status of the next ingest" 0 "$rc"
grep -q "replayed" "$WORK/err2b" || fail "the next ingest did not replay: $(cat "$WORK/err2b")"
check_eq "rows" 96 "$(rows_of SP00L02)"
check_eq "spool empty" 0 "$(spool_entries)"
settle_check "$V" SP00L02 >"$WORK/check"; msg=$(cat "$WORK/check"); [ -z "$msg" ] || fail "$msg"
msg=$(dockings_ok SP00L02 2); [ -z "$msg" ] || fail "$msg"
end

begin "re-docking the same volume during the outage spools nothing twice"
V=$WORK/v3
"$CTL" ingest --source "$V" --quiet 2>/dev/null
append "$V" 4
pg_stop
"$CTL" ingest --source "$V" --quiet 2>/dev/null; rc1=$?
"$CTL" ingest --source "$V" --quiet 2>"$WORK/err3"; rc2=$?
check_eq "first exit status" 4 "$rc1"
check_eq "second exit status" 4 "$rc2"
check_eq "spooled files" 4 "$(spool_files_of SP00L03)"
grep -q "5 already ingested" "$WORK/err3" || fail "the re-docking did not find the files already taken: $(tail -2 "$WORK/err3")"
pg_start
"$CTL" spool replay 2>/dev/null; rc=$?
check_eq "replay exit status" 0 "$rc"
check_eq "rows" 5 "$(rows_of SP00L03)"
settle_check "$V" SP00L03 >"$WORK/check"; msg=$(cat "$WORK/check"); [ -z "$msg" ] || fail "$msg"
msg=$(dockings_ok SP00L03 3); [ -z "$msg" ] || fail "$msg"
end

begin "evidockctl killed (-9) at random points of a replay: the end state is still exactly once"
V=$WORK/v4
"$CTL" ingest --source "$V" --quiet 2>/dev/null
append "$V" 80
pg_stop
"$CTL" ingest --source "$V" --quiet 2>/dev/null; rc=$?
check_eq "spooled" 4 "$rc"
pg_start
# Kill on observed progress, not after a guessed delay (a guessed delay fails both ways on a loaded
# machine: before the replay starts or after it ends): each replay is killed as soon as it has taken at
# least K more entries, K drawn from 1..6. The count is a glob in this shell (no fork per poll).
count_entries() { local e=("$SPOOL"/entries/*); N=0; [ -e "${e[0]}" ] && N=${#e[@]}; } # sets N
exec {never}<> <(:) # a pipe nobody writes: `read -t` on it is a sleep without a fork
kills=0 left=$(spool_entries)
for attempt in 1 2 3 4 5 6 7 8 9 10 11 12; do
        k=$(( 1 + RANDOM % 6 ))
        "$CTL" spool replay >/dev/null 2>&1 &
        pid=$!
        deadline=$(( SECONDS + 60 ))
        count_entries
        while [ "$N" -gt $((left - k)) ] && [ "$SECONDS" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null; do
                read -r -t 0.002 -u "$never" _ || :
                count_entries
        done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        now=$(spool_entries)
        [ "$now" -gt 0 ] && [ "$now" -lt "$left" ] && kills=$((kills + 1))
        left=$now
        [ "$now" -eq 0 ] && break
done
exec {never}<&-
echo "# $kills replays killed mid-way; $(spool_entries) entries left, $(rows_of SP00L04) rows"
[ "$kills" -ge 2 ] || fail "fewer than 2 replays were killed mid-way ($kills): the test proves little"
"$CTL" spool replay 2>"$WORK/replay4"; rc=$?
check_eq "final replay exit status" 0 "$rc"
check_eq "rows" 81 "$(rows_of SP00L04)"
check_eq "spool empty" 0 "$(spool_entries)"
settle_check "$V" SP00L04 >"$WORK/check"; msg=$(cat "$WORK/check"); [ -z "$msg" ] || fail "$msg"
msg=$(dockings_ok SP00L04 2); [ -z "$msg" ] || fail "$msg"
check_eq "map files left" 0 "$(find "$SPOOL/map" -type f ! -name '.*' | wc -l)"
end

begin "evidockd spools while the database is down, shows the backlog, and replays by itself when it returns"
WATCH=$WORK/watch
mkdir -p "$WATCH"
DCONF=$WORK/evidockd.conf
{ cat "$EVIDOCK_CONFIG"; printf '[watch]\ndir = %s\n[usb]\nenabled = no\n' "$WATCH"; } >"$DCONF"
export EVIDOCK_STATUS_FILE=$WORK/status.json
V=$WORK/v5
append "$V" 5
EVIDOCK_CONFIG=$DCONF "$EVIDOCKD" >"$WORK/evidockd.log" 2>&1 &
dpid=$!
wait_until 10 test -s "$EVIDOCK_STATUS_FILE" || fail "evidockd published no status"
pg_stop
mv "$V" "$WATCH/vol"
V=$WATCH/vol
backlog() { jq -r .spool_backlog "$EVIDOCK_STATUS_FILE" 2>/dev/null || echo -1; }
backlog_positive() { [ "$(backlog)" -gt 0 ] && [ "$(spool_files_of SP00L05)" -eq 6 ]; }
wait_until 30 backlog_positive || fail "status shows no spool backlog ($(backlog)): $(tail -3 "$WORK/evidockd.log")"
echo "# status while the database is down: spool_backlog $(backlog), database_ok $(jq -r .database_ok "$EVIDOCK_STATUS_FILE")"
check_eq "database_ok" false "$(jq -r .database_ok "$EVIDOCK_STATUS_FILE")"
grep -q "local spool" "$WORK/evidockd.log" || fail "the daemon's log does not say it spools"
sleep 4 # the daemon keeps trying meanwhile
kill -0 "$dpid" 2>/dev/null || fail "evidockd died"
pg_start
t0=$(date +%s)
backlog_zero() { [ "$(backlog)" -eq 0 ] && [ "$(rows_of SP00L05)" -eq 6 ]; }
wait_until 15 backlog_zero || fail "the daemon did not replay within 15 s (backlog $(backlog), $(rows_of SP00L05) rows)"
echo "# replayed by the daemon $(( $(date +%s) - t0 )) s after the database came back"
grep -q "replayed" "$WORK/evidockd.log" || fail "the daemon's log does not say it replayed"
kill -TERM "$dpid"; wait "$dpid"; rc=$?
check_eq "evidockd exit status after SIGTERM" 0 "$rc"
settle_check "$V" SP00L05 >"$WORK/check"; msg=$(cat "$WORK/check"); [ -z "$msg" ] || fail "$msg"
end

begin "counts: no file lost, none duplicated; the custody log verifies; nothing rejected"
echo "# files $FILES, lost $LOST, duplicated $DUPLICATED"
check_eq "lost" 0 "$LOST"
check_eq "duplicated" 0 "$DUPLICATED"
"$CTL" audit verify >"$WORK/audit" 2>&1; rc=$?
check_eq "audit exit status" 0 "$rc"
check_eq "rejected entries" 0 "$(find "$SPOOL/rejected" -type f | wc -l)"
end

begin "a corrupt spool entry is moved aside with its reason and reported; the others replay; nothing is dropped"
V=$WORK/v6
append "$V" 3
pg_stop
"$CTL" ingest --source "$V" --quiet 2>/dev/null; rc=$?
check_eq "spooled" 4 "$rc"
victim=$(find "$SPOOL/entries" -name '*-file-SP00L06-*' | sort | sed -n 2p)
printf 'x' | dd of="$victim" bs=1 seek=200 conv=notrunc 2>/dev/null # one byte flipped on disk
pg_start
"$CTL" spool replay 2>"$WORK/replay6"; rc=$?
check_eq "replay exit status (rejected)" 2 "$rc"
grep -q "rejected" "$WORK/replay6" || fail "the replay does not report the rejected entry: $(cat "$WORK/replay6")"
check_eq "kept in rejected/" 1 "$(find "$SPOOL/rejected" -name "$(basename "$victim").*" ! -name '*.why' | wc -l)"
grep -q "checksum" "$SPOOL"/rejected/"$(basename "$victim")".*.why || fail "the .why file does not name the checksum"
check_eq "rows of the others" 3 "$(rows_of SP00L06)"
check_eq "spool empty" 0 "$(spool_entries)"
# the file whose entry was rejected is still on the recorder and in the store: the next docking records it
"$CTL" ingest --source "$V" --quiet 2>/dev/null; rc=$?
check_eq "re-docking exit status" 0 "$rc"
settle_check "$V" SP00L06 >"$WORK/check"; msg=$(cat "$WORK/check"); [ -z "$msg" ] || fail "$msg"
end

finish
