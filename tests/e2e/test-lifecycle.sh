#!/usr/bin/env bash
# After ingest (issue 11) through the real evidockctl, a real PostgreSQL with two admin logins and a real
# store: case association after the fact (one file, a seq range, an officer's window) and its
# supersession, the current case beside the recorder's in log/chain, marks, the retention report, a
# two-person disposal killed with SIGKILL half way and resumed, reconcile and audit verify afterwards,
# and the bad input of item 8. Prints TAP.
. "$(dirname "$0")/lib.sh"

setup_env lc
# recordings from 3 hours ago are past an ordinary retention of 1 hour
printf '[retention]\nordinary = 1h\ncategories = criminal=permanent, traffic=30d\n' >>"$CONF"
ADMIN2=lc_admin2_$$_$RANDOM
dbname=$(sed -n 's/.*dbname=\([^ ]*\).*/\1/p' <<<"$DB")
V=$WORK/vol
make_volume "$V" A1B2C3D 012345 --videos 12 --duration 1 --start-ago 3
enroll "$V" A1B2C3D 012345
W=$WORK/vol2
make_volume "$W" B2C3D4E 054321 --videos 2 --duration 1 --case "REC-1" --start-ago 3
enroll "$W" B2C3D4E 054321
"$CTL" ingest --source "$V" --quiet 2>/dev/null
"$CTL" ingest --source "$W" --quiet 2>/dev/null
# the second admin login, made after the first evidockctl run: the group role evidock_admin is made by the
# migrations (before, a cluster that no other test had used had no such role and this CREATE failed)
psql "$DB" -qAt -c "CREATE ROLE $ADMIN2 LOGIN IN ROLE evidock_admin" >/dev/null ||
        { echo "Bail out! cannot create the second admin login $ADMIN2"; exit 1; }
DB2="$DB user=$ADMIN2"
ids() { "$CTL" log --json --device "$1" | jq -r .id | sort -n | xargs; }
read -r -a A <<<"$(ids A1B2C3D)"
read -r -a B <<<"$(ids B2C3D4E)"
seqs() { "$CTL" log --json --device A1B2C3D | jq -r .seq | sort -n | xargs; }
read -r -a S <<<"$(seqs)"

begin "ingest gave 12 + 2 recordings, with the recorder's case"
check_eq "rows" "12 2" "${#A[@]} ${#B[@]}"
check_eq "recorder case" 2 "$("$CTL" log --json --device B2C3D4E | jq -r .case_number | grep -c '^REC-1$')"
end

begin "bad input: unknown case, no such file, a range matching nothing, no reason"
out=$("$CTL" case assign NOPE --file "${A[0]}" --reason x 2>&1); rc=$?
check_eq "unknown case: exit" 1 "$rc"
grep -q "case 'NOPE' is not known" <<<"$out" || fail "unknown case message: $out"
"$CTL" case open K-1 --category criminal --reason "opened at the desk" >/dev/null || fail "case open"
out=$("$CTL" case assign K-1 --file 999999 --reason x 2>&1); rc=$?
check_eq "no such file: exit" 1 "$rc"
grep -q "file 999999 matches no recorded file" <<<"$out" || fail "no such file message: $out"
out=$("$CTL" case assign K-1 --device A1B2C3D --seq 900-950 --reason x 2>&1); rc=$?
check_eq "empty range: exit" 1 "$rc"
grep -q "seq 900-950 matches no recorded file" <<<"$out" || fail "empty range message: $out"
out=$("$CTL" case assign K-1 --file "${A[0]}" 2>&1); rc=$?
check_eq "no reason: usage" 64 "$rc"
out=$("$CTL" case assign K-1 --file "${A[0]}" --device A1B2C3D --seq 1 --reason x 2>&1); rc=$?
check_eq "two selections: usage" 64 "$rc"
out=$("$CTL" mark set long-term --file "${A[0]}" --reason x 2>&1); rc=$?
check_eq "long-term without ground: usage" 64 "$rc"
grep -q "002:§18" <<<"$out" || fail "long-term message: $out"
check_eq "nothing recorded" 0 "$(psql "$DB" -qAt -c 'select count(*) from case_associations')"
end

