#!/usr/bin/env bash
# A login the database refuses is a configuration error, not an outage: a role that does not exist, a
# database that does not exist, a wrong or missing password. evidockctl says what was refused and where
# and exits 1 (never 4, "spooled"); evidockd keeps the docking in the store and the spool, but says so
# loudly: an error-level log line, status.json database_error, `evidockctl status`, STATUS=. Once the
# configuration is fixed and reloaded the spool reaches the database. The real binaries and PostgreSQL (a
# scratch cluster of this test's own with password authentication for one role). Prints TAP.
. "$(dirname "$0")/lib.sh"

setup_env refused
export EVIDOCK_STATUS_FILE=$WORK/status.json
SPOOL=$WORK/spool
GOOD=$EVIDOCK_CONFIG
printf '[database]\nurl = %s\nspool_dir = %s\n[store]\nroot = %s\nreserve = 1M\n' "$DB" "$SPOOL" "$STORE" >"$GOOD"
SOCK=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$DB")
DBNAME=$(sed -n 's/.*dbname=\([^ ]*\)$/\1/p' <<<"$DB")
NOROLE=evt_norole_$$
# conf URL: a config like GOOD with another database url
conf() { sed "s|^url = .*|url = $2|" "$GOOD" >"$1"; }
spool_entries() { find "$SPOOL/entries" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l; }

# one docking online first: the spool's cache knows the recorder (what an offline docking checks against)
V=$WORK/vol
make_volume "$V" R3FU5ED 012345 --videos 1 --duration 1 --start-ago 1
enroll "$V" R3FU5ED 012345 || { echo "Bail out! cannot enroll"; exit 1; }
"$CTL" ingest --source "$V" --quiet 2>/dev/null || { echo "Bail out! first ingest failed"; exit 1; }
append() { "$SIM" --out "$V" --key "$V.key" --append --preset tiny --videos "$1" --audios 0 --photos 0 \
                  --duration 1 --start-ago 0.01 --quiet >/dev/null; }

begin "a role that does not exist: evidockctl ingest says what was refused and where, exit 1, nothing spooled"
conf "$WORK/norole.conf" "host=$SOCK port=5432 user=$NOROLE dbname=$DBNAME"
append 1
EVIDOCK_CONFIG=$WORK/norole.conf "$CTL" ingest --source "$V" --quiet 2>"$WORK/err"; rc=$?
check_eq "exit status (1 error, not 4 spooled)" 1 "$rc"
grep -q "refused the login of role $NOROLE to database $DBNAME on $SOCK" "$WORK/err" || fail "message: $(cat "$WORK/err")"
grep -q "does not exist" "$WORK/err" || fail "the server's reason is missing: $(cat "$WORK/err")"
grep -qi "unreachable" "$WORK/err" && fail "called an outage: $(cat "$WORK/err")"
check_eq "spool entries" 0 "$(spool_entries)"
end

begin "a database that does not exist: an admin command says so, exit 1"
conf "$WORK/nodb.conf" "host=$SOCK port=5432 user=postgres dbname=nodb_$$"
EVIDOCK_CONFIG=$WORK/nodb.conf "$CTL" log 2>"$WORK/err" >/dev/null; rc=$?
check_eq "exit status" 1 "$rc"
grep -q "refused the login of role postgres to database nodb_$$ on $SOCK" "$WORK/err" || fail "message: $(cat "$WORK/err")"
grep -qi "unreachable" "$WORK/err" && fail "called an outage: $(cat "$WORK/err")"
end

begin "a database that is down is still an outage: ingest spools, exit 4"
conf "$WORK/down.conf" "host=$WORK/nowhere dbname=none connect_timeout=2"
mkdir -p "$WORK/nowhere"
EVIDOCK_CONFIG=$WORK/down.conf "$CTL" ingest --source "$V" --quiet 2>"$WORK/err"; rc=$?
check_eq "exit status" 4 "$rc"
grep -q "unreachable" "$WORK/err" || fail "message: $(cat "$WORK/err")"
[ "$(spool_entries)" -gt 0 ] || fail "nothing spooled"
EVIDOCK_CONFIG=$GOOD "$CTL" spool replay >/dev/null 2>&1 || fail "replay failed"
check_eq "spool entries after the replay" 0 "$(spool_entries)"
end

begin "a wrong password and a missing one are refused logins, not outages"
PWPG=$(mktemp -d /tmp/evidock-pw-pg.XXXXXX) && chmod 755 "$PWPG"
T_OWN_PG=$PWPG # lib.sh's cleanup stops and removes it
PWCI=$("$EVIDOCK_SOURCE_ROOT/scripts/pg-scratch" start "$PWPG") || fail "cannot start a scratch cluster"
psql "$PWCI" -qAt -c "CREATE ROLE evt_pw LOGIN PASSWORD 'right-one'" >/dev/null || fail "cannot create the role"
{ echo "local all evt_pw scram-sha-256"; cat "$PWPG/data/pg_hba.conf"; } >"$WORK/hba" &&
        cat "$WORK/hba" >"$PWPG/data/pg_hba.conf"
