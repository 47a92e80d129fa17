#!/usr/bin/env bash
# evidockctl as an admin meets it (issue 15): options parsed strictly, --help that touches nothing,
# --json through a JSON library, unknown recorders as errors, the admin's queries.
. "$(dirname "$0")/lib.sh"

setup_env cli

# every command and subcommand; "device" and friends are groups
COMMANDS=("ingest" "log" "chain" "device" "device enroll" "device list" "device retire" "dockings" "audit"
          "audit verify" "reconcile" "spool" "spool list" "spool replay" "status" "config")

begin "COMMAND --help prints its usage, exits 0 and touches neither the database nor the store"
# a configuration whose database and store do not exist: any use of them would fail or create them
BAD=$WORK/untouchable.conf
printf '[database]\nurl = host=%s/nosocket dbname=nodb connect_timeout=1\nspool_dir = %s/nospool\n[store]\nroot = %s/nostore\n' \
        "$WORK" "$WORK" "$WORK" >"$BAD"
for cmd in "${COMMANDS[@]}"; do
        # shellcheck disable=SC2086
        out=$(EVIDOCK_CONFIG=$BAD "$CTL" $cmd --help 2>"$WORK/help-err"); rc=$?
        check_eq "'$cmd --help' exit status" 0 "$rc"
        grep -q "^Usage: evidockctl ${cmd%% *}" <<<"$out" || fail "'$cmd --help' prints no usage line: $(head -3 <<<"$out")"
        [ -s "$WORK/help-err" ] && fail "'$cmd --help' wrote to stderr: $(cat "$WORK/help-err")"
        grep -q '^\[database\]' <<<"$out" && fail "'$cmd --help' printed the configuration"
done
[ -e "$WORK/nostore" ] && fail "a --help created the store"
[ -e "$WORK/nospool" ] && fail "a --help created the spool"
# the same with -h, and a broken config file does not stop help either
printf '[nosuchsection]\n' >"$WORK/broken.conf"
EVIDOCK_CONFIG=$WORK/broken.conf "$CTL" chain -h >/dev/null 2>&1 || fail "'chain -h' with a broken config fails"
EVIDOCK_CONFIG=$WORK/broken.conf "$CTL" --help >/dev/null 2>&1 || fail "'--help' with a broken config fails"
end

begin "a typo in an option (retire --reson) is refused and the recorder stays enrolled"
V=$WORK/typo
make_volume "$V" TYP0000 020001 --videos 1 --duration 1
enroll "$V" TYP0000 020001 || fail "enroll failed"
"$CTL" device retire TYP0000 --reson "lost on patrol" >/dev/null 2>"$WORK/typo-err"; rc=$?
check_eq "exit status (usage)" 64 "$rc"
grep -q -- "--reson" "$WORK/typo-err" || fail "the message does not name the option: $(cat "$WORK/typo-err")"
grep -q "Try 'evidockctl device retire --help'" "$WORK/typo-err" || fail "no pointer to the help: $(cat "$WORK/typo-err")"
check_eq "still enrolled" 1 "$("$CTL" device list | grep -c '^TYP0000')"
check_eq "no retire row" 0 "$(psql "$DB" -qAt -c "select count(*) from device_events where event='retire' and device_id='TYP0000'")"
check_eq "no retirement in the custody log" 0 "$(psql "$DB" -qAt -c "select count(*) from custody_events where kind='retired' and device_id='TYP0000'")"
# without a reason it is refused too: the custody log must say why
"$CTL" device retire TYP0000 >/dev/null 2>&1; check_eq "retire without --reason" 64 "$?"
"$CTL" device retire TYP0000 --reason "lost on patrol" >/dev/null || fail "retire with --reason failed"
check_eq "retirement with its reason in the custody log" 1 "$(psql "$DB" -qAt -c "select count(*) from custody_events where kind='retired' and device_id='TYP0000' and detail='lost on patrol'")"
end

begin "unknown options and extra arguments are usage errors pointing to the command's help"
while read -r args; do
        # shellcheck disable=SC2086
        "$CTL" $args >/dev/null 2>"$WORK/usage-err"; rc=$?
        check_eq "'$args' exit status" 64 "$rc"
        grep -q "^Usage: evidockctl" "$WORK/usage-err" || fail "'$args': no usage line: $(cat "$WORK/usage-err")"
        grep -q "^Try 'evidockctl .*--help'" "$WORK/usage-err" || fail "'$args': no pointer to the help: $(cat "$WORK/usage-err")"
