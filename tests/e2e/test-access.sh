#!/usr/bin/env bash
# Who may see what, end to end through the real evidockctl with one database login per person (made with
# scripts/pg-scratch login): confidentiality set by an admin, a viewer who cannot read past it with psql,
# a request approved by another admin, an export below the export root only, encrypted for confidential
# files, every refusal in the custody log; and audit verify's cross-check and checkpoint. Prints TAP.
. "$(dirname "$0")/lib.sh"

setup_env access
EXPORTS=$WORK/exports
mkdir -p "$EXPORTS"
printf '[access]\nexport_root = %s\n' "$EXPORTS" >>"$CONF"
V=$WORK/vol1
make_volume "$V" A1B2C3D 012345 --videos 2 --duration 1 --case "C-2026-7" --start-ago 2
unit=440300000000
"$SIM" --out "$V" --key "$V.key" --print-pubkey >"$V.pub" &&
        "$CTL" device enroll --device A1B2C3D --officer 012345 --unit "$unit" --key "$V.pub" >/dev/null ||
        { echo "Bail out! cannot enroll"; exit 1; }
"$CTL" ingest --source "$V" --quiet 2>/dev/null

# One login per person; the cluster's directory is the socket's parent (scripts/pg-scratch layout).
pgdir=$(sed -n 's/.*host=\([^ ]*\)\/sock.*/\1/p' <<<"$EVIDOCK_TEST_PG")
login() { "$EVIDOCK_SOURCE_ROOT/scripts/pg-scratch" login "$1" "$2" "$pgdir" >/dev/null && echo "$DB user=$2"; }
tag=$$_$RANDOM
ADMIN1=$(login evidock_admin "e2e_adm1_$tag") && ADMIN2=$(login evidock_admin "e2e_adm2_$tag") &&
        VIEWER=$(login evidock_viewer "e2e_view_$tag") && AUDITOR=$(login evidock_auditor "e2e_aud_$tag") ||
        { echo "Bail out! cannot create logins (scripts/pg-scratch login)"; exit 1; }
drop_logins() { psql "$EVIDOCK_TEST_PG" -qAt -c "DROP ROLE IF EXISTS e2e_adm1_$tag, e2e_adm2_$tag, e2e_view_$tag, e2e_aud_$tag" >/dev/null 2>&1; }
as() { local who=$1; shift; "$CTL" --database "$who" "$@"; }
sql() { psql "$1" -qAt -c "$2" 2>&1; }
refusals() { sql "$DB" "SELECT count(*) FROM custody_events WHERE kind = 'access_refused'"; }

begin "an admin makes the case confidential; the viewer of the unit no longer sees it, not even with psql"
check "unit add" as "$ADMIN1" access unit add "e2e_view_$tag" "$unit"
check_eq "viewer sees the unit's files" 2 "$(sql "$VIEWER" "SELECT count(*) FROM files")"
as "$VIEWER" access level --case C-2026-7 normal --reason "let me see" >/dev/null 2>&1; rc=$?
check_eq "a viewer cannot set the level" 3 "$rc"
check "level" as "$ADMIN1" access level --case C-2026-7 confidential --reason "a witness is identifiable"
check_eq "viewer psql: no rows" 0 "$(sql "$VIEWER" "SELECT count(*) FROM files WHERE case_number = 'C-2026-7'")"
out=$(sql "$VIEWER" "SET row_security = off; SELECT count(*) FROM files")
grep -q "row-level security" <<<"$out" || fail "row_security = off was not refused: $out"
out=$(sql "$VIEWER" "SELECT count(*) FROM custody_events")
grep -q "permission denied" <<<"$out" || fail "viewer read the custody log: $out"
check_eq "auditor sees them" 2 "$(sql "$AUDITOR" "SELECT count(*) FROM files WHERE case_number = 'C-2026-7'")"
end

begin "a request is approved by another admin only, and expires"
req=$(as "$VIEWER" --json access request --case C-2026-7 --copy --for 1h --purpose "court hearing 2026-12-08" | jq -r .request_id)
[ -n "$req" ] && [ "$req" -gt 0 ] 2>/dev/null || fail "no request id: $req"
before=$(refusals)
as "$VIEWER" access approve "$req" >/dev/null 2>&1; rc=$?
check_eq "a viewer cannot approve" 3 "$rc"
own=$(as "$ADMIN1" --json access request --case C-2026-7 --view --for 1h --purpose "curious" | jq -r .request_id)
as "$ADMIN1" access approve "$own" 2>"$WORK/own.err" >/dev/null; rc=$?
check_eq "approving one's own request" 3 "$rc"
grep -q "their own" "$WORK/own.err" || fail "message: $(cat "$WORK/own.err")"
check_eq "both refusals logged" $((before + 2)) "$(refusals)"
check "approve" as "$ADMIN2" access approve "$req" --reason "court order 17"
check_eq "approved" approved "$(as "$VIEWER" --json access list | jq -r "select(.request_id == $req) | .state")"
short=$(as "$VIEWER" --json access request --case C-2026-7 --view --for 1s --purpose "a glance" | jq -r .request_id)
check "approve short" as "$ADMIN2" access approve "$short"
sleep 1.5
as "$VIEWER" access show "$short" 2>"$WORK/exp.err" >/dev/null; rc=$?
check_eq "expired approval" 3 "$rc"
grep -q "expired" "$WORK/exp.err" || fail "message: $(cat "$WORK/exp.err")"
as "$VIEWER" access show 987654 >/dev/null 2>&1; rc=$?
check_eq "a forged request id" 3 "$rc"
check_eq "refusals logged" $((before + 4)) "$(refusals)"
end