psql "$PWCI" -qAt -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
PWSOCK=$PWPG/sock
psql "host=$PWSOCK port=5432 user=evt_pw password=right-one dbname=postgres" -qAt -c 'SELECT 1' >/dev/null 2>&1 ||
        fail "the right password does not work: password authentication is not set up"
for pw in "password=wrong-one" ""; do
        conf "$WORK/pw.conf" "host=$PWSOCK port=5432 user=evt_pw $pw dbname=postgres"
        PGPASSFILE=/dev/null EVIDOCK_CONFIG=$WORK/pw.conf "$CTL" ingest --source "$V" --quiet 2>"$WORK/err"; rc=$?
        check_eq "exit status (${pw:-no password})" 1 "$rc"
        grep -q "refused the login of role evt_pw to database postgres on $PWSOCK" "$WORK/err" ||
                fail "${pw:-no password}: $(cat "$WORK/err")"
done
check_eq "spool entries" 0 "$(spool_entries)"
end

begin "evidockd with a refused login: the docking is kept in the spool, loudly; fixed and restarted, it is recorded"
sock=$WORK/notify.sock
notify_listen "$sock" "$WORK/notify.log"
listener=$NOTIFY_PID
DCONF=$WORK/daemon.conf
conf "$DCONF" "host=$SOCK port=5432 user=$NOROLE dbname=$DBNAME"
printf '[watch]\ndir = %s\n' "$WORK/watch" >>"$DCONF"
mkdir -p "$WORK/watch"
before=$(psql "$DB" -qAt -c "select count(*) from files")
append 2
cp -a "$V" "$WORK/watch/R3FU5ED"
NOTIFY_SOCKET=$sock "$EVIDOCKD" --config "$DCONF" 2>"$WORK/daemon.log" &
pid=$!
wait_for 60 jq -e '.jobs[0].state == "done"' "$EVIDOCK_STATUS_FILE" || fail "not docked: $(cat "$EVIDOCK_STATUS_FILE" 2>&1)"
[ "$(spool_entries)" -gt 0 ] || fail "nothing in the spool"
jq -e --arg r "$NOROLE" '.database_error | test("refused the login of role " + $r)' "$EVIDOCK_STATUS_FILE" >/dev/null ||
        fail "status.json database_error: $(jq -c '{database_ok, database_error}' "$EVIDOCK_STATUS_FILE")"
grep -q "^evidockd\[error\]: .*REFUSED evidock's login" "$WORK/daemon.log" || fail "no loud docking line: $(tail -5 "$WORK/daemon.log" | tr '\n' ' ')"
grep -q "^evidockd\[error\]: DATABASE ERROR, not an outage" "$WORK/daemon.log" || fail "no error line: $(tail -5 "$WORK/daemon.log" | tr '\n' ' ')"
out=$(EVIDOCK_CONFIG=$DCONF "$CTL" status 2>&1)
grep -q "^database: ERROR, not an outage: PostgreSQL refused the login of role $NOROLE" <<<"$out" ||
        fail "evidockctl status: $(head -3 <<<"$out" | tr '\n' ' ')"
wait_for 10 grep -q "STATUS=.*DATABASE ERROR: PostgreSQL refused the login" "$WORK/notify.log" ||
        fail "STATUS=: $(tail -2 "$WORK/notify.log" | tr '\n' ' ')"
grep -q "STATUS=.*DATABASE UNREACHABLE" "$WORK/notify.log" && fail "STATUS= called it an outage"
# the admin fixes the url and restarts evidockd: the spool replay records the docking
kill -TERM "$pid"; wait "$pid"
sed -i "s|^url = .*|url = $DB|" "$DCONF"
NOTIFY_SOCKET=$sock "$EVIDOCKD" --config "$DCONF" 2>"$WORK/daemon2.log" &
pid=$!
wait_for 90 sh -c "[ \$(psql '$DB' -qAt -c 'select count(*) from files') -ge $((before + 2)) ]" ||
        fail "not recorded after the fix: $(psql "$DB" -qAt -c 'select count(*) from files') rows (before $before); $(tail -3 "$WORK/daemon2.log" | tr '\n' ' ')"
wait_for 10 jq -e '.database_error == null and .database_ok' "$EVIDOCK_STATUS_FILE" ||
        fail "status after the fix: $(jq -c '{database_ok, database_error}' "$EVIDOCK_STATUS_FILE")"
kill -TERM "$pid"; wait "$pid"
kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null
end

finish
