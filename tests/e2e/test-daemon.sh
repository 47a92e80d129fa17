#!/usr/bin/env bash
# The real evidockd: strict configuration, a volume appearing in a watched directory is ingested,
# status is published, SIGHUP reloads, SIGTERM stops cleanly. Prints TAP.
. "$(dirname "$0")/lib.sh"

setup_env daemon
WATCH=$WORK/watch
export EVIDOCK_STATUS_FILE=$WORK/status.json
printf '[watch]\ndir = %s\n' "$WATCH" >>"$CONF"

begin "an unknown configuration key stops evidockd with file:line"
bad=$WORK/bad.conf
printf '[store]\nroot = %s\nspeed = fast\n' "$WORK/x" >"$bad"
"$EVIDOCKD" --config "$bad" 2>"$WORK/bad.err"; rc=$?
check_eq "exit status" 1 "$rc"
grep -q "bad.conf:3: unknown key 'speed'" "$WORK/bad.err" || fail "message: $(cat "$WORK/bad.err")"
end

begin "evidockd starts with nothing docked and publishes its status"
"$EVIDOCKD" --config "$CONF" 2>"$WORK/daemon.log" &
pid=$!
wait_for 10 test -s "$EVIDOCK_STATUS_FILE" || fail "no status file"
jq -e '.jobs | length == 0' "$EVIDOCK_STATUS_FILE" >/dev/null || fail "status: $(cat "$EVIDOCK_STATUS_FILE")"
"$CTL" status --json | jq -e .store_free_bytes >/dev/null || fail "evidockctl status does not print the status"
kill -0 "$pid" || fail "evidockd died: $(cat "$WORK/daemon.log")"
end

begin "a volume moved into the watched directory is ingested by the daemon"
V=$WORK/vol
make_volume "$V" D4EM0N1 012345 --videos 2 --duration 1 --photos 1 --start-ago 1
enroll "$V" D4EM0N1 012345
mv "$V" "$WATCH/D4EM0N1"
wait_for 60 sh -c "[ \$('$CTL' log --format json --device D4EM0N1 | wc -l) -eq 3 ]" || fail "rows: $("$CTL" log --device D4EM0N1)"
check_eq "INTACT rows" 3 "$("$CTL" log --format json --device D4EM0N1 | jq -r .verdict | grep -c INTACT)"
wait_for 10 jq -e '.jobs[0].state == "done" and .jobs[0].device_id == "D4EM0N1"' "$EVIDOCK_STATUS_FILE" ||
        fail "status: $(cat "$EVIDOCK_STATUS_FILE")"
grep -q "MESSAGE_ID=" "$WORK/daemon.log" || fail "no message IDs in the log"
end

begin "SIGHUP reloads the configuration and a broken one is refused without stopping"
printf '[ingest]\nlate_after = 12h\n' >>"$CONF"
kill -HUP "$pid"
wait_for 10 grep -q "reloaded" "$WORK/daemon.log" || fail "no reload line: $(tail -3 "$WORK/daemon.log")"
printf 'nonsense\n' >>"$CONF"
kill -HUP "$pid"
wait_for 10 grep -q "reload refused" "$WORK/daemon.log" || fail "broken config not refused: $(tail -3 "$WORK/daemon.log")"
kill -0 "$pid" || fail "evidockd stopped on a broken reload"
end

begin "status.json counts the files of the volume (files_total)"
check_eq "files_total of the docking" 3 "$(jq -r '.jobs[0].files_total' "$EVIDOCK_STATUS_FILE")"
check_eq "files_done of the docking" 3 "$(jq -r '.jobs[0].files_done' "$EVIDOCK_STATUS_FILE")"
end

begin "SIGTERM stops evidockd cleanly"
kill -TERM "$pid"
wait_for 20 sh -c "! kill -0 $pid" || fail "still running 20 s after SIGTERM"
wait "$pid"; rc=$?
check_eq "exit status" 0 "$rc"
end

dockings() { psql "$DB" -qAt -c "SELECT count(*) FROM dockings"; }
sed -i '/^nonsense$/d' "$CONF" # the broken line of the reload case