begin "viewing an approved request is logged with requester, approver and purpose"
check_eq "files shown" 2 "$(as "$VIEWER" --json access show "$req" | wc -l)"
check_eq "viewed events" 2 "$(sql "$DB" "SELECT count(*) FROM custody_events WHERE kind = 'viewed' AND actor = 'e2e_view_$tag' AND detail LIKE '%approved by e2e_adm2_$tag, purpose: court hearing%'")"
end

begin "listing restricted files (evidockctl log) is logged"
check "log" as "$AUDITOR" log
check_eq "listed event" 1 "$(sql "$DB" "SELECT count(*) FROM custody_events WHERE kind = 'listed' AND actor = 'e2e_aud_$tag' AND detail LIKE 'evidockctl log by e2e_aud_$tag showed 2 restricted file(s)%'")"
end

begin "export: only below the export root, confidential only encrypted, checkable with standard tools"
before=$(refusals)
as "$VIEWER" export "$req" --to /tmp/evidock-outside-$tag >/dev/null 2>&1; rc=$?
check_eq "outside the root" 3 "$rc"
[ -e "/tmp/evidock-outside-$tag" ] && fail "a folder was made outside the export root"
as "$VIEWER" export "$req" --to "$EXPORTS/../escape" >/dev/null 2>&1; rc=$?
check_eq "dot-dot" 3 "$rc"
as "$VIEWER" export "$req" --to plain 2>"$WORK/plain.err" >/dev/null; rc=$?
check_eq "confidential without encryption" 3 "$rc"
grep -q "only encrypted" "$WORK/plain.err" || fail "message: $(cat "$WORK/plain.err")"
check_eq "refusals logged" $((before + 3)) "$(refusals)"
check_eq "nothing exported yet" 0 "$(sql "$DB" "SELECT count(*) FROM custody_events WHERE kind = 'exported'")"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/office.key" -out "$WORK/office.crt" -days 2 \
        -subj "/CN=Evidence office" 2>/dev/null || fail "openssl req"
as "$VIEWER" export "$req" --to court --encrypt-to "$WORK/office.crt" >"$WORK/export.out" 2>&1; rc=$?
check_eq "export" 0 "$rc"
(cd "$EXPORTS/court" && sha256sum --quiet -c manifest-sha256.txt) || fail "manifest does not check"
check_eq "exported events" 2 "$(sql "$DB" "SELECT count(*) FROM custody_events WHERE kind = 'exported' AND detail LIKE '%approved by e2e_adm2_$tag%to $EXPORTS/court (encrypted)%'")"
f=$(ls "$EXPORTS/court/recordings/" | head -1)
id=${f%%-*}
orig=$(sql "$AUDITOR" "SELECT original_path FROM files WHERE id = $id")
openssl cms -decrypt -binary -inform DER -in "$EXPORTS/court/recordings/$f" -recip "$WORK/office.crt" \
        -inkey "$WORK/office.key" -out "$WORK/decrypted" 2>/dev/null || fail "cannot decrypt $f"
cmp -s "$WORK/decrypted" "$STORE/$orig" || fail "decrypted $f differs from the stored original"
as "$VIEWER" export "$req" --to court >/dev/null 2>&1; rc=$?
check_eq "never overwrites" 3 "$rc"
end

begin "audit verify: intact, rows and events agree, a checkpoint detects a cut tail"
as "$AUDITOR" audit verify >"$WORK/verify1" 2>&1; rc=$?
check_eq "verify" 0 "$rc"
grep -q "evidence rows and custody log agree" "$WORK/verify1" || fail "$(cat "$WORK/verify1")"
check "checkpoint matches" as "$AUDITOR" audit verify --checkpoint "$WORK/verify1"
head=$(sed -n 's/.*head \([0-9]*\) \([0-9a-f]*\)$/\1:\2/p' "$WORK/verify1")
check "--head matches" as "$AUDITOR" audit verify --head "$head"
n=${head%%:*}
sql "$DB" "ALTER TABLE custody_events DISABLE TRIGGER USER; DELETE FROM custody_events WHERE id > $((n - 3)); ALTER TABLE custody_events ENABLE TRIGGER USER" >/dev/null
as "$AUDITOR" audit verify --checkpoint - <"$WORK/verify1" >"$WORK/verify2" 2>&1; rc=$?
check_eq "tail cut" 2 "$rc"
grep -q "custody log intact" "$WORK/verify2" || fail "the chain alone should look intact: $(cat "$WORK/verify2")"
grep -q "MISMATCH: the log ends at event $((n - 3))" "$WORK/verify2" || fail "$(cat "$WORK/verify2")"
end

begin "the dock's login cannot write the schema version or enroll"
DOCK=$(login evidock_dock "e2e_dock_$tag")
out=$(sql "$DOCK" "INSERT INTO schema_migrations (version, name) VALUES (9999, 'x')")
grep -q "permission denied" <<<"$out" || fail "the dock wrote schema_migrations: $out"
as "$DOCK" device retire A1B2C3D --reason test >/dev/null 2>&1; rc=$?
[ "$rc" -ne 0 ] || fail "the dock retired a device"
psql "$EVIDOCK_TEST_PG" -qAt -c "DROP ROLE IF EXISTS e2e_dock_$tag" >/dev/null 2>&1
end

drop_logins
finish
