#!/usr/bin/env bash
# Later facts through the one record stage: evidockd's disc worker burns and verifies a disc while
# PostgreSQL goes away (a real scratch cluster of this test's own, stopped by an xorriso wrapper at the
# moment the image is written). The verified disc and the job's end are kept in the spool and replayed,
# by the same evd_record_entry_apply(), when the database is back: the disc is burned once and recorded
# once. The same for evidockctl disc run (exit 4). And evidockctl refuses an admin act while the
# database is unreachable, recording nothing.
# Prints TAP.
. "$EVIDOCK_SOURCE_ROOT/tests/e2e/lib.sh"

PGDIR=$(mktemp -d /tmp/evidock-disc-pg.XXXXXX) && chmod 755 "$PGDIR" || { echo "Bail out! mktemp"; exit 1; }
T_OWN_PG=$PGDIR # lib.sh's t_cleanup stops and removes it
EVIDOCK_TEST_PG=$("$EVIDOCK_SOURCE_ROOT/scripts/pg-scratch" start "$PGDIR") || { echo "Bail out! cannot start PostgreSQL in $PGDIR"; exit 1; }
export EVIDOCK_TEST_PG
setup_env discdown
pg_start() { "$EVIDOCK_SOURCE_ROOT/scripts/pg-scratch" start "$PGDIR" >/dev/null; }
sql() { psql "$DB" -qAt -c "$1" 2>/dev/null; }
wait_until() {
        local end=$(( $(date +%s) + $1 )); shift
        while [ "$(date +%s)" -lt "$end" ]; do "$@" && return 0; sleep 0.2; done
        return 1
}
SPOOL=$WORK/spool HOT=$WORK/hot
mkdir -p "$HOT" "$WORK/disc-work"
printf '[database]\nurl = %s\nspool_dir = %s\n[store]\nroot = %s\nreserve = 1M\n' "$DB" "$SPOOL" "$STORE" >"$CONF"

DEV=D1SCDWN
V=$WORK/vol
make_volume "$V" "$DEV" 012371 --videos 2 --duration 1
enroll "$V" "$DEV" 012371
"$CTL" ingest --source "$V" --case 2026-DOWN-0001 >"$WORK/ingest.out" 2>&1 || echo "# ingest: $(tail -2 "$WORK/ingest.out")"

# xorriso, except that the first time it writes an image the database goes away (fast shutdown: the
# worker's connection is cut in the middle of its step)
export XW_PGDIR=$PGDIR XW_MARK=$WORK/stop-db-once XW_COMMITS=$WORK/commits XW_SRC=$EVIDOCK_SOURCE_ROOT
cat >"$WORK/xorriso" <<'EOF'
#!/usr/bin/env bash
for a in "$@"; do
        if [ "$a" = -commit ]; then
                echo commit >>"$XW_COMMITS"
                if [ -e "$XW_MARK" ]; then
                        rm -f "$XW_MARK"
                        "$XW_SRC/scripts/pg-scratch" stop "$XW_PGDIR" >/dev/null 2>&1
                fi
        fi
done
exec xorriso "$@"
EOF
chmod +x "$WORK/xorriso"
printf '[disc]\nwork_dir = %s\nmedia = dvd\ncopies = 1\ndrives = dir:%s\nxorriso = %s\n' \
        "$WORK/disc-work" "$HOT" "$WORK/xorriso" >>"$CONF"

begin "the database goes away while evidockd burns: the verified disc and the job's end wait in the spool"
"$CTL" disc queue --case 2026-DOWN-0001 >"$WORK/q.out" 2>&1 || fail "queue: $(cat "$WORK/q.out")"
job=$("$CTL" disc list --json | jq -r .job_id | head -1)
touch "$XW_MARK"
export EVIDOCK_STATUS_FILE=$WORK/status.json
"$EVIDOCKD" --config "$CONF" 2>"$WORK/daemon.log" &
pid=$!
wait_until 120 grep -q "kept in the spool" "$WORK/daemon.log" ||
        fail "the journal does not say the outcome is spooled: $(grep -i disc "$WORK/daemon.log" | tail -4 | tr '\n' ' ')"