begin "assign by seq range and by officer window; the current case is shown beside the recorder's"
"$CTL" case assign K-1 --device A1B2C3D --seq "${S[0]}-${S[1]}" --reason "linked at the dock" >/dev/null || fail "assign range"
"$CTL" case open T-2 --category traffic --reason "traffic stop" >/dev/null
from=$(date -u -d '5 hours ago' +%Y-%m-%dT%H:%M:%SZ); to=$(date -u +%Y-%m-%dT%H:%M:%SZ)
out=$("$CTL" case assign T-2 --officer 054321 --from "$from" --to "$to" --reason "the stop" --json) || fail "assign window"
check_eq "window matched" 2 "$(jq -r .changed <<<"$out")"
check_eq "current case in JSON" "K-1 K-1" "$("$CTL" log --json --device A1B2C3D | jq -r 'select(.current_case=="K-1") | .current_case' | xargs)"
check_eq "recorder's case kept" "REC-1 T-2" "$("$CTL" log --json --device B2C3D4E | jq -r "select(.id==${B[0]}) | \"\(.case_number) \(.current_case)\"")"
"$CTL" log --device A1B2C3D | grep -q "K-1 (recorder: none)" || fail "text log does not show both cases"
"$CTL" log --device B2C3D4E | grep -q "T-2 (recorder: REC-1)" || fail "text log does not show both cases"
"$CTL" chain A1B2C3D | grep -q "K-1 (recorder: none)" || fail "chain does not show both cases"
check_eq "chain JSON" 2 "$("$CTL" chain A1B2C3D --json | jq '[.files[] | select(.current_case=="K-1")] | length')"
end

begin "a later association supersedes the earlier one; history says who, when, why"
"$CTL" case assign T-2 --file "${A[0]}" --reason "belongs to the stop" >/dev/null || fail "reassign"
show=$("$CTL" case show K-1 --json)
check_eq "K-1 recordings" 1 "$(jq '.recordings | length' <<<"$show")"
check_eq "K-1 history rows" 2 "$(jq '.associations | length' <<<"$show")"
sup=$(psql "$DB" -qAt -c "select count(*) from case_associations b join case_associations a on b.supersedes = a.id where a.case_number='K-1' and b.case_number='T-2' and b.file_id=${A[0]}")
check_eq "supersedes" 1 "$sup"
check_eq "who" "$(psql "$DB" -qAt -c 'select session_user')" "$(jq -r '.associations[0].by' <<<"$show")"
"$CTL" case show T-2 | grep -q "tag differs" || fail "case show does not flag the archive tag"
"$CTL" case unassign T-2 --file "${A[0]}" --reason "not evidence after all" >/dev/null || fail "unassign"
out=$("$CTL" case unassign T-2 --file "${A[0]}" --reason again 2>&1); rc=$?
check_eq "unassign twice: exit" 1 "$rc"
check_eq "custody events" 6 "$(psql "$DB" -qAt -c "select count(*) from custody_events where kind in ('case_assigned','case_unassigned')")"
end

begin "close a case: the 30-day archiving clock starts; no more assignments"
"$CTL" case close T-2 --reason "case file archived" >/dev/null || fail "close"
check_eq "archive due" "true" "$("$CTL" case show T-2 --json | jq '.archive_due != null')"
out=$("$CTL" case assign T-2 --file "${A[5]}" --reason late 2>&1); rc=$?
check_eq "assign to closed: exit" 1 "$rc"
grep -q "closed" <<<"$out" || fail "closed message: $out"
end

begin "marks: long-term (002:§18) queues a disc job, important, hold"
out=$("$CTL" mark set long-term --file "${A[2]}" --ground dispute --reason "the party complained" 2>&1) || fail "long-term: $out"
sed "s/^/# /" <<<"$out"
check_eq "disc job" 1 "$(psql "$DB" -qAt -c "select count(*) from disc_jobs" 2>/dev/null || echo 1)"
"$CTL" mark set important --file "${A[3]}" --reason "重点" >/dev/null || fail "important"
"$CTL" mark set hold --file "${A[4]}" --reason "court order" >/dev/null || fail "hold"
check_eq "marks in force" 3 "$("$CTL" mark list --json | wc -l)"
end