begin "a restart does not dock again a volume already ingested completely and unchanged"
before=$(dockings)
"$EVIDOCKD" --config "$CONF" 2>"$WORK/daemon2.log" &
pid=$!
wait_for 20 grep -q "unchanged since: not docked again" "$WORK/daemon2.log" ||
        fail "no 'not docked again' line: $(cat "$WORK/daemon2.log")"
sleep 2
check_eq "docking rows after the restart" "$before" "$(dockings)"
kill -TERM "$pid"; wait "$pid"
end

begin "a volume changed since it was ingested is docked again at the next start"
before=$(dockings)
touch "$WATCH/D4EM0N1/EVIDOCK/DEVICE.TXT"
"$EVIDOCKD" --config "$CONF" 2>"$WORK/daemon3.log" &
pid=$!
more_dockings() { kill -0 "$pid" && [ "$(dockings)" -gt "$before" ]; }
wait_for 30 more_dockings ||
        fail "not docked again: $(cat "$WORK/daemon3.log")"
check_eq "file rows (nothing stored twice)" 3 "$("$CTL" log --format json --device D4EM0N1 | wc -l)"
kill -TERM "$pid"; wait "$pid"
end

begin "late files at warning with their MESSAGE_ID; every docking line carries docking and officer fields"
L=$WORK/late
make_volume "$L" L4TE001 054321 --videos 1 --duration 1 --photos 0 --start-ago 50
enroll "$L" L4TE001 054321
mkdir -p "$WORK/watch-late"
LCONF=$WORK/late.conf
sed "s|^dir = .*|dir = $WORK/watch-late|" "$CONF" >"$LCONF"
mv "$L" "$WORK/watch-late/L4TE001"
EVIDOCK_LOG_FIELDS=1 "$EVIDOCKD" --config "$LCONF" 2>"$WORK/daemon-late.log" &
pid=$!
wait_for 60 grep -q "docking [0-9]* finished" "$WORK/daemon-late.log" || fail "not docked: $(tail -5 "$WORK/daemon-late.log")"
kill -TERM "$pid"; wait "$pid"
grep -q '^evidockd\[warning\]: .*LATE: .*MESSAGE_ID=6f1c2a9e3d8b4c57a0e1f2d3c4b5a706' "$WORK/daemon-late.log" ||
        fail "no late line at warning with its MESSAGE_ID: $(grep -i late "$WORK/daemon-late.log" | head -3)"
docking=$(psql "$DB" -qAt -c "SELECT max(id) FROM dockings WHERE device_id = 'L4TE001'")
# every line naming the recorder (after it was identified) carries the docking and officer fields
bad=$(grep 'EVIDOCK_DEVICE=L4TE001' "$WORK/daemon-late.log" | grep -v "EVIDOCK_OFFICER=054321  EVIDOCK_DOCKING=$docking" | head -3)
[ -z "$bad" ] || fail "docking lines without docking/officer fields: $bad"
check_eq "docking lines with both fields (identified, stored, late, end, finished)" yes \
        "$([ "$(grep "EVIDOCK_DOCKING=$docking" "$WORK/daemon-late.log" | grep -c 'EVIDOCK_OFFICER=054321')" -ge 4 ] && echo yes)"
end

begin "STATUS= says when the database is unreachable and how many entries wait in the spool"
sock=$WORK/notify.sock
notify_listen "$sock" "$WORK/notify.log"
listener=$NOTIFY_PID
OFF=$WORK/offline.conf
sed -e "s|^url = .*|url = host=$WORK/nodb port=1 connect_timeout=2|" -e "s|^spool_dir =.*|spool_dir = $WORK/spool|" "$CONF" >"$OFF"
NOTIFY_SOCKET=$sock "$EVIDOCKD" --config "$OFF" 2>"$WORK/daemon4.log" &
pid=$!
wait_for 30 grep -q "DATABASE UNREACHABLE" "$WORK/notify.log" ||
        fail "no DATABASE UNREACHABLE in STATUS=: $(tail -3 "$WORK/notify.log") / $(tail -3 "$WORK/daemon4.log")"
grep -q "STATUS=.*spool backlog 0 entries" "$WORK/notify.log" || fail "no spool backlog in STATUS=: $(tail -3 "$WORK/notify.log")"
grep -q "READY=1" "$WORK/notify.log" || fail "no READY=1"
kill -TERM "$pid"; wait "$pid"
kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null
end

finish