check_eq "the database was stopped by the burn" 1 "$([ -e "$XW_MARK" ] && echo 0 || echo 1)"
check_eq "image verified and kept in the hot folder" 1 "$(ls "$HOT"/*.iso 2>/dev/null | wc -l)"
n=$(find "$SPOOL/entries" -name '*-disc_job-*' | wc -l)
[ "$n" -ge 1 ] || fail "no disc job fact in the spool"
"$CTL" spool list >"$WORK/list" 2>&1
grep -q "copy 1 verified" "$WORK/list" || fail "spool list: $(cat "$WORK/list")"
mkdir -p "$WORK/saved-entries" && cp "$SPOOL"/entries/*-disc_job-* "$WORK/saved-entries/"
end

begin "when the database is back, the spool's replay records the disc once, and the job is done"
pg_start || fail "PostgreSQL did not start again"
done_now() { [ "$(sql "select state from disc_job_state where job_id = $job")" = done ]; }
wait_until 90 done_now || fail "job $job is '$(sql "select state from disc_job_state where job_id = $job")'"
wait_until 30 bash -c "[ -z \"\$(find '$SPOOL/entries' -type f ! -name '.*')\" ]" || fail "spool not empty: $(ls "$SPOOL/entries")"
check_eq "verified discs" 1 "$(sql "select count(*) from discs where job_id = $job and outcome = 'verified'")"
check_eq "failed discs (none: the burn was not repeated)" 0 "$(sql "select count(*) from discs where job_id = $job and outcome = 'failed'")"
check_eq "images written (once)" 1 "$(wc -l <"$XW_COMMITS")"
check_eq "the spooled rows carry their spool keys" 1 "$(sql "select count(*) from discs where job_id = $job and spool_key is not null")"
n=$(sql "select count(*) from custody_events where kind = 'disc_verified' and detail like '%offline: spooled%'")
check_eq "the custody event says it was spooled" 1 "$n"
check_eq "on_disc events, one per recording" 2 "$(sql "select count(*) from custody_events where kind = 'on_disc'")"
kill -TERM "$pid"; wait "$pid"; check_eq "evidockd stops cleanly" 0 "$?"
end

begin "replaying the same spooled facts again records nothing twice"
# a copy of the entries as they were spooled: replayed a second time (e.g. a crash before the delete)
n_before=$(sql "select count(*) from discs")$(sql "select count(*) from disc_job_events")
mkdir -p "$SPOOL/entries"
cp "$WORK"/saved-entries/* "$SPOOL/entries/" 2>/dev/null
"$CTL" spool replay >"$WORK/replay2" 2>&1
check_eq "rows unchanged" "$n_before" "$(sql "select count(*) from discs")$(sql "select count(*) from disc_job_events")"
check_eq "spool empty" 0 "$(find "$SPOOL/entries" -type f ! -name '.*' | wc -l)"
end

begin "evidockctl disc run: the outage during its burn spools the outcome (exit 4); the next run waits for the replay"
HOT2=$WORK/hot2
mkdir -p "$HOT2"
"$CTL" disc queue --case 2026-DOWN-0001 >"$WORK/q2.out" 2>&1 || fail "queue: $(cat "$WORK/q2.out")"
job2=$("$CTL" disc list --json | jq -r 'select(.state == "queued") | .job_id' | head -1)
touch "$XW_MARK"
"$CTL" disc run --drive "dir:$HOT2" --job "$job2" >"$WORK/run2.out" 2>"$WORK/run2.err"; rc=$?
check_eq "exit status (spooled)" 4 "$rc"
grep -q "kept in the spool" "$WORK/run2.err" || fail "disc run said: $(tail -2 "$WORK/run2.err")"
[ "$(find "$SPOOL/entries" -name '*-disc_job-*' | wc -l)" -ge 1 ] || fail "nothing spooled"
pg_start || fail "PostgreSQL did not start again"
"$CTL" disc run --drive "dir:$HOT2" --job "$job2" >/dev/null 2>"$WORK/run3.err"; rc=$?
check_eq "a step while its facts wait: refused" 1 "$rc"
grep -q "wait in the spool" "$WORK/run3.err" || fail "disc run said: $(cat "$WORK/run3.err")"
"$CTL" spool replay >"$WORK/replay3" 2>&1; check_eq "replay exit status" 0 "$?"
check_eq "job $job2" done "$(sql "select state from disc_job_state where job_id = $job2")"
check_eq "verified, failed discs of job $job2" "1 0" \
        "$(sql "select count(*) filter (where outcome = 'verified') || ' ' || count(*) filter (where outcome = 'failed') from discs where job_id = $job2")"
check_eq "images written (one more)" 2 "$(wc -l <"$XW_COMMITS")"
end

begin "evidockctl refuses an admin act while the database is unreachable, and records nothing"
DOWN=$WORK/down.conf
sed "s|^url = .*|url = host=$WORK/nowhere dbname=none connect_timeout=2|" "$CONF" >"$DOWN"
events=$(sql "select count(*) from custody_events")
for cmd in "mark set important --file 1 --reason test" "case open 2026-DOWN-0002 --category other --reason test" \
           "dispose propose --file 1 --reason test" "disc queue --case 2026-DOWN-0001"; do
        # shellcheck disable=SC2086
        EVIDOCK_CONFIG=$DOWN "$CTL" $cmd >/dev/null 2>"$WORK/refused"; rc=$?
        check_eq "'$cmd' exit status" 1 "$rc"
        grep -q "database is unreachable" "$WORK/refused" && grep -q "nothing was recorded" "$WORK/refused" ||
                fail "'$cmd' said: $(cat "$WORK/refused")"
done
check_eq "nothing spooled" 0 "$(find "$SPOOL/entries" -type f ! -name '.*' | wc -l)"
check_eq "no custody event" "$events" "$(sql "select count(*) from custody_events")"
end

begin "the custody log verifies"
"$CTL" audit verify >"$WORK/audit" 2>&1; check_eq "audit exit status" 0 "$?"
end

finish