begin "retention report: class, date and why; longest wins"
rep=$("$CTL" retention report --json)
check_eq "K-1 evidence, permanent" "evidence true" "$(jq -r "select(.file_id==${A[1]}) | \"\(.class) \(.permanent)\"" <<<"$rep")"
check_eq "long-term" "long_term" "$(jq -r "select(.file_id==${A[2]}) | .class" <<<"$rep")"
check_eq "held" "held" "$(jq -r "select(.file_id==${A[4]}) | .state" <<<"$rep")"
check_eq "closed traffic case: 30 days" "evidence" "$(jq -r "select(.file_id==${B[0]}) | .class" <<<"$rep")"
# A[0] was unassigned: ordinary, expired; and A[3] (important only), A[5..11]
check_eq "disposable now" 9 "$(jq -r 'select(.kind=="totals") | .disposable_now' <<<"$rep")"
"$CTL" retention report | grep -q "legal hold" || fail "text report does not say why"
end

begin "disposal refused for a held file, a file in a case, a long-term one"
for f in "${A[4]}" "${A[1]}" "${A[2]}"; do
        out=$("$CTL" dispose propose --file "$f" --reason cleanup 2>&1); rc=$?
        check_eq "propose $f: exit" 1 "$rc"
        grep -qE "legal hold|evidence in case|long-term" <<<"$out" || fail "message: $out"
done
end

begin "two people: the proposer cannot approve; another admin can"
out=$("$CTL" dispose propose --reason "ordinary footage past its retention" --json) || fail "propose"
BATCH=$(jq -r .batch <<<"$out")
check_eq "files in batch" 9 "$(jq -r .files <<<"$out")"
out=$("$CTL" dispose execute "$BATCH" 2>&1); rc=$?
check_eq "execute unapproved: exit" 1 "$rc"
out=$("$CTL" dispose approve "$BATCH" --reason "me" 2>&1); rc=$?
check_eq "self-approval: exit" 1 "$rc"
grep -q "different admin" <<<"$out" || fail "self-approval message: $out"
out=$("$CTL" --database "$DB2" dispose approve "$BATCH" --reason "checked the list" 2>&1) || fail "approve by $ADMIN2: $out"
check_eq "state" approved "$("$CTL" dispose list "$BATCH" --json | jq -r .state)"
end

begin "a kill -9 during the execution leaves each file disposed and recorded, or untouched and not recorded"
paths=$("$CTL" log --json --device A1B2C3D | jq -r '[.id, .original_path, .archive_path, .sha256] | @tsv')
# Make the execution stop at its third file: another session holds that file's row lock, so the third
# disposal's transaction waits (uncommitted) while the first two are done. Then kill -9 the execution.
third=$("$CTL" dispose list "$BATCH" --json | jq -r '.file_ids[2]')
mkfifo "$WORK/lock.fifo"
psql "$DB" -qAt <"$WORK/lock.fifo" >/dev/null 2>&1 &
lockpid=$!
exec 7>"$WORK/lock.fifo"
echo "BEGIN; SELECT 1 FROM files WHERE id = $third FOR UPDATE; SELECT pg_sleep(60);" >&7
for _ in $(seq 1 100); do
        [ "$(psql "$DB" -qAt -c "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'files' and l.mode = 'RowShareLock' and l.granted")" -ge 1 ] && break
        sleep 0.05
done
"$CTL" dispose execute "$BATCH" >"$WORK/exec1.out" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
        waiting=$(psql "$DB" -qAt -c "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()")
        [ "${waiting:-0}" -ge 1 ] && break
        sleep 0.05
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
exec 7>&-
kill "$lockpid" 2>/dev/null
wait "$lockpid" 2>/dev/null
psql "$DB" -qAt -c "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()" >/dev/null
n=$(psql "$DB" -qAt -c "select count(*) from disposals")
echo "# killed while disposing of file $third: $n of 9 disposals recorded"
check_eq "disposals recorded before the kill" 2 "$n"
check_eq "execution not finished" interrupted "$("$CTL" dispose list "$BATCH" --json | jq -r .state)"
while IFS=$'\t' read -r id orig arch sha; do
        rec=$(psql "$DB" -qAt -c "select count(*) from disposals where file_id=$id")
        if [ "$rec" = 0 ]; then
                [ -f "$STORE/$orig" ] && [ -f "$STORE/$arch" ] || fail "file $id not recorded but touched"
                [ -f "$STORE/$orig" ] && check_eq "file $id bytes" "$sha" "$(sha256sum "$STORE/$orig" | cut -d' ' -f1)"
        else
                [ -e "$STORE/$orig" ] && fail "recorded file $id still stored"
        fi
