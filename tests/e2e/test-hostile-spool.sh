#!/usr/bin/env bash
# The spool against damage (issue 9, item 10): one damaged entry loses only itself, and the spool's
# directories and entries are private (0700 / 0600), as documented. The real evidockctl, a real
# PostgreSQL; the outage is a database URL that points nowhere. Prints TAP.
. "$(dirname "$0")/lib.sh"

setup_env hspool
SPOOL=$WORK/spool
GOOD=$WORK/good.conf DOWN=$WORK/down.conf
printf '[database]\nurl = %s\nspool_dir = %s\n[store]\nroot = %s\nreserve = 1M\n' "$DB" "$SPOOL" "$STORE" >"$GOOD"
printf '[database]\nurl = host=%s/nowhere dbname=none connect_timeout=2\nspool_dir = %s\n[store]\nroot = %s\nreserve = 1M\n' \
        "$WORK" "$SPOOL" "$STORE" >"$DOWN"
export EVIDOCK_CONFIG=$GOOD
sql() { psql "$DB" -qAt -c "$1" 2>/dev/null; }
rows_of() { sql "select count(*) from files where device_id = '$1'" || echo -1; }

V=$WORK/v
make_volume "$V" SP0OLH1 012380 --videos 1 --duration 1
enroll "$V" SP0OLH1 012380
"$CTL" ingest --source "$V" --quiet >/dev/null 2>&1 # online: fills the spool's cache
"$SIM" --out "$V" --key "$V.key" --append --preset tiny --videos 3 --audios 0 --photos 0 --duration 1 \
       --start-ago 0.01 --quiet >/dev/null

begin "an offline docking spools its files"
EVIDOCK_CONFIG=$DOWN "$CTL" ingest --source "$V" --quiet >/dev/null 2>"$WORK/err-down"; rc=$?
check_eq "exit status (spooled)" 4 "$rc"
check_eq "file entries" 3 "$(find "$SPOOL/entries" -name '*-file-*' | wc -l)"
end

begin "the spool is private: directories 0700, entries and cache 0600"
bad=$(find "$SPOOL" -type d ! -perm 0700 -printf '%m %P\n'; find "$SPOOL" -type f ! -perm 0600 -printf '%m %P\n')
[ -z "$bad" ] || fail "not private: $(xargs <<<"$bad")"
end

begin "a damaged begin entry loses only itself: the files are replayed under a docking rebuilt from them"
begin_entry=$(find "$SPOOL/entries" -name '*-begin-*' | head -1)
[ -n "$begin_entry" ] || fail "no begin entry"
sed -i 's/^d.transport=.*/d.transport=broken/' "$begin_entry" # its checksum no longer matches
"$CTL" spool replay >"$WORK/replay" 2>&1; rc=$?
echo "# replay: $(tr '\n' ' ' <"$WORK/replay" | cut -c1-300)"
check_eq "rows: the first docking's and the three spooled files" 4 "$(rows_of SP0OLH1)"
check_eq "the damaged entry kept aside" 1 "$(find "$SPOOL/rejected" -name '*-begin-*' ! -name '*.why' | wc -l)"
check_eq "nothing else rejected" 1 "$(find "$SPOOL/rejected" -type f ! -name '*.why' | wc -l)"
check_eq "spool empty" 0 "$(find "$SPOOL/entries" -type f ! -name '.*' | wc -l)"
check_eq "dockings, each finished once" "2 2" \
        "$(sql "select count(*) from dockings where device_id = 'SP0OLH1'") $(sql "select count(*) from docking_results r join dockings d on d.id = r.docking_id where d.device_id = 'SP0OLH1'")"
n=$(sql "select count(*) from custody_events where device_id = 'SP0OLH1' and kind = 'docked' and detail like '%rebuilt%'")
check_eq "the rebuilt docking says so in its custody event" 1 "$n"
end

begin "a missing begin entry: the files are still replayed, under a rebuilt docking"
"$SIM" --out "$V" --key "$V.key" --append --preset tiny --videos 2 --audios 0 --photos 0 --duration 1 \
       --start-ago 0.01 --quiet >/dev/null
EVIDOCK_CONFIG=$DOWN "$CTL" ingest --source "$V" --quiet >/dev/null 2>&1; rc=$?
check_eq "exit status (spooled)" 4 "$rc"
begin_entry=$(find "$SPOOL/entries" -name '*-begin-*' | head -1)
[ -n "$begin_entry" ] || fail "no begin entry"
rm -f "$begin_entry"
"$CTL" spool replay >"$WORK/replay2" 2>&1
grep -q 'dockings rebuilt' "$WORK/replay2" || fail "replay does not say it rebuilt a docking: $(tr '\n' ' ' <"$WORK/replay2")"
check_eq "rows: two more files" 6 "$(rows_of SP0OLH1)"
check_eq "spool empty" 0 "$(find "$SPOOL/entries" -type f ! -name '.*' | wc -l)"
check_eq "nothing more rejected" 1 "$(find "$SPOOL/rejected" -type f ! -name '*.why' | wc -l)"
check_eq "dockings, each finished once" "3 3" \
        "$(sql "select count(*) from dockings where device_id = 'SP0OLH1'") $(sql "select count(*) from docking_results r join dockings d on d.id = r.docking_id where d.device_id = 'SP0OLH1'")"
check_eq "rebuilt dockings have transport 'spool'" 2 "$(sql "select count(*) from dockings where device_id = 'SP0OLH1' and transport = 'spool'")"
end

begin "an older spool (0750 / 0640) is made private when opened"
find "$SPOOL" -type d -exec chmod 0750 {} +
find "$SPOOL" -type f -exec chmod 0640 {} +
"$CTL" spool replay >/dev/null 2>&1
bad=$(find "$SPOOL" -type d ! -perm 0700 -printf '%m %P\n')
[ -z "$bad" ] || fail "directories not private: $(xargs <<<"$bad")"
check_eq "replay.lock" 600 "$(stat -c %a "$SPOOL/replay.lock")"
end

begin "the custody log verifies"
"$CTL" audit verify >"$WORK/audit" 2>&1; rc=$?
check_eq "audit exit status" 0 "$rc"
end

finish
