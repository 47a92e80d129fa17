#!/usr/bin/env bash
# evidockd's supervision outputs: the Prometheus metrics file (checked by promtool, counts from the
# database, rewritten as files arrive) and the daily summary line with its MESSAGE_ID. Prints TAP.
. "$(dirname "$0")/lib.sh"

setup_env metrics
WATCH=$WORK/watch
PROM=$WORK/node-exporter/evidock.prom
mkdir -p "$WORK/node-exporter"
export EVIDOCK_STATUS_FILE=$WORK/status.json
printf '[watch]\ndir = %s\n[metrics]\nfile = %s\ninterval = 1s\n' "$WATCH" "$PROM" >>"$CONF"

# Yesterday's recordings are in the database before evidockd starts.
Y=$WORK/yesterday
make_volume "$Y" Y3STRDY 010101 --videos 2 --duration 1 --start "$(date -u -d 'yesterday 12:00' +%Y-%m-%dT%H:%M:%S+00:00)"
enroll "$Y" Y3STRDY 010101
"$CTL" ingest --source "$Y" --quiet >/dev/null 2>&1

"$EVIDOCKD" --config "$CONF" 2>"$WORK/daemon.log" &
pid=$!
trap 'kill $pid 2>/dev/null; t_cleanup' EXIT

begin "the daily summary of yesterday is in the log with its MESSAGE_ID"
wait_for 20 grep -q 'daily summary' "$WORK/daemon.log" || fail "no daily summary: $(tail -5 "$WORK/daemon.log")"
line=$(grep 'daily summary' "$WORK/daemon.log" | head -1)
grep -q "daily summary $(date -u -d yesterday +%Y-%m-%d): 2 recordings" <<<"$line" || fail "summary: $line"
grep -q 'MESSAGE_ID=6f1c2a9e3d8b4c57a0e1f2d3c4b5a70a' <<<"$line" || fail "no MESSAGE_ID: $line"
end

begin "the metrics file appears, promtool accepts it, counts come from the database"
wait_for 20 test -s "$PROM" || fail "no metrics file: $(tail -5 "$WORK/daemon.log")"
out=$(promtool check metrics <"$PROM" 2>&1) || fail "promtool: $out"
grep -q '^evidock_database_up 1$' "$PROM" || fail "database_up: $(grep database_up "$PROM")"
grep -q '^evidock_files_total{verdict="INTACT"} 2$' "$PROM" || fail "files: $(grep files_total "$PROM" | head -3)"
grep -q '^evidock_recorder_last_docked_time_seconds{device="Y3STRDY"} ' "$PROM" || fail "no last docking of Y3STRDY"
ls "$WORK/node-exporter" | grep -qv '^evidock.prom$' && fail "a temporary file was left: $(ls "$WORK/node-exporter")"
end

begin "a docking through the watched directory shows in the metrics within seconds"
V=$WORK/vol
make_volume "$V" M3TR1C5 020202 --videos 1 --duration 1 --photos 1 --start-ago 1
enroll "$V" M3TR1C5 020202
mv "$V" "$WATCH/M3TR1C5"
wait_for 60 grep -q '^evidock_files_total{verdict="INTACT"} 4$' "$PROM" ||
        fail "files after the docking: $(grep 'files_total{verdict="INTACT"}' "$PROM")"
grep -q '^evidock_recorder_last_docked_time_seconds{device="M3TR1C5"} ' "$PROM" || fail "no last docking of M3TR1C5"
promtool check metrics <"$PROM" >/dev/null 2>&1 || fail "promtool after the docking"
end

kill -TERM $pid; wait $pid
finish