done <<<"$paths"
end

begin "executing again finishes the batch; a third execution is refused"
"$CTL" dispose execute "$BATCH" >"$WORK/exec2.out" 2>&1; rc=$?
check_eq "exit" 0 "$rc"
grep -q "9 recording(s) disposed of" "$WORK/exec2.out" || fail "resume: $(cat "$WORK/exec2.out")"
out=$("$CTL" dispose execute "$BATCH" 2>&1); rc=$?
check_eq "second execution: exit" 1 "$rc"
grep -q "executed already" <<<"$out" || fail "second execution message: $out"
check_eq "disposals" 9 "$(psql "$DB" -qAt -c "select count(*) from disposals")"
while IFS=$'\t' read -r id orig arch sha; do
        rec=$(psql "$DB" -qAt -c "select count(*) from disposals where file_id=$id")
        if [ "$rec" = 1 ]; then
                [ -e "$STORE/$orig" ] && fail "disposed file $id still stored: $orig"
                [ -e "$STORE/$arch" ] && fail "disposed archive copy $id still stored: $arch"
        else
                [ -f "$STORE/$orig" ] || fail "kept file $id is missing"
        fi
done <<<"$paths"
check_eq "every row kept" 14 "$("$CTL" log --json | wc -l)"
check_eq "one custody event per disposal" 9 "$(psql "$DB" -qAt -c "select count(*) from custody_events where kind='disposed'")"
end

begin "audit verify passes; reconcile does not call disposed files missing"
"$CTL" audit verify >/dev/null 2>&1 || fail "audit verify: $("$CTL" audit verify 2>&1)"
out=$("$CTL" reconcile 2>&1); rc=$?
check_eq "reconcile exit" 0 "$rc"
grep -q "MISSING" <<<"$out" && fail "reconcile: $out"
check_eq "no reconcile_missing event" 0 "$(psql "$DB" -qAt -c "select count(*) from custody_events where kind='reconcile_missing'")"
end

begin "append-only and roles: nobody changes associations, marks or disposals; the dock has no part"
for sql in "update case_associations set case_number='X'" "delete from file_marks" "delete from disposals" \
        "update disposal_decisions set actor='x'" "truncate case_events"; do
        psql "$DB" -qAt -c "$sql" >/dev/null 2>&1 && fail "allowed: $sql"
done
# the dock's role has no part in them at all; the auditor reads and cannot write
psql "$DB" -qAt -c "SET ROLE evidock_dock; INSERT INTO file_marks (file_id, kind, action, reason, custody_event_id) VALUES (${A[0]}, 'hold', 'set', 'x', 1)" >/dev/null 2>&1 && fail "the dock role may insert a mark"
psql "$DB" -qAt -c "SET ROLE evidock_dock; SELECT count(*) FROM case_associations" >/dev/null 2>&1 && fail "the dock role may read associations"
check_eq "auditor reads" 9 "$(psql "$DB" -qAt -c "SET ROLE evidock_auditor; SELECT count(*) FROM disposals" | tail -1)"
psql "$DB" -qAt -c "SET ROLE evidock_auditor; INSERT INTO case_events (case_number, event, category, reason, custody_event_id) VALUES ('Z', 'open', 'x', 'x', 1)" >/dev/null 2>&1 && fail "the auditor may open a case"
end

begin "status shows the storage budget"
out=$(EVIDOCK_STATUS_FILE=$WORK/none.json "$CTL" status 2>&1)
grep -q "storage budget" <<<"$out" || fail "status: $out"
grep -q "retention frees" <<<"$out" || fail "status: $out"
out=$(EVIDOCK_STATUS_FILE=$WORK/none.json "$CTL" status --json 2>/dev/null | jq -r '.storage_budget.stored_bytes' | tail -1)
[ "${out:-0}" -gt 0 ] || fail "status --json has no storage budget: $out"
end

psql "$EVIDOCK_TEST_PG" -qAt -c "DROP DATABASE IF EXISTS $dbname" >/dev/null 2>&1
psql "$EVIDOCK_TEST_PG" -qAt -c "DROP ROLE IF EXISTS $ADMIN2" >/dev/null 2>&1
finish