done <<'LIST'
log --bogus
log extra
log --since
log --format yaml
chain
chain AB12345 extra
chain --frob AB12345
device
device frob
device list extra
device enroll --device AB12345
device retire
audit
audit verify extra
audit check
reconcile now
spool
spool list extra
status extra
status --bogus
dockings extra
dockings --since never
dockings --bogus
config extra
ingest
ingest --source /tmp extra
LIST
"$CTL" --bogus status >/dev/null 2>&1; check_eq "unknown global option" 64 "$?"
"$CTL" frobnicate >/dev/null 2>&1; check_eq "unknown command" 64 "$?"
end

begin "--json output is valid JSON made by a JSON library (log, chain, device list, audit verify)"
V=$WORK/json
make_volume "$V" J50N000 020002 --videos 2 --duration 1
enroll "$V" J50N000 020002
"$CTL" ingest --source "$V" --quiet 2>/dev/null; check_eq "ingest" 0 "$?"
check_eq "log --json rows" 2 "$("$CTL" log --json --device J50N000 | jq -s length)"
check_eq "global --json" 2 "$("$CTL" --json log --device J50N000 | jq -s length)"
check_eq "log --format json rows" 2 "$("$CTL" log --format json --device J50N000 | jq -s length)"
check_eq "chain --json files" 2 "$("$CTL" chain --json J50N000 | jq '.files | length')"
"$CTL" device list --json | jq -e 'select(.device_id=="J50N000") | .officer_id=="020002"' >/dev/null || fail "device list --json"
check_eq "audit verify --json" true "$("$CTL" audit verify --json | jq .intact)"
"$CTL" ingest --source "$V" --quiet --json 2>/dev/null | jq -e '.files_already==2' >/dev/null || fail "ingest --json summary"
end

begin "an unknown recorder is an error (chain, log --device, dockings --device), with a hint for letter case"
"$CTL" chain N0SUCH1 >/dev/null 2>"$WORK/unk.err"; rc=$?
check_eq "chain UNKNOWN exit status" 1 "$rc"
grep -q "N0SUCH1" "$WORK/unk.err" || fail "chain: message does not name it: $(cat "$WORK/unk.err")"
"$CTL" log --device j50n000 >"$WORK/unk.out" 2>"$WORK/unk.err"; rc=$?
check_eq "log --device lowercase exit status" 1 "$rc"
grep -q "J50N000" "$WORK/unk.err" || fail "log: no hint at the real ID: $(cat "$WORK/unk.err")"
[ -s "$WORK/unk.out" ] && fail "log printed rows for an unknown recorder"
"$CTL" dockings --device N0SUCH1 >/dev/null 2>&1; check_eq "dockings --device UNKNOWN" 1 "$?"
# a retired recorder is still known: its history can be read
"$CTL" chain TYP0000 >/dev/null 2>&1 || fail "chain of a retired recorder fails"
"$CTL" log --device TYP0000 >/dev/null 2>&1 || fail "log of a retired recorder fails"
end

begin "log --since/--until accept ISO 8601 with Z, durations, today and yesterday"
check_eq "--since 1h" 2 "$("$CTL" log --json --device J50N000 --since 1h | jq -s length)"
check_eq "--since today" 2 "$("$CTL" log --json --device J50N000 --since today | jq -s length)"
check_eq "--since yesterday --until today" 0 "$("$CTL" log --json --device J50N000 --since yesterday --until today | jq -s length)"
check_eq "--until 2000-01-01T00:00:00Z" 0 "$("$CTL" log --json --device J50N000 --until 2000-01-01T00:00:00Z | jq -s length)"
check_eq "--since 2000-01-01T00:00:00Z" 2 "$("$CTL" log --json --device J50N000 --since 2000-01-01T00:00:00Z | jq -s length)"
future=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
check_eq "--since $future" 0 "$("$CTL" log --json --device J50N000 --since "$future" | jq -s length)"
check_eq "--until $future" 2 "$("$CTL" log --json --device J50N000 --until "$future" | jq -s length)"
"$CTL" log --since 2026-13-45T00:00:00Z >/dev/null 2>&1; check_eq "an impossible date" 64 "$?"
end

begin "dockings: outcome, counts, findings, duration, clock; --failed, --refused, --device"
# a clean docking (J50N000, above), one with late files and a corrupt file, a refused recorder, and a
# docking that never finished (a dock that lost power mid-way leaves exactly this row)
L=$WORK/late
make_volume "$L" L4TE000 020003 --videos 2 --duration 1 --start-ago 40
enroll "$L" L4TE000 020003
victim=$(cd "$L" && ls VIDEO/*.MP4 | sed -n 1p)
head -c 30000 /dev/urandom >"$L/$victim"
"$CTL" ingest --source "$L" --quiet 2>/dev/null; check_eq "ingest with findings" 2 "$?"
R=$WORK/refused
make_volume "$R" R3FU5ED 020004 --videos 1 --duration 1
"$CTL" ingest --source "$R" --quiet 2>/dev/null; check_eq "ingest refused" 3 "$?"
psql "$DB" -qAt -c "insert into dockings (device_id, transport, location, docked_at) values ('L4TE000', 'dir', '/lost/power', now())" >/dev/null
all=$("$CTL" dockings --json)
check_eq "clean docking of J50N000" clean "$(jq -r 'select(.device_id=="J50N000") | .outcome' <<<"$all" | head -1)"
row=$(jq -c 'select(.device_id=="L4TE000" and .finished_at != null)' <<<"$all")
check_eq "outcome with findings" findings "$(jq -r .outcome <<<"$row")"
check_eq "files seen" 2 "$(jq -r .files_seen <<<"$row")"
check_eq "late files" 2 "$(jq -r .files_late <<<"$row")"
[ "$(jq -r .findings <<<"$row")" -ge 1 ] || fail "no findings counted: $row"
jq -e '.duration_s >= 0 and .officer_id == "020003"' <<<"$row" >/dev/null || fail "duration/officer: $row"
check_eq "refused" "R3FU5ED" "$("$CTL" dockings --refused --json | jq -r '.identity' | grep -o R3FU5ED | head -1)"
check_eq "--refused lists only refused" 0 "$("$CTL" dockings --refused --json | jq -r 'select(.outcome != "refused") | .id' | wc -l)"
check_eq "--failed lists the unfinished one" "unfinished /lost/power" "$("$CTL" dockings --failed --json | jq -r '"\(.outcome) \(.location)"')"
check_eq "--device" 2 "$("$CTL" dockings --device L4TE000 --json | jq -s length)"
check_eq "--since the future" 0 "$("$CTL" dockings --since "$future" --json | jq -s length)"
text=$("$CTL" dockings)
sed "s/^/# /" <<<"$text"
for w in OUTCOME clean findings refused unfinished L4TE000 J50N000; do
        grep -q "$w" <<<"$text" || fail "text output lacks '$w': $text"
done
end

begin "device list: last docked, dockings, files, late files, OVERDUE after [ingest] overdue_after"
cp "$CONF" "$WORK/overdue.conf"
printf '[ingest]\noverdue_after = 1h\n' >>"$WORK/overdue.conf"
N=$WORK/never
make_volume "$N" N3VER00 020005 --videos 1 --duration 1
enroll "$N" N3VER00 020005
# as if enrolled two hours ago (the latest enrollment row counts; rows are only ever added)
psql "$DB" -qAt -c "insert into device_events (device_id, event, officer_id, unit_code, suite, public_key_pem, key_id, at)
        select device_id, event, officer_id, unit_code, suite, public_key_pem, key_id, now() - interval '2 hours'
        from device_events where device_id = 'N3VER00'" >/dev/null
list=$("$CTL" --config "$WORK/overdue.conf" device list --json)
"$CTL" --config "$WORK/overdue.conf" device list 2>&1 | sed "s/^/# /"
check_eq "never docked, enrolled 2 h ago: overdue" true "$(jq -r 'select(.device_id=="N3VER00") | .overdue' <<<"$list")"
check_eq "never docked: no last docking" null "$(jq -r 'select(.device_id=="N3VER00") | .last_docked_at' <<<"$list")"
check_eq "just docked: not overdue" false "$(jq -r 'select(.device_id=="J50N000") | .overdue' <<<"$list")"
check_eq "files of J50N000" 2 "$(jq -r 'select(.device_id=="J50N000") | .files' <<<"$list")"
check_eq "late files of L4TE000" 2 "$(jq -r 'select(.device_id=="L4TE000") | .files_late' <<<"$list")"
check_eq "retired recorders are not listed" "" "$(jq -r 'select(.device_id=="TYP0000") | .device_id' <<<"$list")"
"$CTL" --config "$WORK/overdue.conf" device list --overdue --json | jq -r .device_id | grep -qx J50N000 && fail "--overdue lists a recorder that just docked"
"$CTL" --config "$WORK/overdue.conf" device list --overdue --json | jq -r .device_id | grep -qx N3VER00 || fail "--overdue misses N3VER00"
"$CTL" --config "$WORK/overdue.conf" device list 2>/dev/null | grep N3VER00 | grep -q OVERDUE || fail "text: no OVERDUE mark"
check_eq "default 3 days: nothing overdue" 0 "$("$CTL" device list --overdue --json | wc -l)"
end


begin "status: text by default, says when evidockd is not running or its status is stale, per-file progress"
export EVIDOCK_STATUS_FILE=$WORK/cli-status.json
"$CTL" status >"$WORK/st.out" 2>"$WORK/st.err"; rc=$?
check_eq "no status file: exit status" 1 "$rc"
grep -q "not running" "$WORK/st.err" || fail "no status file: $(cat "$WORK/st.err")"
# a status file left by an evidockd that stopped (its pid is gone), as it looked mid-docking
sleep 0.1 & deadpid=$!; wait $deadpid
now=$(date +%s%6N)
cat >"$EVIDOCK_STATUS_FILE" <<JSON
{"pid":$deadpid,"updated_us":$now,"updated":"x","started":"y","database_ok":false,"spool_backlog":7,
 "store_free_bytes":5000000000,"store_reserve_bytes":2000000000,"store_promised_bytes":150000000,
 "store_paused":false,"files_ingested":3,
 "last_error":null,"jobs":[{"source":"usb 1-2","device_id":"J50N000","officer_id":"020002","state":"copying",
 "file":"VIDEO/0003.MP4","file_done":50000000,"file_total":200000000,"file_started_us":$((now - 5000000)),
 "file_index":3,"files_done":2,"files_total":12,"last_error":null}]}
JSON
"$CTL" status >"$WORK/st.out" 2>&1; rc=$?
check_eq "stopped evidockd: exit status" 1 "$rc"
grep -q "NOT RUNNING" "$WORK/st.out" || fail "a dead evidockd's status shown as current: $(cat "$WORK/st.out")"
for w in "file 3 of 12" "25.0% of 200.0 MB" "10.0 MB/s" "0:15 left" "spool backlog 7" "UNREACHABLE" \
         "4.7 GiB free (143.1 MiB of it promised to copies in progress), reserve 1.9 GiB"; do
        grep -qF "$w" "$WORK/st.out" || fail "progress lacks '$w': $(cat "$WORK/st.out")"
done
check_eq "--json says not running" false "$("$CTL" status --json | jq .evidockd_running)"
# the real evidockd: running, current; then stopped: not running
"$EVIDOCKD" --config "$CONF" 2>"$WORK/st-daemon.log" &
dpid=$!
wait_for 20 sh -c "'$CTL' status >/dev/null 2>&1" || fail "status of a running evidockd: $("$CTL" status 2>&1)"
"$CTL" status | grep -q "evidockd is running (pid $dpid)" || fail "running: $("$CTL" status 2>&1)"
"$CTL" status | grep -q "no recorder docked" || fail "idle: $("$CTL" status 2>&1)"
kill "$dpid"; wait "$dpid" 2>/dev/null
"$CTL" status >"$WORK/st.out" 2>&1; rc=$?
check_eq "after evidockd stopped: exit status" 1 "$rc"
grep -q "NOT RUNNING\|not running" "$WORK/st.out" || fail "after stop: $(cat "$WORK/st.out")"
# stale: a live process that stopped writing (here: this shell's pid, an old time)
printf '{"pid":%d,"updated_us":%s,"updated":"then","jobs":[]}\n' $$ $((now - 60000000)) >"$EVIDOCK_STATUS_FILE"
"$CTL" status >"$WORK/st.out" 2>&1; check_eq "stale: exit status" 1 "$?"
grep -q "STALE" "$WORK/st.out" || fail "stale not said: $(cat "$WORK/st.out")"
unset EVIDOCK_STATUS_FILE
end

begin "bash completion: commands, subcommands, options and device IDs from evidockctl itself"
if [ ! -r /usr/share/bash-completion/bash_completion ]; then
        echo "# SKIP bash-completion is not installed (scripts/deps installs it)"
else
        complete_words() { # the words completed for the command line "$*" (the last word is completed)
                bash -c '
                        . /usr/share/bash-completion/bash_completion
                        . "$1/conf/bash-completion/evidockctl"
                        shift
                        COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
                        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
                        _evidockctl evidockctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                        printf "%s\n" "${COMPREPLY[@]}"' _ "$EVIDOCK_SOURCE_ROOT" "$CTL" "$@" | sort | xargs
        }
        got=$(complete_words "")
        for w in ingest log chain device dockings audit reconcile spool status config; do
                grep -qw "$w" <<<"$got" || fail "commands: no '$w' in: $got"
        done
        check_eq "device subcommands" "enroll list retire" "$(complete_words device "")"
        check_eq "device retire options" "--help --json --reason" "$(complete_words device retire ID --)"
        check_eq "dockings --f" "--failed" "$(complete_words dockings --f)"
        check_eq "log --format" "json text" "$(complete_words log --format "")"
        grep -qw J50N000 <<<"$(complete_words chain "")" || fail "chain: no device IDs: $(complete_words chain "")"
        check_eq "global options" "--config" "$(complete_words --con)"
fi
end

begin "config --check validates the configuration and every recorder profile in recorders.d"
P=$WORK/profiles
mkdir -p "$P"
cp "$EVIDOCK_SOURCE_ROOT/conf/recorders.d/example.conf" "$P/a.conf"
cp "$CONF" "$WORK/check.conf"
printf '[usb]\nprofiles_dir = %s\n' "$P" >>"$WORK/check.conf"
"$CTL" --config "$WORK/check.conf" config --check >"$WORK/check.out" 2>&1; rc=$?
check_eq "good profile: exit status" 0 "$rc"
grep -q "configuration OK" "$WORK/check.out" || fail "no OK: $(cat "$WORK/check.out")"
printf 'vendor_id = 1234\nproduct_id = 5678\nspeed = fast\n' >"$P/b.conf"
"$CTL" --config "$WORK/check.conf" config --check >"$WORK/check.out" 2>&1; rc=$?
check_eq "broken profile: exit status" 1 "$rc"
grep -q "b.conf" "$WORK/check.out" || fail "the broken profile is not named: $(cat "$WORK/check.out")"
rm "$P/b.conf"
cp "$P/a.conf" "$P/c.conf"
"$CTL" --config "$WORK/check.conf" config --check >"$WORK/check.out" 2>&1; rc=$?
check_eq "two profiles for one VID:PID: exit status" 1 "$rc"
grep -q "c.conf" "$WORK/check.out" || fail "the duplicate is not named: $(cat "$WORK/check.out")"
printf '[ingest]\nlate_after = nan\n' >"$WORK/check-bad.conf"
"$CTL" --config "$WORK/check-bad.conf" config --check >/dev/null 2>&1; check_eq "bad main config: exit status" 1 "$?"
end

begin "an offline ingest (database down, into the spool) does not call itself docking 0"
SP=$WORK/spool-cli
cp "$CONF" "$WORK/spool-on.conf"
sed -i "s|^spool_dir =.*|spool_dir = $SP|" "$WORK/spool-on.conf"
O=$WORK/offline
make_volume "$O" 0FFL1NE 020006 --videos 1 --duration 1
"$SIM" --out "$O" --key "$O.key" --print-pubkey >"$O.pub"
"$CTL" --config "$WORK/spool-on.conf" device enroll --device 0FFL1NE --officer 020006 --key "$O.pub" >/dev/null
"$CTL" --config "$WORK/spool-on.conf" ingest --source "$O" --quiet 2>/dev/null   # caches the enrollment
"$SIM" --out "$O" --key "$O.key" --append --preset tiny --videos 1 --audios 0 --photos 0 --duration 1 --quiet >/dev/null
sed "s|^url = .*|url = host=$WORK/no-pg-here dbname=x connect_timeout=2|" "$WORK/spool-on.conf" >"$WORK/spool-off.conf"
"$CTL" --config "$WORK/spool-off.conf" ingest --source "$O" --quiet 2>"$WORK/offline.err"; rc=$?
check_eq "exit status (spooled)" 4 "$rc"
grep -q "docking 0 " "$WORK/offline.err" && fail "says docking 0: $(grep docking "$WORK/offline.err")"
grep -q "spooled" "$WORK/offline.err" || fail "does not say it was spooled: $(cat "$WORK/offline.err")"
end

begin "an online ingest with no spool directory yet replays nothing and says nothing about the spool"
SN=$WORK/no-parent/spool
cp "$CONF" "$WORK/spool-none.conf"
sed -i "s|^spool_dir =.*|spool_dir = $SN|" "$WORK/spool-none.conf"
N=$WORK/nospool-vol
make_volume "$N" N0SP00L 020007 --videos 1 --duration 1
"$SIM" --out "$N" --key "$N.key" --print-pubkey >"$N.pub"
"$CTL" --config "$WORK/spool-none.conf" device enroll --device N0SP00L --officer 020007 --key "$N.pub" >/dev/null
"$CTL" --config "$WORK/spool-none.conf" ingest --source "$N" --quiet 2>"$WORK/nospool.err"; rc=$?
check_eq "exit status" 0 "$rc"
grep -qi "spool" "$WORK/nospool.err" && fail "mentions the spool: $(cat "$WORK/nospool.err")"
[ -e "$WORK/no-parent" ] && fail "the replay created $WORK/no-parent"
end

begin "the database password is masked in every form libpq accepts, in evidockctl config and evidockd's log"
while IFS= read -r url; do
        printf '[database]\nurl = "%s"\n' "$(sed 's/\\/\\\\/g; s/"/\\"/g' <<<"$url")" >"$WORK/mask.conf"
        out=$("$CTL" --config "$WORK/mask.conf" config 2>&1)
        for secret in "my secret pw" "my" "abc" "s3cr" "qq9" "zz8"; do
                grep -q -- "$secret" <<<"$out" && fail "config shows '$secret' of $url: $(grep url <<<"$out")"
        done
        out=$("$CTL" --config "$WORK/mask.conf" config --json 2>&1)
        grep -q "abc\|qq9\|s3cr\|my secret" <<<"$out" && fail "config --json shows the secret of $url"
done <<'URLS'
host=/tmp dbname=x password='my secret pw'
host=/tmp password = abc dbname=x
host=/tmp dbname=x PASSWORD=abc
host=/tmp dbname=x password=abc
postgresql://u:s3cr%20et@localhost/db?sslpassword=zz8
postgresql://u@localhost/db?password=qq9&sslmode=disable
postgres://u:abc@localhost:5432/db
URLS
# evidockd logs the URL at start: a password there must not reach the log (the scratch server does not
# ask for one, so evidockd starts with it)
DMASK=$WORK/daemon-mask.conf
printf '[database]\nurl = %s password='"'"'my secret pw'"'"'\nspool_dir =\n[store]\nroot = %s\n[usb]\nenabled = no\n' "$DB" "$STORE" >"$DMASK"
EVIDOCK_STATUS_FILE=$WORK/mask-status.json "$EVIDOCKD" --config "$DMASK" 2>"$WORK/daemon-mask.log" &
dpid=$!
wait_for 30 grep -q "ready" "$WORK/daemon-mask.log" || fail "evidockd did not get ready: $(tail -3 "$WORK/daemon-mask.log")"
kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null
grep -q "password=\*\*\*" "$WORK/daemon-mask.log" || fail "evidockd's log does not show the masked URL: $(grep ready "$WORK/daemon-mask.log")"
grep -q "my secret\|secret pw" "$WORK/daemon-mask.log" && fail "evidockd's log shows the password"
end

begin "a missing configuration file named with --config or EVIDOCK_CONFIG is an error (evidockctl, evidockd)"
"$CTL" --config "$WORK/no-such.conf" config >/dev/null 2>"$WORK/nocfg.err"; rc=$?
check_eq "evidockctl --config exit status" 1 "$rc"
grep -q "no-such.conf" "$WORK/nocfg.err" || fail "message does not name the file: $(cat "$WORK/nocfg.err")"
EVIDOCK_CONFIG=$WORK/no-such.conf "$CTL" config >/dev/null 2>&1; check_eq "evidockctl EVIDOCK_CONFIG exit status" 1 "$?"
EVIDOCK_STATUS_FILE=$WORK/nocfg-status.json timeout 20 "$EVIDOCKD" --config "$WORK/no-such.conf" 2>"$WORK/nocfg-d.err"; rc=$?
check_eq "evidockd --config exit status" 1 "$rc"
grep -q "no-such.conf" "$WORK/nocfg-d.err" || fail "evidockd's message does not name the file: $(cat "$WORK/nocfg-d.err")"
EVIDOCK_CONFIG=$WORK/no-such.conf EVIDOCK_STATUS_FILE=$WORK/nocfg-status.json timeout 20 "$EVIDOCKD" 2>/dev/null
check_eq "evidockd EVIDOCK_CONFIG exit status" 1 "$?"
end

begin "strict values: no NaN, no hex, no sign; quotes and comments as documented; absolute paths"
bad_value() { # SECTION KEY VALUE: must be refused with file:line
        printf '[%s]\n%s = %s\n' "$1" "$2" "$3" >"$WORK/strict.conf"
        "$CTL" --config "$WORK/strict.conf" config >/dev/null 2>"$WORK/strict.err" &&
                fail "[$1] $2 = $3 accepted" && return
        grep -q "strict.conf:2" "$WORK/strict.err" || fail "[$1] $2 = $3: no file:line: $(cat "$WORK/strict.err")"
}
bad_value ingest late_after nan
bad_value ingest late_after -nan
bad_value ingest late_after inf
bad_value ingest late_after 0x10
bad_value ingest late_after 1e3
bad_value ingest late_after -5s
bad_value ingest late_after +5s
bad_value ingest late_after 24x
bad_value store reserve 0x10
bad_value store reserve nan
bad_value store reserve 1e9
bad_value usb max_concurrent 0x2
bad_value usb max_concurrent +2
bad_value store root relative/store
bad_value store root ./store
bad_value database spool_dir spool
bad_value usb profiles_dir recorders.d
bad_value watch dir volumes
bad_value ingest default_case_number '"unclosed'
bad_value ingest default_case_number '"a" b'
good() { # EXPECTED-JQ-VALUE JQ-PATH then config lines
        local want=$1 path=$2; shift 2
        printf '%s\n' "$@" >"$WORK/good.conf"
        got=$("$CTL" --config "$WORK/good.conf" config --json 2>"$WORK/good.err" | jq -r "$path")
        check_eq "$* -> $path" "$want" "$got"
}
good 5400 .ingest.late_after_s '[ingest]' 'late_after = 1.5h'
good 5400 .ingest.late_after_s '[ingest]' 'late_after = 1.5h   # one and a half hours'
good 5400 .ingest.late_after_s '[ingest]' 'late_after = "1.5h" # quoted'
good "A-1 #7" .ingest.default_case_number '[ingest]' 'default_case_number = "A-1 #7"'
good "A-1" .ingest.default_case_number '[ingest]' 'default_case_number = A-1 # the case'
good 'say "hi"' .ingest.default_case_number '[ingest]' 'default_case_number = "say \"hi\""'
good "" .ingest.default_case_number '[ingest]' 'default_case_number = # none'
good "x#y" .ingest.default_case_number '[ingest]' 'default_case_number = x#y'
good "/srv/store" .store.root '[store]' 'root = /srv/store  ; where it goes'
good "" .database.spool_dir '[database]' 'spool_dir ='
end

finish
